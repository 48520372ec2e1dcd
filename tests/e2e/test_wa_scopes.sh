#!/usr/bin/env bash
# WhatsApp errors by scope (docs/whatsapp-errors.md), end to end against the simulator:
#  1. Two WhatsApp numbers of WhatsApp-only advisors; from S+30 s the simulator answers 131048
#     (spam rate limit) for the second. Its breaker opens for the long number pause, the rest of
#     its traffic goes out through the first number (no channel fallback: there is none to take),
#     no advisor is dead, >= 99% on time, and the attempts keep the scope and Meta's fbtrace_id.
#  2. A 368 (account temporarily blocked) on one number stops both numbers of the account (one
#     access token) at once, and the critical whatsapp_account_blocked alert fires at every
#     level of the on-call chain at once.
source "$(dirname "$0")/common.sh"

SCALE=10
two_numbers='
[[whatsapp.senders]]
id = "wa-2"
phone_number_id = "100000002"
token = "test-token"
mps = 8'

# start_scenario DAY: the scenario clock starts at S-35 s now, SCALE times faster; sets t0 and clock
start_scenario() {
  t0=$(now_ms)
  clock="${1}T05:59:25+05:30@${t0}*${SCALE}"
}

# --- 1. 131048 on wa-2 from S+30 s ------------------------------------------------------------
D=2026-12-04
write_config 0 "$two_numbers"
sed -i 's/^mps = 80$/mps = 8/' "$WORK/daybreak.toml"
seed_day 1500 "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
[ "$(sql "SELECT COUNT(DISTINCT sender) FROM deliveries WHERE run_id=$run")" = 2 ] || fail "the plan did not use both senders"
assert_eq "$(sql "SELECT COUNT(*) FROM advisors WHERE channels != 'whatsapp'")" "0" "advisors reachable on WhatsApp only"
sql "CREATE TABLE planned_sender AS SELECT delivery_id, sender, planned_at FROM deliveries WHERE run_id=$run"
# The simulator starts with the scenario: --fail-number counts demo seconds from its start, and
# S+30 s is 65 demo seconds after S-35 s.
start_sim scopes --mps 8 --time-scale $SCALE --seed 3 --transient-rate 0 --permanent-rate 0 \
  --fail-number 100000002:131048:65 --held-for-quality-rate 0.05
start_scenario "$D"
sed -i "s#^graph_base = .*#graph_base = \"http://127.0.0.1:$SIM_PORT\"#" "$WORK/daybreak.toml"
DAYBREAK_CLOCK=$clock "$DISPATCH" --run "$run" --json >"$WORK/d1.json" 2>"$WORK/d1.log"

grep -q "sender wa-2: number blocked by the provider (131048" "$WORK/d1.log" || fail "wa-2 was not paused for 131048"
assert_eq "$(json 'j["numbers_paused"]' <"$WORK/d1.json")" "1" "numbers paused"
assert_eq "$(json 'j["accounts_stopped"]' <"$WORK/d1.json")" "0" "accounts stopped"
first_block=$(sql "SELECT MIN(a.finished_at) FROM delivery_attempts a JOIN deliveries d USING (delivery_id)
  WHERE d.run_id=$run AND a.sender='wa-2' AND a.error_code='131048'")
[ -n "$first_block" ] || fail "no 131048 answer recorded"
since=$(( (first_block - $(sql "SELECT slot_at FROM runs WHERE run_id=$run")) / 1000 ))
[ "$since" -ge 25 ] && [ "$since" -le 40 ] || fail "first 131048 at S+${since}s, expected about S+30s"
# The number is paused (3600 s, not the breaker's seconds-long cool-down): nothing is sent
# through it once the answers to the requests already out have come back.
late=$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id)
  WHERE d.run_id=$run AND a.sender='wa-2' AND a.started_at > $first_block + 2000")
assert_eq "$late" "0" "requests through wa-2 after its block"
# Its traffic went out through wa-1, on WhatsApp (no other channel exists)
moved=$(sql "SELECT COUNT(*) FROM deliveries d WHERE run_id=$run AND state='accepted' AND sender='wa-1' AND channel='whatsapp'
  AND EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id=d.delivery_id AND a.error_code='131048')")
