#!/usr/bin/env bash
# dispatch end to end against the simulator on 127.0.0.1:
#  1. normal operation: every delivery accepted exactly once (the simulator's per-delivery counts)
#  2. a second dispatch on a run another one owns sends nothing
#  3. kill -9 mid-run, restart: the run completes, nothing lost, duplicates <= uncertain count
#  4. permanent errors and exhausted retries end dead with their attempt history
source "$(dirname "$0")/common.sh"

# --- 1. normal operation -------------------------------------------------------------------
D1=2026-12-01
start_sim normal --mps 80 --time-scale 10 --seed 1 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
seed_day 300 "$D1"
planned=$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1'")
[ "$planned" -gt 250 ] || fail "expected about 300 planned deliveries, got $planned"
run1=$(sql "SELECT run_id FROM runs WHERE date='$D1'")
DAYBREAK_CLOCK=$(clock_at "${D1}T05:59:25+05:30" 10) "$DISPATCH" --run "$run1" --json >"$WORK/d1.json"
assert_eq "$(json 'j["status"]' <"$WORK/d1.json")" "done" "dispatch status"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1' AND state='accepted'")" "$planned" "accepted deliveries"
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run1")" "closed" "run state"
stats=$(sim_stats)
assert_eq "$(echo "$stats" | json 'len(j["by_callback_data"])')" "$planned" "distinct deliveries the provider accepted"
assert_eq "$(echo "$stats" | json 'max(j["by_callback_data"].values())')" "1" "most acceptances of one delivery"
assert_eq "$(echo "$stats" | json 'j["duplicates"]')" "0" "duplicates"
# every accepted delivery's id is one the provider accepted (biz_opaque_callback_data = delivery id)
ids=$(sql "SELECT delivery_id FROM deliveries WHERE date='$D1' ORDER BY 1" | tr '\n' ' ')
echo "$stats" | python3 -c "
import json,sys; j=json.load(sys.stdin); ids=set('$ids'.split())
assert ids == set(j['by_callback_data']), 'provider acceptances and ledger disagree'"
# lag behind planned time is small
p99=$(sql "SELECT first_sent_at - planned_at FROM deliveries WHERE date='$D1' ORDER BY 1 LIMIT 1 OFFSET (SELECT CAST(COUNT(*)*0.99 AS INT) FROM deliveries WHERE date='$D1')")
[ "$p99" -lt 1000 ] || fail "dispatch lag p99 $p99 ms (simulated) is too large"
echo "ok 1: $planned deliveries accepted exactly once, lag p99 ${p99} ms"

# --- 2. a second dispatch on an owned run sends nothing ------------------------------------
D2=2026-12-02
seed_day 300 "$D2"
run2=$(sql "SELECT run_id FROM runs WHERE date='$D2'")
CLOCK2=$(clock_at "${D2}T05:59:25+05:30" 2)
DAYBREAK_CLOCK=$CLOCK2 "$DISPATCH" --run "$run2" --json >"$WORK/d2a.json" 2>"$WORK/d2a.log" &
first=$!
for _ in $(seq 1 100); do [ -n "$(sql "SELECT owner FROM runs WHERE run_id=$run2")" ] && break; sleep 0.05; done
DAYBREAK_CLOCK=$CLOCK2 "$DISPATCH" --run "$run2" --json >"$WORK/d2b.json" 2>"$WORK/d2b.log"
assert_eq "$(json 'j["status"]' <"$WORK/d2b.json")" "skipped" "second dispatch status"
grep -q "is owned by" "$WORK/d2b.log" || fail "second dispatch did not say who owns the run"
wait "$first"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D2' AND state!='accepted'")" "0" "run 2 not fully accepted"
assert_eq "$(sim_stats | json 'j["duplicates"]')" "0" "duplicates after two dispatches"
echo "ok 2: second dispatch skipped the owned run"

