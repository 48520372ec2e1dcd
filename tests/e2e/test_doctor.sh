#!/usr/bin/env bash
# daybreak doctor: a healthy set-up passes (exit 0, --json one object), and each broken
# condition fails its own row with a clear message and exit 1:
#   missing config, invalid config, world-readable config with an inline token, no senders,
#   unwritable database directory, database not created yet, disk space below the threshold,
#   an infeasible plan for the day, no time zone data, a token the provider rejects, an unknown
#   phone number id, an unreachable provider, a clock off the provider's, an unsynchronised
#   kernel clock (checked against what the kernel really says)
source "$(dirname "$0")/common.sh"

# doctor ARGS...: runs `daybreak doctor --json`, sets RC and OUT (the JSON)
doctor() { RC=0; OUT=$("$OP" doctor --json "$@" 2>"$WORK/doctor.err") || RC=$?; }
row_ok() { echo "$OUT" | json "[c['ok'] for c in j['checks'] if c['name']=='$1'][0]"; }
row_msg() { echo "$OUT" | json "[c['message'] for c in j['checks'] if c['name']=='$1'][0]"; }
expect_fail() {  # NAME PATTERN WHAT
  assert_eq "$RC" "1" "$3: exit code"
  assert_eq "$(row_ok "$1")" "False" "$3: row $1"
  row_msg "$1" | grep -Eq "$2" || fail "$3: message of $1 is '$(row_msg "$1")', expected /$2/"
}

