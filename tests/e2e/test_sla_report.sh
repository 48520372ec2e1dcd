#!/usr/bin/env bash
# End-to-end check of the sla-report binary against a ledger prepared with the sqlite3 CLI
# (the figures themselves are proven in tests/unit/report_test.cpp): a missed day exits 1 with
# the right JSON fields, a met day exits 0, a stored report is printed as stored, `list` gives
# NDJSON newest first, an open run is judged by the DAYBREAK_CLOCK time, and bad input maps to
# the documented exit codes (2 usage, 3 config, 4 database). Needs sqlite3, plus jq or python3
# to read JSON; exits 125 (skip) without them.
set -euo pipefail

REPORT="${DAYBREAK_BIN:?set DAYBREAK_BIN to the cmd directory of a build}/sla-report/sla-report"
# Until every binary is built into its own cmd/NAME/ directory, it may sit at cmd/NAME itself.
[[ -x "$REPORT" || ! -f "$DAYBREAK_BIN/sla-report" ]] || REPORT="$DAYBREAK_BIN/sla-report"
SRC="${DAYBREAK_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
command -v sqlite3 >/dev/null 2>&1 || { echo "SKIP: sqlite3 not found" >&2; exit 125; }
source "$(dirname "$0")/json.sh"
[[ -x "$REPORT" ]] || { echo "FAIL: $REPORT is not built" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/daybreak-sla-e2e.XXXXXX")"
cleanup() {
  local rc=$?
  if [[ $rc -eq 0 ]]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }


expect_eq() {  # expect_eq WHAT EXPECTED ACTUAL
  [[ "$3" == "$2" ]] || fail "$1: expected '$2', got '$3'"
}

# run_report ARGS... → stdout in $OUT, stderr in $ERR, exit status in $RC (never aborts the script)
run_report() {
  set +e
  "$REPORT" "$@" >"$WORK/out" 2>"$WORK/err"
  RC=$?
  set -e
  OUT="$(cat "$WORK/out")"
  ERR="$(cat "$WORK/err")"
}

# Hermetic: no operator configuration, and the real clock unless a test pins one.
unset DAYBREAK_CONFIG DAYBREAK_CLOCK
DB="$WORK/ledger.db"

# --- the ledger: the schema as the binaries migrate it, then three runs.
#   run 1, 2026-11-28 06:00 IST, closed: 100 platinum/gold deliveries, 98 on time, 1 late, 1 dead → 98%, missed
#   run 2, 2026-11-29 06:00 IST, closed: 50 deliveries, all on time → 100%, met
#   run 3, 2026-11-30 06:00 IST, running: 10 deliveries not yet sent
S1=1795825800000  # 2026-11-28T00:30:00Z
S2=$((S1 + 86400000))
S3=$((S2 + 86400000))
{
  cat "$SRC/sql/001_initial.sql"
  cat <<SQL
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
  applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));
INSERT INTO schema_migrations(version, name) VALUES (1, '001_initial');
INSERT INTO content(content_id, title, body, language, updated_at) VALUES ('c1', 'Markets today', 'body', 'en', 0);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
INSERT INTO advisors(advisor_id, name, tier, timezone, slot, channels, opted_in, language, updated_at)
  SELECT 'A' || i, 'Advisor ' || i, CASE WHEN i <= 40 THEN 'platinum' ELSE 'gold' END,
         'Asia/Kolkata', '06:00', 'whatsapp|email', 1, 'en', 0 FROM n;
INSERT INTO runs(run_id, date, slot_at, window_start, window_end, deadline_at, state, planned_count) VALUES
  (1, '2026-11-28', $S1, $S1 - 30000, $S1 + 270000, $S1 + 300000, 'closed', 100),
  (2, '2026-11-29', $S2, $S2 - 30000, $S2 + 270000, $S2 + 300000, 'closed', 50),
  (3, '2026-11-30', $S3, $S3 - 30000, $S3 + 270000, $S3 + 300000, 'running', 10);
-- run 1: A1..A100; A1 is late (accepted 1 s after the deadline), A2 is dead.
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
INSERT INTO deliveries(run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, state, channel, sender,
                       planned_at, deadline_at, attempts, first_sent_at, accepted_at, updated_at)
  SELECT 1, 'A' || i, '2026-11-28', $S1, 'c1', 'editorial', CASE WHEN i <= 40 THEN 'platinum' ELSE 'gold' END,
         CASE WHEN i <= 40 THEN 0 ELSE 1 END,
         CASE i WHEN 2 THEN 'dead' ELSE 'accepted' END, 'whatsapp', 'wa-1',
         $S1 + i * 100, $S1 + 300000, 1, $S1 + i * 100 + 7,
         CASE i WHEN 1 THEN $S1 + 301000 WHEN 2 THEN NULL ELSE $S1 + i * 100 + 400 END, 0
  FROM n;
INSERT INTO delivery_attempts(delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome, error_code, error_detail)
  SELECT delivery_id, 1, 'whatsapp', 'wa-1', 0, 0, 'accepted', NULL, NULL FROM deliveries WHERE run_id = 1 AND advisor_id <> 'A2';
