#!/usr/bin/env bash
# The operator tool end to end, against the simulator on 127.0.0.1:
#  1. bad input (unknown ids, bad dates, conflicting flags, missing --reason): exit 2, a clear
#     error, nothing changed; every --dry-run changes nothing
#  2. pause against a running dispatch stops new sends within a second; resume finishes the run
#     with every delivery accepted exactly once
#  3. cancel, content change (assign) and compliance replacement against a running dispatch;
#     resend of an accepted delivery after its run closed (the run is reopened)
#  4. dead letters: a replay of ids that are not all dead changes nothing; replay after an address
#     fix delivers once; dismiss; bulk replay by filter
#  5. every change is in the audit log with actor, reason and before/after
#  6. exports stream (csv/ndjson; memory does not grow with the row count); retention deletes old
#     runs in batches and archives them first
#
# Needs the dispatcher to reload noted deliveries (delivery_changes) within a second: the
# assertions marked [reload] in part 3 fail without it.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/json.sh"

ME=$(id -un)
# expect_rc CODE CMD...: runs CMD, output in $WORK/out and $WORK/err, and checks its exit code
expect_rc() {
  local want=$1; shift
  local rc=0
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" = "$want" ] || fail "$* exited $rc, expected $want; stderr: $(cat "$WORK/err")"
}
expect_err() { grep -q -- "$1" "$WORK/err" || fail "stderr does not say '$1': $(cat "$WORK/err")"; }
# a digest of every table an operator command may change
snapshot() {
  sqlite3 "$DB" "SELECT * FROM deliveries ORDER BY 1; SELECT run_id, state, reopened_at FROM runs ORDER BY 1;
    SELECT * FROM controls; SELECT * FROM audit_log; SELECT * FROM assignments ORDER BY 1, 2; SELECT * FROM advisors ORDER BY 1;
    SELECT * FROM advisor_channels ORDER BY 1, 2; SELECT * FROM content ORDER BY 1; SELECT * FROM delivery_changes" | md5sum
}
accepted_at_sim() { sim_stats | json 'j["accepted"]'; }
audits() { sql "SELECT COUNT(*) FROM audit_log"; }

start_sim main --mps 80 --time-scale 10 --seed 5 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"

