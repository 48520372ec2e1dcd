#!/usr/bin/env bash
# daybreak backup / restore:
#  1. a backup taken in many small steps while dispatch is sending: dispatch is not held up (the
#     run closes with every delivery accepted, none late), the copy passes integrity_check, is
#     owner-only, and is one consistent snapshot
#  2. restore is refused while the dispatch holds a live lease, and while the cron wrapper's
#     dispatch lock is held
#  3. restore after the run: the database is back to the backup, the replaced one kept as
#     DB.pre-restore (the backup is mid-run: --force; test_restore_midrun has the rest)
#  4. a corrupt backup, a file that is not a daybreak database and a backup from a newer schema
#     are refused before anything is touched
source "$(dirname "$0")/common.sh"

D=2026-12-01
start_sim bk --mps 80 --time-scale 10 --seed 1 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
seed_day 800 "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
export DAYBREAK_LOCK_DIR=$WORK/lock
mkdir -p "$DAYBREAK_LOCK_DIR"

# --- 1. backup beside a running dispatch ----------------------------------------------------
# real time (scale 1): 800 deliveries at 56/s keep dispatch sending for ~15 s, longer than the
# backup takes on a loaded machine
CLK=$(clock_at "${D}T05:59:28+05:30" 1)
DAYBREAK_CLOCK=$CLK "$DISPATCH" --run "$run" --json >"$WORK/dispatch.json" 2>"$WORK/dispatch.log" &
dpid=$!
for _ in $(seq 1 300); do
  [ "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" -gt 20 ] && break
  sleep 0.02
done
# 1 page per step with a pause: the copy spans many of dispatch's commits
out=$("$OP" backup --to "$WORK/b1.db" --pages-per-step 1 --step-pause-ms 2 --json 2>"$WORK/backup.err") ||
  { cat "$WORK/backup.err"; fail "backup during dispatch exited $?"; }
kill -0 "$dpid" 2>/dev/null || fail "dispatch finished before the backup did; nothing was tested"
steps=$(echo "$out" | json 'j["steps"]')
[ "$steps" -gt 10 ] || fail "backup took only $steps steps"
assert_eq "$(echo "$out" | json 'j["integrity"]')" "ok" "backup integrity"
assert_eq "$(stat -c %a "$WORK/b1.db")" "600" "backup file mode"
[ ! -e "$WORK/b1.db.tmp" ] || fail "temporary copy left behind"

rc=0; wait "$dpid" || rc=$?
assert_eq "$rc" "0" "dispatch exit code beside the backup"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$n" "accepted after the backup"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND accepted_at > deadline_at")" "0" "late deliveries"
# The copy is one snapshot: every delivery in it is in a state dispatch really wrote, and its
# accepted count lies between what was accepted before and after the copy.
acc_b=$(sqlite3 "$WORK/b1.db" "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")
[ "$acc_b" -gt 20 ] && [ "$acc_b" -le "$n" ] || fail "backup holds $acc_b accepted of $n"
assert_eq "$(sqlite3 "$WORK/b1.db" "PRAGMA integrity_check")" "ok" "integrity_check of the copy by sqlite3"
assert_eq "$(sqlite3 "$WORK/b1.db" "PRAGMA journal_mode")" "delete" "the copy is one self-contained file"
echo "ok 1: backup in $steps steps beside dispatch; run closed with $n/$n accepted, none late; copy holds $acc_b accepted"

# --- 2. restore refused while a dispatch holds a live lease -----------------------------------
# The lease as a running dispatch leaves it in the ledger (owner, lease_until ahead of the clock);
# set here rather than raced against a real dispatch's last seconds.
sql "UPDATE runs SET owner='otherhost:4242:abcd', lease_until=(SELECT window_end FROM runs WHERE run_id=$run) WHERE run_id=$run"
rc=0; DAYBREAK_CLOCK=$(clock_at "${D}T06:00:10+05:30" 1) "$OP" restore --from "$WORK/b1.db" 2>"$WORK/restore1.err" || rc=$?
assert_eq "$rc" "1" "restore under a live lease: exit code"
grep -q "a dispatch holds a live lease: run $run ($D) leased by otherhost:4242:abcd" "$WORK/restore1.err" || fail "restore refusal: $(cat "$WORK/restore1.err")"
sql "UPDATE runs SET owner=NULL, lease_until=NULL WHERE run_id=$run"

