#!/usr/bin/env bash
# The advisors changes and `daybreak assign` on a PostgreSQL install ([database] url, with the
# host's planning file at path), against a PostgreSQL server started for the test:
#  1. PostgreSQL down: `advisors opt-out`, `advisors update` and `assign` exit 4 saying nothing
#     changed, and the planning file is exactly as before
#  2. with the day planned and published: opt-out of an advisor's only channel cancels its
#     pending delivery on PostgreSQL; a new email channel and an opt-out of WhatsApp moves
#     another's to email; a pause cancels a third's; `update --phone` changes the address there;
#     `assign` re-points a fourth's pending delivery there (source override); every change is in
#     both files' audit logs, and each changed delivery is noted in delivery_changes
#  3. a dispatch on PostgreSQL sends the day: none of the cancelled or moved deliveries gets a
#     WhatsApp request, the re-pointed one is accepted with the assigned item; `assign` of a
#     delivery already sent there is refused (exit 2), nothing changed in the file
#  4. an address changed in the file only (`--database`, as an import does) reaches PostgreSQL
#     with the next publish (`plan-deliveries` again): the advisor row is brought up to date
#  5. against a running dispatch on PostgreSQL (paused mid-run with `daybreak pause`): an opt-out
#     of an advisor's only channel, a move to email and an assign each return with
#     dispatch_confirmed; after the resume the opted-out and moved deliveries get no WhatsApp
#     request and the assigned one goes out with its new item, each delivery at most once
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/json.sh"
require_test_pg
D=2026-12-11
N=${PG_ADV_N:-40}

start_test_pg
trap 'rc=$?; set +e; kill "${pid:-}" 2>/dev/null; stop_pg; (exit $rc); cleanup' EXIT
restart_pg() {
  "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 30 \
    -o "-k $PGDIR -p $PGPORT_T -c listen_addresses='' -c fsync=off -c synchronous_commit=off" start >/dev/null 2>&1 ||
    { cat "$PGDIR/server.log" >&2; fail "pg_ctl start again"; }
}
expect_rc() {
  local want=$1; shift
  local rc=0
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" = "$want" ] || fail "$* exited $rc, expected $want; stderr: $(cat "$WORK/err")"
}
expect_err() { grep -q -- "$1" "$WORK/err" || fail "stderr does not say '$1': $(cat "$WORK/err")"; }