# --- 1. bad input and dry runs ---------------------------------------------------------------
D1=2026-12-10
seed_day 60 "$D1"
run1=$(sql "SELECT run_id FROM runs WHERE date='$D1'")
d1=$(sql "SELECT delivery_id FROM deliveries WHERE run_id=$run1 ORDER BY delivery_id LIMIT 1")
adv1=$(sql "SELECT advisor_id FROM deliveries WHERE delivery_id=$d1")
c_other=$(sql "SELECT content_id FROM content WHERE content_id <> (SELECT content_id FROM deliveries WHERE delivery_id=$d1)
  AND language=(SELECT language FROM advisors WHERE advisor_id='$adv1') AND withdrawn_at IS NULL
  AND (valid_until='' OR valid_until >= '$D1') AND (valid_from='' OR valid_from <= '$D1') LIMIT 1")
[ -n "$c_other" ] || fail "no second content item to assign"
s0=$(snapshot)
expect_rc 2 "$OP" cancel --delivery 99999999 --reason test;                        expect_err "no such delivery"
expect_rc 2 "$OP" cancel --run "$run1" --delivery "$d1" --reason test;             expect_err "exactly one of --run ID or --delivery ID"
expect_rc 2 "$OP" cancel --run "$run1";                                            expect_err "reason"
expect_rc 2 "$OP" cancel --run "$run1" --reason " ";                               expect_err "must say why"
expect_rc 2 "$OP" cancel --run 99999 --reason test;                                expect_err "no such run"
expect_rc 2 "$OP" assign --advisor "$adv1" --date 2026-02-30 --content "$c_other" --reason test; expect_err '--date "2026-02-30"'
expect_rc 2 "$OP" assign --advisor NOPE --date "$D1" --content "$c_other" --reason test;        expect_err "no such advisor"
expect_rc 2 "$OP" assign --advisor "$adv1" --date "$D1" --content NOPE --reason test;           expect_err "no such content"
expect_rc 2 "$OP" resend --delivery "$d1" --reason test;                           expect_err "not final"
expect_rc 2 "$OP" dead replay "$d1" --date "$D1" --reason test;                    expect_err "not both"
expect_rc 2 "$OP" dead replay 99999999 --reason test;                              expect_err "no such delivery"
expect_rc 2 "$OP" dead replay --reason test;                                       expect_err "at least one filter"
expect_rc 2 "$OP" dead list --date 2026-13-01;                                     expect_err '--date "2026-13-01"'
expect_rc 2 "$OP" advisors update "$adv1" --phone +9198 --reason test;             expect_err "phone"
expect_rc 2 "$OP" advisors update NOPE --name X --reason test;                     expect_err "no such advisor"
expect_rc 2 "$OP" advisors add "$adv1" --name X --reason test;                     expect_err "already exists"
expect_rc 2 "$OP" advisors pause "$adv1" --from 2026-12-05 --until 2026-12-01 --reason test; expect_err "before --from"
expect_rc 2 "$OP" advisors opt-out "$adv1" --channel webhook --reason test;        expect_err "no webhook channel"
expect_rc 2 "$OP" pause --channel sms --reason test;                               expect_err "expected whatsapp, email or webhook"
expect_rc 2 "$OP" content replace "$c_other" --with NOPE --reason test;            expect_err "no such content"
expect_rc 2 "$OP" export deliveries --from 2026-12-10 --to 2026-12-01;             expect_err "before --from"
expect_rc 2 "$OP" export deliveries --from "$D1" --to "$D1" --format xml;          expect_err "csv or ndjson"
expect_rc 2 "$OP" retention purge --older-than 0;                                  expect_err "at least 1"
assert_eq "$(snapshot)" "$s0" "database after rejected commands"

expect_rc 0 "$OP" cancel --run "$run1" --dry-run --reason test
grep -q "dry run: would cancel run $run1" "$WORK/out" || fail "dry-run cancel output: $(cat "$WORK/out")"
expect_rc 0 "$OP" cancel --delivery "$d1" --dry-run --reason test
expect_rc 0 "$OP" pause --dry-run --reason test
expect_rc 0 "$OP" assign --advisor "$adv1" --date "$D1" --content "$c_other" --dry-run --reason test --json
assert_eq "$(jget "$(cat "$WORK/out")" delivery_id)" "$d1" "dry-run assign names the delivery it would re-point"
expect_rc 0 "$OP" advisors update "$adv1" --name "Someone Else" --dry-run --reason test
expect_rc 0 "$OP" advisors pause "$adv1" --from "$D1" --until "$D1" --dry-run --reason test
expect_rc 0 "$OP" content replace "$(sql "SELECT content_id FROM deliveries WHERE delivery_id=$d1")" --with "$c_other" --dry-run --reason test
expect_rc 0 "$OP" retention purge --older-than 1 --dry-run
assert_eq "$(snapshot)" "$s0" "database after dry runs"
echo "ok 1: bad input exits 2 with the reason named, dry runs change nothing"

# --- 2. pause and resume against a running dispatch ------------------------------------------
# A slow sender (2 msg/s) spreads the plan over the window, so the run lasts ~20 s real at 10x.
sed -i 's/^mps = 80$/mps = 2/' "$WORK/daybreak.toml"
D2=2026-12-11
seed_day 300 "$D2"
run2=$(sql "SELECT run_id FROM runs WHERE date='$D2'")
n2=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run2")
base=$(accepted_at_sim)
DAYBREAK_CLOCK=$(clock_at "${D2}T05:59:28+05:30" 10) "$DISPATCH" --run "$run2" --json >"$WORK/d2.json" 2>"$WORK/d2.log" &
disp=$!
for _ in $(seq 1 300); do [ $(( $(accepted_at_sim) - base )) -gt 40 ] && break; sleep 0.05; done
"$OP" pause --reason "e2e: pause test" >/dev/null
sleep 1   # one second for the running dispatch to see the switch
a1=$(accepted_at_sim)
sleep 2
a2=$(accepted_at_sim)
assert_eq "$a2" "$a1" "sends between 1 s and 3 s after the pause"
[ $((a2 - base)) -lt "$n2" ] || fail "the run finished before the pause; nothing was tested"
"$OP" resume --reason "e2e: resume" >/dev/null
wait "$disp" || true
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run2 AND state='accepted'")" "$n2" "accepted after resume"
stats=$(sim_stats)
ids=$(sql "SELECT delivery_id FROM deliveries WHERE run_id=$run2" | tr '\n' ' ')
echo "$stats" | python3 -c "
import json,sys; j=json.load(sys.stdin)['by_callback_data']
ids='$ids'.split()
missing=[i for i in ids if j.get(i,0)==0]; dup=[i for i in ids if j.get(i,0)>1]
assert not missing, 'lost: %s' % missing[:5]
assert not dup, 'duplicated: %s' % dup[:5]" || fail "pause/resume lost or duplicated deliveries"
echo "ok 2: pause held sends at $((a1 - base))/$n2 for 2 s; resume finished all $n2, each accepted once"

# --- 3. cancel, assign, replace during a running dispatch; resend after the run closed --------
D3=2026-12-12
seed_day 200 "$D3"
run3=$(sql "SELECT run_id FROM runs WHERE date='$D3'")
n3=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3")
# targets planned late in the window, so the changes land before dispatch reaches them
mapfile -t late < <(sql "SELECT delivery_id FROM deliveries WHERE run_id=$run3 ORDER BY planned_at DESC LIMIT 3")
x_cancel=${late[0]}; x_assign=${late[1]}; x_replace=${late[2]}
adv_assign=$(sql "SELECT advisor_id FROM deliveries WHERE delivery_id=$x_assign")
c_replace=$(sql "SELECT content_id FROM deliveries WHERE delivery_id=$x_replace")
lang_replace=$(sql "SELECT language FROM content WHERE content_id='$c_replace'")
c_assign=$(sql "SELECT content_id FROM content WHERE content_id NOT IN (SELECT content_id FROM deliveries WHERE delivery_id IN ($x_assign, $x_replace))
  AND language=(SELECT language FROM advisors WHERE advisor_id='$adv_assign') AND withdrawn_at IS NULL
  AND (valid_until='' OR valid_until >= '$D3') AND (valid_from='' OR valid_from <= '$D3') LIMIT 1")
c_subst=$(sql "SELECT content_id FROM content WHERE content_id <> '$c_replace' AND language='$lang_replace' AND withdrawn_at IS NULL
  AND (valid_until='' OR valid_until >= '$D3') AND (valid_from='' OR valid_from <= '$D3') LIMIT 1")
[ -n "$c_assign" ] && [ -n "$c_subst" ] || fail "no content to assign or substitute"
planned_before=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3 AND content_id='$c_replace' AND state='planned'")
base=$(accepted_at_sim)
DAYBREAK_CLOCK=$(clock_at "${D3}T05:59:28+05:30" 10) "$DISPATCH" --run "$run3" --json >"$WORK/d3.json" 2>"$WORK/d3.log" &
disp=$!
for _ in $(seq 1 300); do [ $(( $(accepted_at_sim) - base )) -gt 5 ] && break; sleep 0.05; done
"$OP" cancel --delivery "$x_cancel" --reason "e2e: advisor asked" >/dev/null
"$OP" assign --advisor "$adv_assign" --date "$D3" --content "$c_assign" --reason "e2e: better fit" >/dev/null
"$OP" content replace "$c_replace" --with "$c_subst" --reason "e2e: compliance" --json >"$WORK/replace.json"
[ "$(jget "$(cat "$WORK/replace.json")" deliveries_repointed)" -ge 1 ] || fail "content replace re-pointed nothing"
wait "$disp" || true
assert_eq "$(sql "SELECT state FROM deliveries WHERE delivery_id=$x_cancel")" "cancelled" "cancelled delivery's state"
sim_cancel=$(sim_stats | json "j['by_callback_data'].get('$x_cancel', 0)")
assert_eq "$sim_cancel" "0" "provider acceptances of the cancelled delivery"
assert_eq "$(sql "SELECT content_id || '/' || source || '/' || state FROM deliveries WHERE delivery_id=$x_assign")" "$c_assign/override/accepted" "assigned delivery"
assert_eq "$(sql "SELECT content_id || '/' || source FROM assignments WHERE advisor_id='$adv_assign' AND date='$D3'")" "$c_assign/override" "assignment after assign"
assert_eq "$(sql "SELECT content_id || '/' || state FROM deliveries WHERE delivery_id=$x_replace")" "$c_subst/accepted" "replaced delivery"
assert_eq "$(sql "SELECT withdrawn_at IS NOT NULL FROM content WHERE content_id='$c_replace'")" "1" "replaced item withdrawn"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3 AND state='accepted'")" "$((n3 - 1))" "[reload] accepted besides the cancelled one"
# resend an accepted delivery of the closed run: the run reopens and the next dispatch sends it again
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run3")" "closed" "run 3 closed"
x_resend=$(sql "SELECT delivery_id FROM deliveries WHERE run_id=$run3 AND state='accepted' ORDER BY delivery_id LIMIT 1")
"$OP" resend --delivery "$x_resend" --reason "e2e: advisor lost the message" --json >"$WORK/resend.json"
assert_eq "$(jget "$(cat "$WORK/resend.json")" run_reopened)" "true" "resend reopened the closed run"
assert_eq "$(sql "SELECT state FROM deliveries WHERE delivery_id=$x_resend")" "planned" "resent delivery state"
DAYBREAK_CLOCK=$(clock_at "${D3}T06:06:00+05:30" 10) "$DISPATCH" --run "$run3" --json >"$WORK/d3b.json" 2>"$WORK/d3b.log" || true
assert_eq "$(sql "SELECT state FROM deliveries WHERE delivery_id=$x_resend")" "accepted" "resent delivery accepted"
assert_eq "$(sim_stats | json "j['by_callback_data'].get('$x_resend', 0)")" "2" "provider acceptances of the resent delivery"
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run3")" "closed" "run 3 closed again"
# the generator reuses its content for later days: un-withdraw (test set-up only) so their imports pass
sql "UPDATE content SET withdrawn_at = NULL, withdrawn_by = NULL WHERE content_id = '$c_replace'"
echo "ok 3: cancel, assign, replace ($planned_before planned of $c_replace) during dispatch; resend after close sent once more"

# --- 3b. cancel a whole run while dispatch sends it ---------------------------------------------
D5=2026-12-14
seed_day 200 "$D5"
run5=$(sql "SELECT run_id FROM runs WHERE date='$D5'")
n5=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run5")
base=$(accepted_at_sim)
DAYBREAK_CLOCK=$(clock_at "${D5}T05:59:28+05:30" 10) "$DISPATCH" --run "$run5" --json >"$WORK/d5.json" 2>"$WORK/d5.log" &
disp=$!
for _ in $(seq 1 300); do [ $(( $(accepted_at_sim) - base )) -gt 20 ] && break; sleep 0.05; done
"$OP" cancel --run "$run5" --reason "e2e: wrong content for the whole run" --json >"$WORK/cancel5.json"
sleep 1
a1=$(accepted_at_sim)
sleep 2
assert_eq "$(accepted_at_sim)" "$a1" "sends after the run was cancelled"
wait "$disp" || true
acc5=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run5 AND state='accepted'")
can5=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run5 AND state='cancelled'")
[ "$acc5" -lt "$n5" ] || fail "run 5 finished before the cancel; nothing was tested"
assert_eq "$((acc5 + can5))" "$n5" "every delivery of the cancelled run is accepted or cancelled"
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run5")" "cancelled" "[lead: RunClose keeps a cancelled run] run 5 state"
echo "ok 3b: run cancelled mid-dispatch at $acc5/$n5 accepted; no sends after it"

# --- 4. dead letters ---------------------------------------------------------------------------
D4=2026-12-13
start_sim perm --mps 80 --time-scale 10 --seed 9 --transient-rate 0 --permanent-rate 0.25
write_config "$SIM_PORT"
seed_day 60 "$D4"
run4=$(sql "SELECT run_id FROM runs WHERE date='$D4'")
DAYBREAK_CLOCK=$(clock_at "${D4}T05:59:25+05:30" 10) "$DISPATCH" --run "$run4" --json >"$WORK/d4.json" 2>/dev/null || true
ndead=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run4 AND state='dead'")
[ "$ndead" -ge 4 ] || fail "expected several dead letters, got $ndead"
"$OP" dead list --run "$run4" --json >"$WORK/dead.ndjson"
assert_eq "$(wc -l <"$WORK/dead.ndjson")" "$ndead" "dead list --json lines"
mapfile -t dead < <(sql "SELECT delivery_id FROM deliveries WHERE run_id=$run4 AND state='dead' ORDER BY delivery_id")
ok_id=$(sql "SELECT delivery_id FROM deliveries WHERE run_id=$run4 AND state='accepted' LIMIT 1")
"$OP" dead show "${dead[0]}" --json >"$WORK/show.json"
assert_eq "$(jget "$(cat "$WORK/show.json")" attempt_history 0 error_code)" "131026" "dead show attempt history"
# atomic: one id that is not dead, so nothing is replayed
s1=$(snapshot)
expect_rc 2 "$OP" dead replay "${dead[0]}" "${dead[1]}" "$ok_id" --reason test; expect_err "not dead"
assert_eq "$(snapshot)" "$s1" "database after a rejected bulk replay"
# fix the first one's address: find a number the simulator accepts (its failures are per recipient)
good=""
for i in $(seq 10 60); do
  cand="+9198765430$i"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer probe' -H 'Content-Type: application/json' \
    -d "{\"messaging_product\":\"whatsapp\",\"to\":\"$cand\",\"type\":\"text\",\"text\":{\"body\":\"probe\"}}" \
    "http://127.0.0.1:$SIM_PORT/v21.0/probe/messages")
  if [ "$code" = 200 ]; then good=$cand; break; fi
done
[ -n "$good" ] || fail "no phone number the simulator accepts"
adv_dead=$(sql "SELECT advisor_id FROM deliveries WHERE delivery_id=${dead[0]}")
"$OP" advisors update "$adv_dead" --phone "$good" --reason "e2e: corrected number" >/dev/null
assert_eq "$(sql "SELECT address FROM advisor_channels WHERE advisor_id='$adv_dead' AND channel='whatsapp'")" "$good" "fixed address"
"$OP" dead replay "${dead[0]}" --reason "e2e: address fixed" --json >"$WORK/replay1.json"
assert_eq "$(jget "$(cat "$WORK/replay1.json")" count)" "1" "replayed count"
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run4")" "running" "run reopened by the replay"
DAYBREAK_CLOCK=$(clock_at "${D4}T06:06:00+05:30" 10) "$DISPATCH" --run "$run4" --json >"$WORK/d4b.json" 2>/dev/null || true
assert_eq "$(sql "SELECT state FROM deliveries WHERE delivery_id=${dead[0]}")" "accepted" "replayed delivery"
assert_eq "$(sim_stats | json "j['by_callback_data'].get('${dead[0]}', 0)")" "1" "provider acceptances of the replayed delivery"
[ "$(sql "SELECT COUNT(*) FROM delivery_attempts WHERE delivery_id=${dead[0]}")" -ge 2 ] || fail "attempt history not kept"
# dismiss one, then bulk replay the rest by filter in one transaction
"$OP" dead dismiss "${dead[1]}" --reason "e2e: advisor left" >/dev/null
assert_eq "$(sql "SELECT state || '/' || (dismissed_at IS NOT NULL) FROM deliveries WHERE delivery_id=${dead[1]}")" "dead/1" "dismissed stays dead"
rest=$((ndead - 2))
"$OP" dead replay --run "$run4" --error 131026 --dry-run --reason test --json >"$WORK/dry.json"
assert_eq "$(jget "$(cat "$WORK/dry.json")" count)" "$rest" "dry-run bulk replay count"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run4 AND state='dead'")" "$((ndead - 1))" "dead after the dry run"
"$OP" dead replay --run "$run4" --error 131026 --reason "e2e: provider fixed" --json >"$WORK/bulk.json"
assert_eq "$(jget "$(cat "$WORK/bulk.json")" count)" "$rest" "bulk replay count"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run4 AND state='planned'")" "$rest" "planned after the bulk replay"
assert_eq "$(sql "SELECT COUNT(DISTINCT updated_at) FROM deliveries WHERE run_id=$run4 AND state='planned'")" "1" "one instant (one transaction)"
curl -s -X POST -d '{"permanent_rate":0}' "http://127.0.0.1:$SIM_PORT/control" >/dev/null
DAYBREAK_CLOCK=$(clock_at "${D4}T06:07:00+05:30" 10) "$DISPATCH" --run "$run4" --json >"$WORK/d4c.json" 2>/dev/null || true
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run4 AND state='accepted'")" "$(( $(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run4") - 1 ))" "accepted after bulk replay"
echo "ok 4: $ndead dead letters; atomic rejection; replay after address fix delivered once; dismiss; bulk replay of $rest"

