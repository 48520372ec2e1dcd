#!/usr/bin/env bash
# daybreak doctor: a healthy set-up passes (exit 0, --json one object), and each broken
# condition fails its own row with a clear message and exit 1:
#   missing config, invalid config, world-readable config with an inline token, no senders,
#   unwritable database directory, database not created yet, disk space below the threshold,
#   an infeasible plan for the day
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
start_sim doc --mps 80 --time-scale 10 --seed 1
write_config "$SIM_PORT"
seed_day 50 "$D"
CLK="2026-11-30T21:45:00+05:30@$(now_ms)*1"
export DAYBREAK_CLOCK=$CLK

# healthy
doctor --min-free-mb 1
assert_eq "$RC" "0" "healthy doctor exit ($OUT)"
assert_eq "$(echo "$OUT" | json 'j["ok"]')" "True" "healthy ok"
assert_eq "$(echo "$OUT" | json 'j["date"]')" "$D" "the day doctor checks at 21:45 IST"
for n in config config_permissions timezone_data database_writable disk_space database_schema senders plan; do
  assert_eq "$(row_ok $n)" "True" "healthy row $n"
done
row_msg plan | grep -q "all feasible" || fail "plan row: $(row_msg plan)"
"$OP" doctor --min-free-mb 1 | grep -q "doctor: all checks passed" || fail "text output"
echo "ok healthy: every row passes"

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
