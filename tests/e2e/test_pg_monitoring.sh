#!/usr/bin/env bash
# A dispatch on the PostgreSQL ledger runs its monitoring on its own host:
#  1. a day planned with the SQLite tools is copied with `daybreak migrate-ledger` into a
#     PostgreSQL server started for the test (initdb + pg_ctl as the postgres user, unix socket
#     in the work directory, random port); the simulator on 127.0.0.1 answers half the
#     recipients 131026 (permanent), so live success falls far below 97%
#  2. dispatch runs with [database] url beside [database] path, this host's own SQLite file:
#     here the planning file itself (one host that plans and dispatches), so it holds its own
#     copy of the run, never sent from it; an on-call webhook to a local sink; dispatch.metrics_dir
#  3. while it sends: daybreak.prom appears; the sink receives the FIRING live_success_low post,
#     fired within a minute (daybreak's clock) of the first failed request; the cron's
#     `daybreak alerts check` then does not resolve it from the file's unsent copy of the run
#     (the run misses its SLA: dispatch exits 1, as on SQLite, with the SLA % of the report it
#     stored in PostgreSQL)
#  4. afterwards: the alert and its notifications are in the host's file, `daybreak alerts list`
#     finds it there, `daybreak status` with the url counts it (alerts_firing and
#     alerts_unacknowledged from the host's file, the runs from PostgreSQL), the run is closed on
#     PostgreSQL, and daybreak.prom has the run's figures in node-exporter's text format, its
#     last-run SLA the report stored in PostgreSQL
source "$(dirname "$0")/common.sh"
require_test_pg
D=2026-12-10
N=200

# --- 1. PostgreSQL for the test, run as an unprivileged user ---
start_test_pg
DPID=""
# A failure while dispatch runs: end it before PostgreSQL (a dispatch that cannot write never finishes).
trap 'rc=$?; set +e; [ -z "$DPID" ] || kill -9 "$DPID" 2>/dev/null; stop_pg; (exit $rc); cleanup' EXIT  # cleanup keeps the work directory of a failure

start_sim pgmon --mps 160 --time-scale 10 --seed 7 --transient-rate 0 --permanent-rate 0.5 --latency-ms-median 20 --latency-ms-p99 100
write_config "$SIM_PORT"
seed_day "$N" "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
"$OP" migrate-ledger --from "sqlite:$DB" --to "$URL" --date "$D" --json >"$WORK/migrate.json"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")" "$n" "deliveries copied to PostgreSQL"

# --- 2. this host: the ledger on PostgreSQL, its own SQLite file, a webhook, the textfile ---
start_hook
HOSTDB=$DB
METRICS=$WORK/metrics
mkdir -p "$METRICS"
python3 - "$WORK/daybreak.toml" "$WORK/pg.toml" "$URL" "$HOSTDB" "$METRICS" "$HOOK" <<'PY'
import re, sys
src, dst, url, host_db, metrics, hook = sys.argv[1:]
s = open(src).read()
s = re.sub(r'(?m)^path = ".*"$', lambda m: 'path = "%s"\nurl = "%s"' % (host_db, url), s, count=1)
s = s.replace("[dispatch]\n", '[dispatch]\nmetrics_dir = "%s"\n' % metrics, 1)
s += '[alerts]\nchain = ["oncall"]\n[alerts.levels.oncall]\nwebhooks = ["http://127.0.0.1:%s/oncall"]\n' % hook
open(dst, "w").write(s)
PY
grep -q '^url = ' "$WORK/pg.toml" || fail "pg.toml has no url"
export DAYBREAK_CONFIG=$WORK/pg.toml

DAYBREAK_HOST_ID=host-a DAYBREAK_CLOCK=$(clock_at "${D}T05:59:25+05:30" 10) "$DISPATCH" --run "$run" --json \
  >"$WORK/dispatch.json" 2>"$WORK/dispatch.log" &
DPID=$!

# --- 3. while it sends: the textfile, and the webhook ---
for _ in $(seq 1 1200); do [ -s "$METRICS/daybreak.prom" ] && break; sleep 0.05; done
[ -s "$METRICS/daybreak.prom" ] || fail "no daybreak.prom in $METRICS"
prom_while_running=no
kill -0 "$DPID" 2>/dev/null && prom_while_running=yes
for _ in $(seq 1 1200); do grep -q "FIRING" "$WORK/hooks.ndjson" 2>/dev/null && break; sleep 0.05; done
grep -q "FIRING" "$WORK/hooks.ndjson" || { tail -20 "$WORK/dispatch.log" >&2; fail "no FIRING webhook within 60 s (real)"; }
running_at_fire=no
kill -0 "$DPID" 2>/dev/null && running_at_fire=yes
# The cron's check on this host, at the same instant: it escalates and sends, and must not
# resolve the dispatch's alert from the file's own copy of the run (planned, never sent here).
DAYBREAK_CLOCK=$(clock_at "${D}T06:00:00+05:30" 1) "$OP" alerts check --json >"$WORK/check.json"
python3 - "$WORK/check.json" <<'PY' || fail "alerts check changed the dispatch's alert: $(cat "$WORK/check.json")"
import json, sys
j = json.load(open(sys.argv[1]))
bad = [c for c in j["changes"] if c["rule"] == "live_success_low" and c["change"] == "resolved"]
assert not bad and j["live_runs_evaluated"] == 0, j
PY
first=$(grep "FIRING" "$WORK/hooks.ndjson" | head -1)
assert_eq "$(echo "$first" | json 'j["path"]')" "/oncall" "webhook path"
echo "$first" | json 'j["body"]["text"]' | grep -q "live_success_low run:$run" || fail "webhook text: $first"

