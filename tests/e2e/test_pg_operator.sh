#!/usr/bin/env bash
# The operator's write commands reach a dispatch on the PostgreSQL ledger ([database] url):
#  1. a day planned with the SQLite tools is copied into a PostgreSQL server started for the test
#     (as test_pg_two_hosts.sh does) and dispatched from there against the simulator
#  2. mid-run `daybreak pause` (with the url) stops every send within a second: the simulator
#     sees no new request from a second after the pause to three seconds after it, and the
#     ledger no new first send; `daybreak resume` (after 2b and 3) lets the run go on
#  2b. while paused: `daybreak resend` of an accepted delivery (the running dispatch reloads it
#     through delivery_changes and sends it again after the resume) and `daybreak content replace`
#     of another item with unsent rows: its pending rows follow the substitute, the ones dispatch
#     had claimed are held by its content guard before the command returns (dispatch_confirmed),
#     and none of the item's deliveries gets a request that starts after the command returned
#  3. `daybreak content withdraw` of the item with the most deliveries still to send, mid-run
#     (while paused):
#     every pending delivery of it is held at once (no emergency item exists), those dispatch had
#     claimed are stopped by its content guard before the command returns, and none of its
#     deliveries gets a request that starts after the command returned
#  4. the run closes with every row final; the dispatch's monitoring raised content_held for the
#     pulled item in this host's SQLite file; `daybreak audit` (reading PostgreSQL) names the
#     operator for the pause, the resume, the resend, the replacement and the withdrawal; the held
#     rows are listed and dismissed with `daybreak dead` on PostgreSQL
#  5. `daybreak resend` after the close reopens the run and the next dispatch on PostgreSQL sends
#     the row again and closes it; each close stored the run's report in PostgreSQL (run_reports:
#     one row, the second close's replacing the first's, its counts psql's, its SLA % the one
#     dispatch --json gave and decided its exit code by); `daybreak export deliveries|attempts|
#     reports` stream PostgreSQL's rows (CSV and NDJSON), the stored report among them
# Scale: PG_OP_N advisors (default 1500) on one sender of 20 messages per second under a 10×
# clock: about 8 s of sending.
source "$(dirname "$0")/common.sh"
require_test_pg
D=2026-12-11
N=${PG_OP_N:-1500}
SCALE=10

# --- PostgreSQL for the test, run as an unprivileged user ---
start_test_pg
# On exit: the dispatch and the server stopped; cleanup keeps the work directory of a failure
# (set +e first: under errexit the `(exit $rc)` would end the trap before cleanup).
trap 'rc=$?; set +e; kill "${pid:-}" 2>/dev/null; stop_pg; (exit $rc); cleanup' EXIT

# --- the day, planned with SQLite, with no emergency item (a pulled item's rows are held) ---
start_sim pgop --mps 100 --time-scale $SCALE --seed 9 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
sed -i 's/^mps = 80$/mps = 20/' "$WORK/daybreak.toml"
seed_day "$N" "$D"
sql "UPDATE content SET emergency = 0"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
"$OP" migrate-ledger --from "sqlite:$DB" --to "$URL" --date "$D" >/dev/null
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='planned'")" "$n" "deliveries copied to PostgreSQL"

