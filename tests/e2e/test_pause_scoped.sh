#!/usr/bin/env bash
# `daybreak pause|resume --run ID` and `--sender ID` against a running dispatch and the simulator:
#  1. two runs of one morning under one dispatch; run B is paused mid-send: B's sends stop within
#     a second while A's go on; after the resume B finishes, both runs close, no row is left
#     non-final and nothing is sent twice.
#  2. two WhatsApp senders; wa-2 is paused mid-send: no request reaches wa-2's number from a
#     second after the pause until the resume while wa-1 keeps sending; the run then closes with
#     every delivery accepted once.
source "$(dirname "$0")/common.sh"

SCALE=10
start_sim pause --mps 100 --time-scale $SCALE --seed 5 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
# 10 msg/s: the plan spreads 1,000 deliveries over about 100 simulated seconds (10 s real).
sed -i 's/^mps = 80$/mps = 10/' "$WORK/daybreak.toml"

# accepted_by_parity RUN_PARITY: acceptances at the simulator of delivery ids with id % 2 == PARITY
accepted_by_parity() { sim_stats | json "sum(v for k, v in j['by_callback_data'].items() if int(k) % 2 == $1)"; }
number_requests() { sim_stats | json "j['by_phone_number_id'].get('$1', {}).get('requests', 0)"; }
wait_gt() { # wait_gt CMD N: until CMD prints more than N (at most 20 s)
  for _ in $(seq 1 200); do
    [ "$($1)" -gt "$2" ] && return 0
    sleep 0.1
  done
  fail "$1 never passed $2"
}
no_open_rows() { # no_open_rows RUN...: every delivery final, every run closed
  for r in "$@"; do
    assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$r")" "closed" "run $r state"
    assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$r AND state NOT IN ('accepted','delivered','read')")" "0" \
      "rows of run $r not accepted"
  done
  assert_eq "$(sim_stats | json 'max(j["by_callback_data"].values())')" "1" "most acceptances of one delivery"
}

# --- 1. one run ----------------------------------------------------------------------------
D=2026-12-07
seed_day 1000 "$D"
runA=$(sql "SELECT run_id FROM runs WHERE date='$D'")
# Run B: the same morning's window, one millisecond later slot (runs are unique by date and
# slot), holding the even delivery ids.
sql "INSERT INTO runs (date, slot_at, window_start, window_end, deadline_at, state, planned_count, feasible, plan_report)
     SELECT date, slot_at + 1, window_start, window_end, deadline_at, state, 0, feasible, plan_report FROM runs WHERE run_id=$runA;"
runB=$(sql "SELECT MAX(run_id) FROM runs")
sql "UPDATE deliveries SET run_id=$runB WHERE run_id=$runA AND delivery_id % 2 = 0;
     UPDATE runs SET planned_count=(SELECT COUNT(*) FROM deliveries WHERE run_id=runs.run_id) WHERE run_id IN ($runA, $runB);"
nA=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$runA")
nB=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$runB")
[ "$nB" -gt 400 ] && [ "$nA" -gt 400 ] || fail "split: $nA + $nB"

DAYBREAK_CLOCK="${D}T05:59:25+05:30@$(now_ms)*${SCALE}" "$DISPATCH" --run "$runA" --run "$runB" --json >"$WORK/d1.json" 2>"$WORK/d1.log" &
pid=$!
wait_gt "accepted_by_parity 0" 50
"$OP" pause --run "$runB" --reason "e2e: hold run B" >/dev/null
sleep 1
b1=$(accepted_by_parity 0)
a1=$(accepted_by_parity 1)
[ "$b1" -lt "$nB" ] || fail "run B finished before its pause; nothing was tested"
sleep 3
b2=$(accepted_by_parity 0)
a2=$(accepted_by_parity 1)
assert_eq "$b2" "$b1" "run B's acceptances from 1 s to 4 s after its pause"
[ "$a2" -gt "$a1" ] || fail "run A stopped too while run B was paused ($a1 -> $a2)"
assert_eq "$(sql "SELECT actor <> '' FROM audit_log WHERE target='control:pause.run.$runB'")" "1" "audit row of the run pause"
"$OP" resume --run "$runB" --reason "e2e: release run B" >/dev/null
wait "$pid" || fail "dispatch exited $?: $(tail -3 "$WORK/d1.log")"
no_open_rows "$runA" "$runB"
echo "ok 1: run $runB paused at $b1/$nB (held 3 s while run $runA went $a1 -> $a2 of $nA), resumed, both closed"

# --- 2. one sender -------------------------------------------------------------------------
D2=2026-12-08
cat >>"$WORK/daybreak.toml" <<'TOML'
[[whatsapp.senders]]
id = "wa-2"
phone_number_id = "100000002"
token = "test-token"
mps = 10
TOML
seed_day 1000 "$D2"
run=$(sql "SELECT run_id FROM runs WHERE date='$D2'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
[ "$(sql "SELECT COUNT(DISTINCT sender) FROM deliveries WHERE run_id=$run")" = 2 ] || fail "the plan did not use both senders"
wa1() { number_requests 100000001; }
wa2() { number_requests 100000002; }
w2_0=$(wa2)
DAYBREAK_CLOCK="${D2}T05:59:25+05:30@$(now_ms)*${SCALE}" "$DISPATCH" --run "$run" --json >"$WORK/d2.json" 2>"$WORK/d2.log" &
pid=$!
wait_gt wa2 $((w2_0 + 50))
"$OP" pause --sender wa-2 --reason "e2e: take wa-2 out" >/dev/null
sleep 1
s1=$(wa2)
o1=$(wa1)
sleep 3
s2=$(wa2)
o2=$(wa1)
assert_eq "$s2" "$s1" "wa-2's requests from 1 s to 4 s after its pause"
[ "$o2" -gt "$o1" ] || fail "wa-1 stopped too while wa-2 was paused ($o1 -> $o2)"
grep -q "sender wa-2: paused by the operator" "$WORK/d2.log" || fail "dispatch did not log the sender pause"
"$OP" resume --sender wa-2 --reason "e2e: wa-2 back" >/dev/null
wait "$pid" || fail "dispatch exited $?: $(tail -3 "$WORK/d2.log")"
no_open_rows "$run"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$n" "accepted deliveries"
# unknown scopes are refused and change nothing
"$OP" pause --sender wa-9 --reason x >/dev/null 2>&1 && fail "pause of an unknown sender accepted"
"$OP" pause --run 999999 --reason x >/dev/null 2>&1 && fail "pause of an unknown run accepted"
"$OP" pause --run "$run" --sender wa-1 --reason x >/dev/null 2>&1 && fail "pause of two scopes accepted"
assert_eq "$(sql "SELECT COUNT(*) FROM controls WHERE key IN ('pause.sender.wa-9','pause.run.999999') OR (key LIKE 'pause.%' AND value='1')")" "0" \
  "switches left on"
echo "ok 2: wa-2 paused at $s1 requests (held 3 s while wa-1 went $o1 -> $o2), resumed, all $n accepted once"
