#!/usr/bin/env bash
# dispatch --supervise: kill -9 the child mid-run; the supervisor restarts it at once, the new
# child takes the run over (the dead child's lease is expired by the supervisor) and completes
# it with every delivery accepted; duplicates only from the uncertain path. Then: SIGTERM to
# the supervisor stops the child and ends supervision; --max-restarts bounds the restarts.
source "$(dirname "$0")/common.sh"

D=2026-12-01
start_sim sup --mps 80 --time-scale 10 --seed 1 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
seed_day 300 "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
CLK=$(clock_at "${D}T05:59:28+05:30" 2)
DAYBREAK_CLOCK=$CLK "$DISPATCH" --supervise --run "$run" --json >"$WORK/sup.json" 2>"$WORK/sup.log" &
parent=$!
for _ in $(seq 1 300); do
  [ "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" -gt 40 ] && break
  sleep 0.02
done
child=$(pgrep -P "$parent") || fail "no child under the supervisor"
kill -9 "$child"
t0=$(date +%s%3N)
# the restarted child owns the run within a second (no lease wait)
for _ in $(seq 1 100); do
  owner=$(sql "SELECT owner FROM runs WHERE run_id=$run")
  [ -n "$owner" ] && [[ "$owner" != *":$child:"* ]] && break
  sleep 0.02
done
took=$(( $(date +%s%3N) - t0 ))
[[ "$owner" != *":$child:"* ]] || fail "run still owned by the dead child after ${took} ms"
[ "$took" -lt 3000 ] || fail "restart took ${took} ms"
rc=0; wait "$parent" || rc=$?
assert_eq "$rc" "0" "supervisor exit code"
grep -q "killed by signal 9 (Killed); restarting it now" "$WORK/sup.log" || { cat "$WORK/sup.log"; fail "supervisor did not log the restart"; }
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$n" "accepted after the restart"
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run")" "closed" "run state"
assert_eq "$(json 'j["status"]' <"$WORK/sup.json")" "done" "restarted child's status"
uncertain=$(json 'j["uncertain_found"]' <"$WORK/sup.json")
dups=$(sim_stats | json 'j["duplicates"]')
[ "$dups" -le "$uncertain" ] || fail "$dups duplicates but only $uncertain uncertain deliveries"
assert_eq "$(sim_stats | json 'len(j["by_callback_data"])')" "$n" "distinct deliveries accepted by the provider"
echo "ok 1: child killed, new child owned the run after ${took} ms, all $n accepted; $uncertain uncertain, $dups duplicates"

# SIGTERM to the supervisor: forwarded; the child stops gracefully; no restart
D2=2026-12-02
seed_day 300 "$D2"
run2=$(sql "SELECT run_id FROM runs WHERE date='$D2'")
DAYBREAK_CLOCK=$(clock_at "${D2}T05:59:28+05:30" 1) "$DISPATCH" --supervise --run "$run2" 2>"$WORK/sup2.log" >/dev/null &
parent=$!
for _ in $(seq 1 300); do [ -n "$(sql "SELECT owner FROM runs WHERE run_id=$run2")" ] && break; sleep 0.02; done
sleep 0.5
kill -TERM "$parent"
rc=0; wait "$parent" || rc=$?
assert_eq "$rc" "0" "exit code after SIGTERM"
grep -q "after a stop signal; not restarting" "$WORK/sup2.log" || { cat "$WORK/sup2.log"; fail "no stop message"; }
assert_eq "$(sql "SELECT COALESCE(owner,'') FROM runs WHERE run_id=$run2")" "" "lease released by the stopped child"
# (only this test's processes: other tests running in parallel may have a `--run 2` of their own)
for p in $(pgrep -f -- "--run $run2" || true); do
  grep -qz "$WORK" "/proc/$p/environ" 2>/dev/null && fail "a dispatch is still running after SIGTERM"
done
echo "ok 2: SIGTERM forwarded, child stopped gracefully, no restart"

# --max-restarts bounds the restarts: a child that keeps failing with exit 4 (database) is
# restarted twice, then the supervisor gives up with its code
rc=0
"$DISPATCH" --supervise --max-restarts 2 --run "$run2" --database /proc/nope/daybreak.db 2>"$WORK/sup3.log" >/dev/null || rc=$?
assert_eq "$rc" "4" "exit code after giving up"
assert_eq "$(grep -c "restarting it now" "$WORK/sup3.log")" "2" "restarts"
grep -q "giving up after 2 restart" "$WORK/sup3.log" || fail "no give-up message"
echo "ok 3: --max-restarts 2 gave up after 2 restarts with the child's exit code 4"
