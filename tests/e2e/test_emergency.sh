#!/usr/bin/env bash
# Emergency substitution at send time: the provider rejects one content
# item with a template error (132000); dispatch sends an emergency item in the advisor's
# language instead of skipping them, records source `emergency` on the delivery and the
# assignment, and the delivery still counts on time. A withdrawn item found at load is replaced
# the same way.
source "$(dirname "$0")/common.sh"

D=2026-12-06
start_sim em --mps 80 --time-scale 10 --seed 7 --transient-rate 0 --permanent-rate 0 --template-error-match "TEMPLATE-BREAK"
write_config "$SIM_PORT"
seed_day 300 "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
# the two most used non-emergency items: one the template cannot carry, one withdrawn after planning
read -r broken pulled <<<"$(sql "SELECT content_id FROM deliveries d JOIN content c USING (content_id) WHERE run_id=$run AND c.emergency=0
  GROUP BY content_id ORDER BY COUNT(*) DESC LIMIT 2" | tr '\n' ' ')"
nb=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND content_id='$broken'")
np=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND content_id='$pulled'")
[ "$nb" -gt 0 ] && [ "$np" -gt 0 ] || fail "no deliveries of the chosen items"
sql "UPDATE content SET body = body || ' TEMPLATE-BREAK' WHERE content_id='$broken'"
# withdrawn behind the tool's back (no re-pointing): dispatch must catch it when it loads the run
sql "UPDATE content SET withdrawn_at = 1, withdrawn_by = 'e2e' WHERE content_id='$pulled'"
DAYBREAK_CLOCK=$(clock_at "${D}T05:59:25+05:30" 10) "$DISPATCH" --run "$run" --json >"$WORK/d.json" 2>"$WORK/d.log"
subs=$(json 'j["emergency_substitutions"]' <"$WORK/d.json")
assert_eq "$subs" "$((nb + np))" "emergency substitutions"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$n" "accepted deliveries"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND content_id IN ('$broken','$pulled')")" "0" \
  "deliveries still pointing at the rejected or withdrawn item"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries d JOIN content c USING (content_id) JOIN advisors a USING (advisor_id)
  WHERE run_id=$run AND d.source='emergency' AND c.emergency=1 AND c.language=a.language AND accepted_at <= deadline_at")" \
  "$((nb + np))" "emergency deliveries in the advisor's language, on time"
assert_eq "$(sql "SELECT COUNT(*) FROM assignments WHERE date='$D' AND source='emergency' AND reason LIKE 'emergency substitution:%'")" \
  "$((nb + np))" "assignments recorded as emergency with the reason"
# the rejected sends are in the history: 132000 first, then accepted on the same channel
assert_eq "$(sql "SELECT COUNT(DISTINCT delivery_id) FROM delivery_attempts a JOIN deliveries d USING (delivery_id)
  WHERE d.run_id=$run AND a.error_code='132000'")" "$nb" "deliveries with a template error in their history"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND source='emergency' AND channel <> 'whatsapp'")" "0" "channel kept"
assert_eq "$(sim_stats | json 'j["duplicates"]')" "0" "provider-side duplicates"
echo "ok: $nb template-rejected and $np withdrawn deliveries got emergency content, all on time"
