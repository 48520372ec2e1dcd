#!/usr/bin/env bash
# Sender pool under an outage, end to end against the simulator:
# 2,000 advisors on two WhatsApp senders; the second number is down from S+30 s to S+120 s.
# Its breaker opens, traffic reroutes to the healthy sender, the breaker closes again through
# half-open once the number is back, every delivery is accepted once, and the SLA holds.
source "$(dirname "$0")/common.sh"

D=2026-12-04
SCALE=10
start_sim pool --mps 8 --time-scale $SCALE --seed 3 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT" '
[[whatsapp.senders]]
id = "wa-2"
phone_number_id = "100000002"
token = "test-token"
mps = 8
[breaker]
window_seconds = 10
min_requests = 5
failure_ratio = 0.5
open_seconds = 5
max_open_seconds = 20
half_open_probes = 2'
# 8 msg/s per number: the plan spreads 2,000 deliveries to about S+150 s, so the outage meets
# real traffic (at 80 msg/s everything would be sent before S+30 s).
sed -i 's/^mps = 80$/mps = 8/' "$WORK/daybreak.toml"
seed_day 2000 "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
[ "$(sql "SELECT COUNT(DISTINCT sender) FROM deliveries WHERE run_id=$run")" = 2 ] || fail "the plan did not use both senders"

# Scenario time S-35 s at t0; S+30 s is 65 simulated seconds later.
t0=$(now_ms)
clock="${D}T05:59:25+05:30@${t0}*${SCALE}"
at() { # at SIM_SECONDS_AFTER_T0: sleeps until that scenario time
  local due=$((t0 + $1 * 1000 / SCALE)) now
  now=$(now_ms)
  [ "$due" -gt "$now" ] && sleep "$(awk -v ms=$((due - now)) 'BEGIN{print ms/1000}')"
  return 0
}
DAYBREAK_CLOCK=$clock "$DISPATCH" --run "$run" --json >"$WORK/d.json" 2>"$WORK/d.log" &
pid=$!
ctl() { curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$SIM_PORT/control" -d "$1"; }
at 65
assert_eq "$(ctl '{"phone_number_id":"100000002","down":true}')" "200" "taking wa-2 down"
at 155
assert_eq "$(ctl '{"phone_number_id":"100000002","down":false}')" "200" "bringing wa-2 back"
wait "$pid" || true

grep -q "sender wa-2: breaker open" "$WORK/d.log" || fail "wa-2's breaker never opened"
grep -q "sender wa-2: breaker closed again" "$WORK/d.log" || fail "wa-2's breaker never closed again"
opened=$(json 'j["breaker_opened"]' <"$WORK/d.json")
[ "$opened" -ge 1 ] || fail "dispatch summary counts no breaker opening"
# traffic rerouted: deliveries planned on wa-2 were accepted through wa-1 during the outage
rerouted=$(sql "SELECT COUNT(*) FROM deliveries d WHERE run_id=$run AND state='accepted' AND sender='wa-1'
  AND EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id=d.delivery_id AND a.sender='wa-2' AND a.outcome!='accepted')")
[ "$rerouted" -gt 0 ] || fail "no delivery failed on wa-2 and then succeeded on wa-1"
# while the breaker is open, wa-2 sees only probes, not its planned traffic
sent_wa2_outage=$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run
  AND a.sender='wa-2' AND a.started_at BETWEEN d.slot_at + 45000 AND d.slot_at + 115000")
planned_wa2=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND planned_at BETWEEN slot_at + 45000 AND slot_at + 115000")
[ "$sent_wa2_outage" -lt $((planned_wa2 / 4)) ] || fail "wa-2 got $sent_wa2_outage requests during its outage ($planned_wa2 planned in that span overall)"
# traffic returns to wa-2 after the breaker closes
after=$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run
  AND a.sender='wa-2' AND a.outcome='accepted' AND a.started_at > d.slot_at + 125000")
[ "$after" -gt 0 ] || fail "no traffic returned to wa-2 after the outage"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$n" "accepted deliveries"
stats=$(sim_stats)
assert_eq "$(echo "$stats" | json 'j["duplicates"]')" "0" "provider-side duplicates"
sla=$(sql "SELECT printf('%.2f', 100.0 * SUM(accepted_at <= deadline_at) / COUNT(*)) FROM deliveries WHERE run_id=$run")
awk -v s="$sla" 'BEGIN{exit !(s >= 99)}' || fail "SLA $sla% < 99%"
echo "ok: $n deliveries, wa-2 breaker opened $opened time(s) and closed again, $rerouted rerouted to wa-1, $sent_wa2_outage wa-2 requests during the outage, SLA $sla%"
