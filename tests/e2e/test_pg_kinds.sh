#!/usr/bin/env bash
# Run kinds and the whole-ledger alerts with two hosts on one PostgreSQL ledger: host A plans (its
# own SQLite file, [database] url set), host B only dispatches (its file has no planning data).
#  1. send-now on A while A's dispatch is sending the morning run on PostgreSQL: the running
#     dispatch adopts the published urgent run (send-now says it was taken), sends its rows first
#     and every one by its deadline; the run is `urgent` in PostgreSQL, in dispatch's JSON
#     (runs[].kind, runs_adopted) and in sla-report's report (run_kind)
#  2. `daybreak alerts check` on B, after the plan deadline: no plan_missing for a day A
#     published; plan_missing for a day published nowhere
#  3. a day of two runs (two slots), one dispatched on A and one on B at the same time, with held
#     deliveries in PostgreSQL: one content_held alert across both hosts' files; the holding
#     host's dispatch killed, the other host raises it in its own file
# Real PostgreSQL started by the test (skipped when its binaries are missing), real binaries,
# the provider simulator on 127.0.0.1.
source "$(dirname "$0")/common.sh"
require_test_pg
D1=2026-12-10
D2=2026-12-11
D3=2026-12-12
N=${PG_KINDS_N:-600}
MPS=15  # per sender, two senders: 600 deliveries take about 20 s

start_test_pg
trap 'rc=$?; set +e; stop_pg; (exit $rc); cleanup' EXIT

start_sim kinds --mps 400 --seed 5 --transient-rate 0 --permanent-rate 0 --latency-ms-median 20 --latency-ms-p99 80
write_config "$SIM_PORT" "[[whatsapp.senders]]
id = \"wa-2\"
phone_number_id = \"100000002\"
token = \"test-token\"
mps = $MPS"
sed -i "s/^mps = 80$/mps = $MPS/" "$WORK/daybreak.toml"   # wa-1, written by write_config
DB_A=$WORK/a.db
DB_B=$WORK/b.db
for h in a b; do
  python3 - "$WORK/daybreak.toml" "$WORK/$h.toml" "$WORK/$h.db" "$URL" <<'PY'
import re, sys
src, dst, db, url = sys.argv[1:]
s = re.sub(r'(?m)^path = ".*"$', lambda m: 'path = "%s"\nurl = "%s"' % (db, url), open(src).read(), count=1)
open(dst, "w").write(s)
PY
done
sqlA() { sqlite3 -cmd '.timeout 10000' "$DB_A" "$1"; }
on() { local h=$1; shift; DAYBREAK_CONFIG=$WORK/$h.toml "$@"; }
night() { echo "$(date -d "$1 -1 day" +%F)T21:30:00+05:30@$(now_ms)*1"; }
plan_on_a() {
  DAYBREAK_CLOCK=$(night "$1") on a "$ASSIGN" --date "$1" >/dev/null || fail "assign-fallback of $1 on A"
  DAYBREAK_CLOCK=$(night "$1") on a "$PLAN" --date "$1" --json >"$WORK/plan.$1.json" 2>"$WORK/plan.$1.err" ||
    fail "plan-deliveries of $1 on A exited $?: $(cat "$WORK/plan.$1.err")"
}

"$OP" generate --advisors "$N" --date "$D1" --out "$WORK/data" --seed 11 --other-tz-pct 0 --channels whatsapp >/dev/null
for f in content advisors assignments; do on a "$OP" import $f "$WORK/data/$f.csv" >/dev/null; done
plan_on_a "$D1"
run1=$(pg "SELECT run_id FROM runs WHERE date='$D1'")
n1=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1")
[ "$n1" -ge $((N * 9 / 10)) ] || fail "A published $n1 deliveries of $D1 for $N advisors"
assert_eq "$(pg "SELECT kind FROM runs WHERE run_id=$run1")" "morning" "the kind of $D1's run in PostgreSQL"

