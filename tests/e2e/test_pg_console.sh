#!/usr/bin/env bash
# The operator console (`daybreak serve`) with [database] url: the dispatch ledger on a
# PostgreSQL server started for the test, the day planned with the SQLite tools and copied there
# (as test_pg_operator.sh does), dispatched from there against the simulator while serve (with
# the same url and this host's SQLite file as `path`) is polled:
#  1. serve starts (it is no longer refused) and opens no SQLite file: this host's file does not
#     exist until the dispatch writes its alerts there; /api/live says "ledger": "postgresql",
#     the alerts are unknown with the reason, the actions it cannot take there (send-now) are
#     listed with the reason and refused (409), and an ack without this host's file is refused
#     (400) without creating it, nothing changed
#  2. during the run /api/live shows the run PostgreSQL holds: its owner (the dispatch's host id)
#     with a live lease and a heartbeat, its progress from the dispatch, accepted figures that
#     never exceed PostgreSQL's and reach them
#  3. pause through the console: PostgreSQL's controls row, its audit_log row naming the operator
#     and the console, the page's paused banner within a second, no first send from 1 s to 3 s
#     after; a cancel of a planned delivery through the console: cancelled in PostgreSQL, noted
#     for the dispatch, audited; a cancel by advisor and date: 400; resume: the run goes on; a
#     viewer's pause: 403; nothing of it in the SQLite file
#  4. the run closes: /api/live's breakdown (PostgreSQL's statement) sums to PostgreSQL's counts;
#     /api/history lists the day (computed from PostgreSQL) and /report?date= serves its HTML report
#  4a. an alert in this host's SQLite file, acknowledged through the console: acknowledged and
#     audited in that file as `daybreak alerts ack` does, nothing of it in PostgreSQL; a second
#     ack is refused (400)
#  4b. in headless Chromium (console_browser.py --pg-page; skipped without chromium): the page
#     names the PostgreSQL ledger, the Send button is disabled with the reason beside it, the
#     others enabled (Acknowledge with its note), the alerts box says where alerts come from, no console error
#  5. the PostgreSQL server stops: /api/live says the ledger cannot be read (stale, with the error)
#     instead of passing the last figures off as live
source "$(dirname "$0")/common.sh"
require_test_pg
D=2026-12-14
N=${PG_CONSOLE_N:-1200}
SCALE=10

start_test_pg
trap 'rc=$?; set +e; kill "${pid:-}" "${SERVE_PID:-}" 2>/dev/null; stop_pg; (exit $rc); cleanup' EXIT

start_sim pgc --mps 100 --time-scale $SCALE --seed 13 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
sed -i 's/^mps = 80$/mps = 10/' "$WORK/daybreak.toml"   # 1,200 deliveries take ~12 s real at 10x
seed_day "$N" "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
"$OP" migrate-ledger --from "sqlite:$DB" --to "$URL" --date "$D" >/dev/null
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='planned'")" "$n" "deliveries copied to PostgreSQL"
# This host's SQLite file beside the url (where a dispatch on PostgreSQL keeps its alerts): not there yet.
python3 - "$WORK/daybreak.toml" "$WORK/pg.toml" "$URL" "$WORK/host.db" <<'PY'
import re, sys
src, dst, url, host_db = sys.argv[1:]
open(dst, "w").write(re.sub(r'(?m)^path = ".*"$', lambda m: 'path = "%s"\nurl = "%s"' % (host_db, url), open(src).read(), count=1))
PY
export DAYBREAK_CONFIG=$WORK/pg.toml

TOK_A=alice-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOK_B=bob-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
umask 077
{
  echo "alice operator $(printf %s "$TOK_A" | sha256sum | cut -d' ' -f1)"
  echo "bob viewer $(printf %s "$TOK_B" | sha256sum | cut -d' ' -f1)"
} >"$WORK/console.tokens"

T_SIM0_MS=$(date -d "${D}T05:59:25+05:30" +%s%3N)
T_REAL0_MS=$(now_ms)
clock="${D}T05:59:25+05:30@${T_REAL0_MS}*${SCALE}"
sim_now() { echo $((T_SIM0_MS + ($(now_ms) - T_REAL0_MS) * SCALE)); }