start_sim pgadv --mps 200 --time-scale 10 --seed 4 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
# This host's configuration: its planning file beside the ledger's url.
python3 - "$WORK/daybreak.toml" "$WORK/pg.toml" "$URL" "$WORK/host.db" <<'PY'
import re, sys
src, dst, url, host_db = sys.argv[1:]
open(dst, "w").write(re.sub(r'(?m)^path = ".*"$', lambda m: 'path = "%s"\nurl = "%s"' % (host_db, url), open(src).read(), count=1))
PY
export DAYBREAK_CONFIG=$WORK/pg.toml
DB=$WORK/host.db
seed_day "$N" "$D"   # plan-deliveries with url publishes the day
run=$(pg "SELECT run_id FROM runs WHERE date='$D'")
[ -n "$run" ] || fail "the day was not published"
mapfile -t adv < <(sql "SELECT advisor_id FROM deliveries WHERE date='$D' ORDER BY planned_at DESC, advisor_id LIMIT 5")
a_out=${adv[0]}; a_move=${adv[1]}; a_pause=${adv[2]}; a_phone=${adv[3]}; a_assign=${adv[4]}
pgd() { pg "SELECT $2 FROM deliveries WHERE date='$D' AND advisor_id='$1'"; }
c_now=$(pgd "$a_assign" content_id)
c_other=$(sql "SELECT content_id FROM content WHERE content_id <> '$c_now'
  AND language=(SELECT language FROM advisors WHERE advisor_id='$a_assign') AND withdrawn_at IS NULL
  AND (valid_until='' OR valid_until >= '$D') AND (valid_from='' OR valid_from <= '$D') LIMIT 1")
[ -n "$c_other" ] || fail "no second content item to assign"

# --- 1. PostgreSQL down: nothing written anywhere -----------------------------------------------
snapshot() {
  sql "SELECT * FROM advisors ORDER BY 1; SELECT * FROM advisor_channels ORDER BY 1, 2; SELECT * FROM assignments ORDER BY 1, 2;
    SELECT * FROM deliveries ORDER BY 1; SELECT * FROM audit_log; SELECT * FROM delivery_changes" | md5sum
}
s0=$(snapshot)
# The server runs with synchronous_commit off and stops immediately: a checkpoint first, or the
# publish's last commit may be lost with the stop.
pg "CHECKPOINT"
stop_pg
expect_rc 4 "$OP" advisors opt-out "$a_out" --channel whatsapp --reason "e2e: down"; expect_err "nothing changed"
expect_rc 4 "$OP" advisors update "$a_phone" --phone +919800000001 --reason "e2e: down"; expect_err "PostgreSQL"
expect_rc 4 "$OP" assign --advisor "$a_assign" --date "$D" --content "$c_other" --reason "e2e: down"; expect_err "nothing changed"
assert_eq "$(snapshot)" "$s0" "planning file after commands with PostgreSQL down"
restart_pg
echo "ok 1: PostgreSQL down: exit 4, nothing changed in the planning file"

# --- 2. the changes reach PostgreSQL's pending deliveries ----------------------------------------
audit0=$(pg "SELECT COUNT(*) FROM audit_log")
changes0=$(pg "SELECT COUNT(*) FROM delivery_changes")
"$OP" advisors opt-out "$a_out" --channel whatsapp --reason "e2e: opted out" --json >"$WORK/o1.json" || fail "opt-out exited $?"
assert_eq "$(json 'j["ledger"]' <"$WORK/o1.json")" "postgresql" "opt-out: ledger"
assert_eq "$(pgd "$a_out" state)" "cancelled" "the opted-out advisor's delivery on PostgreSQL"
assert_eq "$(json 'len(j["postgresql"]["deliveries_cancelled_unreachable"])' <"$WORK/o1.json")" "1" "opt-out: cancelled there"
assert_eq "$(pg "SELECT opted_in FROM advisor_channels WHERE advisor_id='$a_out' AND channel='whatsapp'")" "0" "opt-out on PostgreSQL"
assert_eq "$(sql "SELECT opted_in FROM advisor_channels WHERE advisor_id='$a_out' AND channel='whatsapp'")" "0" "opt-out in the file"

"$OP" advisors update "$a_move" --channels "whatsapp|email" --email "move@example.test" --reason "e2e: email too" >/dev/null ||
  fail "update --channels exited $?"
assert_eq "$(pg "SELECT address FROM advisor_channels WHERE advisor_id='$a_move' AND channel='email'")" "move@example.test" "email row on PostgreSQL"
"$OP" advisors opt-out "$a_move" --channel whatsapp --reason "e2e: email only" >"$WORK/o2.txt" || fail "opt-out exited $?"
grep -q "moved to another opted-in channel" "$WORK/o2.txt" || fail "opt-out output: $(cat "$WORK/o2.txt")"
assert_eq "$(pgd "$a_move" "state || ' ' || channel || ' ' || channel_index")" "planned email 1" "moved delivery on PostgreSQL"

"$OP" advisors pause "$a_pause" --from "$D" --until "$D" --reason "e2e: on leave" >/dev/null || fail "pause exited $?"
assert_eq "$(pgd "$a_pause" state)" "cancelled" "the paused advisor's delivery on PostgreSQL"
assert_eq "$(pg "SELECT paused_from || '..' || paused_until FROM advisors WHERE advisor_id='$a_pause'")" "$D..$D" "absence on PostgreSQL"

"$OP" advisors update "$a_phone" --phone +919800000002 --reason "e2e: new phone" >/dev/null || fail "update --phone exited $?"
assert_eq "$(pg "SELECT address FROM advisor_channels WHERE advisor_id='$a_phone' AND channel='whatsapp'")" "+919800000002" "phone on PostgreSQL"
assert_eq "$(pgd "$a_phone" state)" "planned" "the re-addressed advisor's delivery stays planned"

"$OP" assign --advisor "$a_assign" --date "$D" --content "$c_other" --reason "e2e: better item" --json >"$WORK/as.json" ||
  fail "assign exited $?"
assert_eq "$(pgd "$a_assign" "content_id || ' ' || source")" "$c_other override" "re-pointed delivery on PostgreSQL"
assert_eq "$(json 'j["delivery_id"]' <"$WORK/as.json")" "$(pgd "$a_assign" delivery_id)" "assign names PostgreSQL's delivery"
assert_eq "$(pg "SELECT content_id || ' ' || source FROM assignments WHERE advisor_id='$a_assign' AND date='$D'")" "$c_other override" \
  "assignment on PostgreSQL"
assert_eq "$(sql "SELECT content_id FROM assignments WHERE advisor_id='$a_assign' AND date='$D'")" "$c_other" "assignment in the file"

assert_eq "$(( $(pg "SELECT COUNT(*) FROM audit_log") - audit0 ))" "6" "audit rows on PostgreSQL"
assert_eq "$(sql "SELECT COUNT(*) FROM audit_log WHERE reason LIKE 'e2e:%'")" "6" "audit rows in the file"
for a in "$a_out" "$a_move" "$a_pause" "$a_phone" "$a_assign"; do
  id=$(pgd "$a" delivery_id)
  [ "$(pg "SELECT COUNT(*) FROM delivery_changes WHERE delivery_id=$id AND seq > 0")" -ge 1 ] || fail "no delivery_changes note for $id ($a)"
done
[ "$(pg "SELECT COUNT(*) FROM delivery_changes")" -gt "$changes0" ] || fail "no delivery_changes notes"
echo "ok 2: opt-out, channels, pause, phone and assign changed both ledgers, PostgreSQL's pending deliveries followed"

# --- 3. a dispatch on PostgreSQL sends what is left, nothing that should not be ------------------
DAYBREAK_CLOCK=$(clock_at "${D}T05:59:28+05:30" 10) "$DISPATCH" --run "$run" --json >"$WORK/d.json" 2>"$WORK/d.log" ||
  true
[ "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('planned','sending','retry_wait','uncertain')")" = 0 ] ||
  fail "rows left open after dispatch: $(tail -5 "$WORK/d.log")"
stats=$(sim_stats)
for a in "$a_out" "$a_move" "$a_pause"; do
  id=$(pgd "$a" delivery_id)
  got=$(echo "$stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['by_callback_data'].get('$id', 0))")
  assert_eq "$got" "0" "WhatsApp requests for delivery $id of $a"
done
assert_eq "$(pgd "$a_out" state)" "cancelled" "opted-out delivery after dispatch"
[ "$(pgd "$a_move" channel)" = "email" ] || fail "the moved delivery went back to WhatsApp"
assert_eq "$(pgd "$a_assign" "state || ' ' || content_id")" "accepted $c_other" "the re-pointed delivery"
assert_eq "$(pgd "$a_phone" state)" "accepted" "the re-addressed delivery"
s1=$(snapshot)
expect_rc 2 "$OP" assign --advisor "$a_phone" --date "$D" --content "$c_other" --reason "e2e: too late"; expect_err "PostgreSQL ledger is already accepted"
assert_eq "$(snapshot)" "$s1" "planning file after a refused assign"
echo "ok 3: dispatch on PostgreSQL sent no cancelled or moved delivery on WhatsApp, the assigned item went out"

# --- 4. a publish brings a changed advisor up to date --------------------------------------------
a_re=$(sql "SELECT advisor_id FROM deliveries WHERE date='$D' ORDER BY planned_at, advisor_id LIMIT 1")
"$OP" --database "$DB" advisors update "$a_re" --phone +919800000003 --reason "e2e: file only" >/dev/null || fail "update --database exited $?"
[ "$(pg "SELECT address FROM advisor_channels WHERE advisor_id='$a_re' AND channel='whatsapp'")" != "+919800000003" ] ||
  fail "--database reached PostgreSQL"
# (exit 1: the advisor moved to email is unreachable, no email sender is configured; the
# publish is what counts here)
rc=0
DAYBREAK_CLOCK="$(date -d "$D -1 day" +%F)T21:45:00+05:30@$(now_ms)*1" "$PLAN" --date "$D" --json >"$WORK/p2.json" || rc=$?
[ "$rc" -le 1 ] || fail "re-plan exited $rc"
assert_eq "$(json 'j["published"]["status"]' <"$WORK/p2.json")" "published" "re-plan published"
assert_eq "$(pg "SELECT address FROM advisor_channels WHERE advisor_id='$a_re' AND channel='whatsapp'")" "+919800000003" "phone after the publish"
[ "$(json 'j["published"]["updated"]["advisor_channels"]' <"$WORK/p2.json")" -ge 1 ] || fail "publish: $(cat "$WORK/p2.json")"
assert_eq "$(pgd "$a_out" state)" "cancelled" "a publish leaves PostgreSQL's deliveries as they are"
echo "ok 4: a re-plan published the changed advisor"

# --- 5. against a running dispatch on PostgreSQL ------------------------------------------------
D2=2026-12-12
N2=${PG_ADV_N2:-300}
SCALE=10
sed -i 's/^mps = 80$/mps = 5/' "$WORK/pg.toml"
seed_day "$N2" "$D2"
run2=$(pg "SELECT run_id FROM runs WHERE date='$D2'")
[ -n "$run2" ] || fail "$D2 was not published"
clock="${D2}T05:59:28+05:30@$(now_ms)*${SCALE}"
op() { DAYBREAK_CLOCK=$clock "$OP" "$@"; }
requests() { sim_stats | json 'j["requests"]'; }
r0=$(requests)
DAYBREAK_CLOCK=$clock "$DISPATCH" --run "$run2" --json >"$WORK/d2.json" 2>"$WORK/d2.log" &
pid=$!
for _ in $(seq 1 300); do [ $(( $(requests) - r0 )) -gt 20 ] && break; sleep 0.05; done
[ $(( $(requests) - r0 )) -gt 20 ] || { tail -5 "$WORK/d2.log" >&2; fail "dispatch on PostgreSQL did not start sending $D2"; }
op pause --reason "e2e: hold while the advisors change" >/dev/null || fail "pause exited $?"
sleep 1
used="'$a_out','$a_move','$a_pause','$a_phone','$a_assign','$a_re'"
mapfile -t late < <(pg "SELECT advisor_id FROM deliveries WHERE run_id=$run2 AND state='planned' AND advisor_id NOT IN ($used)
  ORDER BY planned_at DESC, advisor_id LIMIT 3")
[ "${#late[@]}" = 3 ] || fail "fewer than 3 planned deliveries left after the pause"
x_out=${late[0]}; x_move=${late[1]}; x_assign=${late[2]}
pgd2() { pg "SELECT $2 FROM deliveries WHERE date='$D2' AND advisor_id='$1'"; }
op advisors opt-out "$x_out" --channel whatsapp --reason "e2e: mid-run opt-out" --json >"$WORK/m1.json" || fail "mid-run opt-out exited $?"
assert_eq "$(json 'j["postgresql"]["deliveries_cancelled_unreachable"], j["postgresql"]["dispatch_confirmed"]' <"$WORK/m1.json")" \
  "[$(pgd2 "$x_out" delivery_id)] True" "mid-run opt-out on PostgreSQL"
op advisors update "$x_move" --channels "whatsapp|email" --email "x@example.test" --reason "e2e: mid-run email" >/dev/null ||
  fail "mid-run update exited $?"
op advisors opt-out "$x_move" --channel whatsapp --reason "e2e: mid-run email only" --json >"$WORK/m2.json" || fail "mid-run opt-out exited $?"
assert_eq "$(json 'j["postgresql"]["deliveries_moved"], j["postgresql"]["dispatch_confirmed"]' <"$WORK/m2.json")" \
  "[$(pgd2 "$x_move" delivery_id)] True" "mid-run move on PostgreSQL"
c2_now=$(pgd2 "$x_assign" content_id)
c2=$(sql "SELECT content_id FROM content WHERE content_id <> '$c2_now'
  AND language=(SELECT language FROM advisors WHERE advisor_id='$x_assign') AND withdrawn_at IS NULL
  AND (valid_until='' OR valid_until >= '$D2') AND (valid_from='' OR valid_from <= '$D2') LIMIT 1")
op assign --advisor "$x_assign" --date "$D2" --content "$c2" --reason "e2e: mid-run assign" --json >"$WORK/m3.json" || fail "mid-run assign exited $?"
assert_eq "$(json 'j["dispatch_confirmed"]' <"$WORK/m3.json")" "True" "mid-run assign confirmed by the dispatch"
op resume --reason "e2e: go on" >/dev/null || fail "resume exited $?"
wait "$pid" || true
pid=""
[ "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run2 AND state IN ('planned','sending','retry_wait','uncertain')")" = 0 ] ||
  fail "rows of $D2 left open: $(tail -5 "$WORK/d2.log")"
stats=$(sim_stats)
for a in "$x_out" "$x_move"; do
  id=$(pgd2 "$a" delivery_id)
  got=$(echo "$stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['by_callback_data'].get('$id', 0))")
  assert_eq "$got" "0" "WhatsApp requests for delivery $id of $a after the change"
done
assert_eq "$(pgd2 "$x_out" state)" "cancelled" "the opted-out delivery of $D2"
assert_eq "$(pgd2 "$x_assign" "state || ' ' || content_id")" "accepted $c2" "the delivery assigned mid-run"
echo "$stats" | python3 -c "
import json,sys; j=json.load(sys.stdin)['by_callback_data']
dup=[k for k, v in j.items() if v > 1]
assert not dup, 'sent twice: %s' % dup[:5]" || fail "a delivery was sent twice"
echo "ok 5: a running dispatch reloaded the changes: no send to the opted-out or moved advisors, the assigned item went out"