# --- 1. send-now while a dispatch is sending on PostgreSQL ----------------------------------------
clk="${D1}T05:59:50+05:30@$(now_ms)*1"   # one timeline for the dispatch and send-now
DAYBREAK_HOST_ID=host-a DAYBREAK_CLOCK=$clk on a "$DISPATCH" --json >"$WORK/a1.json" 2>"$WORK/a1.log" &
DA=$!
accepted1() { pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1 AND state='accepted'"; }
for _ in $(seq 1 200); do [ "$(accepted1)" -ge 60 ] && break; sleep 0.05; done
[[ "$(pg "SELECT COALESCE(owner,'') FROM runs WHERE run_id=$run1")" == host-a:* ]] ||
  { cat "$WORK/a1.log" >&2; fail "host A's dispatch does not hold $D1's run"; }
item=$(sqlA "SELECT content_id FROM content WHERE withdrawn_at IS NULL AND emergency = 0 AND (valid_from='' OR valid_from<='$D1')
             AND (valid_until='' OR valid_until>='$D1') ORDER BY content_id LIMIT 1")
[ -n "$item" ] || fail "no content usable on $D1"
sqlA "SELECT advisor_id FROM deliveries WHERE date='$D1' ORDER BY advisor_id LIMIT 40" >"$WORK/segment.txt"
DAYBREAK_CLOCK=$clk on a "$OP" send-now --content "$item" --segment "list:$WORK/segment.txt" --deadline-minutes 5 --yes \
  --reason "e2e: urgent while dispatching" --json >"$WORK/s.json" 2>"$WORK/s.err" || fail "send-now exited $?: $(cat "$WORK/s.err")"
urgent=$(json 'j["run_id"]' <"$WORK/s.json")
[ "$(accepted1)" -lt "$n1" ] || fail "the morning run finished before send-now published (no running dispatch to adopt it)"
assert_eq "$(json 'j["pickup"]["action"]' <"$WORK/s.json")" "taken" "send-now's pickup (a running dispatch adopts the run)"
json 'j["pickup"]["run_owner"]' <"$WORK/s.json" | grep -q '^host-a:' || fail "the urgent run's owner: $(cat "$WORK/s.json")"
assert_eq "$(pg "SELECT kind FROM runs WHERE run_id=$urgent")" "urgent" "the urgent run's kind in PostgreSQL"
wait $DA || fail "host A's dispatch exited $?: $(tail -5 "$WORK/a1.log")"
assert_eq "$(json 'j["runs_adopted"]' <"$WORK/a1.json")" "[$urgent]" "dispatch's runs_adopted"
assert_eq "$(json '[(r["run_id"], r["kind"], r["state"]) for r in j["runs"]]' <"$WORK/a1.json")" \
  "[($run1, 'morning', 'closed'), ($urgent, 'urgent', 'closed')]" "dispatch's runs"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$urgent AND state='accepted' AND accepted_at <= deadline_at")" "40" \
  "urgent deliveries accepted by their deadline"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1 AND state='accepted'")" "$n1" "morning deliveries accepted"
# Sent first on their senders: the urgent run's last send before the morning's last.
assert_eq "$(pg "SELECT (SELECT MAX(first_sent_at) FROM deliveries WHERE run_id=$urgent) < (SELECT MAX(first_sent_at) FROM deliveries WHERE run_id=$run1)")" \
  "t" "the urgent rows went ahead of the morning's"
assert_eq "$(sim_stats | json 'j["duplicates"]')" "0" "duplicates at the provider"
on a "$REPORT" --run "$urgent" --json >"$WORK/r.json" 2>"$WORK/r.err" || [ $? -eq 1 ] || fail "sla-report exited: $(cat "$WORK/r.err")"
assert_eq "$(json 'j["ledger"], j["run_kind"]' <"$WORK/r.json")" "postgresql urgent" "sla-report of the urgent run"
echo "ok 1: send-now while dispatching on PostgreSQL: run $urgent adopted by host A's dispatch, sent first, urgent in PostgreSQL, dispatch and sla-report"

# --- 2. plan_missing on the dispatch-only host ----------------------------------------------------
check_b() { DAYBREAK_CLOCK="$1@$(now_ms)*1" on b "$OP" alerts check --json; }
check_b "$(date -d "$D1 -1 day" +%F)T22:00:30+05:30" >"$WORK/c1.json" || fail "alerts check on B exited $?"
check_b "${D1}T05:00:30+05:30" >"$WORK/c2.json" || fail "alerts check on B (05:00) exited $?"
assert_eq "$(sqlite3 "$DB_B" "SELECT COUNT(*) FROM runs")" "0" "runs in B's file (no planning data)"
assert_eq "$(sqlite3 "$DB_B" "SELECT COUNT(*) FROM alerts WHERE rule='plan_missing'")" "0" "plan_missing on B for $D1, published by A"
assert_eq "$(json 'j["plan_missing_unknown"]' <"$WORK/c2.json")" "None" "plan_missing judged"
check_b "$(date -d "$D2 -1 day" +%F)T22:00:30+05:30" >"$WORK/c3.json" || fail "alerts check on B ($D2) exited $?"
assert_eq "$(json '[(c["rule"], c["subject"]) for c in j["changes"] if c["change"]=="fired"]' <"$WORK/c3.json")" \
  "[('plan_missing', 'date:$D2')]" "alerts fired on B for $D2, published nowhere"
echo "ok 2: dispatch-only host B: no plan_missing for $D1 (published by A); plan_missing for $D2 (published nowhere)"

# --- 3. content_held on two hosts -----------------------------------------------------------------
sqlA "UPDATE advisors SET slot = '06:01' WHERE rowid % 2 = 0"   # two runs on D2: 06:00 and 06:01
plan_on_a "$D2"
assert_eq "$(pg "SELECT COUNT(*) FROM runs WHERE date='$D2' AND kind='morning'")" "2" "runs of $D2"
r_a=$(pg "SELECT run_id FROM runs WHERE date='$D2' ORDER BY slot_at LIMIT 1")
r_b=$(pg "SELECT run_id FROM runs WHERE date='$D2' ORDER BY slot_at DESC LIMIT 1")
held_item=$(pg "SELECT content_id FROM deliveries WHERE date='$D2' GROUP BY content_id ORDER BY COUNT(*) DESC, content_id LIMIT 1")
# Held deliveries of one item in both runs, as a withdrawal with no emergency item leaves them.
pg "UPDATE deliveries SET state='dead', last_error='held: $held_item withdrawn, no emergency item' WHERE date='$D2' AND content_id='$held_item' AND order_key % 3 = 0" >/dev/null
[ "$(pg "SELECT COUNT(DISTINCT run_id) FROM deliveries WHERE date='$D2' AND state='dead'")" = "2" ] || fail "held rows are not in both runs"
held_alerts() { echo $(( $(sqlite3 -cmd '.timeout 5000' "$DB_A" "SELECT COUNT(*) FROM alerts WHERE rule='content_held'") + \
                         $(sqlite3 -cmd '.timeout 5000' "$DB_B" "SELECT COUNT(*) FROM alerts WHERE rule='content_held'") )); }
assert_eq "$(held_alerts)" "0" "content_held before the dispatches"
clk="${D2}T06:00:40+05:30@$(now_ms)*1"
DAYBREAK_HOST_ID=host-a DAYBREAK_CLOCK=$clk on a "$DISPATCH" --run "$r_a" --json >"$WORK/a3.json" 2>"$WORK/a3.log" &
PA=$!
DAYBREAK_HOST_ID=host-b DAYBREAK_CLOCK=$clk on b "$DISPATCH" --run "$r_b" --json >"$WORK/b3.json" 2>"$WORK/b3.log" &
PB=$!
for _ in $(seq 1 200); do [ "$(held_alerts)" -ge 1 ] && break; sleep 0.05; done
sleep 2   # both hosts' monitoring ticks every second: two more ticks each
both=$(pg "SELECT COUNT(*) FROM runs WHERE run_id IN ($r_a, $r_b) AND state='running' AND owner IS NOT NULL")
assert_eq "$both" "2" "both hosts still dispatching (both monitoring)"
assert_eq "$(held_alerts)" "1" "content_held alerts across both hosts' files"
holder=a; other=b; victim=$PA; survivor=$PB; victim_run=$r_a
[ "$(sqlite3 "$DB_B" "SELECT COUNT(*) FROM alerts WHERE rule='content_held'")" = "1" ] && { holder=b; other=a; victim=$PB; survivor=$PA; victim_run=$r_b; }
assert_eq "$(sqlite3 "$WORK/$holder.db" "SELECT subject FROM alerts WHERE rule='content_held'")" "content:$held_item" "the alert's subject"
# The holding host dies (its dispatch process, named in its lease: host:pid:random): its session
# and the lock end; the other host's monitoring raises the alert.
victim_pid=$(pg "SELECT owner FROM runs WHERE run_id=$victim_run" | cut -d: -f2)
kill -9 "$victim_pid"
wait "$victim" 2>/dev/null || true
for _ in $(seq 1 100); do [ "$(sqlite3 -cmd '.timeout 5000' "$WORK/$other.db" "SELECT COUNT(*) FROM alerts WHERE rule='content_held'")" = "1" ] && break; sleep 0.05; done
assert_eq "$(sqlite3 "$WORK/$other.db" "SELECT subject FROM alerts WHERE rule='content_held' AND state='firing'")" "content:$held_item" \
  "content_held raised by host $other after host $holder died"
rc=0; wait "$survivor" || rc=$?
# Its run closes below 99% (a third of the held item's deliveries are held, not sent), so it
# exits 1 as on SQLite (its stored report decides).
assert_eq "$rc" "1" "host $other's dispatch exit (its run misses the SLA: the held rows)"
echo "ok 3: content_held raised once across two hosts (by host $holder); host $holder killed, host $other raised it"