# --- 5. the audit log ------------------------------------------------------------------------
"$OP" audit --limit 0 --json >"$WORK/audit.ndjson"
python3 - "$WORK/audit.ndjson" "$ME" <<'PY' || fail "audit log incomplete"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
me = sys.argv[2]
def find(target, cmd):
    m = [r for r in rows if r["target"] == target and cmd in r["command"]]
    assert m, "no audit row for %s %s" % (target, cmd)
    return m[0]
mine = [r for r in rows if r["command"].startswith("daybreak ")]  # imports write their own rows
assert len(mine) >= 10, len(mine)
for r in mine:
    assert r["actor"] == me, r
    assert r["reason"].strip(), r
    assert r["after"] is not None, r
PY
for t in "delivery:$x_cancel" "delivery:$x_resend" "delivery:${dead[0]}" "delivery:${dead[1]}" "assignment:$adv_assign/$D3" \
         "content:$c_replace" "advisor:$adv_dead" "control:pause"; do
  n=$("$OP" audit --target "$t" --json | wc -l)
  [ "$n" -ge 1 ] || fail "no audit row for $t"
done
row=$("$OP" audit --target "delivery:$x_cancel" --json | head -1)
assert_eq "$(jget "$row" before state)" "planned" "audit before of the cancel"
assert_eq "$(jget "$row" after state)" "cancelled" "audit after of the cancel"
assert_eq "$(jget "$row" reason)" "e2e: advisor asked" "audit reason of the cancel"
assert_eq "$("$OP" audit --command "dead replay" --json | wc -l)" "$((1 + rest))" "audit rows of dead replays (one per delivery)"
# the advisor row keeps addresses masked
"$OP" audit --target "advisor:$adv_dead" --json | grep -q "$good" && fail "audit log holds a full phone number"
echo "ok 5: every change audited with actor $ME, reason and before/after"