# --- 1. serve with the url -------------------------------------------------------------------
DAYBREAK_CLOCK=$clock "$OP" serve --listen 127.0.0.1:0 --port-file "$WORK/serve.port" --tokens "$WORK/console.tokens" \
  2>"$WORK/serve.log" &
SERVE_PID=$!
for _ in $(seq 1 200); do [ -s "$WORK/serve.port" ] && break; kill -0 $SERVE_PID 2>/dev/null || break; sleep 0.05; done
[ -s "$WORK/serve.port" ] || fail "serve with [database] url did not start: $(cat "$WORK/serve.log")"
SURL=http://127.0.0.1:$(cat "$WORK/serve.port")
want_ni=$(( $(ps -o ni= -p $$) + 10 )); [ "$want_ni" -le 19 ] || want_ni=19
assert_eq "$(ps -L -o ni= -p "$SERVE_PID" | tr -d ' ' | sort -u | tr '\n' ' ')" "$want_ni " "the console's threads' nice values"

login() {  # login NAME TOKEN JAR: logs in, prints the page's CSRF token
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -c "$3" --data-urlencode "name=$1" --data-urlencode "token=$2" "$SURL/login")
  assert_eq "$code" 303 "login of $1"
  curl -s -b "$3" "$SURL/" | sed -n 's/.*name="csrf-token" content="\([0-9a-f]*\)".*/\1/p'
}
post_code() { curl -s -o "$WORK/post.out" -w '%{http_code}' "$@"; }
act() { post_code -b "$WORK/alice.jar" --data-urlencode "csrf=$CSRF_A" "$@"; }
live() { curl -s -b "$WORK/bob.jar" "$SURL/api/live"; }
CSRF_A=$(login alice "$TOK_A" "$WORK/alice.jar")
CSRF_B=$(login bob "$TOK_B" "$WORK/bob.jar")
[ ${#CSRF_A} = 64 ] || fail "no CSRF token on alice's page"

live >"$WORK/live0.json"
assert_eq "$(json 'j["ledger"]' <"$WORK/live0.json")" "postgresql" "/api/live ledger"
assert_eq "$(json 'j["alerts"]' <"$WORK/live0.json")" "None" "alerts without this host's SQLite file"
json 'j["alerts_note"]' <"$WORK/live0.json" | grep -q "no SQLite file on this host" || fail "alerts note: $(cat "$WORK/live0.json")"
assert_eq "$(json 'sorted(j["unavailable"])' <"$WORK/live0.json")" "['send-now', 'send-now-check']" "actions unavailable on PostgreSQL"
assert_eq "$(json '[r["run_id"] for r in j["plan"]["runs"]] if j["plan"]["date"] == "'"$D"'" else [r["run_id"] for r in j["runs"]]' <"$WORK/live0.json")" \
  "[$run]" "the day's run read from PostgreSQL before the window"
assert_eq "$(act --data "alert_id=1&reason=e2e" "$SURL/api/action/ack")" 400 "ack on PostgreSQL without this host's SQLite file"
grep -q "no SQLite file on this host" "$WORK/post.out" || fail "ack refusal: $(cat "$WORK/post.out")"
c0=$(pg "SELECT content_id FROM deliveries WHERE run_id=$run LIMIT 1")
assert_eq "$(act --data "content_id=$c0&segment=all&reason=e2e&confirm=yes" "$SURL/api/action/send-now")" 409 "send-now on PostgreSQL"
grep -q "daybreak send-now" "$WORK/post.out" || fail "send-now refusal: $(cat "$WORK/post.out")"
assert_eq "$(pg "SELECT COUNT(*) FROM runs")" "1" "runs on PostgreSQL after the refused send-now"
[ ! -e "$WORK/host.db" ] || fail "serve with the url created this host's SQLite file"
echo "ok 1: serve with [database] url reads PostgreSQL; alerts unknown (no host file); send-now shown unavailable and refused (409); ack without the host file refused (400)"

# --- 2. the run on PostgreSQL, live ----------------------------------------------------------
DAYBREAK_HOST_ID=host-pgc DAYBREAK_CLOCK=$clock "$DISPATCH" --run "$run" --json >"$WORK/d.json" 2>"$WORK/d.log" &
pid=$!
# (polled with grep: a python per poll is slow on a loaded machine, and the run is short)
for _ in $(seq 1 300); do
  live >"$WORK/live.json"
  grep -q '"owner":"host-pgc:' "$WORK/live.json" && grep -q '"accepted":[1-9]' "$WORK/live.json" && break
  sleep 0.05
done
json '[(r["run_id"], r["state"], (r["owner"] or "").split(":")[0], r["lease_live"], r["heartbeat_age_ms"] is not None and r["heartbeat_age_ms"] < 60000,
        r["accepted"] > 0, r["source"] != "") for r in j["runs"]] == [('"$run"', "running", "host-pgc", True, True, True, True)] or sys.exit(1)' \
  <"$WORK/live.json" >/dev/null || fail "/api/live does not show run $run running, owned by host-pgc: $(cat "$WORK/live.json"); $(tail -3 "$WORK/d.log")"