INSERT INTO delivery_attempts(delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome, error_code, error_detail)
  SELECT delivery_id, 1, 'whatsapp', 'wa-1', 0, 0, 'permanent', '131026', 'Message undeliverable' FROM deliveries WHERE advisor_id = 'A2';
-- run 2: A1..A50, all on time.
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
INSERT INTO deliveries(run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, state, channel, sender,
                       planned_at, deadline_at, attempts, first_sent_at, accepted_at, updated_at)
  SELECT 2, 'A' || i, '2026-11-29', $S2, 'c1', 'fallback', CASE WHEN i <= 40 THEN 'platinum' ELSE 'gold' END, 0,
         'read', 'whatsapp', 'wa-1', $S2 + i * 100, $S2 + 300000, 1, $S2 + i * 100 + 5, $S2 + i * 100 + 300, 0
  FROM n;
-- run 3: A1..A10, planned, nothing sent yet.
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)
INSERT INTO deliveries(run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, state, channel, sender,
                       planned_at, deadline_at, updated_at)
  SELECT 3, 'A' || i, '2026-11-30', $S3, 'c1', 'editorial', 'platinum', 0, 'planned', 'whatsapp', 'wa-1',
         $S3 + i * 100, $S3 + 300000, 0
  FROM n;
-- dispatch leaves the ledger in WAL mode: sla-report must read it that way too.
PRAGMA journal_mode=WAL;
SQL
} | sqlite3 -bail "$DB" >/dev/null || fail "could not prepare the ledger"

# --- a missed day: exit 1, the figures, the JSON shape.
run_report --database "$DB" --date 2026-11-28 --json
expect_eq "missed day exit" 1 "$RC"
[[ "$(wc -l <<<"$OUT")" -eq 1 ]] || fail "--json printed more than one line: $OUT"
expect_eq kind date "$(jget "$OUT" kind)"
expect_eq date 2026-11-28 "$(jget "$OUT" date)"
expect_eq eligible 100 "$(jget "$OUT" eligible)"
expect_eq on_time 98 "$(jget "$OUT" on_time)"
expect_eq late 1 "$(jget "$OUT" late)"
expect_eq dead 1 "$(jget "$OUT" dead)"
expect_eq failed 0 "$(jget "$OUT" failed)"
expect_eq sla_pct 98 "$(jget "$OUT" sla_pct | sed 's/\.0*$//')"
expect_eq met false "$(jget "$OUT" met)"
expect_eq verdict missed "$(jget "$OUT" verdict)"
expect_eq "lag p50" 7 "$(jget "$OUT" lag_ms p50 | sed 's/\.0*$//')"
expect_eq "lag p99" 7 "$(jget "$OUT" lag_ms p99 | sed 's/\.0*$//')"
expect_eq "platinum eligible" 40 "$(jget "$OUT" by_tier platinum eligible)"
expect_eq "gold on time" 60 "$(jget "$OUT" by_tier gold on_time)"
expect_eq "runs" 1 "$(jget "$OUT" runs 0 run_id)"
expect_eq "run slot" 2026-11-28T00:30:00Z "$(jget "$OUT" runs 0 slot_at)"
expect_eq "top failure" 131026 "$(jget "$OUT" top_failure_reasons 0 error_code)"
expect_eq "attempts" 100 "$(jget "$OUT" attempts)"
expect_eq "report source" ledger "$(jget "$OUT" report_source)"
grep -q "SLA missed" <<<"$ERR" || fail "no warning on stderr for a missed SLA: $ERR"
if [[ $JSON_TOOL == jq ]]; then  # the man page's pipeline
  expect_eq "jq pipeline" "platinum 95" \
    "$(jq -r '.by_tier | to_entries[] | select(.value.sla_pct < 99) | "\(.key) \(.value.sla_pct)"' <<<"$OUT")"
fi

# --- the same day as text: the verdict word, the tier table in tier order.
run_report --database "$DB" --date 2026-11-28
expect_eq "text exit" 1 "$RC"
grep -q "SLA 98.00% vs target 99.00%: MISSED" <<<"$OUT" || fail "text headline: $OUT"
grep -q "2026-11-28T06:00:00+05:30" <<<"$OUT" || fail "slot not shown in IST: $OUT"
[[ "$(grep -n platinum <<<"$OUT" | head -1 | cut -d: -f1)" -lt "$(grep -n '^  gold' <<<"$OUT" | head -1 | cut -d: -f1)" ]] ||
  fail "tiers not in tier order: $OUT"
grep -q "Message undeliverable" <<<"$OUT" || fail "failure reason missing: $OUT"

# --- one run: computed from the ledger until a stored report exists, then the stored one.
run_report --database "$DB" --run 1 --json
expect_eq "run exit" 1 "$RC"
expect_eq "run kind" run "$(jget "$OUT" kind)"
expect_eq "run closed" true "$(jget "$OUT" closed)"
expect_eq "run source" ledger "$(jget "$OUT" report_source)"
# Store the report as dispatch would, with a marker that only the stored copy carries.
if [[ $JSON_TOOL == jq ]]; then
  STORED="$(jq -c 'del(.report_source) | .marker = "from sla_reports"' <<<"$OUT")"
