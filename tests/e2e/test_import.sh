#!/usr/bin/env bash
# End-to-end check of `daybreak import` (the rules themselves are proven in
# tests/unit/validate_test.cpp and import_test.cpp): good files import with exit 0 and one audit
# row each; a file with bad rows exits 1, names every bad row in text and JSON, and leaves every
# table exactly as it was; usage mistakes exit 2, a bad config 3, an unusable database 4;
# --dry-run and standard input work. Needs sqlite3 and python3 (via common.sh); exits 125 without.
set -euo pipefail
source "$(dirname "$0")/common.sh"

# Until every binary is built into its own cmd/NAME/ directory, it may sit at cmd/NAME itself.
[[ -f "$OP" ]] || OP="$DAYBREAK_BIN/daybreak"
[[ -x "$OP" && -f "$OP" ]] || fail "$OP is not built"
unset DAYBREAK_CONFIG DAYBREAK_CLOCK

# run ARGS...: runs the operator tool on the test database; stdout in $OUT, stderr in $ERR,
# exit status in $RC (never aborts the script).
run() {
  set +e
  "$OP" --database "$DB" "$@" >"$WORK/out" 2>"$WORK/err"
  RC=$?
  set -e
  OUT=$(cat "$WORK/out")
  ERR=$(cat "$WORK/err")
}
expect_rc() { [[ $RC -eq $1 ]] || fail "$2: exit $RC, expected $1; stderr: $ERR"; }
counts() { sql "SELECT (SELECT COUNT(*) FROM advisors), (SELECT COUNT(*) FROM advisor_channels), (SELECT COUNT(*) FROM content), (SELECT COUNT(*) FROM assignments), (SELECT COUNT(*) FROM audit_log), (SELECT COALESCE(SUM(updated_at), 0) FROM advisors)"; }

HEADER=advisor_id,name,tier,phone,email,timezone,slot,channels,opted_in,language,topics
cat >"$WORK/advisors.csv" <<CSV
$HEADER
A1,Asha Rao,platinum,+919810000001,asha@example.com,,,whatsapp|email,yes,en,tax;equity
A2,"Rao, Vikram",gold,+91 98100 00002,,Asia/Dubai,07:30,whatsapp,true,hi,
A3,Mei Lin,silver,,mei@example.com,Asia/Singapore,06:00,email|webhook,1,en,markets
A4,Opted Out,standard,+919810000004,,,,whatsapp,no,en,
CSV

# --- a good file -------------------------------------------------------------------------------
run import advisors "$WORK/advisors.csv" --json
expect_rc 0 "good advisors"
assert_eq "$(json 'j["ok"]' <<<"$OUT")" "True" "ok"
assert_eq "$(json 'j["imported"]' <<<"$OUT")" "4" "imported"
assert_eq "$(json 'j["kind"]' <<<"$OUT")" "advisors" "kind"
assert_eq "$(sql 'SELECT COUNT(*) FROM advisors')" "4" "advisors stored"
assert_eq "$(sql "SELECT address FROM advisor_channels WHERE advisor_id = 'A2' AND channel = 'whatsapp'")" "+919810000002" "phone normalised to E.164"
assert_eq "$(sql "SELECT timezone || ' ' || slot FROM advisors WHERE advisor_id = 'A1'")" "Asia/Kolkata 06:00" "defaults"
assert_eq "$(sql "SELECT command || ' ' || json_extract(after, '\$.rows') FROM audit_log")" "import advisors 4" "audit row"
assert_eq "$(stat -c %a "$DB")" "600" "database created owner-only"

# Text mode says what happened on stdout.
run import advisors "$WORK/advisors.csv"
expect_rc 0 "re-import"
assert_eq "$OUT" "imported 4 advisors from $WORK/advisors.csv" "text output"
assert_eq "$(sql 'SELECT COUNT(*) FROM advisors')" "4" "re-import is an upsert"

# --- a file with three bad rows among good ones --------------------------------------------------
cat >"$WORK/bad.csv" <<CSV
$HEADER
A1,Asha Rao (renamed),platinum,+919810000001,asha@example.com,,,whatsapp|email,yes,en,tax
A5,Bad Phone,gold,+9198,,,,whatsapp,yes,en,
A6,Fine,gold,+919810000006,,,,whatsapp,yes,en,
A7,Bad Zone,gold,+919810000007,,Asia/Kolkatta,,whatsapp,yes,en,
A8,Bad Slot,gold,+919810000008,,,6am,whatsapp,yes,en,
CSV
before=$(counts)
run import advisors "$WORK/bad.csv" --json
expect_rc 1 "bad file"
assert_eq "$(json 'j["ok"]' <<<"$OUT")" "False" "ok false"
assert_eq "$(json 'j["imported"]' <<<"$OUT")" "0" "nothing imported"
assert_eq "$(json 'j["error_count"]' <<<"$OUT")" "3" "error count"
assert_eq "$(json '",".join(str(e["line"]) + ":" + e["field"] for e in j["errors"])' <<<"$OUT")" "3:phone,5:timezone,6:slot" "bad rows and fields named"
assert_eq "$(json 'j["errors"][0]["message"]' <<<"$OUT")" '"+9198" is not a valid phone number' "message"
assert_eq "$(counts)" "$before" "tables unchanged after a rejected import"
assert_eq "$(sql "SELECT name FROM advisors WHERE advisor_id = 'A1'")" "Asha Rao" "good rows of a bad file not applied"