# (this host's own SQLite file, where dispatch keeps its alerts, in the work directory)
python3 - "$WORK/daybreak.toml" "$WORK/pg.toml" "$URL" "$WORK/host.db" <<'PY'
import re, sys
src, dst, url, host_db = sys.argv[1:]
open(dst, "w").write(re.sub(r'(?m)^path = ".*"$', lambda m: 'path = "%s"\nurl = "%s"' % (host_db, url), open(src).read(), count=1))
PY
export DAYBREAK_CONFIG=$WORK/pg.toml
sql_before=$(sql "SELECT COUNT(*) FROM controls")
T_SIM0_MS=$(date -d "${D}T05:59:25+05:30" +%s%3N)
T_REAL0_MS=$(now_ms)
clock="${D}T05:59:25+05:30@${T_REAL0_MS}*${SCALE}"
sim_now() { echo $((T_SIM0_MS + ($(now_ms) - T_REAL0_MS) * SCALE)); }  # the dispatch's clock, now
op() { DAYBREAK_CLOCK=$clock "$OP" "$@"; }
requests() { sim_stats | json 'j["requests"]'; }
first_sends() { pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND first_sent_at IS NOT NULL"; }
# check_closed_report RC JSON WHAT: dispatch closed the run and stored its report once, for this
# close (written by host-a), its eligible and on time psql's; dispatch --json gave its SLA %,
# and exited 1 only for an SLA below 99 (held rows are dead, not on time), as on SQLite
check_closed_report() {
  local rc=$1 out=$2 what=$3
  assert_eq "$(pg "SELECT COUNT(*) FROM run_reports")" "1" "$what: stored run reports"
  assert_eq "$(pg "SELECT COUNT(*) FROM run_reports s JOIN runs r USING (run_id) WHERE s.run_id=$run AND r.state='closed'
    AND s.closed_at = r.finished_at AND s.written_by LIKE 'host-a:%'")" "1" "$what: the report is for this close"
  pg "SELECT report FROM run_reports WHERE run_id=$run" >"$WORK/stored.json"
  local eligible on_time
  eligible=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state <> 'cancelled'")
  on_time=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('accepted','delivered','read') AND accepted_at <= deadline_at")
  assert_eq "$(json 'j["eligible"], j["on_time"], j["closed"]' <"$WORK/stored.json")" "$eligible $on_time True" "$what: stored counts against psql"
  python3 - "$out" "$WORK/stored.json" "$run" "$rc" <<'PY' || fail "$what: dispatch --json and its exit code against the stored report"
import json, sys
out, stored, run, rc = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3]), int(sys.argv[4])
r = [x for x in out["runs"] if x["run_id"] == run][0]
assert (r["sla_pct"], r["eligible"], r["on_time"]) == (stored["sla_pct"], stored["eligible"], stored["on_time"]), (r, stored["sla_pct"])
assert rc == (1 if stored["sla_pct"] < 99 else 0), (rc, stored["sla_pct"])
PY
}

DAYBREAK_HOST_ID=host-a DAYBREAK_CLOCK=$clock "$DISPATCH" --run "$run" --json >"$WORK/d.json" 2>"$WORK/d.log" &
pid=$!
for _ in $(seq 1 300); do [ "$(requests)" -gt 150 ] && break; sleep 0.05; done
[ "$(requests)" -gt 150 ] || { tail -5 "$WORK/d.log" >&2; fail "dispatch on PostgreSQL did not start sending"; }