for _ in $(seq 1 1500); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$DPID" 2>/dev/null && { tail -20 "$WORK/dispatch.log" >&2; fail "dispatch still running after 150 s"; }
rc=0
wait "$DPID" || rc=$?
DPID=""
# half the run refused: the SLA is missed, so dispatch exits 1 as on SQLite, giving the SLA % of
# the report it stored in PostgreSQL
[ "$rc" -eq 1 ] || { tail -20 "$WORK/dispatch.log" >&2; fail "dispatch exited $rc (a missed SLA exits 1)"; }
assert_eq "$(pg "SELECT state FROM runs WHERE run_id=$run")" "closed" "run state on PostgreSQL"
assert_eq "$(json '[(r["sla_pct"] < 99, r["sla_pct"]) for r in j["runs"]][0]' <"$WORK/dispatch.json")" \
  "(True, $(pg "SELECT sla_pct FROM run_reports WHERE run_id=$run"))" "dispatch --json's SLA % against the stored report"
dead=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='dead'")
[ "$dead" -gt $((n / 4)) ] || fail "only $dead of $n dead: the failure rate did not apply"

# --- 4. the host's file: the alert and its notifications ---
hsql() { sqlite3 -cmd '.timeout 10000' "$HOSTDB" "$1"; }
assert_eq "$(hsql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='planned'")" "$n" "the file's copy of the run (never sent from it)"
assert_eq "$(hsql "SELECT COUNT(*) FROM alerts WHERE rule='live_success_low' AND subject='run:$run'")" "1" "live_success_low alerts (fired once)"
fired_at=$(hsql "SELECT fired_at FROM alerts WHERE rule='live_success_low' AND subject='run:$run'")
[ -n "$fired_at" ] || fail "no live_success_low alert in the host file"
first_fail=$(pg "SELECT MIN(a.started_at) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run AND a.outcome='permanent'")
[ -n "$first_fail" ] || fail "no failed attempt in the ledger"
lag=$((fired_at - first_fail))
[ "$lag" -ge 0 ] && [ "$lag" -le 60000 ] || fail "fired ${lag} ms (daybreak's clock) after the first failure"
assert_eq "$(hsql "SELECT COUNT(*) FROM alert_notifications n JOIN alerts a USING (alert_id) WHERE a.rule='live_success_low' AND n.event='fired' AND n.sent_at IS NOT NULL")" "1" "fired notification sent"
"$OP" alerts list --all --json >"$WORK/alerts.json"
grep -q "live_success_low" "$WORK/alerts.json" || fail "daybreak alerts list does not show it: $(cat "$WORK/alerts.json")"
"$OP" status --json >"$WORK/status.json" || fail "daybreak status with the url exited $?"
assert_eq "$(json 'j["ledger"], j["alerts_firing"], j["alerts_unacknowledged"]' <"$WORK/status.json")" \
  "postgresql $(hsql "SELECT COUNT(*) FROM alerts WHERE state='firing'") $(hsql "SELECT COUNT(*) FROM alerts WHERE state='firing' AND acknowledged_at IS NULL")" \
  "daybreak status: the host file's alerts"
# without the host's file, status says nothing of alerts rather than zero
{ printf '[database]\npath = "%s"\nurl = "%s"\n' "$WORK/no-such.db" "$URL"; } >"$WORK/nofile.toml"
"$OP" --config "$WORK/nofile.toml" status --json >"$WORK/status-nofile.json" || fail "daybreak status without the host file exited $?"
assert_eq "$(json 'j["alerts_firing"], j["alerts_unacknowledged"]' <"$WORK/status-nofile.json")" "None None" "status without the host file"
[ ! -e "$WORK/no-such.db" ] || fail "daybreak status created the host file"

# The textfile in node-exporter's format: the run's figures, the families typed, the last-run SLA.
P=$METRICS/daybreak.prom
grep -q '^# TYPE daybreak_deliveries gauge$' "$P" || fail "daybreak.prom lacks the deliveries family"
grep -q "^daybreak_live_success_ratio{run_id=\"$run\",date=\"$D\"} " "$P" || fail "daybreak.prom lacks run $run's live success"
prom_dead=$(grep -E '^daybreak_deliveries\{state="dead"' "$P" | awk '{s += $2} END {print s + 0}')
assert_eq "$prom_dead" "$dead" "dead deliveries in daybreak.prom"
# The last-run SLA is the report dispatch stored in PostgreSQL (not the file's copy of the run, never sent here).
prom_sla=$(sed -n "s/^daybreak_last_run_sla_ratio{run_id=\"$run\"} //p" "$P")
[ -n "$prom_sla" ] || fail "daybreak.prom has no last-run SLA for run $run: $(grep last_run "$P")"
python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1]) - float(sys.argv[2]) / 100) < 1e-9 else 1)' "$prom_sla" \
  "$(pg "SELECT sla_pct FROM run_reports WHERE run_id=$run")" ||
  fail "daybreak.prom's last-run SLA $prom_sla is not PostgreSQL's stored report ($(pg "SELECT sla_pct FROM run_reports WHERE run_id=$run")%)"
ls "$METRICS" | grep -q '\.tmp' && fail "a temporary textfile was left"
echo "ok: $dead/$n dead; live_success_low fired ${lag} ms after the first failure (dispatch running: $running_at_fire), posted to the webhook; daybreak.prom written (while running: $prom_while_running)"
