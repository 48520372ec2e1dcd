#!/usr/bin/env bash
# Meta's WhatsApp messaging limits in capacity planning (domain/capacity.hpp): 300 generated
# advisors (W of them planned on WhatsApp, about 290) for one night against a business portfolio
# whose numbers are at the 250 tier.
#  1. plan-deliveries flags the night infeasible (exit 1) with the numbers: W unique recipients
#     in 24 h over the 250 limit by W - 250 advisors, senders wa-1 and wa-2 of portfolio "retail"
#  2. sla-report capacity says the same (exit 1, "DOES NOT FIT", the portfolio's row)
#  3. one number of the portfolio at 2k: the portfolio's limit is the highest of its numbers, so
#     the night fits (exit 0), and a second portfolio with no tier is reported unchecked
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/json.sh"

D=2026-12-07
NIGHT="$(date -d "$D -1 day" +%F)T21:30:00+05:30"
# tiers T1 T2: wa-1 and wa-2 in portfolio "retail" at those tiers; wa-3 in "private", no tier
tiers() {
  write_config 1 "
messaging_tier = \"$1\"
portfolio = \"retail\"
[[whatsapp.senders]]
id = \"wa-2\"
phone_number_id = \"100000002\"
token = \"t\"
mps = 80
messaging_tier = \"$2\"
portfolio = \"retail\""
}
tiers unlimited unlimited
seed_day 300 "$D"
W=$(sql "SELECT COUNT(DISTINCT advisor_id) FROM deliveries WHERE date='$D' AND channel='whatsapp'")
[ "$W" -gt 260 ] || fail "only $W WhatsApp advisors planned"
OVER=$((W - 250))

# --- 1. plan-deliveries ------------------------------------------------------------------------
tiers 250 250
rc=0
DAYBREAK_CLOCK=$(clock_at "$NIGHT" 1) "$PLAN" --date "$D" --json >"$WORK/plan.json" 2>"$WORK/plan.log" || rc=$?
assert_eq "$rc" "1" "plan-deliveries exit (infeasible night)"
p=$(cat "$WORK/plan.json")
assert_eq "$(jget "$p" feasible)" "false" "plan feasible"
assert_eq "$(jget "$p" messaging_tiers portfolios 0 portfolio)" "retail" "portfolio"
assert_eq "$(jget "$p" messaging_tiers portfolios 0 unique_recipients)" "$W" "unique recipients"
assert_eq "$(jget "$p" messaging_tiers portfolios 0 limit)" "250" "limit"
assert_eq "$(jget "$p" messaging_tiers portfolios 0 over)" "$OVER" "advisors over the tier"
assert_eq "$(jget "$p" messaging_tiers portfolios 0 senders 0),$(jget "$p" messaging_tiers portfolios 0 senders 1)" "wa-1,wa-2" "senders"
grep -q "over its 250 limit of 250 by $OVER advisors" "$WORK/plan.log" || fail "plan-deliveries did not log the numbers: $(cat "$WORK/plan.log")"
echo "ok 1: plan-deliveries: $(jget "$p" messaging_tiers portfolios 0 recommendation)"

# --- 2. sla-report capacity ----------------------------------------------------------------------
rc=0
DAYBREAK_CLOCK=$(clock_at "$NIGHT" 1) "$REPORT" capacity >"$WORK/cap.txt" || rc=$?
assert_eq "$rc" "1" "sla-report capacity exit"
grep -q "WhatsApp messaging limits, $D" "$WORK/cap.txt" || fail "no messaging-limit section: $(cat "$WORK/cap.txt")"
grep -q "DOES NOT FIT" "$WORK/cap.txt" || fail "not flagged: $(cat "$WORK/cap.txt")"
grep -Eq "^  retail +250 +250 +$W +$OVER  wa-1,wa-2$" "$WORK/cap.txt" || fail "portfolio row: $(cat "$WORK/cap.txt")"
cap=$(DAYBREAK_CLOCK=$(clock_at "$NIGHT" 1) "$REPORT" capacity --json || true)
assert_eq "$(jget "$cap" messaging_tiers 0 portfolios 0 over)" "$OVER" "capacity JSON over"
echo "ok 2: sla-report capacity flags it"

# --- 3. the highest tier of the portfolio's numbers counts -------------------------------------
tiers 250 2k
cat >>"$WORK/daybreak.toml" <<'TOML'
[[whatsapp.senders]]
id = "wa-3"
phone_number_id = "100000003"
token = "t"
mps = 80
portfolio = "private"
TOML
rc=0
DAYBREAK_CLOCK=$(clock_at "$NIGHT" 1) "$PLAN" --date "$D" --json >"$WORK/plan3.json" 2>"$WORK/plan3.log" || rc=$?
assert_eq "$rc" "0" "plan-deliveries exit with a 2k number in the portfolio"
p=$(cat "$WORK/plan3.json")
assert_eq "$(jget "$p" messaging_tiers portfolios 1 portfolio) $(jget "$p" messaging_tiers portfolios 1 limit) $(jget "$p" messaging_tiers portfolios 1 feasible)" \
  "retail 2000 true" "retail at 2k"
assert_eq "$(jget "$p" messaging_tiers portfolios 0 portfolio) $(jget "$p" messaging_tiers portfolios 0 checked)" "private false" "private unchecked"
rc=0
DAYBREAK_CLOCK=$(clock_at "$NIGHT" 1) "$REPORT" capacity >"$WORK/cap3.txt" || rc=$?
assert_eq "$rc" "0" "sla-report capacity exit once it fits"
echo "ok 3: the portfolio's highest tier applies"
echo "PASS"