# the cron wrapper's dispatch lock held (a dispatch job starting or running): refused
exec 9>>"$DAYBREAK_LOCK_DIR/dispatch.lock"
flock -n 9 || fail "cannot take the dispatch lock for the test"
rc=0; "$OP" restore --from "$WORK/b1.db" 9>&- 2>"$WORK/restore2.err" || rc=$?
exec 9>&-
assert_eq "$rc" "1" "restore while the dispatch lock is held"
grep -q "dispatch.lock is locked" "$WORK/restore2.err" || fail "lock refusal: $(cat "$WORK/restore2.err")"
echo "ok 2: restore refused under a live lease and under the dispatch lock"

# --- 3. restore ------------------------------------------------------------------------------
before=$(sql "SELECT COUNT(*) FROM deliveries WHERE state='accepted'")
# the snapshot holds the dispatch's lease; past its expiry (06:01 IST) a restore is allowed
rc=0
out=$(DAYBREAK_CLOCK=$(clock_at "${D}T06:01:00+05:30" 1) "$OP" restore --from "$WORK/b1.db" --force --json 2>"$WORK/restore3.err") || rc=$?
[ "$rc" = 0 ] || { cat "$WORK/restore3.err"; fail "restore exited $rc"; }
assert_eq "$(echo "$out" | json 'j["integrity"]')" "ok" "restore integrity"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$acc_b" "accepted after restore"
assert_eq "$(echo "$out" | json 'j["marked_uncertain"]')" "$((n - acc_b))" "unfinished deliveries marked uncertain"
assert_eq "$(sqlite3 "$DB.pre-restore" "SELECT COUNT(*) FROM deliveries WHERE state='accepted'")" "$before" "the replaced database's copy"
assert_eq "$(sql "PRAGMA journal_mode")" "wal" "restored database journal mode"
# the restored run resumes: a new dispatch finishes what the snapshot had not
DAYBREAK_CLOCK=$(clock_at "${D}T06:01:00+05:30" 4) "$DISPATCH" --run "$run" >/dev/null 2>"$WORK/dispatch2.log" || fail "dispatch after restore"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$n" "accepted after resuming the restored run"
echo "ok 3: restored to $acc_b accepted; previous database kept; the run resumed to $n"

# --- 4. bad backups are refused before anything changes ---------------------------------------
now=$(sql "SELECT COUNT(*) FROM deliveries WHERE state='accepted'")
cp "$WORK/b1.db" "$WORK/corrupt.db"
# overwrite a page in the middle of the file (not the header): integrity_check must catch it
size=$(stat -c %s "$WORK/corrupt.db")
dd if=/dev/urandom of="$WORK/corrupt.db" bs=4096 seek=$((size / 4096 / 2)) count=2 conv=notrunc 2>/dev/null
rc=0; "$OP" restore --from "$WORK/corrupt.db" 2>"$WORK/restore4.err" || rc=$?
assert_eq "$rc" "1" "corrupt backup: exit code"
grep -Eq "refusing to restore .*corrupt.db: (integrity_check failed|.*malformed)" "$WORK/restore4.err" || fail "corrupt: $(cat "$WORK/restore4.err")"
sqlite3 "$WORK/other.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1);"
rc=0; "$OP" restore --from "$WORK/other.db" 2>"$WORK/restore5.err" || rc=$?
assert_eq "$rc" "1" "foreign database: exit code"
grep -q "not a daybreak database" "$WORK/restore5.err" || fail "foreign: $(cat "$WORK/restore5.err")"
cp "$WORK/b1.db" "$WORK/newer.db"
sqlite3 "$WORK/newer.db" "INSERT INTO schema_migrations(version, name) VALUES (999, '999_future.sql')"
rc=0; "$OP" restore --from "$WORK/newer.db" 2>"$WORK/restore6.err" || rc=$?
assert_eq "$rc" "1" "newer schema: exit code"
grep -q "schema version 999 is newer than this build" "$WORK/restore6.err" || fail "newer: $(cat "$WORK/restore6.err")"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE state='accepted'")" "$now" "database untouched by refused restores"
echo "ok 4: corrupt, foreign and newer-schema backups refused; database untouched"