[ "$moved" -gt 0 ] || fail "no delivery refused with 131048 on wa-2 was accepted through wa-1"
# Every delivery the plan gave wa-2 after its block went out through wa-1, never through wa-2
planned_wa2=$(sql "SELECT COUNT(*) FROM planned_sender WHERE sender='wa-2' AND planned_at > $first_block")
[ "$planned_wa2" -gt 100 ] || fail "only $planned_wa2 deliveries planned on wa-2 after its block (the test would prove little)"
via_wa1=$(sql "SELECT COUNT(*) FROM planned_sender p JOIN deliveries d USING (delivery_id) WHERE p.sender='wa-2'
  AND p.planned_at > $first_block AND d.state='accepted' AND d.sender='wa-1' AND d.channel='whatsapp'")
assert_eq "$via_wa1" "$planned_wa2" "deliveries planned on wa-2 after its block accepted through wa-1"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='dead'")" "0" "dead deliveries (WhatsApp-only advisors)"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$n" "accepted deliveries"
assert_eq "$(sql "SELECT COUNT(*) FROM delivery_attempts WHERE error_code='131048' AND (error_scope IS NOT 'phone_number' OR fbtrace_id IS NULL)")" \
  "0" "131048 attempts without scope phone_number or fbtrace_id"
sla=$(sql "SELECT printf('%.2f', 100.0 * SUM(accepted_at <= deadline_at) / COUNT(*)) FROM deliveries WHERE run_id=$run")
awk -v s="$sla" 'BEGIN{exit !(s >= 99)}' || fail "SLA $sla% < 99%"
assert_eq "$(sim_stats | json 'j["duplicates"]')" "0" "provider-side duplicates"
assert_eq "$(sql "SELECT COUNT(*) FROM alerts WHERE rule='whatsapp_number_blocked' AND subject='sender:wa-2'")" "1" "number-blocked alert"
# The report counts the blocked attempts
"$REPORT" --run "$run" --json >"$WORK/r1.json" || true
[ "$(json 'j["number_blocked_attempts"]' <"$WORK/r1.json")" -gt 0 ] || fail "sla-report counts no number-blocked attempt"
# held_for_quality_assessment answers (about 5% of recipients): kept per attempt, counted by
# dispatch and by the report, JSON and text
held=$(sql "SELECT COUNT(DISTINCT delivery_id) FROM delivery_attempts WHERE held_for_quality = 1 AND outcome = 'accepted'")
[ "$held" -gt 10 ] || fail "only $held deliveries recorded as held for quality assessment"
assert_eq "$(json 'j["held_for_quality"]' <"$WORK/r1.json")" "$held" "sla-report held_for_quality"
assert_eq "$(json 'j["held_for_quality"]' <"$WORK/d1.json")" "$held" "dispatch summary held_for_quality"
"$REPORT" --run "$run" >"$WORK/r1.txt" || true
grep -q "held for quality assessment $held  unknown error codes 0" "$WORK/r1.txt" || fail "text report: $(cat "$WORK/r1.txt")"
echo "part 1 ok: $n deliveries, wa-2 blocked at S+${since}s, $moved refused in flight and $via_wa1 planned on wa-2 sent through wa-1, SLA $sla%"

# --- 2. 368 on wa-1: both numbers of the account stop, critical alert at once -------------------
start_hook
cat >>"$WORK/daybreak.toml" <<TOML
[alerts]
escalate_after_minutes = 30
chain = ["oncall", "manager"]
[alerts.levels.oncall]
webhooks = ["http://127.0.0.1:$HOOK/oncall"]
[alerts.levels.manager]
webhooks = ["http://127.0.0.1:$HOOK/manager"]
TOML
D2=2026-12-05
seed_day 300 "$D2"
run2=$(sql "SELECT run_id FROM runs WHERE date='$D2'")
start_sim scopes2 --mps 8 --time-scale $SCALE --seed 3 --transient-rate 0 --permanent-rate 0 \
  --fail-number 100000001:368:45
start_scenario "$D2"
sed -i "s#^graph_base = .*#graph_base = \"http://127.0.0.1:$SIM_PORT\"#" "$WORK/daybreak.toml"
DAYBREAK_CLOCK=$clock "$DISPATCH" --run "$run2" --json >"$WORK/d2.json" 2>"$WORK/d2.log" &
pid=$!
# WhatsApp-only advisors with the only account stopped wait for it (until their drain period
# ends): stop dispatch once the alert is out and a few more scenario seconds have passed.
for _ in $(seq 1 300); do
  [ "$(sql "SELECT COUNT(*) FROM alerts WHERE rule='whatsapp_account_blocked'")" -ge 1 ] && break
  sleep 0.1
done
sleep 1.5
kill -TERM "$pid"
wait "$pid" || true
grep -q "blocked by the provider (368" "$WORK/d2.log" || fail "no account block logged"
assert_eq "$(json 'j["accounts_stopped"]' <"$WORK/d2.json")" "1" "accounts stopped"
block2=$(sql "SELECT MIN(a.finished_at) FROM delivery_attempts a JOIN deliveries d USING (delivery_id)
  WHERE d.run_id=$run2 AND a.error_code='368'")
[ -n "$block2" ] || fail "no 368 answer recorded"
# Both numbers stop at once: wa-2 never answered 368 itself, yet sends nothing after wa-1's block.
after=$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id)
  WHERE d.run_id=$run2 AND a.started_at > $block2 + 2000")
assert_eq "$after" "0" "requests through either number after the account block"
[ "$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run2 AND a.sender='wa-2'
  AND a.started_at <= $block2")" -gt 0 ] || fail "wa-2 sent nothing before the block (the test would prove nothing)"
row=$(sql "SELECT subject || '|' || level || '|' || (fired_at - $block2 <= 15000) FROM alerts WHERE rule='whatsapp_account_blocked'")
case "$row" in
  account:token:*"|1|1") ;;
  *) fail "critical alert: expected account:token:… at level 1 (the chain's last) within 15 scenario seconds, got '$row'" ;;
esac
id=$(sql "SELECT alert_id FROM alerts WHERE rule='whatsapp_account_blocked'")
assert_eq "$(sql "SELECT group_concat(level, ',') FROM (SELECT level FROM alert_notifications WHERE alert_id=$id AND event='fired' ORDER BY level)")" \
  "0,1" "fired notifications (every level at once)"
grep -q "wa-1, wa-2\|wa-2, wa-1" <<<"$(sql "SELECT message FROM alerts WHERE alert_id=$id")" || fail "the alert does not name both senders"
echo "ok: 131048 paused one number and moved its traffic; 368 stopped the account's two numbers and fired the critical alert"