live_acc=$(json '[r["accepted"] for r in j["runs"] if r["run_id"] == '"$run"'][0]' <"$WORK/live.json")
live_src=$(json '[r["source"] for r in j["runs"] if r["run_id"] == '"$run"'][0]' <"$WORK/live.json")
pg_acc=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('accepted','delivered','read')")
[ "$live_acc" -le "$pg_acc" ] || fail "the console showed $live_acc accepted, more than PostgreSQL's $pg_acc"
echo "ok 2: /api/live shows run $run running, owned by host-pgc (lease live, heartbeat), $live_acc accepted (figures from $live_src)"

# --- 3. pause, cancel, resume through the console --------------------------------------------
first_sends() { pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND first_sent_at IS NOT NULL"; }
assert_eq "$(post_code -b "$WORK/bob.jar" --data "scope=all&reason=x&csrf=$CSRF_B" "$SURL/api/action/pause")" 403 "pause by a viewer"
assert_eq "$(act --data "scope=all&reason=e2e: provider incident" "$SURL/api/action/pause")" 200 "pause through the console"
t_pause=$(now_ms)
assert_eq "$(json 'j["key"], j["paused"]' <"$WORK/post.out")" "pause True" "pause answer"
assert_eq "$(pg "SELECT value FROM controls WHERE key='pause'")" "1" "the pause switch on PostgreSQL"
assert_eq "$(pg "SELECT actor || '|' || reason || '|' || (command LIKE 'daybreak serve: pause (web console, from 127.0.0.1)%')::text
  FROM audit_log WHERE target='control:pause'")" "alice|e2e: provider incident|true" "the pause's audit row on PostgreSQL"
banner=0
for _ in $(seq 1 20); do
  live | grep -q '"paused":{"pause":{"by":"alice"' && { banner=1; break; }
  sleep 0.05
done
[ "$banner" = 1 ] || fail "/api/live did not show the pause within a second: $(live)"
sleep 1
f1=$(first_sends)
[ "$f1" -lt "$n" ] || fail "the run finished before its pause; nothing was tested"
sleep 2
assert_eq "$(first_sends)" "$f1" "first sends on PostgreSQL from 1 s to 3 s after the console's pause"
# a planned delivery, cancelled through the console while paused
dc=$(pg "SELECT MAX(delivery_id) FROM deliveries WHERE run_id=$run AND state='planned'")
[ -n "$dc" ] || fail "no planned delivery left to cancel"
seq0=$(pg "SELECT COALESCE(MAX(seq), 0) FROM delivery_changes")
assert_eq "$(act --data "delivery_id=$dc&reason=e2e: advisor left" "$SURL/api/action/cancel")" 200 "cancel through the console"
assert_eq "$(json 'j["before"], j["cancelled"]' <"$WORK/post.out")" "planned 1" "cancel answer"
assert_eq "$(pg "SELECT state FROM deliveries WHERE delivery_id=$dc")" "cancelled" "the cancelled delivery on PostgreSQL"
assert_eq "$(pg "SELECT COUNT(*) FROM delivery_changes WHERE delivery_id=$dc AND kind='cancel' AND seq > $seq0")" "1" "the cancel's note for the dispatch"
assert_eq "$(pg "SELECT actor || '|' || reason FROM audit_log WHERE target='delivery:$dc'")" "alice|e2e: advisor left" "the cancel's audit row"
adv=$(pg "SELECT advisor_id FROM deliveries WHERE run_id=$run AND state='planned' LIMIT 1")
assert_eq "$(act --data "advisor_id=$adv&date=$D&reason=e2e" "$SURL/api/action/cancel")" 400 "cancel by advisor and date on PostgreSQL"
grep -q "delivery_id: required" "$WORK/post.out" || fail "cancel by advisor refusal: $(cat "$WORK/post.out")"
assert_eq "$(act --data "scope=all&reason=e2e: incident over" "$SURL/api/action/resume")" 200 "resume through the console"
assert_eq "$(pg "SELECT value FROM controls WHERE key='pause'")" "0" "the pause switch after resume"
for _ in $(seq 1 100); do [ "$(first_sends)" -gt "$f1" ] && break; sleep 0.05; done
[ "$(first_sends)" -gt "$f1" ] || fail "sending did not resume within 5 s of the console's resume"
assert_eq "$(pg "SELECT COUNT(*) FROM audit_log WHERE actor='alice'")" "3" "audit rows of the console's pause, cancel and resume"
echo "ok 3: pause ($f1 first sends, none for 2 s), cancel of delivery $dc and resume through the console, in PostgreSQL and audited as alice"

# --- 4. the run closes; breakdown, history and the report from PostgreSQL --------------------
wait "$pid" || fail "dispatch exited $?: $(tail -3 "$WORK/d.log")"
pid=
assert_eq "$(pg "SELECT state FROM runs WHERE run_id=$run")" "closed" "run state"
pg_acc=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('accepted','delivered','read')")
closed=0
for _ in $(seq 1 40); do
  live >"$WORK/live.json"
  json 'any(r["run_id"] == '"$run"' and r["closed"] and r["source"] == "ledger" for r in j["runs"]) or sys.exit(1)' <"$WORK/live.json" >/dev/null 2>&1 &&
    { closed=1; break; }
  sleep 0.1
done
[ "$closed" = 1 ] || fail "/api/live does not show run $run closed: $(cat "$WORK/live.json")"
assert_eq "$(json '[(r["accepted"], r["cancelled"], sum(b["total"] for b in r["breakdown"]), sum(b["accepted"] for b in r["breakdown"]))
  for r in j["runs"] if r["run_id"] == '"$run"'][0]' <"$WORK/live.json")" "($pg_acc, 1, $((n - 1)), $pg_acc)" \
  "the closed run's accepted, cancelled and breakdown sums against PostgreSQL"