# --- 6. exports and retention ----------------------------------------------------------------
n_all=$(sql "SELECT COUNT(*) FROM deliveries WHERE date BETWEEN '$D1' AND '$D4'")
# a provider's error detail that a spreadsheet would evaluate: exported as text ('-prefixed)
sql "UPDATE deliveries SET last_error = '@SUM(1+1)*cmd' WHERE delivery_id = (SELECT MIN(delivery_id) FROM deliveries WHERE date = '$D1')"
"$OP" export deliveries --from "$D1" --to "$D4" --format csv >"$WORK/deliveries.csv"
assert_eq "$(head -1 "$WORK/deliveries.csv" | cut -d, -f1-3)" "delivery_id,run_id,advisor_id" "csv header"
assert_eq "$(($(wc -l <"$WORK/deliveries.csv") - 1))" "$n_all" "csv rows"
grep -q ",'@SUM(1+1)\*cmd," "$WORK/deliveries.csv" || fail "csv export: a formula-leading cell is not neutralised"
if grep -qE '(^|,)[=+@-]' "$WORK/deliveries.csv"; then fail "csv export: a cell begins with a formula character"; fi
"$OP" export attempts --from "$D4" --to "$D4" >"$WORK/attempts.ndjson"
assert_eq "$(wc -l <"$WORK/attempts.ndjson")" "$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING(delivery_id) WHERE d.date='$D4'")" "ndjson attempts"
# to a file first: `| head -1` would close the pipe early and, under pipefail, fail on SIGPIPE
"$OP" export reports --from "$D1" --to "$D4" --format ndjson >"$WORK/reports.ndjson"
head -1 "$WORK/reports.ndjson" | python3 -c "import json,sys; j=json.loads(sys.stdin.read()); assert isinstance(j['report'], dict)" \
  || fail "report export does not carry the report object"
