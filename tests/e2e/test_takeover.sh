#!/usr/bin/env bash
# The takeover race: a dispatch stalled past its lease (SIGSTOP) resumes after another dispatch
# took its run over. Its late claims and heartbeat must not leave rows `sending` under it, and the
# run must never close while a row is not final.
#  1. dispatch A sends; A is stopped; once A's lease (2 s) has expired dispatch B takes the run
#     over; B is stopped in turn and A resumed: A finds its lease lost and exits without sending
#     what it claimed late; B is resumed and finishes the run
#  2. the run is closed with every delivery final (none `sending`), every delivery reached the
#     provider, and the provider's duplicates are no more than the possible duplicates dispatch
#     reports (uncertain rows resent)
source "$(dirname "$0")/common.sh"
D=2026-12-09
SCALE=2
start_sim tk --mps 80 --time-scale $SCALE --seed 9 --transient-rate 0 --permanent-rate 0 --latency-ms-median 200 --latency-ms-p99 600
write_config "$SIM_PORT"
python3 - "$WORK/daybreak.toml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read().replace("[dispatch]\nuncertain_grace_seconds = 20\n", "[dispatch]\nlease_seconds = 2\nuncertain_grace_seconds = 4\n", 1)
open(p, "w").write(s)
PY
seed_day 1000 "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
clock="${D}T05:59:28+05:30@$(now_ms)*${SCALE}"
owner_pid() { sql "SELECT COALESCE(owner,'') FROM runs WHERE run_id=$run" | cut -d: -f2; }
accepted() { sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'"; }

# A dispatch must be stopped between two of its commits: stopped inside one, it holds SQLite's
# write lock and nobody else can write (B could not take the run over; A, resumed, could neither
# commit nor learn that it lost the lease, and would wait, as it should, for the ledger to take
# writes again). Stop it, and if the ledger is locked, let it finish the commit and stop it again.
stop_between_commits() {
  local pid=$1
  for _ in $(seq 1 50); do
    kill -STOP "$pid"
    if sqlite3 -cmd '.timeout 300' "$DB" "BEGIN IMMEDIATE; ROLLBACK;" >/dev/null 2>&1; then return 0; fi
    kill -CONT "$pid"
    sleep 0.01
  done
  fail "dispatch $pid held the write lock every time it was stopped"
}

DAYBREAK_CLOCK=$clock "$DISPATCH" --run "$run" --json >"$WORK/a.json" 2>"$WORK/a.log" &
A=$!
for _ in $(seq 1 1000); do [ "$(accepted)" -gt 150 ] && break; sleep 0.02; done
stop_between_commits "$A"
acc_a=$(accepted)
# A's lease is 2 s of simulated time (1 s here); B takes over once it has expired.
sleep 1.5
DAYBREAK_CLOCK=$clock "$DISPATCH" --run "$run" --json >"$WORK/b.json" 2>"$WORK/b.log" &
B=$!
for _ in $(seq 1 500); do [ "$(owner_pid)" = "$B" ] && break; sleep 0.02; done
assert_eq "$(owner_pid)" "$B" "the run's owner after the takeover"
for _ in $(seq 1 500); do [ "$(accepted)" -gt $((acc_a + 100)) ] && break; sleep 0.02; done
stop_between_commits "$B"
# A resumes while B is stopped: its queued claims and heartbeat commit now.
kill -CONT "$A"
rc_a=0
for _ in $(seq 1 300); do kill -0 "$A" 2>/dev/null || break; sleep 0.05; done
kill -0 "$A" 2>/dev/null && { kill -CONT "$B"; fail "A did not exit after losing its lease"; }
wait "$A" || rc_a=$?
grep -q "lost" "$WORK/a.log" || { cat "$WORK/a.log" >&2; fail "A did not notice the lost lease"; }
kill -CONT "$B"
rc_b=0
wait "$B" || rc_b=$?
assert_eq "$(json 'j["status"]' <"$WORK/b.json")" "done" "B's status (exit $rc_b)"
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run")" "closed" "run state"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('planned','sending','retry_wait','uncertain')")" "0" "non-final rows in the closed run"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$n" "accepted deliveries"
stats=$(sim_stats)
dups=$(echo "$stats" | json 'j["duplicates"]')
marked=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND possible_duplicate=1")
[ "$dups" -le "$marked" ] || fail "$dups duplicates at the provider, only $marked marked possible duplicates"
echo "ok: A stalled at $acc_a accepted, B took over, A resumed with its lease lost (exit $rc_a); run closed with all $n final and accepted; $dups provider duplicates <= $marked marked"
