#!/usr/bin/env bash
# dispatch handles SIGTERM from its first moment, not only once its leases are taken: a stop that
# arrives while dispatch waits for the ledger's write lock (another writer holds it) before its
# lease is not a kill. Dispatch ends cleanly (no exit by signal), holds no lease afterwards and
# sends nothing.
source "$(dirname "$0")/common.sh"
D=2026-12-09
start_sim sg --mps 80 --time-scale 10 --seed 3
write_config "$SIM_PORT"
seed_day 20 "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
[ -n "$run" ] || fail "no run planned"

# Another writer holds the write lock for 3 s (dispatch's busy timeout is 5 s).
python3 - "$DB" "$WORK/locked" <<'PY' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").write("1")
time.sleep(3)
c.execute("ROLLBACK")
PY
LOCKER=$!
for _ in $(seq 1 200); do [ -s "$WORK/locked" ] && break; sleep 0.05; done
[ -s "$WORK/locked" ] || fail "test set-up: the lock holder did not start"

DAYBREAK_CLOCK=$(clock_at "${D}T05:59:50+05:30" 1) "$DISPATCH" --run "$run" --json >"$WORK/d.json" 2>"$WORK/d.log" &
P=$!
sleep 1   # dispatch is up and waiting for the lock to take its lease
kill -0 "$P" 2>/dev/null || fail "dispatch ended before the signal: $(tail -3 "$WORK/d.log")"
kill -TERM "$P"
RC=0; wait "$P" || RC=$?
wait "$LOCKER" || true
[ "$RC" -lt 128 ] || fail "dispatch was killed by the signal (exit $RC): $(tail -3 "$WORK/d.log")"
status=$(json 'j["status"]' <"$WORK/d.json") || fail "dispatch --json printed no JSON: $(cat "$WORK/d.json")"
case "$status" in stopped|skipped|idle) ;; *) fail "dispatch status after an early SIGTERM: $status" ;; esac
assert_eq "$(sql "SELECT COUNT(*) FROM runs WHERE run_id=$run AND owner IS NOT NULL")" "0" "leases held after the stop"
assert_eq "$(sim_stats | json 'j["requests"]')" "0" "requests the provider saw"
echo "ok: SIGTERM before the leases: dispatch ends cleanly ($status, exit $RC), holds no lease, sends nothing"
