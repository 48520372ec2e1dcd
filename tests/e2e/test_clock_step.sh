#!/usr/bin/env bash
# dispatch survives live wall-clock steps (docs/reliability.md "Clock steps"). dispatch runs
# under libfaketime (Debian package faketime): its wall clock is offset by what a file says,
# re-read every second; the monotonic clock is left alone, as an NTP step leaves it. 10x clock.
#  1. +16 min (past deadline + drain) mid-run: every delivery is still sent (late, not dead),
#     none dead with zero attempts, deadlines unchanged, the step is logged with its size
#  2. -2 min mid-run: the heartbeat keeps its cadence, `daybreak pause` is obeyed within a
#     second and holds while the wall clock catches up, resume finishes the run
source "$(dirname "$0")/common.sh"

LIB=
for l in /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1; do
  [ -r "$l" ] && LIB=$l && break
done
[ -n "$LIB" ] || { echo "skip: libfaketime missing (Debian package faketime)"; exit 125; }

FT=$WORK/faketime.rc
# dispatch_faked RUN CLOCK LOG: starts dispatch in the background under libfaketime; sets DISP
dispatch_faked() {
  echo "+0" >"$FT"
  LD_PRELOAD=$LIB FAKETIME_TIMESTAMP_FILE=$FT FAKETIME_CACHE_DURATION=1 FAKETIME_DONT_FAKE_MONOTONIC=1 \
    DAYBREAK_CLOCK=$2 "$DISPATCH" --run "$1" --json >"$3.json" 2>"$3" &
  DISP=$!
}
accepted_at_sim() { sim_stats | json 'j["accepted"]'; }
# wait_accepted RUN N: until more than N of the run's deliveries are accepted (at most 30 s)
wait_accepted() {
  for _ in $(seq 1 600); do
    [ "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$1 AND state='accepted'")" -gt "$2" ] && return 0
    sleep 0.05
  done
  fail "run $1: fewer than $2 accepted after 30 s"
}
# wait_step_logged LOG: until dispatch logs the step (at most 5 s: the file is re-read each second)
wait_step_logged() {
  for _ in $(seq 1 100); do grep -q "wall clock stepped" "$1" && return 0; sleep 0.05; done
  return 1
}

start_sim prov --mps 80 --time-scale 10 --seed 3 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"

# --- 1. +16 min ----------------------------------------------------------------------------
# 5 msg/s: the plan spreads 200 deliveries over about a minute (6 s real), so most are still
# waiting when the clock jumps past the deadline (06:05) and the drain period (10 min).
sed -i 's/^mps = 80$/mps = 5/' "$WORK/daybreak.toml"
D1=2026-12-14
seed_day 200 "$D1"
run1=$(sql "SELECT run_id FROM runs WHERE date='$D1'")
n1=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1")
dl0=$(sql "SELECT SUM(deadline_at)||':'||SUM(planned_at) FROM deliveries WHERE run_id=$run1")
dispatch_faked "$run1" "$(clock_at "${D1}T05:59:25+05:30" 10)" "$WORK/d1.log"
wait_accepted "$run1" 30
echo "+96" >"$FT"   # 96 s real = 16 min of the 10x clock
wait "$DISP" || true
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1 AND state='dead' AND attempts=0")" "0" \
  "deliveries dead with zero attempts after +16 min"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1 AND state='accepted'")" "$n1" "accepted after +16 min"
at_step=$(grep -m1 "wall clock stepped" "$WORK/d1.log" || true)
[ -n "$at_step" ] || fail "dispatch did not log the step: $(tail -5 "$WORK/d1.log")"
case $at_step in *"stepped +9"[0-9][0-9].*) ;; *) fail "the logged step is not about +960 s: $at_step" ;; esac
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run1")" "closed" "run 1 state"
assert_eq "$(sql "SELECT SUM(deadline_at)||':'||SUM(planned_at) FROM deliveries WHERE run_id=$run1")" "$dl0" \
  "deadline_at/planned_at after the step"
late=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1 AND accepted_at > deadline_at")
[ "$late" -gt 0 ] || fail "no delivery accepted after its deadline: the step did not land mid-run"
assert_eq "$(sim_stats | json 'max(j["by_callback_data"].values())')" "1" "most acceptances of one delivery"
echo "ok 1: +16 min at $((n1 - late))/$n1 on time: all $n1 sent ($late late), none dead unattempted"

# --- 2. -2 min -----------------------------------------------------------------------------
# 2 msg/s: the plan spreads 200 deliveries over about 140 s (14 s real).
sed -i 's/^mps = 5$/mps = 2/' "$WORK/daybreak.toml"
D2=2026-12-15
seed_day 200 "$D2"
run2=$(sql "SELECT run_id FROM runs WHERE date='$D2'")
n2=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run2")
base=$(accepted_at_sim)
dispatch_faked "$run2" "$(clock_at "${D2}T05:59:25+05:30" 10)" "$WORK/d2.log"
wait_accepted "$run2" 30
echo "-12" >"$FT"   # 12 s real = 2 min of the 10x clock
wait_step_logged "$WORK/d2.log" || fail "dispatch did not log the backward step: $(tail -5 "$WORK/d2.log")"
grep -m1 "wall clock stepped" "$WORK/d2.log" | grep -q "stepped -1[12][0-9]\." ||
  fail "the logged step is not about -120 s: $(grep -m1 'wall clock stepped' "$WORK/d2.log")"
sleep 0.2
# The heartbeat (lease renewal, pause and operator-change polling) keeps its cadence: every
# second of the 10x clock, so several times in one real second; stamped with the stepped wall clock.
hb1=$(sql "SELECT heartbeat_at FROM runs WHERE run_id=$run2")
sleep 1
hb2=$(sql "SELECT heartbeat_at FROM runs WHERE run_id=$run2")
[ "$hb2" -gt "$hb1" ] || fail "no heartbeat in the second after the backward step ($hb1 -> $hb2)"
"$OP" pause --reason "e2e: pause after a backward clock step" >/dev/null
sleep 1   # one second for the running dispatch to see the switch
a1=$(accepted_at_sim)
[ $((a1 - base)) -lt "$n2" ] || fail "the run finished before the pause; nothing was tested"
# Held while the wall clock catches up (12 s real) and the plan's next rows fall due.
sleep 14
a2=$(accepted_at_sim)
assert_eq "$a2" "$a1" "sends from 1 s to 15 s after the pause"
"$OP" resume --reason "e2e: resume" >/dev/null
wait "$DISP" || true
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run2 AND state='accepted'")" "$n2" "accepted after resume"
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run2")" "closed" "run 2 state"
assert_eq "$(sim_stats | json 'max(j["by_callback_data"].values())')" "1" "most acceptances of one delivery"
echo "ok 2: -2 min at $((a1 - base))/$n2: heartbeat kept its cadence, pause held 15 s, resume finished all $n2"
