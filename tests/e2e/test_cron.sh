#!/usr/bin/env bash
# The cron path, installed into a temporary prefix:
#  1. cmake --install puts binaries, wrappers, crontab, logrotate file and man pages in place
#  2. two overlapping invocations of the dispatch job run it once: the second logs
#     "already running" and exits 0; the run is sent exactly once
#  3. the wrapper's log has start/end lines with the exit code; a failing job's code comes back
#  4. the nightly entry's command (daybreak-at, then the wrapper) at 21:30 IST on a UTC machine
#     plans the next IST day, once per scheduled minute
#  5. the watchdog restarts a dispatch that was killed with -9: the run completes, nothing lost
source "$(dirname "$0")/common.sh"
command -v faketime >/dev/null || { echo "skip: faketime missing"; exit 125; }
BUILD=$(cd "$DAYBREAK_BIN/.." && pwd)
SRC=${DAYBREAK_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}

# --- 1. install into a temporary prefix ------------------------------------------------------
PREFIX=$WORK/prefix
cmake --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "cmake --install"; }
for f in bin/dispatch bin/daybreak bin/plan-deliveries bin/assign-fallback libexec/daybreak/daybreak-job \
         libexec/daybreak/daybreak-nightly libexec/daybreak/daybreak-watchdog share/daybreak/daybreak.crontab \
         etc/logrotate.d/daybreak share/man/man1/dispatch.1; do
  [ -e "$PREFIX/$f" ] || fail "not installed: $f"
done
[ -x "$PREFIX/libexec/daybreak/daybreak-job" ] || fail "daybreak-job is not executable"
JOB=$PREFIX/libexec/daybreak/daybreak-job
CRONTAB=$PREFIX/share/daybreak/daybreak.crontab
export DAYBREAK_LOCK_DIR=$WORK/lock DAYBREAK_LOG_DIR=$WORK/log
# What cron would give the jobs: the crontab's PATH, pointed at this prefix.
CRON_PATH=$PREFIX/libexec/daybreak:/usr/bin:/bin
echo "ok 1: installed into $PREFIX"

# --- 2. overlapping invocations of the dispatch job run it once --------------------------------
D1=2026-12-01
start_sim cron --mps 80 --time-scale 10 --seed 1 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
seed_day 200 "$D1"
run1=$(sql "SELECT run_id FROM runs WHERE date='$D1'")
n1=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1")
export DAYBREAK_CLOCK
DAYBREAK_CLOCK=$(clock_at "${D1}T05:59:25+05:30" 4)
PATH=$CRON_PATH "$JOB" dispatch -- dispatch --run "$run1" &
first=$!
for _ in $(seq 1 100); do grep -q "start:" "$WORK/log/dispatch.log" 2>/dev/null && break; sleep 0.05; done
rc=0
PATH=$CRON_PATH "$JOB" dispatch -- dispatch --run "$run1" || rc=$?
assert_eq "$rc" "0" "second invocation's exit code"
grep -q "already running" "$WORK/log/dispatch.log" || fail "second invocation did not log 'already running'"
rc=0; wait "$first" || rc=$?
assert_eq "$rc" "0" "first invocation's exit code"
assert_eq "$(grep -c "dispatch: start:" "$WORK/log/dispatch.log")" "1" "dispatch job starts"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1 AND state='accepted'")" "$n1" "accepted deliveries"
assert_eq "$(sim_stats | json 'j["duplicates"]')" "0" "duplicates at the provider"
echo "ok 2: two overlapping dispatch jobs ran once; $n1 deliveries accepted once each"

# --- 3. the log has start/end lines and exit codes; a failing job's code comes back ------------
grep -Eq '^[0-9T:.-]+Z daybreak-job\[[0-9]+\] dispatch: end: exit 0 after [0-9]+ s \(exit code 0\)$' "$WORK/log/dispatch.log" ||
  { cat "$WORK/log/dispatch.log"; fail "no end line with exit code 0"; }
grep -q "dispatch done:" "$WORK/log/dispatch.log" || fail "the command's own output is not in the job log"
rc=0
DAYBREAK_CONFIG=$WORK/missing.toml PATH=$CRON_PATH "$JOB" broken -- dispatch --run "$run1" || rc=$?
assert_eq "$rc" "3" "a job with a missing config exits with dispatch's code"
grep -q "end: exit 3" "$WORK/log/broken.log" || fail "no 'end: exit 3' in broken.log"
[ "$(stat -c %a "$WORK/log/dispatch.log")" = "600" ] || fail "job log is not owner-only"
echo "ok 3: logs carry start/end and exit codes; exit codes pass through"

