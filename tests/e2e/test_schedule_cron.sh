#!/usr/bin/env bash
# The schedule with the real Debian cron daemon (package cron), not a stand-in. Debian 12's cron
# ignores CRON_TZ, so the shipped crontab runs every minute and daybreak-at decides in IST.
#
# The daemon runs in a private mount namespace (its own /etc/cron.d, crontab spool and /run, so
# the machine's cron, if any, is untouched) under libfaketime at 20x, started a little before
# the minute under test; the crontab gives the jobs a DAYBREAK_CLOCK anchored at the same real
# instant at the same speed, so daybreak's clock and cron's agree. The shipped crontab is
# installed with `crontab -u` (its PATH and DAYBREAK_CONFIG pointed at this install, the
# all-day watchdog and alerts lines left out: they run every minute by design), and the real
# installed jobs run: daybreak-nightly (assign-fallback, plan-deliveries, doctor) and dispatch.
#  1. host zone UTC, then America/New_York (cron's TZ): from 21:29 to 21:32 IST the nightly
#     starts once, at 21:30 IST; dispatch does not start. From 05:58 to 06:01 IST dispatch
#     starts once, at 05:59 IST; the nightly does not start.
#  2. catch-up: cron (the host) comes up at 21:44:50 IST with that night's nightly not run:
#     it starts at the first tick, 21:45, and not again.
#  3. systemd-analyze calendar on the shipped timers: the next elapses are 21:30 and 05:59 IST
#     (16:00 and 00:29 UTC) with the machine in UTC and in America/New_York.
source "$(dirname "$0")/common.sh"
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root (mount namespace for a private cron)"; exit 125; }
for t in cron crontab unshare faketime; do command -v "$t" >/dev/null || { echo "skip: $t missing"; exit 125; }; done
LIBFAKETIME=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
[ -n "$LIBFAKETIME" ] || { echo "skip: libfaketime.so.1 not found"; exit 125; }
BUILD=$(cd "$DAYBREAK_BIN/.." && pwd)
SRC=${DAYBREAK_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
SPEED=20

PREFIX=$WORK/prefix
cmake --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "cmake --install"; }
[ -x "$PREFIX/libexec/daybreak/daybreak-at" ] || fail "daybreak-at is not installed"
CRONTAB=$PREFIX/share/daybreak/daybreak.crontab
grep -q '^CRON_TZ' "$CRONTAB" && fail "the shipped crontab still relies on CRON_TZ"
write_config 9 "[schedule]
crontabs = []
systemd_dirs = []"
mkdir -p "$WORK/log" "$WORK/lock"
chmod 700 "$WORK/lock"

# run_cron ZONE START_UTC MINUTES: cron for MINUTES fake minutes from START_UTC (a UTC time),
# with the machine's zone ZONE; the fake-to-real anchor of this run is in R0 and F0.
run_cron() {
  local zone=$1 start=$2 minutes=$3
  F0=$(date -u -d "$start" +%s%3N)
  R0=$(now_ms)
  local iso
  iso=$(date -u -d "@$((F0 / 1000))" +%Y-%m-%dT%H:%M:%SZ)
  {
    echo "DAYBREAK_CLOCK=${iso}@${R0}*${SPEED}"
    echo "DAYBREAK_LOCK_DIR=$WORK/lock"
    echo "DAYBREAK_LOG_DIR=$WORK/log"
    echo "MAILTO=\"\""
    sed -e "s#^PATH=.*#PATH=$PREFIX/libexec/daybreak:$PREFIX/bin:/usr/bin:/bin#" \
        -e "s#^DAYBREAK_CONFIG=.*#DAYBREAK_CONFIG=$DAYBREAK_CONFIG#" -e '/^MAILTO=/d' "$CRONTAB" |
      grep -v -e 'daybreak-watchdog' -e 'alerts check'
  } >"$WORK/crontab"
  grep -q '^\* \* \* \* \*  *daybreak-at nightly' "$WORK/crontab" || fail "no every-minute nightly entry in the crontab"
  local secs=$(( (minutes * 60 + 10) / SPEED + 2 ))
  # shellcheck disable=SC2016
  unshare -m bash -c '
    set -e
    mount -t tmpfs -o mode=755 none /etc/cron.d
    mount -t tmpfs -o mode=1730 none /var/spool/cron/crontabs
    chgrp crontab /var/spool/cron/crontabs
    : >"$1/empty-crontab"; mount --bind "$1/empty-crontab" /etc/crontab
    mount -t tmpfs none /run
    crontab -u root "$1/crontab"
    TZ=$2 FAKETIME="@$3 x$4" LD_PRELOAD=$5 exec timeout "$6" cron -f
  ' _ "$WORK" "$zone" "$(date -u -d "@$((F0 / 1000))" '+%Y-%m-%d %H:%M:%S')" "$SPEED" "$LIBFAKETIME" "$secs" || true
  # the last jobs finish
  for _ in $(seq 1 100); do
    flock -n "$WORK/lock/nightly.lock" true && flock -n "$WORK/lock/dispatch.lock" true && break
    sleep 0.1
  done
}

