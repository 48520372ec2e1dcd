# Shared by tests/e2e/test_*.sh: paths to the real binaries, a per-test work directory, the
# simulator, and small assertions. Tests exit 125 to be reported as skipped.
set -euo pipefail

: "${DAYBREAK_BIN:?DAYBREAK_BIN must point at <build>/cmd}"
OP=$DAYBREAK_BIN/daybreak/daybreak
SIM=$DAYBREAK_BIN/daybreak-sim/daybreak-sim
DISPATCH=$DAYBREAK_BIN/dispatch/dispatch
PLAN=$DAYBREAK_BIN/plan-deliveries/plan-deliveries
ASSIGN=$DAYBREAK_BIN/assign-fallback/assign-fallback
REPORT=$DAYBREAK_BIN/sla-report/sla-report

for tool in sqlite3 curl python3; do
  command -v "$tool" >/dev/null || { echo "skip: $tool missing"; exit 125; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/daybreak-e2e.XXXXXX")
DB=$WORK/daybreak.db
SIM_PIDS=()
cleanup() {
  local rc=$?
  for p in "${SIM_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  jobs -p | xargs -r kill 2>/dev/null || true
  if [ $rc -eq 0 ]; then rm -rf "$WORK"; else echo "kept work directory $WORK" >&2; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
assert_eq() { [ "$1" == "$2" ] || fail "$3: expected '$2', got '$1'"; }
# With a busy timeout: a dispatch or supervisor writing at that moment holds the lock briefly, and
# the shell's default (none) failed a check with "database is locked" (seen once in test_supervise).
sql() { sqlite3 -cmd '.timeout 10000' "$DB" "$1"; }
now_ms() { date +%s%3N; }
# json FIELD-EXPRESSION < json: python expression over `j`
json() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

# start_receiver NAME CONFIG ARGS...: starts daybreak-callbacks ($CALLBACKS) on a free port of
# 127.0.0.1 with its log in $WORK/NAME.log; sets CB_PORT and CB_PID
start_receiver() {
  local name=$1 config=$2; shift 2
  "$CALLBACKS" --config "$config" --listen 127.0.0.1:0 --port-file "$WORK/$name.port" "$@" 2>"$WORK/$name.log" &
  CB_PID=$!
  for _ in $(seq 1 100); do [ -s "$WORK/$name.port" ] && break; sleep 0.05; done
  [ -s "$WORK/$name.port" ] || { cat "$WORK/$name.log" >&2; fail "receiver $name did not start"; }
  CB_PORT=$(cat "$WORK/$name.port")
}

# start_sim NAME ARGS...: starts a simulator, sets SIM_PORT
start_sim() {
  local name=$1; shift
  "$SIM" --port 0 --port-file "$WORK/$name.port" "$@" 2>"$WORK/$name.log" &
  SIM_PIDS+=($!)
  for _ in $(seq 1 100); do [ -s "$WORK/$name.port" ] && break; sleep 0.05; done
  [ -s "$WORK/$name.port" ] || fail "simulator $name did not start"
  SIM_PORT=$(cat "$WORK/$name.port")
}
sim_stats() { curl -s "http://127.0.0.1:$SIM_PORT/stats"; }

# require_aiosmtpd: sets SMTP_PY to a python3 that has aiosmtpd, or skips the test (exit 125).
require_aiosmtpd() {
  SMTP_PY=
  for py in python3 /usr/bin/python3; do
    if "$py" -c 'import aiosmtpd' 2>/dev/null; then SMTP_PY=$py; break; fi
  done
  [ -n "$SMTP_PY" ] || { echo "skip: python3-aiosmtpd missing"; exit 125; }
}

# start_smtp NAME ARGS...: starts the SMTP sink (smtp_sink.py) writing to $WORK/NAME, sets
# SMTP_PORT. Needs require_aiosmtpd first.
start_smtp() {
  local name=$1; shift
  "$SMTP_PY" "$DAYBREAK_SOURCE_DIR/tests/e2e/smtp_sink.py" --port-file "$WORK/$name.port" --dir "$WORK/$name" "$@" \
    2>"$WORK/$name.log" &
  SIM_PIDS+=($!)
  for _ in $(seq 1 200); do [ -s "$WORK/$name.port" ] && break; sleep 0.05; done
  [ -s "$WORK/$name.port" ] || fail "smtp sink $name did not start: $(cat "$WORK/$name.log")"
  SMTP_PORT=$(cat "$WORK/$name.port")
}

# kill9_dispatch_after RUN CLOCK LOG MIN_ACCEPTED TRIES: starts dispatch for RUN and kills it with
# SIGKILL once more than MIN_ACCEPTED of the run's deliveries are accepted (polled every 20 ms,
# at most TRIES times).
kill9_dispatch_after() {
  local run=$1 clk=$2 log=$3 min=$4 tries=$5 victim acc
  DAYBREAK_CLOCK=$clk "$DISPATCH" --run "$run" 2>"$log" &
  victim=$!
  for _ in $(seq 1 "$tries"); do
    acc=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")
    [ "$acc" -gt "$min" ] && break
    sleep 0.02
  done
  kill -9 "$victim"
  wait "$victim" 2>/dev/null || true
}

# write_config PORT [extra TOML]: a config with one WhatsApp sender at 80 msg/s.
# DAYBREAK_TEST_TRANSPORT=epoll (or curl) sets [dispatch] transport: the dispatch suites run
# with either transport that way.
write_config() {
  local port=$1 extra=${2:-} transport_line=""
  [ -z "${DAYBREAK_TEST_TRANSPORT:-}" ] || transport_line="transport = \"$DAYBREAK_TEST_TRANSPORT\""
  umask 077
  cat >"$WORK/daybreak.toml" <<TOML
[database]
path = "$DB"
[retry]
base_ms = 500
max_backoff_ms = 4000
max_attempts = 3
[dispatch]
uncertain_grace_seconds = 20
$transport_line
[whatsapp]
graph_base = "http://127.0.0.1:$port"
request_timeout_ms = 5000
[[whatsapp.senders]]
id = "wa-1"
phone_number_id = "100000001"
token = "test-token"
mps = 80
$extra
TOML
  export DAYBREAK_CONFIG=$WORK/daybreak.toml
}

# seed_day N DATE: generates, imports, assigns and plans N advisors for DATE (all in IST)
seed_day() {
  local n=$1 day=$2
  "$OP" generate --advisors "$n" --date "$day" --out "$WORK/data" --seed 11 --other-tz-pct 0 --channels whatsapp >/dev/null
  "$OP" import content "$WORK/data/content.csv" >/dev/null
  "$OP" import advisors "$WORK/data/advisors.csv" >/dev/null
  "$OP" import assignments "$WORK/data/assignments.csv" >/dev/null
  DAYBREAK_CLOCK="$(date -d "$day -1 day" +%F)T21:30:00+05:30@$(now_ms)*1" "$ASSIGN" --date "$day" >/dev/null
  DAYBREAK_CLOCK="$(date -d "$day -1 day" +%F)T21:30:00+05:30@$(now_ms)*1" "$PLAN" --date "$day" >/dev/null
}

# start_hook: a local webhook sink on 127.0.0.1 that appends each POST as one JSON line
# {"path", "body"} to $WORK/hooks.ndjson; sets HOOK (its port).
start_hook() {
  python3 - "$WORK/hook.port" "$WORK/hooks.ndjson" <<'PY' &
import http.server, sys, json
port_file, out = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "body": json.loads(body)}) + "\n")
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(port_file, "w").write(str(s.server_port))
s.serve_forever()
PY
  SIM_PIDS+=($!)
  for _ in $(seq 1 100); do [ -s "$WORK/hook.port" ] && break; sleep 0.05; done
  HOOK=$(cat "$WORK/hook.port")
  : >>"$WORK/hooks.ndjson"
}

