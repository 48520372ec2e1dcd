-- 005: stored run reports on the PostgreSQL ledger, as SQLite's sla_reports (sql/001_initial.sql):
-- one report per closed run, the JSON app/report.cpp builds, written by the dispatch that closed
-- the run (store/pg_ledger.cpp, ledger_op::StoreRunReport) in its writer's transaction, keyed by
-- run id; `sla-report` prints it for the closed run, `sla-report trend` counts it and `daybreak
-- export reports` streams it (store/pg_reports.hpp). closed_at is the run's finished_at when
-- the report was written: a run reopened (a resend or a dead-letter replay) and closed again
-- replaces its row. written_by names the dispatch (its lease owner id) that wrote it.
CREATE TABLE run_reports (
  run_id       BIGINT PRIMARY KEY REFERENCES runs(run_id),
  date         TEXT NOT NULL,
  closed_at    BIGINT NOT NULL,
  generated_at BIGINT NOT NULL,
  sla_pct      DOUBLE PRECISION NOT NULL,
  report       TEXT NOT NULL,
  written_by   TEXT NOT NULL
);
CREATE INDEX run_reports_date ON run_reports(date);
