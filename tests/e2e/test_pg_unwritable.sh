#!/usr/bin/env bash
# A dispatch on the PostgreSQL ledger while the server cannot be written, then is gone:
#  1. a day planned with the SQLite tools is copied with `daybreak migrate-ledger` into a
#     PostgreSQL server started for the test; dispatch sends it on one sender
#  2. mid-run the server turns read-only (default_transaction_read_only, as a primary demoted to a
#     standby answers: SQLSTATE 25006): dispatch holds its writes and claims nothing new — no
#     write is dropped and no delivery is given up — and when the server is writable again the
#     held writes commit and sending resumes
#  3. later the server stops; a SIGTERM then ends dispatch within seconds (exit 4, database),
#     though its claims and outcomes can never be committed (before, it waited for them for ever)
#  4. the server starts again and a second dispatch finishes the run: every row final, every
#     delivery accepted, and the provider's duplicates no more than the rows counted possible
#     duplicates
source "$(dirname "$0")/common.sh"
require_test_pg
D=2026-12-10
N=1500
MPS=60

start_test_pg
trap 'rc=$?; set +e; [ -z "${DPID:-}" ] || kill -9 "$DPID" 2>/dev/null; stop_pg; (exit $rc); cleanup' EXIT

start_sim pg --mps $((MPS * 2)) --seed 5 --transient-rate 0 --permanent-rate 0 --latency-ms-median 20 --latency-ms-p99 80
write_config "$SIM_PORT" ""
sed -i "s/^mps = 80$/mps = $MPS/" "$WORK/daybreak.toml"
python3 - "$WORK/daybreak.toml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read().replace("[dispatch]\nuncertain_grace_seconds = 20\n",
                           "[dispatch]\nlease_seconds = 3\nuncertain_grace_seconds = 3\n", 1)
open(p, "w").write(s)
PY
seed_day "$N" "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
"$OP" migrate-ledger --from "sqlite:$DB" --to "$URL" --date "$D" >/dev/null
# this host's own SQLite file (alerts, metrics) in the work directory, beside the url
python3 - "$WORK/daybreak.toml" "$WORK/pg.toml" "$URL" "$WORK/host.db" <<'PY'
import re, sys
src, dst, url, host_db = sys.argv[1:]
open(dst, "w").write(re.sub(r'(?m)^path = ".*"$', lambda m: 'path = "%s"\nurl = "%s"' % (host_db, url), open(src).read(), count=1))
PY
export DAYBREAK_CONFIG=$WORK/pg.toml
clock="${D}T05:59:55+05:30@$(now_ms)*1"
accepted() { pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'"; }
wait_accepted() {  # wait_accepted COUNT: up to 60 s
  for _ in $(seq 1 1200); do [ "$(accepted)" -ge "$1" ] && return 0; sleep 0.05; done
  tail -20 "$WORK/dispatch1.log" >&2
  fail "fewer than $1 accepted after 60 s"
}
read_only() {  # read_only on|off: for every session, at its next transaction
  if [ "$1" = on ]; then pg "ALTER SYSTEM SET default_transaction_read_only = on" >/dev/null
  else PGOPTIONS="-c default_transaction_read_only=off" pg "ALTER SYSTEM RESET default_transaction_read_only" >/dev/null; fi
  pg "SELECT pg_reload_conf()" >/dev/null
}

DAYBREAK_HOST_ID=host-a DAYBREAK_CLOCK=$clock "$DISPATCH" --run "$run" --json >"$WORK/dispatch1.json" 2>"$WORK/dispatch1.log" &
DPID=$!

# --- 2. read-only for 4 s ---
wait_accepted $((n / 10))
read_only on
sleep 1
held_from=$(accepted)
sleep 3
held_to=$(accepted)
kill -0 "$DPID" 2>/dev/null || fail "dispatch exited while the ledger was read-only"
grep -q "database writes failing" "$WORK/dispatch1.log" || fail "dispatch did not notice the read-only ledger"
read_only off
wait_accepted $((held_to + 50))
grep -q "database writes recovered" "$WORK/dispatch1.log" || fail "dispatch's writes did not recover"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='dead'")" "0" "deliveries given up while read-only"

# --- 3. the server stops; SIGTERM ends dispatch anyway ---
wait_accepted $((n / 2))
stop_pg
sleep 2
t_term=$(now_ms)
kill -TERM "$DPID"
for _ in $(seq 1 600); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$DPID" 2>/dev/null; then tail -20 "$WORK/dispatch1.log" >&2; fail "dispatch still running 30 s after SIGTERM with the ledger down"; fi
term_ms=$(($(now_ms) - t_term))
rc=0
wait "$DPID" || rc=$?
DPID=""
[ "$term_ms" -le 20000 ] || fail "dispatch took ${term_ms} ms to stop after SIGTERM"
assert_eq "$rc" "4" "dispatch's exit status with the ledger down (4: database)"

# --- 4. the server is back; a second dispatch finishes the run ---
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 30 \
  -o "-k $PGDIR -p $PGPORT_T -c listen_addresses='' -c fsync=off -c synchronous_commit=off" start >/dev/null ||
  fail "pg_ctl start again"
for _ in $(seq 1 200); do
  [ "$(pg "SELECT state FROM runs WHERE run_id=$run")" = "closed" ] && break
  DAYBREAK_HOST_ID=host-b DAYBREAK_CLOCK=$clock "$DISPATCH" --run "$run" --json >>"$WORK/dispatch2.json" 2>>"$WORK/dispatch2.log" || true
  sleep 0.5
done
assert_eq "$(pg "SELECT state FROM runs WHERE run_id=$run")" "closed" "run state after the second dispatch"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('planned','sending','retry_wait','uncertain')")" "0" "non-final rows in the closed run"
assert_eq "$(accepted)" "$n" "accepted deliveries (none lost)"
dups=$(sim_stats | json 'j["duplicates"]')
marked=$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND possible_duplicate=1")
[ "$dups" -le "$marked" ] || fail "$dups duplicates at the provider, only $marked marked possible duplicates"
echo "ok: $n deliveries; read-only for 4 s ($held_from -> $held_to accepted meanwhile, none dead); SIGTERM with the server down ended dispatch in ${term_ms} ms (exit 4); $dups provider duplicates <= $marked marked"
