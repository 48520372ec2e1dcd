-- 001: the delivery ledger. Times are INTEGER milliseconds since the Unix epoch (UTC);
-- dates are TEXT 'YYYY-MM-DD' (the advisor's local delivery day D).

CREATE TABLE advisors (
  advisor_id   TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  tier         TEXT NOT NULL,
  timezone     TEXT NOT NULL,
  slot         TEXT NOT NULL,             -- local HH:MM
  channels     TEXT NOT NULL,             -- preference order, 'whatsapp|email'
  opted_in     INTEGER NOT NULL CHECK (opted_in IN (0, 1)),
  language     TEXT NOT NULL,
  topics       TEXT NOT NULL DEFAULT '',  -- 'tax;equity'
  paused_from  TEXT,                      -- absence, inclusive
  paused_until TEXT,
  updated_at   INTEGER NOT NULL
);

CREATE TABLE advisor_channels (
  advisor_id TEXT NOT NULL REFERENCES advisors(advisor_id) ON DELETE CASCADE,
  channel    TEXT NOT NULL CHECK (channel IN ('whatsapp', 'email', 'webhook')),
  address    TEXT NOT NULL,
  opted_in   INTEGER NOT NULL DEFAULT 1 CHECK (opted_in IN (0, 1)),
  PRIMARY KEY (advisor_id, channel)
) WITHOUT ROWID;

CREATE TABLE content (
  content_id        TEXT PRIMARY KEY,
  title             TEXT NOT NULL,
  body              TEXT NOT NULL,
  language          TEXT NOT NULL,
  topics            TEXT NOT NULL DEFAULT '',
  media_url         TEXT NOT NULL DEFAULT '',
  valid_from        TEXT NOT NULL DEFAULT '',
  valid_until       TEXT NOT NULL DEFAULT '',
  fallback_eligible INTEGER NOT NULL DEFAULT 0 CHECK (fallback_eligible IN (0, 1)),
  emergency         INTEGER NOT NULL DEFAULT 0 CHECK (emergency IN (0, 1)),
  withdrawn_at      INTEGER,
  withdrawn_by      TEXT,
  updated_at        INTEGER NOT NULL
);

CREATE TABLE assignments (
  advisor_id  TEXT NOT NULL REFERENCES advisors(advisor_id) ON DELETE CASCADE,
  date        TEXT NOT NULL,
  content_id  TEXT NOT NULL REFERENCES content(content_id),
  source      TEXT NOT NULL CHECK (source IN ('editorial', 'advisor', 'fallback', 'emergency', 'override')),
  score       REAL NOT NULL DEFAULT 0,
  score_parts TEXT NOT NULL DEFAULT '{}',
  reason      TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (advisor_id, date)
) WITHOUT ROWID;
CREATE INDEX assignments_date ON assignments(date);

-- One run per (delivery day, slot instant). The lease columns make one dispatch its owner.
CREATE TABLE runs (
  run_id        INTEGER PRIMARY KEY,
  date          TEXT NOT NULL,
  slot_at       INTEGER NOT NULL,
  window_start  INTEGER NOT NULL,
  window_end    INTEGER NOT NULL,
  deadline_at   INTEGER NOT NULL,
  state         TEXT NOT NULL DEFAULT 'planned' CHECK (state IN ('planned', 'running', 'closed', 'cancelled')),
  planned_count INTEGER NOT NULL DEFAULT 0,
  feasible      INTEGER NOT NULL DEFAULT 1,
  plan_report   TEXT NOT NULL DEFAULT '{}',
  owner         TEXT,                      -- 'host:pid:nonce' of the dispatch holding the lease
  lease_until   INTEGER,
  heartbeat_at  INTEGER,
  progress      TEXT NOT NULL DEFAULT '{}', -- live figures, rewritten every second by dispatch
  started_at    INTEGER,
  finished_at   INTEGER,
  UNIQUE (date, slot_at)
);

CREATE TABLE deliveries (
  delivery_id         INTEGER PRIMARY KEY,
  run_id              INTEGER NOT NULL REFERENCES runs(run_id),
  advisor_id          TEXT NOT NULL REFERENCES advisors(advisor_id),
  date                TEXT NOT NULL,
  slot_at             INTEGER NOT NULL,
  content_id          TEXT NOT NULL REFERENCES content(content_id),
  source              TEXT NOT NULL,
  tier                TEXT NOT NULL,
  tier_rank           INTEGER NOT NULL,      -- 0 = highest
  state               TEXT NOT NULL DEFAULT 'planned' CHECK (state IN
                        ('planned', 'sending', 'uncertain', 'retry_wait', 'accepted', 'delivered', 'read', 'dead', 'cancelled')),
  channel             TEXT NOT NULL,
  channel_index       INTEGER NOT NULL DEFAULT 0, -- position in the advisor's preference list
  sender              TEXT NOT NULL,
  planned_at          INTEGER NOT NULL,
  deadline_at         INTEGER NOT NULL,
  next_attempt_at     INTEGER,
  claim_owner         TEXT,
  claim_until         INTEGER,
  attempts            INTEGER NOT NULL DEFAULT 0,
  first_sent_at       INTEGER,               -- when the first request left (lag = first_sent_at - planned_at)
  provider_message_id TEXT,
  accepted_at         INTEGER,
  delivered_at        INTEGER,
  read_at             INTEGER,
  last_error          TEXT,
  possible_duplicate  INTEGER NOT NULL DEFAULT 0, -- resent after an uncertain send
  updated_at          INTEGER NOT NULL,
  UNIQUE (advisor_id, date, slot_at)
);
CREATE INDEX deliveries_run_state ON deliveries(run_id, state);
CREATE INDEX deliveries_provider_message ON deliveries(provider_message_id) WHERE provider_message_id IS NOT NULL;

-- Append-only history of every request dispatch made.
CREATE TABLE delivery_attempts (
  attempt_id          INTEGER PRIMARY KEY,
  delivery_id         INTEGER NOT NULL REFERENCES deliveries(delivery_id),
  attempt_no          INTEGER NOT NULL,
  channel             TEXT NOT NULL,
  sender              TEXT NOT NULL,
  started_at          INTEGER NOT NULL,
  finished_at         INTEGER NOT NULL,
  outcome             TEXT NOT NULL,         -- accepted | retryable | rate_limited | throttled | permanent | credentials | uncertain
  error_code          TEXT,
  error_detail        TEXT,
  provider_message_id TEXT,
  latency_ms          INTEGER
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts(delivery_id);

CREATE TABLE sla_reports (
  run_id       INTEGER PRIMARY KEY REFERENCES runs(run_id),
  date         TEXT NOT NULL,
  generated_at INTEGER NOT NULL,
  sla_pct      REAL NOT NULL,
  report       TEXT NOT NULL
);

CREATE TABLE alerts (
  alert_id        INTEGER PRIMARY KEY,
  rule            TEXT NOT NULL,
  subject         TEXT NOT NULL DEFAULT '',  -- run, sender or channel the alert is about
  state           TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),
  level           INTEGER NOT NULL DEFAULT 0, -- escalation level reached
  message         TEXT NOT NULL,
  fired_at        INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  resolved_at     INTEGER,
  acknowledged_by TEXT,
  acknowledged_at INTEGER
);
CREATE INDEX alerts_state ON alerts(state, rule, subject);

CREATE TABLE audit_log (
  audit_id   INTEGER PRIMARY KEY,
  at         INTEGER NOT NULL,
  actor      TEXT NOT NULL,
  sudo_user  TEXT,
  command    TEXT NOT NULL,
  reason     TEXT NOT NULL DEFAULT '',
  target     TEXT NOT NULL DEFAULT '',
  before     TEXT,
  after      TEXT
);

-- Operator switches read by a running dispatch every second (pause all, pause a channel).
CREATE TABLE controls (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  updated_by TEXT NOT NULL
) WITHOUT ROWID;