else
  STORED="$(python3 -c 'import json, sys; d = json.load(sys.stdin); d.pop("report_source"); d["marker"] = "from sla_reports"; print(json.dumps(d))' <<<"$OUT")"
fi
STORED_SQL=${STORED//\'/\'\'}  # SQL quoting: ' becomes ''
sqlite3 "$DB" "INSERT INTO sla_reports(run_id, date, generated_at, sla_pct, report) VALUES (1, '2026-11-28', 0, 98.0, '$STORED_SQL')"
run_report --database "$DB" --run 1 --json
expect_eq "stored exit" 1 "$RC"
expect_eq "stored source" stored "$(jget "$OUT" report_source)"
expect_eq "stored marker" "from sla_reports" "$(jget "$OUT" marker)"
expect_eq "stored on_time" 98 "$(jget "$OUT" on_time)"

# --- a met day exits 0; with no --date/--run the most recent run's day is shown.
run_report --database "$DB" --date 2026-11-29 --json
expect_eq "met day exit" 0 "$RC"
expect_eq "met" true "$(jget "$OUT" met)"
expect_eq "met sla" 100 "$(jget "$OUT" sla_pct | sed 's/\.0*$//')"
expect_eq "fallback count" 50 "$(jget "$OUT" by_source fallback)"

# --- an open run is judged at the DAYBREAK_CLOCK time: in progress before its deadline, missed after.
REAL_MS="$(date +%s%3N)"
DAYBREAK_CLOCK="2026-11-30T05:59:00+05:30@${REAL_MS}*1" run_report --database "$DB" --json
expect_eq "open run exit" 0 "$RC"
expect_eq "default date" 2026-11-30 "$(jget "$OUT" date)"
expect_eq "open run closed" false "$(jget "$OUT" closed)"
expect_eq "open run verdict" in_progress "$(jget "$OUT" verdict)"
expect_eq "open run failed" 10 "$(jget "$OUT" failed)"
DAYBREAK_CLOCK="2026-11-30T07:00:00+05:30@${REAL_MS}*1" run_report --database "$DB" --run 3 --json
expect_eq "stale open run exit" 1 "$RC"
expect_eq "stale open run verdict" missed "$(jget "$OUT" verdict)"

# --- list: NDJSON newest first, --limit, and text.
run_report --database "$DB" list --json
expect_eq "list exit" 0 "$RC"
expect_eq "list lines" 3 "$(wc -l <<<"$OUT" | tr -d ' ')"
expect_eq "list newest" 3 "$(jget "$(head -1 <<<"$OUT")" run_id)"
expect_eq "list stored sla" 98 "$(jget "$(tail -1 <<<"$OUT")" sla_pct | sed 's/\.0*$//')"
run_report --database "$DB" list --limit 1 --json
expect_eq "list --limit" 1 "$(wc -l <<<"$OUT" | tr -d ' ')"
run_report --database "$DB" list
expect_eq "list text exit" 0 "$RC"
grep -q "2026-11-29" <<<"$OUT" || fail "list text: $OUT"

# --- errors map to the documented exit codes, each with a clear message.
run_report --database "$DB" --date 2026-13-01
expect_eq "bad date exit" 2 "$RC"
grep -q '2026-13-01' <<<"$ERR" || fail "bad date message: $ERR"
[[ -z "$OUT" ]] || fail "bad date printed on stdout: $OUT"
run_report --database "$DB" --date 2026-11-28 --run 1
expect_eq "--date with --run exit" 2 "$RC"
run_report --database "$DB" --date 2026-12-25 --json
expect_eq "day without runs exit" 1 "$RC"
grep -q 'no runs' <<<"$ERR" || fail "day without runs message: $ERR"
run_report --database "$DB" --run 999
expect_eq "unknown run exit" 1 "$RC"
grep -q 'run 999 does not exist' <<<"$ERR" || fail "unknown run message: $ERR"
run_report --database "$WORK/missing.db" --json
expect_eq "missing database exit" 4 "$RC"
grep -q "does not exist" <<<"$ERR" || fail "missing database message: $ERR"
[[ ! -e "$WORK/missing.db" ]] || fail "sla-report created the missing database"
echo "not a database" >"$WORK/junk.db"
run_report --database "$WORK/junk.db"
expect_eq "junk database exit" 4 "$RC"
run_report --config "$WORK/missing.toml" --database "$DB"
expect_eq "missing config exit" 3 "$RC"
run_report --help
expect_eq "help exit" 0 "$RC"
grep -q -- "--date" <<<"$OUT" || fail "--help does not mention --date"

# sla-report only reads: the ledger is unchanged (no migration, no journal left behind).
expect_eq "schema version untouched" 1 "$(sqlite3 "$DB" 'SELECT MAX(version) FROM schema_migrations')"
echo "PASS: sla-report e2e"