# clock_at ISO SCALE: a DAYBREAK_CLOCK value starting at ISO now, SCALE times faster
clock_at() { echo "$1@$(now_ms)*$2"; }

# PostgreSQL 15 for a test. require_test_pg skips the test (exit 125, with the reason) when the
# server binaries or psql are missing. start_test_pg starts a throwaway server on a unix socket
# under $WORK/pg (as the postgres user when run as root; no fsync: the test's data is thrown
# away), trying a few random ports, and sets PGDIR and URL; pg runs one statement through psql;
# stop_pg stops the server (put it in the test's EXIT trap).
require_test_pg() {
  PGBIN=/usr/lib/postgresql/15/bin
  [ -x "$PGBIN/initdb" ] || { echo "skip: PostgreSQL 15 binaries absent ($PGBIN)"; exit 125; }
  command -v psql >/dev/null || { echo "skip: psql missing"; exit 125; }
}
start_test_pg() {
  chmod 755 "$WORK"
  PGDIR=$WORK/pg
  mkdir -p "$PGDIR"
  as_pg=()
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$PGDIR"; as_pg=(runuser -u postgres --); fi
  "${as_pg[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U daybreak --no-sync -E UTF8 >"$WORK/initdb.log" 2>&1 ||
    { cat "$WORK/initdb.log" >&2; fail "initdb"; }
  PGPORT_T=""
  local port
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 20000))
    if "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 30 \
        -o "-k $PGDIR -p $port -c listen_addresses='' -c fsync=off -c synchronous_commit=off" start >/dev/null 2>&1; then
      PGPORT_T=$port; break
    fi
  done
  [ -n "$PGPORT_T" ] || { cat "$PGDIR/server.log" >&2; fail "pg_ctl start"; }
  URL="postgresql://daybreak@/postgres?host=$PGDIR&port=$PGPORT_T"
}
stop_pg() { [ -n "${PGDIR:-}" ] && "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1 || true; }
pg() { psql "$URL" -XAtq -c "$1"; }
