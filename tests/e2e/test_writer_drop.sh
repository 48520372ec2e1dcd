#!/usr/bin/env bash
# A ledger write that fails on every attempt does not stop dispatch: a trigger refuses to let one
# delivery become `sending` (a permanent failure of its claim, as a constraint or a corrupt row
# would be). The writer drops that write alone and commits the rest: every other delivery is
# accepted, dispatch exits, the refused row is left as it was and its run is not closed (the
# next dispatch takes it up). Before, the batch holding the claim was retried for ever and
# dispatch never sent another row nor exited.
source "$(dirname "$0")/common.sh"

D=2026-12-03
start_sim drop --mps 80 --time-scale 10 --seed 3 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
seed_day 100 "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
planned=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
bad=$(sql "SELECT delivery_id FROM deliveries WHERE run_id=$run ORDER BY planned_at, delivery_id LIMIT 1 OFFSET 10")
sql "CREATE TRIGGER e2e_refuse_claim BEFORE UPDATE OF state ON deliveries
     WHEN OLD.delivery_id = $bad AND NEW.state = 'sending'
     BEGIN SELECT RAISE(ABORT, 'e2e: this delivery may not be claimed'); END"
rc=0
DAYBREAK_CLOCK=$(clock_at "${D}T05:59:25+05:30" 10) timeout 120 "$DISPATCH" --run "$run" --json \
  >"$WORK/d.json" 2>"$WORK/d.log" || rc=$?
[ "$rc" -ne 124 ] || { tail -20 "$WORK/d.log" >&2; fail "dispatch did not exit within 120 s (blocked behind a failing write)"; }
assert_eq "$(json 'j["status"]' <"$WORK/d.json")" "done" "dispatch status"
dropped=$(json 'j["writes_dropped"]' <"$WORK/d.json")
[ "$dropped" -ge 1 ] || fail "writes_dropped is $dropped"
grep -q "dropped a ledger write that fails on every attempt (claiming deliveries" "$WORK/d.log" ||
  fail "no error line naming the dropped claim"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$((planned - 1))" \
  "accepted deliveries (all but the refused one)"
assert_eq "$(sql "SELECT state FROM deliveries WHERE delivery_id=$bad")" "planned" "the refused delivery"
assert_eq "$(sql "SELECT state = 'closed' FROM runs WHERE run_id=$run")" "0" "run closed (it must not be: one row is not final)"
assert_eq "$(sql "SELECT COALESCE(owner, '') FROM runs WHERE run_id=$run")" "" "run owner (released)"
stats=$(sim_stats)
assert_eq "$(echo "$stats" | json 'len(j["by_callback_data"])')" "$((planned - 1))" "distinct deliveries the provider accepted"
assert_eq "$(echo "$stats" | json "j['by_callback_data'].get('$bad', 0)")" "0" "sends of the refused delivery"
echo "ok: $((planned - 1)) of $planned accepted, the refused delivery left planned, $dropped writes dropped, exit $rc"
