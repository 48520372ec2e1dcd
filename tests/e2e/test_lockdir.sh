#!/usr/bin/env bash
# The lock directory of cron/daybreak-job (and daybreak-watchdog) must be private to the user
# running the jobs: /run/lock is writable by every local user, so a directory someone else made
# there first could hold the locks (nothing would ever run) or plant a symlink to append to.
#  1. a missing directory is created 0700 and the job runs
#  2. a directory writable by others (0777), or group-writable (0770): exit 3, message on stderr, job not run
#  3. a directory owned by another user (nobody; as root only): exit 3
#  4. a lock file that is a symlink: exit 3, the symlink's target untouched
#  5. a lock file owned by another user (as root only): exit 3
#  6. a lock directory that is a symlink: exit 3
#  7. daybreak-watchdog refuses the same directory by itself (run by hand, outside the wrapper)
source "$(dirname "$0")/common.sh"
SRC=${DAYBREAK_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
JOB=$SRC/cron/daybreak-job
WATCHDOG=$SRC/cron/daybreak-watchdog
export DAYBREAK_LOG_DIR=$WORK/log

# run_job LOCKDIR NAME: runs `touch $WORK/ran.NAME` through the wrapper; sets RC and ERR.
run_job() {
  RC=0
  DAYBREAK_LOCK_DIR=$1 "$JOB" "$2" -- touch "$WORK/ran.$2" 2>"$WORK/err.$2" || RC=$?
  ERR=$(cat "$WORK/err.$2")
}
# refused NAME PATTERN WHAT: the job NAME exited 3 with PATTERN on stderr and did not run
refused() {
  assert_eq "$RC" "3" "$3: exit code"
  grep -Eq "$2" <<<"$ERR" || fail "$3: stderr does not match /$2/: $ERR"
  [ ! -e "$WORK/ran.$1" ] || fail "$3: the job ran anyway"
}

# --- 1. missing: created 0700, the job runs ---------------------------------------------------
fresh=$WORK/run/lock/daybreak   # its parents are missing too
run_job "$fresh" fresh
assert_eq "$RC" "0" "fresh lock dir: exit code ($ERR)"
[ -e "$WORK/ran.fresh" ] || fail "fresh lock dir: the job did not run"
assert_eq "$(stat -c %a "$fresh")" "700" "mode of the created lock directory"
assert_eq "$(stat -c %u "$fresh")" "$(id -u)" "owner of the created lock directory"
grep -q "fresh: end: exit 0" "$DAYBREAK_LOG_DIR/fresh.log" || fail "fresh lock dir: no end line in the job log"
# and again, with the directory and lock file now in place
rm -f "$WORK/ran.fresh"; run_job "$fresh" fresh
assert_eq "$RC" "0" "existing private lock dir: exit code ($ERR)"
echo "ok 1: a missing lock directory is created 0700 and the job runs"

# --- 2. writable by others or by the group ------------------------------------------------------
open_dir=$WORK/open; mkdir -m 0777 "$open_dir"; chmod 0777 "$open_dir"
run_job "$open_dir" open
refused open "lock directory $open_dir is writable by group or others \(mode 777\)" "mode 0777"
[ ! -e "$open_dir/open.lock" ] || fail "mode 0777: a lock file was created in it"
chmod 0770 "$open_dir"; run_job "$open_dir" open
refused open "writable by group or others \(mode 770\)" "mode 0770"
chmod 0700 "$open_dir"; run_job "$open_dir" open
assert_eq "$RC" "0" "after chmod 700: exit code ($ERR)"
echo "ok 2: a group- or world-writable lock directory is refused (exit 3), accepted after chmod 700"

# --- 3. owned by another user ----------------------------------------------------------------
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  theirs=$WORK/theirs; mkdir -m 0700 "$theirs"; chown nobody "$theirs"
  run_job "$theirs" theirs
  refused theirs "lock directory $theirs is owned by uid $(id -u nobody), not by $(id -un)" "directory owned by nobody"
  echo "ok 3: a lock directory owned by another user is refused (exit 3)"
else
  echo "skip 3: needs root to make a directory owned by nobody"
fi

# --- 4. a symlinked lock file ------------------------------------------------------------------
mine=$WORK/mine; mkdir -m 0700 "$mine"
echo "precious" >"$WORK/target"
ln -s "$WORK/target" "$mine/linked.lock"
run_job "$mine" linked
refused linked "lock file $mine/linked.lock is a symbolic link" "symlinked lock file"
assert_eq "$(cat "$WORK/target")" "precious" "the symlink's target"
# a dangling one too (it would have been created through the link)
ln -s "$WORK/nowhere" "$mine/dangling.lock"
run_job "$mine" dangling
refused dangling "is a symbolic link" "dangling symlinked lock file"
[ ! -e "$WORK/nowhere" ] || fail "the dangling symlink's target was created"
echo "ok 4: a symlinked lock file is refused (exit 3), its target untouched"

# --- 5. a lock file owned by another user -------------------------------------------------------
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  : >"$mine/planted.lock"; chown nobody "$mine/planted.lock"
  run_job "$mine" planted
  refused planted "lock file $mine/planted.lock is owned by uid $(id -u nobody)" "lock file owned by nobody"
  echo "ok 5: a lock file owned by another user is refused (exit 3)"
else
  echo "skip 5: needs root to make a file owned by nobody"
fi

# --- 6. a symlinked lock directory ----------------------------------------------------------------
ln -s "$mine" "$WORK/linkdir"
run_job "$WORK/linkdir" linkdir
refused linkdir "lock directory $WORK/linkdir is a symbolic link" "symlinked lock directory"
echo "ok 6: a lock directory that is a symlink is refused (exit 3)"

# --- 7. the watchdog on its own ----------------------------------------------------------------------
chmod 0777 "$open_dir"
RC=0; DAYBREAK_LOCK_DIR=$open_dir "$WATCHDOG" 2>"$WORK/wd.err" || RC=$?
assert_eq "$RC" "3" "watchdog with a world-writable lock dir: exit code"
grep -q "is not private" "$WORK/wd.err" || fail "watchdog: no message on stderr: $(cat "$WORK/wd.err")"
echo "ok 7: daybreak-watchdog refuses a lock directory that is not private (exit 3)"