# --- 3. kill -9 mid-run and restart ---------------------------------------------------------
D3=2026-12-03
seed_day 300 "$D3"
run3=$(sql "SELECT run_id FROM runs WHERE date='$D3'")
n3=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3")
before=$(sim_stats | json 'j["accepted"]')
CLOCK3=$(clock_at "${D3}T05:59:28+05:30" 2)
# kill once some but not all deliveries are accepted
kill9_dispatch_after "$run3" "$CLOCK3" "$WORK/d3a.log" 40 200
acc_at_kill=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3 AND state='accepted'")
[ "$acc_at_kill" -lt "$n3" ] || fail "the run finished before the kill; nothing was tested"
# restart with a short lease wait: the dead owner's lease expires after lease_seconds
sleep 0.2
DAYBREAK_CLOCK=$CLOCK3 "$DISPATCH" --run "$run3" --json >"$WORK/d3b.json" 2>"$WORK/d3b.log" || true
if [ "$(json 'j["status"]' <"$WORK/d3b.json")" = "skipped" ]; then
  # the lease (15 s simulated = 7.5 s real) has not expired yet: wait for it, as the watchdog would
  sleep 8
  DAYBREAK_CLOCK=$CLOCK3 "$DISPATCH" --run "$run3" --json >"$WORK/d3b.json" 2>"$WORK/d3b.log"
fi
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3 AND state='accepted'")" "$n3" "accepted after restart"
uncertain=$(json 'j["uncertain_found"]' <"$WORK/d3b.json")
after=$(sim_stats)
dups=$(echo "$after" | json 'j["duplicates"]')
[ "$dups" -le "$uncertain" ] || fail "$dups duplicates but only $uncertain uncertain deliveries reported"
marked=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3 AND possible_duplicate=1")
[ "$marked" -le "$uncertain" ] || fail "more possible duplicates ($marked) than uncertain deliveries ($uncertain)"
echo "ok 3: killed at $acc_at_kill/$n3 accepted; restart finished the run; $uncertain uncertain, $dups duplicates at the provider"

# --- 4. permanent errors and exhausted retries end dead with history ------------------------
D4=2026-12-04
start_sim permanent --mps 80 --time-scale 10 --seed 2 --transient-rate 0 --permanent-rate 1
write_config "$SIM_PORT"
seed_day 40 "$D4"
run4=$(sql "SELECT run_id FROM runs WHERE date='$D4'")
n4=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run4")
rc=0
DAYBREAK_CLOCK=$(clock_at "${D4}T05:59:25+05:30" 10) "$DISPATCH" --run "$run4" --json >"$WORK/d4.json" 2>/dev/null || rc=$?
assert_eq "$rc" "1" "dispatch exit code when the SLA is missed"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run4 AND state='dead'")" "$n4" "dead after permanent errors"
assert_eq "$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING(delivery_id) WHERE d.run_id=$run4 AND a.error_code='131026'")" "$n4" "one permanent attempt each"

D5=2026-12-05
start_sim transient --mps 80 --time-scale 10 --seed 3 --transient-rate 1 --permanent-rate 0
# The retry budget is what is tested here: keep the sender's breaker closed (with it, a sender that
# fails every request only gets half-open probes until the drain period ends; test_breaker.sh).
write_config "$SIM_PORT" "
[breaker]
min_requests = 100000"
seed_day 40 "$D5"
run5=$(sql "SELECT run_id FROM runs WHERE date='$D5'")
n5=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run5")
DAYBREAK_CLOCK=$(clock_at "${D5}T05:59:25+05:30" 10) "$DISPATCH" --run "$run5" --json >"$WORK/d5.json" 2>/dev/null || true
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run5 AND state='dead'")" "$n5" "dead after exhausted retries"
assert_eq "$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING(delivery_id) WHERE d.run_id=$run5")" "$((n5 * 3))" "attempts recorded (max_attempts=3 each)"
assert_eq "$(sql "SELECT COUNT(DISTINCT outcome) FROM delivery_attempts a JOIN deliveries d USING(delivery_id) WHERE d.run_id=$run5")" "1" "all attempts retryable"
echo "ok 4: permanent and exhausted deliveries are dead with their history"