# --- 4. the nightly entry's command, through the installed guard and wrapper ----------------
# (When cron runs it, with the real daemon: test_schedule_cron.sh.) With the machine in UTC at
# 16:00:30 UTC = 21:30:30 IST, daybreak-at starts the nightly, which plans the next IST day.
grep -q '^CRON_TZ' "$CRONTAB" && fail "the crontab relies on CRON_TZ, which Debian's cron ignores"
D2=2026-11-28
unset DAYBREAK_CLOCK
cmd=$(sed -n 's/^\* \* \* \* \*  *\(daybreak-at nightly .*\)$/\1/p' "$CRONTAB")
[ -n "$cmd" ] || fail "no every-minute daybreak-at nightly entry in the crontab"
rc=0
TZ=UTC PATH=$CRON_PATH faketime '2026-11-27 16:00:30' sh -c "$cmd" || rc=$?
grep -q "nightly: end: exit $rc" "$WORK/log/nightly.log" || { cat "$WORK/log/nightly.log"; fail "nightly log has no end line"; }
grep -q "assign-fallback --date $D2" "$WORK/log/nightly.log" || { cat "$WORK/log/nightly.log"; fail "nightly did not assign for $D2"; }
[ "$(sql "SELECT COUNT(*) FROM runs WHERE date='$D2'")" -ge 1 ] || fail "nightly at 21:30 IST did not plan $D2"
grep -q "daybreak doctor" "$WORK/log/nightly.log" || fail "nightly did not run doctor"
grep -q "retention exit 0" "$WORK/log/nightly.log" || { cat "$WORK/log/nightly.log"; fail "nightly did not run retention purge"; }
# the same minute again: the guard says it already ran
before=$(grep -c "nightly: start:" "$WORK/log/nightly.log")
TZ=UTC PATH=$CRON_PATH faketime '2026-11-27 16:00:50' sh -c "$cmd" || fail "the guard's second tick failed"
assert_eq "$(grep -c "nightly: start:" "$WORK/log/nightly.log")" "$before" "nightly starts after a second tick in the same minute"
echo "ok 4: the nightly entry (daybreak-at) at 21:30 IST on a UTC machine planned $D2 (exit $rc), once"

# --- 5. the watchdog resumes a dispatch killed with -9 ----------------------------------------
D3=2026-12-03
seed_day 200 "$D3"
run3=$(sql "SELECT run_id FROM runs WHERE date='$D3'")
n3=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3")
export DAYBREAK_CLOCK
DAYBREAK_CLOCK=$(clock_at "${D3}T05:59:28+05:30" 2)
PATH=$CRON_PATH "$JOB" dispatch -- dispatch &
wrapper=$!
for _ in $(seq 1 300); do
  [ "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3 AND state='accepted'")" -gt 30 ] && break
  sleep 0.02
done
victim=$(pgrep -P "$wrapper" -x dispatch) || fail "no dispatch under the wrapper"
kill -9 "$victim"
t_kill=$(now_ms)
wait "$wrapper" || true
grep -q "end: killed by signal 9" "$WORK/log/dispatch.log" || fail "wrapper did not log the kill"
acc=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3 AND state='accepted'")
[ "$acc" -lt "$n3" ] || fail "the run finished before the kill; nothing was tested"
# cron's every-minute ticks, compressed: each tick starts dispatch when no dispatch holds the lock
# The bound: the first tick after the kill starts a dispatch, which takes the run over once the
# dead owner's lease (dispatch.lease_seconds, 15 s of simulated time = 7.5 s at 2x) has expired:
# the lease + one tick (a compressed minute: 1 s of polling plus the wrapper, up to 3.5 s on a loaded
# machine) + 5 s of margin (2 cores shared by every test).
closed=""
resumed_ms=""
started_tick=""
for tick in $(seq 1 60); do
  PATH=$CRON_PATH "$JOB" watchdog -- daybreak-watchdog
  [ -z "$started_tick" ] && grep -q "no dispatch running; starting" "$WORK/log/watchdog.log" 2>/dev/null && started_tick=$tick
  for _ in $(seq 1 10); do  # a "minute" is one second here; poll within it for the takeover
    owner=$(sql "SELECT COALESCE(owner,'') FROM runs WHERE run_id=$run3")
    if [ -z "$resumed_ms" ] && [ -n "$owner" ] && [[ "$owner" != *":$victim:"* ]]; then resumed_ms=$(( $(now_ms) - t_kill )); fi
    sleep 0.1
  done
  if [ "$(sql "SELECT state FROM runs WHERE run_id=$run3")" = "closed" ]; then closed=$tick; break; fi
done
assert_eq "$started_tick" "1" "watchdog tick that started dispatch"
[ -n "$resumed_ms" ] || fail "no new owner took run $run3 over"
[ "$resumed_ms" -le 16000 ] || fail "run $run3 resumed ${resumed_ms} ms after the kill; bound is 7.5 s lease + one tick (up to 3.5 s here) + 5 s margin"
[ -n "$closed" ] || { cat "$WORK/log/dispatch.log"; fail "the watchdog did not get run $run3 closed"; }
grep -q "no dispatch running; starting dispatch --supervise" "$WORK/log/watchdog.log" || fail "watchdog never started dispatch"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3 AND state='accepted'")" "$n3" "accepted after the watchdog"
# wait for the watchdog's dispatch to exit so nothing outlives the test
for _ in $(seq 1 100); do flock -n "$WORK/lock/dispatch.lock" true && break; sleep 0.1; done
dups=$(sim_stats | json 'j["duplicates"]')
uncertain=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run3 AND possible_duplicate=1")
[ "$dups" -le "$uncertain" ] || fail "$dups duplicates but only $uncertain possible duplicates marked"
echo "ok 5: killed at $acc/$n3; the watchdog's first tick restarted dispatch, which owned the run ${resumed_ms} ms after the kill; closed by tick $closed; $dups duplicates (<= $uncertain marked)"