# streaming: an old run of 100,000 synthetic deliveries; export memory must not grow with rows
OLD=2026-01-05
sql "INSERT INTO runs(date, slot_at, window_start, window_end, deadline_at, state) VALUES ('$OLD', 1767574800000, 1767574770000, 1767575070000, 1767575100000, 'closed')"
old_run=$(sql "SELECT run_id FROM runs WHERE date='$OLD'")
sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100000)
     INSERT INTO deliveries(run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, state, channel, sender, planned_at, deadline_at, updated_at, last_error, order_key)
     SELECT $old_run, '$adv1', '$OLD', 1767574800000 + i, '$c_other', 'editorial', 'gold', 1, 'accepted', 'whatsapp', 'wa-1', 1767574800000, 1767575100000, 0,
            'a long error text to make each row a few hundred bytes in memory if anything kept them all ..........................................', 0
     FROM n"
sql "INSERT INTO delivery_attempts(delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome)
     SELECT delivery_id, 1, 'whatsapp', 'wa-1', 0, 1, 'accepted' FROM deliveries WHERE run_id=$old_run"
rss() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1; }
if [ -x /usr/bin/time ]; then
  small=$(rss "$OP" export deliveries --from "$D1" --to "$D1" --format ndjson)
  big=$(rss "$OP" export deliveries --from "$OLD" --to "$OLD" --format ndjson)
  [ $((big - small)) -lt 8000 ] || fail "export of 100,000 rows used $big KB against $small KB for $(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1'") rows: not streamed"
  echo "   export max RSS: $small KB (60 rows), $big KB (100,000 rows)"