D=2026-12-01
SRC=${DAYBREAK_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
start_sim doc --mps 80 --time-scale 10 --seed 1
# The schedule rows read the installed crontab and timers from these paths: the shipped crontab.
mkdir -p "$WORK/cron" "$WORK/systemd"
cp "$SRC/cron/daybreak.crontab" "$WORK/cron/daybreak"
write_config "$SIM_PORT" "[schedule]
crontabs = [\"$WORK/cron/daybreak\"]
systemd_dirs = [\"$WORK/systemd\"]"
seed_day 50 "$D"
CLK="2026-11-30T21:45:00+05:30@$(now_ms)*1"
export DAYBREAK_CLOCK=$CLK

# healthy: --check-providers also measures the clock against the provider's, which is what
# makes clock_sync checkable on a machine whose kernel clock no NTP client disciplines
doctor --min-free-mb 1 --check-providers
assert_eq "$RC" "0" "healthy doctor exit ($OUT)"
assert_eq "$(echo "$OUT" | json 'j["ok"]')" "True" "healthy ok"
assert_eq "$(echo "$OUT" | json 'j["date"]')" "$D" "the day doctor checks at 21:45 IST"
for n in config config_permissions timezone_data database_writable disk_space database_schema senders plan schedule:nightly schedule:dispatch provider:wa-1 clock_sync; do
  assert_eq "$(row_ok $n)" "True" "healthy row $n"
done
row_msg plan | grep -q "all feasible" || fail "plan row: $(row_msg plan)"
row_msg provider:wa-1 | grep -q "GET http://127.0.0.1:$SIM_PORT/v26.0/100000001: 200, credentials accepted" ||
  fail "provider row: $(row_msg provider:wa-1)"
row_msg clock_sync | grep -q "within 2000 ms of the provider's" || fail "clock row: $(row_msg clock_sync)"
grep -q "test-token" "$WORK/doctor.err" && fail "the token appears in doctor's log"
"$OP" doctor --min-free-mb 1 --check-providers | grep -q "doctor: all checks passed" || fail "text output"
row_msg schedule:nightly | grep -q "every minute through daybreak-at" || fail "schedule row: $(row_msg schedule:nightly)"
echo "ok healthy: every row passes"

# --- the installed schedule against [schedule], on this host's zone ---------------------------
# A crontab with fixed hours under CRON_TZ (what Debian's cron ignores) on a UTC host: wrong.
printf 'CRON_TZ=Asia/Kolkata\n30 21 * * * daybreak-job nightly -- daybreak-nightly\n59 5 * * * daybreak-job dispatch -- dispatch --supervise\n' >"$WORK/cron/daybreak"
TZ=UTC doctor --min-free-mb 1
expect_fail schedule:nightly "fires at .*T03:00:00\\+05:30.*ignores CRON_TZ" "CRON_TZ crontab on a UTC host"
expect_fail schedule:dispatch "fires at .*T11:29:00\\+05:30" "CRON_TZ crontab on a UTC host (dispatch)"
# The same fixed hours on a host whose zone is IST do fire at the right time.
TZ=Asia/Kolkata doctor --min-free-mb 1
assert_eq "$(row_ok schedule:nightly)" "True" "fixed-hour crontab on an IST host"
# Nothing installed at all.
rm "$WORK/cron/daybreak"
doctor --min-free-mb 1
expect_fail schedule:nightly "nothing installed starts it" "no schedule installed"
# The shipped systemd timers, enabled: right on a New York host; a timer without a zone is not.
cp "$SRC"/cron/systemd/*.timer "$WORK/systemd/"
mkdir -p "$WORK/systemd/timers.target.wants"
ln -s ../daybreak-nightly.timer ../daybreak-dispatch.timer "$WORK/systemd/timers.target.wants/"
TZ=America/New_York doctor --min-free-mb 1
assert_eq "$(row_ok schedule:nightly)" "True" "shipped nightly timer on a New York host ($(row_msg schedule:nightly))"
assert_eq "$(row_ok schedule:dispatch)" "True" "shipped dispatch timer on a New York host ($(row_msg schedule:dispatch))"
mkdir -p "$WORK/systemd/daybreak-nightly.timer.d"
printf '[Timer]\nOnCalendar=\nOnCalendar=*-*-* 21:30:00\n' >"$WORK/systemd/daybreak-nightly.timer.d/override.conf"
TZ=America/New_York doctor --min-free-mb 1
expect_fail schedule:nightly "OnCalendar=\\*-\\*-\\* 21:30:00 fires at .*T08:00:00\\+05:30.*host's America/New_York applies" "a drop-in timer without a zone"
rm -r "$WORK/systemd/daybreak-nightly.timer.d"
cp "$SRC/cron/daybreak.crontab" "$WORK/cron/daybreak"
# Not planned after the plan deadline (22:00 IST on the day before): the plan row fails.
DAYBREAK_CLOCK="2026-12-02T22:01:00+05:30@$(now_ms)*1" doctor --min-free-mb 1
expect_fail plan "2026-12-03: not planned by 22:00 Asia/Kolkata" "no plan after 22:00"
echo "ok schedule: CRON_TZ crontab on UTC wrong, IST host right, nothing installed, timers right, zone-less drop-in wrong, no plan by 22:00"

# missing config
DAYBREAK_CONFIG=$WORK/nope.toml doctor --min-free-mb 1
expect_fail config "no such file" "missing config"

# invalid config: an unknown key is named
{ echo 'workerz = 3'; cat "$WORK/daybreak.toml"; } >"$WORK/bad.toml"
DAYBREAK_CONFIG=$WORK/bad.toml doctor --min-free-mb 1
expect_fail config "workerz" "invalid config"

# world-readable config holding an inline token
cp "$WORK/daybreak.toml" "$WORK/open.toml"; chmod 644 "$WORK/open.toml"
DAYBREAK_CONFIG=$WORK/open.toml doctor --min-free-mb 1
expect_fail config_permissions "readable by others.*chmod 600" "world-readable inline secret"
assert_eq "$(row_ok config)" "True" "the rest of a world-readable config is still validated"

# no senders
grep -v -e '^\[\[whatsapp.senders\]\]' -e '^id = ' -e '^phone_number_id' -e '^token' -e '^mps' "$WORK/daybreak.toml" >"$WORK/nosend.toml"
DAYBREAK_CONFIG=$WORK/nosend.toml doctor --min-free-mb 1
expect_fail senders "no senders configured" "no senders"

# unwritable database directory (as root, probe as an unprivileged user: root writes anywhere)
mkdir -p "$WORK/ro"
if [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null || { echo "skip part: setpriv missing"; }
  pub=$(mktemp -d /tmp/daybreak-doctor-ro.XXXXXX); chmod 755 "$pub"; mkdir "$pub/db"; chmod 555 "$pub/db"
  sed "s|^path = .*|path = \"$pub/db/daybreak.db\"|" "$WORK/daybreak.toml" >"$pub/daybreak.toml"; chmod 644 "$pub/daybreak.toml"
  sed -i '/^token = /d; s|^\[\[whatsapp.senders\]\]|[[whatsapp.senders]]\ntoken_env = "WA_TOKEN"|' "$pub/daybreak.toml"
  RC=0; OUT=$(cd / && WA_TOKEN=x DAYBREAK_CONFIG=$pub/daybreak.toml setpriv --reuid=65534 --regid=65534 --clear-groups "$OP" doctor --json --min-free-mb 1 2>"$WORK/doctor.err") || RC=$?
  rm -rf "$pub"
else
  chmod 555 "$WORK/ro"
  sed "s|^path = .*|path = \"$WORK/ro/daybreak.db\"|" "$WORK/daybreak.toml" >"$WORK/ro.toml"
  DAYBREAK_CONFIG=$WORK/ro.toml doctor --min-free-mb 1
  chmod 755 "$WORK/ro"
fi
expect_fail database_writable "cannot create files there" "unwritable database directory"
expect_fail database_schema "does not exist yet" "no database file"

# not enough disk space
doctor --min-free-mb 100000000
expect_fail disk_space "MB free on the database's file system \(threshold 100000000 MB\)" "disk space"

# an infeasible plan: mark the run infeasible as plan-deliveries would with too little capacity
sql "UPDATE runs SET feasible=0, plan_report=json_set(plan_report, '$.recommendation', 'add a sender or lower utilisation') WHERE date='$D'"
doctor --min-free-mb 1
expect_fail plan "infeasible: add a sender" "infeasible plan"
echo "ok broken: missing/invalid config, exposed secret, no senders, unwritable dir, no database, disk, infeasible plan"

# --- provider credentials: a harmless GET of the phone number object --------------------------
# a token the provider does not accept: 401, Meta's error code 190
start_sim tok --token the-right-token
good_port=$SIM_PORT
sed "s|127.0.0.1:[0-9]*|127.0.0.1:$good_port|" "$WORK/daybreak.toml" >"$WORK/badtoken.toml"
DAYBREAK_CONFIG=$WORK/badtoken.toml doctor --min-free-mb 1 --check-providers
expect_fail provider:wa-1 "HTTP 401, error 190 .*token rejected: renew it" "rejected token"
# the right token is accepted by the same provider
sed -i 's|^token = .*|token = "the-right-token"|' "$WORK/badtoken.toml"
DAYBREAK_CONFIG=$WORK/badtoken.toml doctor --min-free-mb 1 --check-providers
assert_eq "$(row_ok provider:wa-1)" "True" "right token ($(row_msg provider:wa-1))"
# a phone number id the provider does not know: error 100
sed 's|^phone_number_id = .*|phone_number_id = "wa-number-typo"|' "$WORK/badtoken.toml" >"$WORK/badid.toml"
DAYBREAK_CONFIG=$WORK/badid.toml doctor --min-free-mb 1 --check-providers
expect_fail provider:wa-1 "HTTP 400, error 100 .*check phone_number_id wa-number-typo" "unknown phone number id"
# nobody listening at graph_base
closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed "s|127.0.0.1:[0-9]*|127.0.0.1:$closed|" "$WORK/daybreak.toml" >"$WORK/down.toml"
DAYBREAK_CONFIG=$WORK/down.toml doctor --min-free-mb 1 --check-providers
expect_fail provider:wa-1 "GET http://127.0.0.1:$closed/.*(Could not|Couldn't) connect" "unreachable provider"
echo "ok providers: rejected token (190), unknown number id (100), unreachable provider; right token accepted"

# --- the clock -----------------------------------------------------------------------------
# five minutes ahead of the provider (faketime moves doctor's clock, not the simulator's)
if command -v faketime >/dev/null; then
  RC=0; OUT=$(faketime -f '+300s' "$OP" doctor --json --min-free-mb 1 --check-providers 2>"$WORK/doctor.err") || RC=$?
  expect_fail clock_sync "system clock is (29[0-9]|3[0-9][0-9])[0-9]{3} ms ahead of the provider's" "clock five minutes ahead"
  RC=0; OUT=$(faketime -f '-90s' "$OP" doctor --json --min-free-mb 1 --check-providers 2>"$WORK/doctor.err") || RC=$?
  expect_fail clock_sync "system clock is [0-9]+ ms behind the provider's" "clock behind"
  echo "ok clock: 5 min ahead and 90 s behind the provider's Date are caught"
else
  echo "skip part: faketime missing (clock offset)"
fi
# without a provider to compare with, the kernel's own view decides (adjtimex, as timedatectl):
# this machine's real state, read here the same way, must be what doctor reports
synced=$(python3 -c '
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
st = libc.adjtimex(buf)
maxerror = int.from_bytes(buf.raw[24:32], "little", signed=True)  # x86-64/aarch64 layout
print(1 if st != -1 and maxerror < 16000000 else 0)')
doctor --min-free-mb 1
if [ "$synced" = 1 ]; then
  assert_eq "$(row_ok clock_sync)" "True" "clock_sync with a synchronised kernel"
  row_msg clock_sync | grep -q "kernel reports it synchronised" || fail "clock row: $(row_msg clock_sync)"
else
  expect_fail clock_sync "kernel reports it not synchronised.*chrony or systemd-timesyncd" "unsynchronised kernel clock"
fi
echo "ok kernel clock: reported as the kernel says (synchronised=$synced)"

# --- no time zone data: hide /usr/share/zoneinfo in a private mount namespace --------------------
if unshare -m true 2>/dev/null; then
  RC=0
  OUT=$(unshare -m sh -c 'mount -t tmpfs none /usr/share/zoneinfo && exec "$@"' sh "$OP" doctor --json --min-free-mb 1 2>"$WORK/doctor.err") || RC=$?
  expect_fail timezone_data "Asia/Kolkata: .*install the tzdata package" "no time zone data"
  echo "ok tz: missing zoneinfo is named"
else
  echo "skip part: unshare -m not permitted (no time zone data)"
fi