[ ! -e "$WORK/host.db" ] || assert_eq "$(sqlite3 "$WORK/host.db" "SELECT COUNT(*) FROM audit_log WHERE actor='alice'")" "0" "the console's audit rows in this host's SQLite file"
[ ! -e "$WORK/host.db" ] || json 'j["alerts"] is not None or sys.exit(1)' <"$WORK/live.json" >/dev/null ||
  fail "this host's SQLite file exists but the console shows no alerts from it: $(cat "$WORK/live.json")"
assert_eq "$(sql "SELECT COUNT(*) FROM audit_log WHERE actor='alice'")" "0" "the console's audit rows in the planning SQLite file"
hist=0
for _ in $(seq 1 40); do   # the history is rebuilt after an action and every 30 s
  curl -s -b "$WORK/bob.jar" "$SURL/api/history" >"$WORK/history.json"
  json '[(d["date"], d["runs"]) for d in j["dates"] if d["runs"] > 0] == [("'"$D"'", 1)] and j["ledger"] == "postgresql" or sys.exit(1)' \
    <"$WORK/history.json" >/dev/null 2>&1 && { hist=1; break; }
  sleep 1
done
[ "$hist" = 1 ] || fail "history does not list $D from PostgreSQL: $(cat "$WORK/history.json")"
curl -s -o "$WORK/report.html" -b "$WORK/bob.jar" "$SURL/report?date=$D"
grep -q "daybreak SLA report, delivery day $D" "$WORK/report.html" || fail "report page: $(head -c 300 "$WORK/report.html")"
echo "ok 4: the closed run's figures and breakdown match PostgreSQL ($pg_acc accepted, 1 cancelled); history and the day's report from PostgreSQL"