fi
assert_eq "$("$OP" export deliveries --from "$OLD" --to "$OLD" --format csv | wc -l)" "100001" "rows of the big export"
# status tables ([retention] defaults: 30 days, pending 72 h): an old callback (a phone number in
# its body) goes with its status; a pending status of 100 h ago expires; a recent one stays pending
t_now=$(now_ms)
sql "INSERT INTO status_events(received_at, source, signature, verified, body, body_sha256) VALUES
       (1767574800000, 'receiver', 'sha256=x', 1, '{\"recipient_id\":\"919810012345\"}', 'old'),
       ($t_now - 100*3600000, 'receiver', 'sha256=x', 1, '{}', 'stale'),
       ($t_now - 3600000, 'receiver', 'sha256=x', 1, '{}', 'fresh')"
sql "INSERT INTO status_updates(event_id, provider_message_id, status, provider_at, received_at, applied_at, outcome)
     SELECT event_id, 'wamid.' || body_sha256, 'delivered', received_at, received_at,
            CASE body_sha256 WHEN 'old' THEN received_at END, CASE body_sha256 WHEN 'old' THEN 'moved' END
     FROM status_events WHERE body_sha256 IN ('old', 'stale', 'fresh')"
# assignments of old days go with the runs' cutoff, but never inside the ranker's 31 days of history
n_adv=$(sql "SELECT COUNT(*) FROM advisors")
n_recent_asg=$(sql "SELECT COUNT(*) FROM assignments WHERE date >= '$D1'")
sql "INSERT INTO assignments(advisor_id, date, content_id, source, created_at)
     SELECT advisor_id, d.date, '$c_other', 'fallback', 0 FROM advisors, (SELECT '$OLD' AS date UNION ALL SELECT '2026-01-06') d"
