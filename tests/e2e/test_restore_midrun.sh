#!/usr/bin/env bash
# daybreak restore of a backup taken mid-run:
#  1. a backup taken while dispatch is sending, then the run finishes (every delivery accepted once)
#  2. restore without --force is refused (exit 1) naming the run, how many deliveries could be
#     sent again, and what --force does; the database is untouched
#  3. restore --force marks every delivery not final in the backup uncertain and a possible
#     duplicate, and audits it
#  4. the next dispatch resends them after the uncertain grace: every delivery accepted, the run
#     closed with no row left to send, and every provider-side duplicate counted (the simulator's
#     duplicates <= rows marked possible_duplicate = dispatch's and sla-report's count)
source "$(dirname "$0")/common.sh"

D=2026-12-07
start_sim rm --mps 80 --time-scale 2 --seed 3 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
seed_day 600 "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
export DAYBREAK_LOCK_DIR=$WORK/lock
mkdir -p "$DAYBREAK_LOCK_DIR"

# --- 1. backup while dispatch sends ---------------------------------------------------------
# 600 deliveries at 56/s from the window start (05:59:30): ~11 s of sending at scale 2, ~5.5 s real
CLK=$(clock_at "${D}T05:59:25+05:30" 2)  # dispatch and the backup on the same compressed clock
DAYBREAK_CLOCK=$CLK "$DISPATCH" --run "$run" --json >"$WORK/d1.json" 2>"$WORK/d1.log" &
dpid=$!
for _ in $(seq 1 1500); do
  [ "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" -gt 150 ] && break
  sleep 0.02
done
DAYBREAK_CLOCK=$CLK "$OP" backup --to "$WORK/mid.db" >"$WORK/backup.out" 2>"$WORK/backup.err" || { cat "$WORK/backup.err"; fail "backup"; }
kill -0 "$dpid" 2>/dev/null || fail "dispatch finished before the backup did; nothing was tested"
rc=0; wait "$dpid" || rc=$?
assert_eq "$rc" "0" "first dispatch exit code"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$n" "accepted by the first dispatch"
assert_eq "$(sim_stats | json 'j["duplicates"]')" "0" "provider duplicates before the restore"
acc_b=$(sqlite3 "$WORK/mid.db" "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('accepted','delivered','read')")
open_b=$(sqlite3 "$WORK/mid.db" "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('planned','sending','retry_wait','uncertain')")
[ "$acc_b" -gt 0 ] && [ "$open_b" -gt 0 ] || fail "the backup is not mid-run: $acc_b accepted, $open_b not final"
[ -n "$(sqlite3 "$WORK/mid.db" "SELECT taken_at FROM daybreak_backup")" ] || fail "the backup does not record its time"
echo "ok 1: backup with $acc_b accepted and $open_b not final; the run then finished with $n/$n accepted"

# --- 2. refused without --force --------------------------------------------------------------
RCLK=$(clock_at "${D}T06:01:00+05:30" 1)
rc=0; DAYBREAK_CLOCK=$RCLK "$OP" restore --from "$WORK/mid.db" >"$WORK/r1.out" 2>"$WORK/r1.err" || rc=$?
assert_eq "$rc" "1" "restore of a mid-run backup without --force: exit code"
grep -q "refusing to restore $WORK/mid.db (taken at ${D}T0[56]:[0-9:]*+05:30): it holds unfinished run $run ($D 06:00, running: $open_b not final, .* these $open_b deliveries .* --force restores it and marks them uncertain possible duplicates" "$WORK/r1.err" ||
  fail "refusal message: $(cat "$WORK/r1.err")"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$n" "database untouched by the refusal"
echo "ok 2: refused without --force: $(grep -o 'refusing.*' "$WORK/r1.err" | cut -c1-160)..."

# --- 3. --force -------------------------------------------------------------------------------
out=$(DAYBREAK_CLOCK=$RCLK "$OP" restore --from "$WORK/mid.db" --force --json 2>"$WORK/r2.err") || { cat "$WORK/r2.err"; fail "restore --force"; }
marked=$(echo "$out" | json 'j["marked_uncertain"]')
assert_eq "$marked" "$open_b" "deliveries marked uncertain"
assert_eq "$(echo "$out" | json 'j["unfinished_runs"][0]["run_id"]')" "$run" "unfinished run reported"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='uncertain' AND possible_duplicate=1")" "$open_b" "uncertain possible duplicates in the ledger"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('planned','sending','retry_wait')")" "0" "rows left to send as if new"
assert_eq "$(sql "SELECT COUNT(*) FROM sqlite_master WHERE name='daybreak_backup'")" "0" "the backup's record left in the ledger"
audit=$(sql "SELECT after FROM audit_log WHERE target='database:$DB' ORDER BY audit_id DESC LIMIT 1")
assert_eq "$(echo "$audit" | json 'j["marked_uncertain"]')" "$open_b" "audit log: marked"
assert_eq "$(echo "$audit" | json 'j["forced"]')" "True" "audit log: forced"
echo "ok 3: restore --force marked $marked deliveries uncertain possible duplicates; audited"

# --- 4. the next dispatch: every resend counted ------------------------------------------------
# no receiver here: no status callback settles them, so each is resent after the 20 s grace (5 s at 4x)
DAYBREAK_CLOCK=$(clock_at "${D}T06:01:00+05:30" 4) "$DISPATCH" --run "$run" --json >"$WORK/d2.json" 2>"$WORK/d2.log" ||
  { tail -5 "$WORK/d2.log"; fail "dispatch after the restore"; }
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('accepted','delivered','read')")" "$n" "accepted after the restore"
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run")" "closed" "run state"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state IN ('planned','sending','retry_wait','uncertain')")" "0" "non-final rows"
dups=$(sim_stats | json 'j["duplicates"]')
flagged=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND possible_duplicate=1")
counted=$(json 'j["possible_duplicates"]' <"$WORK/d2.json")
reported=$("$REPORT" --run "$run" --json 2>"$WORK/report.err" | json 'j["possible_duplicates"]') || true
[ "$dups" -gt 0 ] || fail "the provider saw no duplicate: the first dispatch had not sent after the backup; nothing was tested"
[ "$dups" -le "$flagged" ] || fail "provider duplicates $dups > deliveries flagged possible_duplicate $flagged"
[ "$dups" -le "$counted" ] || fail "provider duplicates $dups > dispatch's possible_duplicates $counted"
[ "$dups" -le "$reported" ] || fail "provider duplicates $dups > sla-report's possible_duplicates $reported"
echo "ok 4: provider duplicates $dups <= flagged $flagged, dispatch counted $counted, sla-report $reported; $n/$n accepted; run closed"