# --- 2. pause, then resume ---
op pause --reason "e2e: provider incident" --json >"$WORK/pause.json" || fail "daybreak pause on PostgreSQL exited $?"
assert_eq "$(json 'j["key"]' <"$WORK/pause.json")" "pause" "pause key"
assert_eq "$(pg "SELECT value FROM controls WHERE key='pause'")" "1" "the pause switch on PostgreSQL"
assert_eq "$(sql "SELECT COUNT(*) FROM controls")" "$sql_before" "controls rows written to the SQLite file"
sleep 1
r1=$(requests)
f1=$(first_sends)
t1=$(sim_now)
[ "$f1" -lt "$n" ] || fail "the run finished before its pause; nothing was tested"
sleep 2
assert_eq "$(requests)" "$r1" "requests at the simulator from 1 s to 3 s after the pause"
assert_eq "$(first_sends)" "$f1" "first sends in the ledger from 1 s to 3 s after the pause"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND first_sent_at > $t1")" "0" "first sends after the pause took hold"
# --- 2b. while paused: a resend and a replacement ---
d_mid=$(pg "SELECT MIN(delivery_id) FROM deliveries WHERE run_id=$run AND state='accepted'")
[ -n "$d_mid" ] || fail "no accepted delivery to resend"
op resend --delivery "$d_mid" --reason "e2e: advisor lost it" --json >"$WORK/resend.json" || fail "daybreak resend on PostgreSQL exited $?"
assert_eq "$(json 'j["before"], j["state"], j["run_reopened"]' <"$WORK/resend.json")" "accepted planned False" "resend mid-run"
assert_eq "$(pg "SELECT state FROM deliveries WHERE delivery_id=$d_mid")" "planned" "the resent row on PostgreSQL"
assert_eq "$(pg "SELECT COUNT(*) FROM delivery_changes WHERE delivery_id=$d_mid AND kind='resend'")" "1" "the resend's note for the dispatch"
# the item with the most rows not sent yet (not the resent row's), and a substitute in its language
item2=$(pg "SELECT content_id FROM deliveries WHERE run_id=$run AND state IN ('planned','sending') AND first_sent_at IS NULL
  AND content_id <> (SELECT content_id FROM deliveries WHERE delivery_id=$d_mid) GROUP BY content_id ORDER BY COUNT(*) DESC, content_id LIMIT 1")
[ -n "$item2" ] || fail "no item with deliveries left to send for the replacement"
rep=$(pg "SELECT c.content_id FROM content c WHERE c.language=(SELECT language FROM content WHERE content_id='$item2')
  AND c.content_id <> '$item2' AND c.withdrawn_at IS NULL AND (c.valid_from='' OR c.valid_from <= '$D')
  AND (c.valid_until='' OR c.valid_until >= '$D') ORDER BY c.content_id LIMIT 1")
[ -n "$rep" ] || fail "no substitute for $item2"
rc=0
op content replace "$item2" --with "$rep" --reason "e2e: wrong figures" --json >"$WORK/replace.json" 2>"$WORK/replace.err" || rc=$?
t_rep=$(sim_now)
assert_eq "$rc" "0" "content replace on PostgreSQL exit status ($(cat "$WORK/replace.err"))"
[ "$(json 'j["dispatch_confirmed"]' <"$WORK/replace.json")" != "False" ] || fail "the dispatch did not confirm the replacement: $(cat "$WORK/replace.json")"
assert_eq "$(json 'j["ledger"]' <"$WORK/replace.json")" "postgresql" "content replace: ledger"
repointed=$(json 'j["deliveries_repointed"]' <"$WORK/replace.json")
rep_in_flight=$(json 'j["deliveries_in_flight"]' <"$WORK/replace.json")
[ $((repointed + rep_in_flight)) -gt 0 ] || fail "nothing of $item2 was pending or in flight at the replacement ($(cat "$WORK/replace.json"))"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND content_id='$item2' AND state IN ('planned','retry_wait')")" "0" \
  "pending deliveries left on the replaced item"
assert_eq "$(pg "SELECT COUNT(*) FROM assignments WHERE date='$D' AND content_id='$item2'")" "0" "assignments left on the replaced item"
assert_eq "$(sql "SELECT COUNT(*) FROM content WHERE content_id='$item2' AND withdrawn_at IS NOT NULL")" "0" "the SQLite file after the replacement"

# --- 3. a compliance pull mid-run, still paused (on a loaded machine the rest of the run could
# be sent before the pull otherwise) ---
# the item with the most deliveries not sent yet: planned, or claimed (after a long pause every
# row is due and dispatch may have claimed all of them: then its content guard must stop them)
# (not the replaced item, its substitute or the resent row's: their rows are checked below)
item=$(pg "SELECT content_id FROM deliveries WHERE run_id=$run AND state IN ('planned','sending') AND first_sent_at IS NULL
  AND content_id NOT IN ('$item2', '$rep', (SELECT content_id FROM deliveries WHERE delivery_id=$d_mid))
  GROUP BY content_id ORDER BY COUNT(*) DESC, content_id LIMIT 1")
[ -n "$item" ] || fail "no item with deliveries left to send"
sent_before=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND content_id='$item' AND first_sent_at IS NOT NULL")
seq0=$(pg "SELECT COALESCE(MAX(seq), 0) FROM delivery_changes")
rc=0
op content withdraw "$item" --reason "e2e: misleading claim" --json >"$WORK/w.json" 2>"$WORK/w.err" || rc=$?
t_ret=$(sim_now)
# 1: held rows reported (with the report on standard output)
{ [ "$rc" -eq 0 ] || [ "$rc" -eq 1 ]; } && [ -s "$WORK/w.json" ] || fail "content withdraw on PostgreSQL exited $rc: $(cat "$WORK/w.err")"
held=$(json 'j["deliveries_held"]' <"$WORK/w.json")
[ "$(json 'j["dispatch_confirmed"]' <"$WORK/w.json")" != "False" ] || fail "the dispatch did not confirm the pull: $(cat "$WORK/w.json")"
in_flight=$(json 'j["deliveries_in_flight"]' <"$WORK/w.json")
[ $((held + in_flight)) -gt 0 ] || fail "nothing of $item was pending or in flight at the pull ($(cat "$WORK/w.json"))"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND content_id='$item' AND state IN ('planned','retry_wait')")" "0" \
  "pending deliveries left on the pulled item"
assert_eq "$(pg "SELECT COUNT(*) FROM delivery_changes WHERE run_id=$run AND kind='withdraw' AND seq > $seq0")" "$held" "withdraw notes for the dispatch"

# --- the pause ends: the run goes on without the pulled item ---
op resume --reason "e2e: incident over" >/dev/null || fail "daybreak resume on PostgreSQL exited $?"
for _ in $(seq 1 100); do [ "$(requests)" -gt "$r1" ] && break; sleep 0.05; done
[ "$(requests)" -gt "$r1" ] || fail "sending did not resume within 5 s of daybreak resume"
rc=0
wait "$pid" || rc=$?
[ "$rc" -le 1 ] || fail "dispatch exited $rc: $(tail -3 "$WORK/d.log")"

# --- 4. the run closed, nothing of the item sent after the pull, audited ---
assert_eq "$(pg "SELECT state FROM runs WHERE run_id=$run")" "closed" "run state"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('planned','sending','retry_wait','uncertain')")" "0" \
  "non-final rows in the closed run"
check_closed_report "$rc" "$WORK/d.json" "the first close"
closed1=$(pg "SELECT closed_at FROM run_reports WHERE run_id=$run")
assert_eq "$(pg "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run
  AND d.content_id='$item' AND a.started_at > $t_ret")" "0" "requests for the pulled item started after the command returned"
# every delivery of the item was either sent before the pull returned or is held (the pull held
# the pending ones; the dispatch's content guard the claimed ones it had not sent yet)
held_all=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND content_id='$item' AND state='dead' AND last_error LIKE 'held: %'")
[ "$held_all" -ge "$held" ] || fail "held deliveries of the pulled item: $held_all < $held held by the pull"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries d WHERE run_id=$run AND content_id='$item' AND NOT (state='dead' AND last_error LIKE 'held: %')
  AND NOT EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id=d.delivery_id AND a.started_at <= $t_ret)")" "0" \
  "deliveries of the pulled item neither sent before the pull nor held"
# the resent row was sent again by the running dispatch (its note reloaded it); no other twice
assert_eq "$(pg "SELECT state, attempts, resent_at IS NOT NULL FROM deliveries WHERE delivery_id=$d_mid")" "accepted|2|t" "the row resent mid-run"
assert_eq "$(sim_stats | json 'j["by_callback_data"].get("'"$d_mid"'")')" "2" "acceptances of the resent delivery"
assert_eq "$(sim_stats | json 'max(v for k, v in j["by_callback_data"].items() if k != "'"$d_mid"'")')" "1" "most acceptances of one other delivery"
# the replaced item: nothing of it started after the command returned; every row of it either
# reached the provider before or was held; the rows re-pointed went out with the substitute
assert_eq "$(pg "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run
  AND d.content_id='$item2' AND a.started_at > $t_rep")" "0" "requests for the replaced item started after the command returned"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries d WHERE run_id=$run AND content_id='$item2' AND NOT (state='dead' AND last_error LIKE 'held: %')
  AND NOT EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id=d.delivery_id AND a.started_at <= $t_rep)")" "0" \
  "deliveries of the replaced item neither sent before the replacement nor held"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND content_id='$rep' AND source='override' AND state='accepted'")" "$repointed" \
  "re-pointed deliveries accepted with the substitute"

# the dispatch's monitoring read the held rows on PostgreSQL: content_held on this host's file
[ "$held_all" -eq 0 ] ||
  assert_eq "$(sqlite3 "$WORK/host.db" "SELECT COUNT(*) FROM alerts WHERE rule='content_held' AND subject='content:$item'")" "1" \
    "content_held for the pulled item in this host's file"
me=$(id -un)
op audit --json >"$WORK/audit.ndjson" || fail "daybreak audit on PostgreSQL exited $?"
for target in control:pause "$item"; do
  grep -q "\"target\":\"$target\"" "$WORK/audit.ndjson" || fail "daybreak audit has no row for $target: $(cat "$WORK/audit.ndjson")"
done
assert_eq "$(pg "SELECT COUNT(*) FROM audit_log WHERE target='control:pause' AND actor='$me' AND reason LIKE 'e2e: %'")" "2" \
  "audit rows of the pause and the resume"
assert_eq "$(pg "SELECT COUNT(*) FROM audit_log WHERE target='$item' AND actor='$me' AND reason='e2e: misleading claim'")" "2" \
  "audit rows of the withdrawal"
assert_eq "$(pg "SELECT COUNT(*) FROM audit_log WHERE target='delivery:$d_mid' AND actor='$me' AND reason='e2e: advisor lost it'")" "1" \
  "audit row of the resend"
assert_eq "$(pg "SELECT COUNT(*) FROM audit_log WHERE target='content:$item2' AND actor='$me' AND reason='e2e: wrong figures'")" "1" \
  "audit row of the replacement"
assert_eq "$(sql "SELECT COUNT(*) FROM audit_log WHERE reason LIKE 'e2e: %'")" "0" "audit rows written to the SQLite file"

# the held rows are dead letters on PostgreSQL: listed and dismissed there, audited
# (of both items: the replaced one's claimed rows were held by the dispatch's content guard)
held_run=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='dead' AND last_error LIKE 'held: %'")
assert_eq "$(op dead list --error held --json | grep -c '"delivery_id"')" "$held_run" "daybreak dead list --error held"
op dead dismiss --error held --reason "e2e: pulled on purpose" >/dev/null || fail "daybreak dead dismiss on PostgreSQL exited $?"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE dismissed_by='$me'")" "$held_run" "dismissed dead letters"
assert_eq "$(pg "SELECT COUNT(*) FROM audit_log WHERE reason='e2e: pulled on purpose' AND actor='$me'")" "$held_run" "audit rows of the dismissal"

# --- 5. a resend after the close: the run reopens and the next dispatch sends it ---
d1=$(pg "SELECT MIN(delivery_id) FROM deliveries WHERE run_id=$run AND state='accepted' AND delivery_id <> $d_mid
  AND content_id NOT IN ('$item', '$item2')")
op resend --delivery "$d1" --reason "e2e: resend after the close" --json >"$WORK/resend2.json" || fail "daybreak resend after the close exited $?"
assert_eq "$(json 'j["run_reopened"]' <"$WORK/resend2.json")" "True" "resend after the close: run reopened"
assert_eq "$(pg "SELECT state, reopened_at IS NOT NULL FROM runs WHERE run_id=$run")" "running|t" "the reopened run on PostgreSQL"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE delivery_id=$d1 AND resent_at IS NOT NULL")" "0" "the SQLite file after the resend"
assert_eq "$(pg "SELECT COUNT(*) FROM run_reports")" "1" "the reopened run keeps its report until it closes again"
rc=0
DAYBREAK_HOST_ID=host-a DAYBREAK_CLOCK=$clock "$DISPATCH" --run "$run" --json >"$WORK/d2.json" 2>"$WORK/d2.log" || rc=$?
[ "$rc" -le 1 ] || fail "the dispatch of the reopened run exited $rc: $(tail -3 "$WORK/d2.log")"
assert_eq "$(pg "SELECT state, attempts FROM deliveries WHERE delivery_id=$d1")" "accepted|2" "the row resent after the close"
assert_eq "$(pg "SELECT state FROM runs WHERE run_id=$run")" "closed" "run state after the reopened dispatch"
check_closed_report "$rc" "$WORK/d2.json" "the second close"
[ "$(pg "SELECT closed_at FROM run_reports WHERE run_id=$run")" -gt "$closed1" ] || fail "the second close did not replace the stored report"

# --- export: PostgreSQL's rows, the same columns as from SQLite ---
op export deliveries --from "$D" --to "$D" --format csv >"$WORK/deliveries.csv" || fail "export deliveries on PostgreSQL exited $?"
assert_eq "$(($(wc -l <"$WORK/deliveries.csv") - 1))" "$n" "exported deliveries (CSV)"
assert_eq "$(head -1 "$WORK/deliveries.csv")" "$(DAYBREAK_CONFIG=$WORK/daybreak.toml "$OP" export deliveries --from "$D" --to "$D" --format csv | head -1)" \
  "CSV header from PostgreSQL and from SQLite"
op export attempts --from "$D" --to "$D" >"$WORK/attempts.ndjson" || fail "export attempts on PostgreSQL exited $?"
assert_eq "$(wc -l <"$WORK/attempts.ndjson")" "$(pg "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.date='$D'")" \
  "exported attempts (NDJSON)"
assert_eq "$(grep -c "\"delivery_id\":$d1," "$WORK/attempts.ndjson")" "2" "exported attempts of the row resent after the close"
python3 - "$WORK/deliveries.csv" "$d1" <<'PY' || fail "the exported row of delivery $d1 is not PostgreSQL's"
import csv, sys
rows = {r["delivery_id"]: r for r in csv.DictReader(open(sys.argv[1]))}
r = rows[sys.argv[2]]
assert r["state"] == "accepted" and r["attempts"] == "2" and r["resent_at"] != "", r
PY
# the stored report, streamed from PostgreSQL (the SQLite file has none: it never saw the dispatch)
op export reports --from "$D" --to "$D" >"$WORK/reports.ndjson" || fail "export reports on PostgreSQL exited $?"
op export reports --from "$D" --to "$D" --format csv >"$WORK/reports.csv" || fail "export reports (CSV) on PostgreSQL exited $?"
assert_eq "$(head -1 "$WORK/reports.csv")" "run_id,date,slot_at,state,planned_count,generated_at,sla_pct,report" "CSV header of export reports"
assert_eq "$(DAYBREAK_CONFIG=$WORK/daybreak.toml "$OP" export reports --from "$D" --to "$D" | wc -l)" "0" "reports exported from the SQLite file"
python3 - "$WORK/reports.ndjson" "$WORK/stored.json" "$run" <<'PY' || fail "export reports does not stream PostgreSQL's stored report"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
stored, run = json.load(open(sys.argv[2])), int(sys.argv[3])
assert len(rows) == 1, rows
r = rows[0]
assert (r["run_id"], r["state"], r["sla_pct"]) == (run, "closed", stored["sla_pct"]), r
assert r["report"] == stored, "the report column is not the stored JSON"
PY
echo "ok: $n deliveries dispatched on PostgreSQL; paused at $f1 first sends (no request for 2 s); $d_mid resent and $item2 replaced by $rep while paused ($repointed re-pointed, $rep_in_flight in flight); resumed; $item pulled mid-run ($sent_before sent before, $held held by the pull, $in_flight in flight, $held_all held in all, none sent after); closed; audited as $me; $d1 resent after the close and sent by the next dispatch; its report stored at each close, one row; exported"