"$OP" retention purge --older-than 10 --dry-run --json >"$WORK/purge-10.json"
"$OP" retention purge --older-than 31 --dry-run --json >"$WORK/purge-31.json"
assert_eq "$(jget "$(cat "$WORK/purge-10.json")" assignment_cutoff_date)" "$(jget "$(cat "$WORK/purge-31.json")" cutoff_date)" \
  "assignments keep 31 days of history whatever --older-than says"
# Without --older-than the cutoff is [retention] runs_days (90 by default), as the nightly job runs it.
"$OP" retention purge --dry-run --json >"$WORK/purge-default.json"
"$OP" retention purge --older-than 90 --dry-run --json >"$WORK/purge-90.json"
assert_eq "$(jget "$(cat "$WORK/purge-default.json")" cutoff_date)" "$(jget "$(cat "$WORK/purge-90.json")" cutoff_date)" "default cutoff = runs_days 90"
"$OP" retention purge --older-than 30 --dry-run --json >"$WORK/purge-dry.json"
assert_eq "$(jget "$(cat "$WORK/purge-dry.json")" statuses expired_pending)" "1" "dry run: pending statuses that would expire"
assert_eq "$(sql "SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL")" "2" "dry run changed nothing"
# retention: the old run goes in batches of 5,000 (each its own transaction), newer runs stay
"$OP" retention purge --older-than 30 --batch 5000 --json >"$WORK/purge.json"
assert_eq "$(jget "$(cat "$WORK/purge.json")" statuses expired_pending)" "1" "expired pending statuses"
assert_eq "$(jget "$(cat "$WORK/purge.json")" statuses deleted_events)" "1" "deleted status events"
assert_eq "$(sql "SELECT COUNT(*) FROM status_events WHERE body_sha256 = 'old'")" "0" "old callback body deleted"
assert_eq "$(sql "SELECT outcome FROM status_updates WHERE provider_message_id = 'wamid.stale'")" "expired" "stale pending status"
assert_eq "$(sql "SELECT COUNT(*) FROM status_updates WHERE provider_message_id = 'wamid.fresh' AND applied_at IS NULL")" "1" "fresh pending status kept"
assert_eq "$(jget "$(cat "$WORK/purge.json")" deleted deliveries)" "100000" "purged deliveries"
[ "$(jget "$(cat "$WORK/purge.json")" batches)" -ge 20 ] || fail "purge did not go in batches: $(cat "$WORK/purge.json")"
assert_eq "$(sql "SELECT COUNT(*) FROM runs WHERE run_id=$old_run")" "0" "old run deleted"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE date BETWEEN '$D1' AND '$D4'")" "$n_all" "newer deliveries kept"
assert_eq "$(sql "PRAGMA foreign_key_check")" "" "foreign keys after purge"
assert_eq "$(jget "$(cat "$WORK/purge.json")" deleted assignments)" "$((2 * n_adv))" "old days' assignments deleted"
assert_eq "$(sql "SELECT COUNT(*) FROM assignments WHERE date < '$D1'")" "0" "no assignment of an old day left"
assert_eq "$(sql "SELECT COUNT(*) FROM assignments WHERE date >= '$D1'")" "$n_recent_asg" "recent assignments kept"
assert_eq "$(sql "SELECT COUNT(*) FROM audit_log WHERE target = 'assignments:$OLD'")" "1" "assignment purge audited"
sql "INSERT INTO assignments(advisor_id, date, content_id, source, created_at) SELECT advisor_id, '2026-01-06', '$c_other', 'fallback', 0 FROM advisors"
# archive: NDJSON first, then delete
sql "INSERT INTO runs(date, slot_at, window_start, window_end, deadline_at, state) VALUES ('2026-01-06', 1767661200000, 1767661170000, 1767661470000, 1767661500000, 'closed')"
arch_run=$(sql "SELECT run_id FROM runs WHERE date='2026-01-06'")
sql "INSERT INTO deliveries(run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, state, channel, sender, planned_at, deadline_at, updated_at, order_key)
     VALUES ($arch_run, '$adv1', '2026-01-06', 1767661200000, '$c_other', 'editorial', 'gold', 1, 'accepted', 'whatsapp', 'wa-1', 1767661200000, 1767661500000, 0, 0)"