# starts JOB: the IST minutes (HH:MM, one a line) at which JOB's wrapper logged "start:" in the
# last run_cron, from the wrapper's real timestamps mapped onto the fake clock.
starts() {
  local job=$1
  [ -f "$WORK/log/$job.log" ] || return 0
  grep " $job: start:" "$WORK/log/$job.log" | awk '{print $1}' | while read -r stamp; do
    local real fake
    real=$(date -u -d "$stamp" +%s%3N)
    [ "$real" -ge "$R0" ] || continue
    fake=$(( F0 + (real - R0) * SPEED ))
    TZ=Asia/Kolkata date -d "@$((fake / 1000))" +%H:%M
  done
}

for zone in UTC America/New_York; do
  case $zone in UTC) d0=2026-11-27 ;; *) d0=2026-11-28 ;; esac
  d1=$(date -d "$d0 +1 day" +%F)
  # 21:28:50 IST = 15:58:50 UTC: ticks at 21:29, 21:30, 21:31, 21:32 IST
  run_cron "$zone" "$d0 15:58:50 UTC" 4
  n=$(starts nightly); d=$(starts dispatch)
  assert_eq "$(echo "$n" | grep -c .)" "1" "nightly starts between 21:29 and 21:32 IST, host in $zone (got: $n)"
  assert_eq "$n" "21:30" "the nightly's start, host in $zone"
  assert_eq "$(echo "$d" | grep -c .)" "0" "dispatch starts between 21:29 and 21:32 IST, host in $zone (got: $d)"
  grep -q "daybreak-nightly: assign-fallback --date $d1" "$WORK/log/nightly.log" || { cat "$WORK/log/nightly.log"; fail "the nightly did not plan $d1"; }
  [ "$(sql "SELECT COUNT(*) FROM schedule_fires WHERE job='nightly'")" = 1 ] || fail "no schedule_fires row for the nightly"
  mv "$WORK/log/nightly.log" "$WORK/log/nightly-${zone//\//_}-$d0.log"
  # 05:57:50 IST = 00:27:50 UTC of the next day: ticks at 05:58, 05:59, 06:00, 06:01 IST
  run_cron "$zone" "$d1 00:27:50 UTC" 4
  n=$(starts nightly); d=$(starts dispatch)
  assert_eq "$(echo "$d" | grep -c .)" "1" "dispatch starts between 05:58 and 06:01 IST, host in $zone (got: $d)"
  assert_eq "$d" "05:59" "dispatch's start, host in $zone"
  assert_eq "$(echo "$n" | grep -c .)" "0" "nightly starts between 05:58 and 06:01 IST, host in $zone (got: $n)"
  grep -q "dispatch: end: exit 0" "$WORK/log/dispatch.log" || { cat "$WORK/log/dispatch.log"; fail "dispatch did not end with exit 0"; }
  mv "$WORK/log/dispatch.log" "$WORK/log/dispatch-${zone//\//_}-$d1.log"
  echo "ok 1: real cron, host zone $zone: the nightly started at 21:30 IST only, dispatch at 05:59 IST only"
done

# --- 2. a nightly missed while the host was down runs when it is back -------------------------
run_cron UTC "2026-11-29 16:14:50 UTC" 3   # 21:44:50 IST; ticks 21:45, 21:46, 21:47
n=$(starts nightly)
assert_eq "$n" "21:45" "the missed nightly's catch-up start"
echo "ok 2: a nightly missed at 21:30 (host down) started at the first tick after, 21:45 IST, once"

# --- 3. the shipped systemd timers, read by systemd-analyze ----------------------------------
if command -v systemd-analyze >/dev/null; then
  for zone in UTC America/New_York; do
    for pair in "daybreak-nightly.timer 16:00:00" "daybreak-dispatch.timer 00:29:00"; do
      set -- $pair
      spec=$(sed -n 's/^OnCalendar=//p' "$SRC/cron/systemd/$1")
      out=$(TZ=$zone systemd-analyze calendar --iterations=2 "$spec") || fail "systemd-analyze calendar \"$spec\""
      # "(in UTC): Sun 2026-12-06 16:00:00 UTC" lines; with the machine in UTC systemd-analyze
      # prints the elapses themselves in UTC and leaves those lines out.
      utc=$(echo "$out" | sed -n 's/.*(in UTC): [A-Za-z]* [0-9-]* \([0-9:]*\) UTC$/\1/p' | sort -u)
      [ -n "$utc" ] || utc=$(echo "$out" | sed -n 's/.*\(Next elapse\|Iter\. #2\): [A-Za-z]* [0-9-]* \([0-9:]*\) UTC$/\2/p' | sort -u)
      assert_eq "$utc" "$2" "$1 next elapses in UTC, machine in $zone"
    done
  done
  echo "ok 3: systemd-analyze: the nightly timer elapses at 16:00 UTC (21:30 IST), dispatch at 00:29 UTC (05:59 IST), machine in UTC or New York"
else
  echo "ok 3: skipped (no systemd-analyze)"
fi
