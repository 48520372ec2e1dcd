#!/usr/bin/env bash
# A missed night is loud, and the morning still goes out:
#  1. nothing planned for D: `daybreak alerts check` at 21:59 IST on D-1 fires nothing; at
#     22:00:30 it fires plan_missing (date:D) and the on-call webhook receives it; at 05:00:30 on
#     D a second plan_missing (date:D@05:00) reaches the webhook again
#  2. a nightly job that fails (every content item expired: assign-fallback finds silent days)
#     raises nightly_failed, which reaches the webhook at once
#  3. the dead-man's switch: the nightly never ran; `dispatch --supervise` started at 05:59 IST as
#     cron starts it (no --run) assigns fallback content and plans the 2,000 advisors itself,
#     raises night_missed (at the webhook), and gets >= 99% accepted on time
source "$(dirname "$0")/common.sh"
SRC=${DAYBREAK_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
D=2026-12-08
DPREV=2026-12-07
N=2000

start_sim dm --mps 80 --time-scale 10 --seed 5 --transient-rate 0 --permanent-rate 0
start_hook
write_config "$SIM_PORT" "[alerts]
chain = [\"oncall\"]
[alerts.levels.oncall]
webhooks = [\"http://127.0.0.1:$HOOK/oncall\"]"
"$OP" generate --advisors "$N" --date "$D" --out "$WORK/data" --seed 7 --other-tz-pct 0 --channels whatsapp >/dev/null
"$OP" import content "$WORK/data/content.csv" >/dev/null
"$OP" import advisors "$WORK/data/advisors.csv" >/dev/null
"$OP" import assignments "$WORK/data/assignments.csv" >/dev/null
# some advisors have editorial content for D; the rest would get fallback at 21:30, which never comes
editorial=$(sql "SELECT COUNT(*) FROM assignments WHERE date='$D'")
[ "$editorial" -lt "$N" ] || fail "every advisor already has content; nothing for fallback to do"
at() { echo "$1@$(now_ms)*$2"; }
hooks_for() { python3 -c "
import json,sys
for l in open('$WORK/hooks.ndjson'):
    b = json.loads(l)['body']
    t = json.dumps(b)
    if '$1' in t: print(t)
"; }

# --- 1. not planned by 22:00 IST, and again at 05:00 --------------------------------------------
DAYBREAK_CLOCK=$(at "${DPREV}T21:59:00+05:30" 1) "$OP" alerts check --json >"$WORK/c1.json"
assert_eq "$(json '[c["rule"] for c in j["changes"] if c["change"]=="fired"]' <"$WORK/c1.json")" "[]" "alerts fired at 21:59"
DAYBREAK_CLOCK=$(at "${DPREV}T22:00:30+05:30" 1) "$OP" alerts check --json >"$WORK/c2.json"
assert_eq "$(json '[(c["rule"], c["subject"]) for c in j["changes"] if c["change"]=="fired"]' <"$WORK/c2.json")" "[('plan_missing', 'date:$D')]" "alerts fired at 22:00:30"
hooks_for plan_missing | grep -q "date:$D" || { cat "$WORK/hooks.ndjson"; fail "the webhook did not receive plan_missing"; }
DAYBREAK_CLOCK=$(at "${D}T05:00:30+05:30" 1) "$OP" alerts check --json >"$WORK/c3.json"
assert_eq "$(json '[(c["rule"], c["subject"]) for c in j["changes"] if c["change"]=="fired"]' <"$WORK/c3.json")" "[('plan_missing', 'date:$D@05:00')]" "alerts fired at 05:00:30"
assert_eq "$(hooks_for plan_missing | grep -c "fired")" "2" "plan_missing notifications at the webhook"
echo "ok 1: not planned by 22:00 IST -> plan_missing at the webhook; still not at 05:00 -> again"

# --- 2. a failing nightly reaches the webhook -------------------------------------------------
# Every generated item is valid until early 2027: a night for 2027-02-01 has nothing to assign.
BADDAY=2027-02-01
rc=0
PATH="$DAYBREAK_BIN/daybreak:$DAYBREAK_BIN/assign-fallback:$DAYBREAK_BIN/plan-deliveries:$PATH" \
  DAYBREAK_CLOCK=$(at "2027-01-31T21:30:00+05:30" 1) "$SRC/cron/daybreak-nightly" --date "$BADDAY" >"$WORK/nightly.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || { cat "$WORK/nightly.out"; fail "the nightly for $BADDAY succeeded"; }
grep -q "plan-deliveries not run: assign-fallback failed" "$WORK/nightly.out" || { cat "$WORK/nightly.out"; fail "assign-fallback did not fail"; }
hooks_for nightly_failed | grep -q "date:$BADDAY" || { cat "$WORK/hooks.ndjson"; fail "the webhook did not receive nightly_failed"; }
hooks_for nightly_failed | grep -q "assign-fallback exit 1" || fail "nightly_failed does not name the failing step"
echo "ok 2: a failing nightly (exit $rc) raised nightly_failed at the webhook, naming assign-fallback"

# --- 3. the dead-man's switch at 05:59 ---------------------------------------------------------
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D'")" "0" "deliveries planned before 05:59"
rc=0
DAYBREAK_CLOCK=$(at "${D}T05:59:00+05:30" 10) "$DISPATCH" --supervise --json >"$WORK/dispatch.json" 2>"$WORK/dispatch.err" || rc=$?
assert_eq "$rc" "0" "dispatch exit ($(tail -3 "$WORK/dispatch.err"))"
out=$(tail -1 "$WORK/dispatch.json")
# The generated set has some advisors opted out: every opted-in one must have a delivery now.
eligible=$(echo "$out" | json 'j["deadman"]["eligible"]')
[ "$eligible" -ge $((N * 9 / 10)) ] || fail "only $eligible of $N advisors eligible"
assert_eq "$(echo "$out" | json 'j["deadman"]["inserted"]')" "$eligible" "deliveries the dead-man's switch planned"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D'")" "$eligible" "deliveries of $D"
unplanned=$(sql "SELECT COUNT(*) FROM advisors a WHERE a.opted_in = 1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.advisor_id = a.advisor_id AND d.date = '$D')")
assert_eq "$unplanned" "0" "opted-in advisors without a delivery"
assigned=$(echo "$out" | json 'j["deadman"]["assigned"]')
[ "$assigned" -gt 0 ] || fail "the dead-man's switch assigned no fallback content"
assert_eq "$(sql "SELECT COUNT(*) FROM assignments WHERE date='$D' AND source='fallback'")" "$assigned" "fallback assignments of $D"
ontime=$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D' AND accepted_at IS NOT NULL AND accepted_at <= deadline_at")
[ $((ontime * 100)) -ge $((eligible * 99)) ] || fail "only $ontime of $eligible accepted on time"
hooks_for night_missed | grep -q "date:$D" || { cat "$WORK/hooks.ndjson"; fail "the webhook did not receive night_missed"; }
grep -q "dead-man's switch" "$WORK/dispatch.err" || fail "dispatch's log does not say what it did"
echo "ok 3: nightly never ran; dispatch at 05:59 IST planned $eligible itself ($(echo "$out" | json 'int(j["deadman"]["ms"])') ms), $ontime/$eligible on time, night_missed at the webhook"