run import advisors "$WORK/bad.csv"
expect_rc 1 "bad file, text"
grep -qF "bad.csv: 3 problems in 5 rows; nothing imported" <<<"$ERR" || fail "summary missing: $ERR"
grep -qF "bad.csv:3: field \"phone\": \"+9198\" is not a valid phone number" <<<"$ERR" || fail "phone row missing: $ERR"
grep -qF "bad.csv:5: field \"timezone\": \"Asia/Kolkatta\" is not a known IANA time zone" <<<"$ERR" || fail "zone row missing: $ERR"
grep -qF "bad.csv:6: field \"slot\": \"6am\" is not a time HH:MM" <<<"$ERR" || fail "slot row missing: $ERR"
assert_eq "$(counts)" "$before" "tables unchanged after a rejected import (text)"

# A malformed CSV (an unterminated quote) is named with its line too.
printf '%s\nA9,"Never closed,gold,,,,,webhook,yes,en,\n' "$HEADER" >"$WORK/broken.csv"
run import advisors "$WORK/broken.csv"
expect_rc 1 "broken csv"
grep -qF "broken.csv:2: unterminated quoted field" <<<"$ERR" || fail "csv error missing: $ERR"

# --- dry run and standard input ------------------------------------------------------------------
printf '%s\nA9,New,gold,,,,,webhook,yes,en,\n' "$HEADER" >"$WORK/one.csv"
run import advisors "$WORK/one.csv" --dry-run --json
expect_rc 0 "dry run"
assert_eq "$(json 'j["dry_run"], j["rows"], j["imported"]' <<<"$OUT")" "True 1 0" "dry run report"
assert_eq "$(counts)" "$before" "dry run writes nothing"
run import advisors --dry-run "$WORK/bad.csv"
expect_rc 1 "dry run of a bad file"

set +e
"$OP" --database "$DB" import advisors - --json <"$WORK/one.csv" >"$WORK/out" 2>"$WORK/err"
RC=$?
set -e
expect_rc 0 "import from stdin"
assert_eq "$(json 'j["file"], j["imported"]' <"$WORK/out")" "<stdin> 1" "stdin report"
assert_eq "$(sql 'SELECT COUNT(*) FROM advisors')" "5" "stdin row stored"

# --- content and assignments ---------------------------------------------------------------------
cat >"$WORK/content.csv" <<'CSV'
content_id,title,body,language,topics,media_url,valid_from,valid_until,fallback_eligible,emergency
C1,Morning brief,"Markets opened higher, and one idea to share: ""rebalance"".",en,markets,https://cdn.example.com/c1.jpg,2026-11-01,2026-12-31,yes,no
C2,Hindi brief,Namaste,hi,,,,,true,false
CSV
run import content "$WORK/content.csv" --json
expect_rc 0 "content"
assert_eq "$(sql "SELECT body FROM content WHERE content_id = 'C1'")" 'Markets opened higher, and one idea to share: "rebalance".' "quoted body"

printf 'advisor_id,date,content_id\nA1,2026-11-28,C1\nA2,2026-11-28,C2\n' >"$WORK/assign.csv"
run import assignments "$WORK/assign.csv" --source advisor --json
expect_rc 0 "assignments"
assert_eq "$(sql "SELECT COUNT(*) FROM assignments WHERE source = 'advisor'")" "2" "assignments stored with their source"

printf 'advisor_id,date,content_id\nA1,2026-11-29,C1\nA404,2026-11-29,C1\nA2,2026-11-29,C404\n' >"$WORK/assign-bad.csv"
before=$(counts)
run import assignments "$WORK/assign-bad.csv" --json
expect_rc 1 "assignments naming unknown advisor and content"
assert_eq "$(json '",".join(str(e["line"]) + ":" + e["field"] for e in j["errors"])' <<<"$OUT")" "3:advisor_id,4:content_id" "unknown ids named"
assert_eq "$(counts)" "$before" "tables unchanged after a rejected assignments import"

# --- exit codes for the other failures -----------------------------------------------------------
run import advisers "$WORK/advisors.csv"
expect_rc 2 "unknown kind"
run import advisors "$WORK/no-such-file.csv"
expect_rc 2 "missing file"
grep -qF "no-such-file.csv" <<<"$ERR" || fail "missing file not named: $ERR"
run import advisors "$WORK/advisors.csv" --source advisor
expect_rc 2 "--source on advisors"
run import
expect_rc 2 "no kind"

run --config "$WORK/missing.toml" import advisors "$WORK/advisors.csv"
expect_rc 3 "missing config file"

set +e
"$OP" --database "$WORK/no/such/dir/x.db" import advisors "$WORK/advisors.csv" >/dev/null 2>"$WORK/err"
RC=$?
set -e
ERR=$(cat "$WORK/err")
expect_rc 4 "unusable database"

echo "ok: import"