mkdir -p "$WORK/archive"
expect_rc 2 "$OP" retention archive --older-than 30;  expect_err "archive-dir is required"
"$OP" retention archive --older-than 30 --archive-dir "$WORK/archive" --json >"$WORK/archive.json"
f="$WORK/archive/run-$arch_run-2026-01-06.ndjson"
[ -s "$f" ] || fail "no archive file $f"
assert_eq "$(grep -c '"table":"deliveries"' "$f")" "1" "archived deliveries"
assert_eq "$(grep -c '"table":"runs"' "$f")" "1" "archived run row"
assert_eq "$(sql "SELECT COUNT(*) FROM runs WHERE run_id=$arch_run")" "0" "archived run deleted"
assert_eq "$(grep -c '"table":"assignments"' "$WORK/archive/assignments-2026-01-06.ndjson")" "$n_adv" "archived assignments"
assert_eq "$(sql "SELECT COUNT(*) FROM assignments WHERE date = '2026-01-06'")" "0" "archived assignments deleted"
echo "ok 6: exports stream (csv, ndjson, reports; formula cells neutralised); purge of 100,000 deliveries in batches, status tables by age, old assignments (31 days kept); archive before delete"

# --- status ---------------------------------------------------------------------------------
"$OP" status --json >"$WORK/status.json"
assert_eq "$(jget "$(cat "$WORK/status.json")" dead_letters)" "$(sql "SELECT COUNT(*) FROM deliveries WHERE state='dead' AND dismissed_at IS NULL")" "status dead letters"
assert_eq "$(jget "$(cat "$WORK/status.json")" next_steps 1 step)" "dispatch" "status next steps"
DAYBREAK_CLOCK=$(clock_at "2026-12-12T21:00:00+05:30" 1) "$OP" status --json >"$WORK/status2.json"
assert_eq "$(jget "$(cat "$WORK/status2.json")" next_steps 0 at)" "2026-12-12T21:30:00+05:30" "next nightly step from the injected clock"
assert_eq "$(jget "$(cat "$WORK/status2.json")" next_day date)" "2026-12-13" "next delivery day"
assert_eq "$(jget "$(cat "$WORK/status2.json")" next_day planned)" "true" "next day planned"
"$OP" status >/dev/null
echo "ok 7: status"
