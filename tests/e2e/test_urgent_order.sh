#!/usr/bin/env bash
# A run of kind urgent (sql/014) goes before routine traffic on the same sender: two runs of one
# morning under one dispatch on one 10 msg/s sender, every row planned at the window's start (a
# burst, so a queue forms); the urgent run's 200 rows are all accepted before the routine run's
# first 100, although both share deadline and tier.
source "$(dirname "$0")/common.sh"

SCALE=10
start_sim urgent --mps 100 --time-scale $SCALE --seed 7 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
sed -i 's/^mps = 80$/mps = 10/' "$WORK/daybreak.toml"
D=2026-12-07
seed_day 400 "$D"
runA=$(sql "SELECT run_id FROM runs WHERE date='$D'")
sql "INSERT INTO runs (date, slot_at, window_start, window_end, deadline_at, state, planned_count, feasible, plan_report, kind)
     SELECT date, slot_at + 1, window_start, window_end, deadline_at, state, 0, feasible, plan_report, 'urgent' FROM runs WHERE run_id=$runA;"
runB=$(sql "SELECT MAX(run_id) FROM runs")
sql "UPDATE deliveries SET run_id=$runB WHERE run_id=$runA AND delivery_id % 2 = 0;
     UPDATE deliveries SET planned_at=(SELECT window_start FROM runs WHERE run_id=$runA) WHERE run_id IN ($runA, $runB);
     UPDATE runs SET planned_count=(SELECT COUNT(*) FROM deliveries WHERE run_id=runs.run_id) WHERE run_id IN ($runA, $runB);"
nB=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$runB")
DAYBREAK_CLOCK="${D}T05:59:25+05:30@$(now_ms)*${SCALE}" "$DISPATCH" --run "$runA" --run "$runB" --json >"$WORK/d.json" 2>"$WORK/d.log" ||
  fail "dispatch: $(tail -3 "$WORK/d.log")"
for r in "$runA" "$runB"; do
  assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$r")" "closed" "run $r state"
  assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$r AND state<>'accepted'")" "0" "rows of run $r not accepted"
done
# the urgent run's last first send against the routine run's 100th
lastB=$(sql "SELECT MAX(first_sent_at) FROM deliveries WHERE run_id=$runB")
a100=$(sql "SELECT first_sent_at FROM deliveries WHERE run_id=$runA ORDER BY first_sent_at LIMIT 1 OFFSET 99")
[ "$lastB" -lt "$a100" ] || fail "urgent run's last send at $lastB is not before the routine run's 100th at $a100"
firstA=$(sql "SELECT MIN(first_sent_at) FROM deliveries WHERE run_id=$runA")
echo "ok: $nB urgent rows sent by +$(( (lastB - firstA) / 1000 )) s after the routine run's first send, before its 100th (+$(( (a100 - firstA) / 1000 )) s)"
