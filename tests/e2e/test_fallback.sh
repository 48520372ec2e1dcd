#!/usr/bin/env bash
# End-to-end check of `assign-fallback` and `daybreak explain` on the real binaries (the ranking
# itself is proven in tests/unit/ranking_test.cpp and fallback_test.cpp): 2,000 generated
# advisors of whom 30% have no editorial content; after assign-fallback every eligible advisor
# has exactly one assignment and `missing` is empty; opted-out advisors get none; a second run
# changes nothing; explain shows the source, the score parts and the reason.
set -euo pipefail
source "$(dirname "$0")/common.sh"
unset DAYBREAK_CONFIG DAYBREAK_CLOCK
DAY=2026-03-10
export DAYBREAK_CLOCK="2026-03-09T21:30:00+05:30@$(now_ms)*1"

"$OP" generate --advisors 2000 --date "$DAY" --out "$WORK/data" --seed 11 --assigned-pct 70 --channels whatsapp >/dev/null
for kind in content advisors assignments; do "$OP" --database "$DB" import "$kind" "$WORK/data/$kind.csv" >/dev/null; done

OUT=$("$ASSIGN" --database "$DB" --date "$DAY" --json) || fail "assign-fallback exit $?: $OUT"
assert_eq "$(json 'len(j["missing"])' <<<"$OUT")" "0" "missing"
ELIGIBLE=$(json 'j["eligible"]' <<<"$OUT")
FALLBACK=$(json 'j["fallback_assigned"]' <<<"$OUT")
[[ $FALLBACK -gt 400 ]] || fail "expected about 30% fallback, got $FALLBACK of $ELIGIBLE"
assert_eq "$(sql "SELECT COUNT(*) FROM assignments WHERE date = '$DAY' AND advisor_id IN (SELECT advisor_id FROM advisors WHERE opted_in = 1)")" "$ELIGIBLE" "one assignment per eligible advisor"
assert_eq "$(sql "SELECT COUNT(*) FROM assignments s JOIN advisors a USING (advisor_id) WHERE a.opted_in = 0 AND s.source = 'fallback'")" "0" "no fallback for opted-out advisors"
assert_eq "$(sql "SELECT COUNT(*) FROM assignments s JOIN content c USING (content_id) JOIN advisors a USING (advisor_id) WHERE c.language <> a.language")" "0" "language always matches"
assert_eq "$(sql "SELECT COUNT(*) FROM assignments WHERE source = 'fallback' AND json_extract(score_parts, '\$.total') IS NULL")" "0" "score parts stored"

BEFORE=$(sql "SELECT group_concat(advisor_id||content_id||source||score||score_parts||reason||created_at, '|') FROM assignments")
OUT2=$("$ASSIGN" --database "$DB" --date "$DAY" --json) || fail "second run exit $?"
assert_eq "$(json 'j["fallback_assigned"]' <<<"$OUT2")" "0" "second run assigns nothing"
assert_eq "$(sql "SELECT group_concat(advisor_id||content_id||source||score||score_parts||reason||created_at, '|') FROM assignments")" "$BEFORE" "second run changes nothing"

ADV=$(sql "SELECT advisor_id FROM assignments WHERE source = 'fallback' ORDER BY advisor_id LIMIT 1")
EX=$("$OP" --database "$DB" explain --advisor "$ADV" --date "$DAY" --json)
assert_eq "$(json 'j["assignment"]["source"]' <<<"$EX")" "fallback" "explain source"
assert_eq "$(json '"total" in j["assignment"]["score_parts"]' <<<"$EX")" "True" "explain parts"
"$OP" --database "$DB" explain --advisor "$ADV" --date "$DAY" | grep -q "engagement sample" || fail "explain text"
# A compliance pull: every assignment of the item is replaced and the audit log names who pulled it.
# (Opted-out advisors' assignments are left alone: nothing is planned for them.)
OPTED="advisor_id IN (SELECT advisor_id FROM advisors WHERE opted_in = 1)"
N=$(sql "SELECT COUNT(*) FROM assignments WHERE content_id = 'c-en-0' AND date = '$DAY' AND $OPTED")
[[ $N -gt 0 ]] || fail "fixture: nobody has c-en-0"
W=$("$OP" --database "$DB" content withdraw c-en-0 --reason "e2e pull" --json) || fail "withdraw exit $?"
assert_eq "$(json 'j["assignments_replaced"]' <<<"$W")" "$N" "assignments replaced"
assert_eq "$(sql "SELECT COUNT(*) FROM assignments WHERE content_id = 'c-en-0' AND $OPTED")" "0" "no assignment of a withdrawn item"
assert_eq "$(sql "SELECT COUNT(*) FROM audit_log WHERE command = 'content withdraw' AND target = 'c-en-0' AND reason = 'e2e pull' AND actor = '$(id -un)'")" "1" "audit names who pulled it"

set +e
"$OP" --database "$DB" explain --advisor nobody --date "$DAY" >/dev/null 2>&1
assert_eq "$?" "1" "explain of an unknown advisor"
echo "ok: $FALLBACK fallback of $ELIGIBLE eligible, zero silent days, idempotent; $N replaced by a pull"
