#!/usr/bin/env bash
# The operator's write commands reach a dispatch on the PostgreSQL ledger ([database] url):
#  1. a day planned with the SQLite tools is copied into a PostgreSQL server started for the test
#     (as test_pg_two_hosts.sh does) and dispatched from there against the simulator
#  2. mid-run `daybreak pause` (with the url) stops every send within a second: the simulator
#     sees no new request from a second after the pause to three seconds after it, and the
#     ledger no new first send; `daybreak resume` lets the run go on
#  3. `daybreak content withdraw` of the item with the most deliveries still to send, mid-run:
#     every pending delivery of it is held at once (no emergency item exists), those dispatch had
#     claimed are stopped by its content guard before the command returns, and none of its
#     deliveries gets a request that starts after the command returned
#  4. the run closes with every row final; `daybreak audit` (reading PostgreSQL) names the
#     operator for the pause, the resume and the withdrawal; the held rows are listed and
#     dismissed with `daybreak dead` on PostgreSQL; a command that does not speak PostgreSQL
#     (`daybreak resend`) is refused with exit 3 while the url is set
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

python3 - "$WORK/daybreak.toml" "$WORK/pg.toml" "$URL" <<'PY'
import re, sys
src, dst, url = sys.argv[1:]
open(dst, "w").write(re.sub(r'(?m)^path = ".*"$', lambda m: 'url = "%s"' % url, open(src).read(), count=1))
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
op resume --reason "e2e: incident over" >/dev/null || fail "daybreak resume on PostgreSQL exited $?"
for _ in $(seq 1 100); do [ "$(requests)" -gt "$r1" ] && break; sleep 0.05; done
[ "$(requests)" -gt "$r1" ] || fail "sending did not resume within 5 s of daybreak resume"

# --- 3. a compliance pull mid-run ---
# the item with the most deliveries not sent yet: planned, or claimed (after a long pause every
# row is due and dispatch may have claimed all of them: then its content guard must stop them)
item=$(pg "SELECT content_id FROM deliveries WHERE run_id=$run AND state IN ('planned','sending') AND first_sent_at IS NULL
  GROUP BY content_id ORDER BY COUNT(*) DESC, content_id LIMIT 1")
[ -n "$item" ] || fail "no item with deliveries left to send"
sent_before=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND content_id='$item' AND first_sent_at IS NOT NULL")
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
assert_eq "$(pg "SELECT COUNT(*) FROM delivery_changes WHERE run_id=$run AND kind='withdraw'")" "$held" "withdraw notes for the dispatch"

wait "$pid" || fail "dispatch exited $?: $(tail -3 "$WORK/d.log")"

# --- 4. the run closed, nothing of the item sent after the pull, audited ---
assert_eq "$(pg "SELECT state FROM runs WHERE run_id=$run")" "closed" "run state"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('planned','sending','retry_wait','uncertain')")" "0" \
  "non-final rows in the closed run"
assert_eq "$(pg "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run
  AND d.content_id='$item' AND a.started_at > $t_ret")" "0" "requests for the pulled item started after the command returned"
# every delivery of the item was either sent before the pull returned or is held (the pull held
# the pending ones; the dispatch's content guard the claimed ones it had not sent yet)
held_all=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND content_id='$item' AND state='dead' AND last_error LIKE 'held: %'")
[ "$held_all" -ge "$held" ] || fail "held deliveries of the pulled item: $held_all < $held held by the pull"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries d WHERE run_id=$run AND content_id='$item' AND NOT (state='dead' AND last_error LIKE 'held: %')
  AND NOT EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id=d.delivery_id AND a.started_at <= $t_ret)")" "0" \
  "deliveries of the pulled item neither sent before the pull nor held"
assert_eq "$(sim_stats | json 'max(j["by_callback_data"].values())')" "1" "most acceptances of one delivery"

me=$(id -un)
op audit --json >"$WORK/audit.ndjson" || fail "daybreak audit on PostgreSQL exited $?"
for target in control:pause "$item"; do
  grep -q "\"target\":\"$target\"" "$WORK/audit.ndjson" || fail "daybreak audit has no row for $target: $(cat "$WORK/audit.ndjson")"
done
assert_eq "$(pg "SELECT COUNT(*) FROM audit_log WHERE target='control:pause' AND actor='$me' AND reason LIKE 'e2e: %'")" "2" \
  "audit rows of the pause and the resume"
assert_eq "$(pg "SELECT COUNT(*) FROM audit_log WHERE target='$item' AND actor='$me' AND reason='e2e: misleading claim'")" "2" \
  "audit rows of the withdrawal"
assert_eq "$(sql "SELECT COUNT(*) FROM audit_log WHERE reason LIKE 'e2e: %'")" "0" "audit rows written to the SQLite file"

# the held rows are dead letters on PostgreSQL: listed and dismissed there, audited
assert_eq "$(op dead list --error held --json | grep -c '"delivery_id"')" "$held_all" "daybreak dead list --error held"
op dead dismiss --error held --reason "e2e: pulled on purpose" >/dev/null || fail "daybreak dead dismiss on PostgreSQL exited $?"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE dismissed_by='$me'")" "$held_all" "dismissed dead letters"
assert_eq "$(pg "SELECT COUNT(*) FROM audit_log WHERE reason='e2e: pulled on purpose' AND actor='$me'")" "$held_all" "audit rows of the dismissal"

# a command that does not speak PostgreSQL is refused, not run on the SQLite file
d1=$(pg "SELECT MIN(delivery_id) FROM deliveries WHERE run_id=$run AND state='accepted'")
rc=0
op resend --delivery "$d1" --reason "e2e: should be refused" >"$WORK/resend.out" 2>"$WORK/resend.err" || rc=$?
assert_eq "$rc" "3" "daybreak resend with [database] url"
grep -q "refused" "$WORK/resend.err" || fail "no refusal message: $(cat "$WORK/resend.err")"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE delivery_id=$d1 AND resent_at IS NOT NULL")" "0" "the SQLite file after the refusal"
echo "ok: $n deliveries dispatched on PostgreSQL; paused at $f1 first sends (no request for 2 s), resumed; $item pulled mid-run ($sent_before sent before, $held held by the pull, $in_flight in flight, $held_all held in all, none sent after); closed; audited as $me"