# --- 4a. an alert of this host's SQLite file acknowledged through the console -----------------
# The dispatch created the file when its monitoring wrote there; if it did not, the planning
# file's copy stands in for it (a host that plans and dispatches).
[ -e "$WORK/host.db" ] || sqlite3 "$DB" ".backup '$WORK/host.db'"
hsql() { sqlite3 "$WORK/host.db" "$@"; }
aid=$(hsql "INSERT INTO alerts (rule, subject, state, level, message, fired_at, updated_at)
  VALUES ('live_success_low', 'run:$run', 'firing', 0, 'e2e: live success 90%', $(sim_now), $(sim_now)); SELECT last_insert_rowid();")
pg_audit0=$(pg "SELECT COUNT(*) FROM audit_log")
assert_eq "$(act --data "alert_id=$aid&reason=e2e: looking into it" "$SURL/api/action/ack")" 200 "ack through the console on PostgreSQL"
assert_eq "$(json 'j["command"], j["alert_id"], j["ledger"]' <"$WORK/post.out")" "alerts ack $aid postgresql" "ack answer"
assert_eq "$(hsql "SELECT acknowledged_by FROM alerts WHERE alert_id=$aid")" "alice" "the alert acknowledged in this host's SQLite file"
assert_eq "$(hsql "SELECT actor || '|' || reason FROM audit_log WHERE target='alert:$aid'")" "alice|e2e: looking into it" "the ack's audit row in this host's file"
assert_eq "$(pg "SELECT COUNT(*) FROM audit_log")" "$pg_audit0" "audit rows on PostgreSQL after the ack"
assert_eq "$(act --data "alert_id=$aid&reason=e2e: again" "$SURL/api/action/ack")" 400 "a second ack"
grep -q "already acknowledged by alice" "$WORK/post.out" || fail "second ack refusal: $(cat "$WORK/post.out")"
echo "ok 4a: alert $aid acknowledged through the console in this host's SQLite file, audited there; a second ack refused"

# --- 4b. the page in Chromium --------------------------------------------------------------
CHROMIUM=${CHROMIUM:-chromium}
if command -v "$CHROMIUM" >/dev/null; then
  python3 "$DAYBREAK_SOURCE_DIR/tests/e2e/console_browser.py" --chromium "$CHROMIUM" --url "$SURL" --user alice --token "$TOK_A" \
    --work "$WORK" --pg-page >"$WORK/browser.json" 2>"$WORK/browser.err" || fail "browser: $(cat "$WORK/browser.err")"
  echo "ok 4b: in Chromium: $(cat "$WORK/browser.json")"
else
  echo "ok 4b: skipped: no $CHROMIUM"
fi

# --- 5. the server stops: the console says so ------------------------------------------------
stop_pg
stale=0
for _ in $(seq 1 40); do
  live >"$WORK/live.json"
  json 'j["stale"]["error"] != "" or sys.exit(1)' <"$WORK/live.json" >/dev/null 2>&1 && { stale=1; break; }
  sleep 0.1
done
[ "$stale" = 1 ] || fail "/api/live does not say the ledger cannot be read: $(head -c 400 "$WORK/live.json")"
kill "$SERVE_PID"; wait "$SERVE_PID" || true
SERVE_PID=
echo "ok 5: with PostgreSQL stopped /api/live carries stale: $(json 'j["stale"]["error"]' <"$WORK/live.json" | head -c 120)"
