#!/usr/bin/env bash
# Secrets are read by the commands that use them, not at configuration load: with a sender's
# token_env (and the app secret's variable) not set in the shell,
#  1. the nightly steps and the operator's read-only commands run: assign-fallback,
#     plan-deliveries, daybreak status --json, export, dead list, doctor (its senders row is ok)
#  2. the commands that need the secret stop with exit 3 naming the key and the variable, having
#     sent nothing: dispatch, daybreak-callbacks; doctor --check-providers fails the provider row
#  3. with the variable exported, doctor --check-providers sends the token and passes that row
source "$(dirname "$0")/common.sh"
CALLBACKS=$DAYBREAK_BIN/daybreak-callbacks/daybreak-callbacks
VAR=DAYBREAK_E2E_WA1_TOKEN_NOT_EXPORTED
APPVAR=DAYBREAK_E2E_APP_SECRET_NOT_EXPORTED
unset "$VAR" "$APPVAR"

D=2026-12-01
start_sim sec --mps 80 --time-scale 10 --seed 1
write_config "$SIM_PORT"
sed -i "s|^token = .*|token_env = \"$VAR\"|; s|^\[whatsapp\]$|[whatsapp]\napp_secret_env = \"$APPVAR\"|" "$WORK/daybreak.toml"
grep -q "^token_env = \"$VAR\"" "$WORK/daybreak.toml" || fail "test set-up: token_env not in the config"
grep -q "^app_secret_env = \"$APPVAR\"" "$WORK/daybreak.toml" || fail "test set-up: app_secret_env not in the config"
grep -q '^token = ' "$WORK/daybreak.toml" && fail "test set-up: an inline token is left"

# --- 1. what sends nothing runs without the variables -----------------------------------------------
seed_day 30 "$D"   # import, assign-fallback and plan-deliveries, all without the token
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
[ -n "$run" ] || fail "plan-deliveries made no run"
export DAYBREAK_CLOCK="2026-11-30T21:45:00+05:30@$(now_ms)*1"
RC=0; OUT=$("$OP" status --json 2>"$WORK/status.err") || RC=$?
assert_eq "$RC" "0" "daybreak status --json without $VAR: exit code ($(cat "$WORK/status.err"))"
echo "$OUT" | json 'j' >/dev/null || fail "status --json is not one JSON object: $OUT"
RC=0; "$OP" export deliveries --from "$D" --to "$D" --format csv >"$WORK/export.csv" 2>"$WORK/export.err" || RC=$?
assert_eq "$RC" "0" "daybreak export without $VAR: exit code ($(cat "$WORK/export.err"))"
assert_eq "$(($(wc -l <"$WORK/export.csv") - 1))" "30" "exported deliveries"
RC=0; "$OP" dead list --json >/dev/null 2>"$WORK/dead.err" || RC=$?
assert_eq "$RC" "0" "daybreak dead list without $VAR: exit code ($(cat "$WORK/dead.err"))"
RC=0; OUT=$("$OP" doctor --json --min-free-mb 1 2>"$WORK/doctor.err") || RC=$?
[ "$RC" = 0 ] || [ "$RC" = 1 ] || fail "doctor without $VAR: exit code $RC ($(cat "$WORK/doctor.err"))"
assert_eq "$(echo "$OUT" | json "[c['ok'] for c in j['checks'] if c['name']=='senders'][0]")" "True" "doctor's senders row"
assert_eq "$(echo "$OUT" | json "[c['ok'] for c in j['checks'] if c['name']=='config'][0]")" "True" "doctor's config row"
echo "ok 1: assign-fallback, plan-deliveries, status, export, dead list and doctor run without $VAR"

# --- 2. what needs the secret names it and stops ---------------------------------------------------
RC=0; DAYBREAK_CLOCK=$(clock_at "${D}T05:59:50+05:30" 1) "$DISPATCH" --run "$run" 2>"$WORK/dispatch.err" || RC=$?
assert_eq "$RC" "3" "dispatch without $VAR: exit code"
grep -q "whatsapp.senders\[0\].token_env\" names environment variable $VAR, which is not set" "$WORK/dispatch.err" ||
  fail "dispatch's error does not name the key and the variable: $(cat "$WORK/dispatch.err")"
assert_eq "$(sim_stats | json 'j["requests"]')" "0" "requests the provider saw"
assert_eq "$(sql "SELECT COUNT(*) FROM runs WHERE run_id=$run AND owner IS NOT NULL")" "0" "runs leased by the refused dispatch"

RC=0; timeout 20 "$CALLBACKS" --listen 127.0.0.1:0 2>"$WORK/callbacks.err" || RC=$?
assert_eq "$RC" "3" "daybreak-callbacks without $APPVAR: exit code"
grep -q "whatsapp.app_secret_env\" names environment variable $APPVAR" "$WORK/callbacks.err" ||
  fail "daybreak-callbacks' error does not name the key and the variable: $(cat "$WORK/callbacks.err")"

RC=0; OUT=$("$OP" doctor --json --min-free-mb 1 --check-providers 2>"$WORK/doctor.err") || RC=$?
assert_eq "$RC" "1" "doctor --check-providers without $VAR: exit code"
msg=$(echo "$OUT" | json "[c['message'] for c in j['checks'] if c['name']=='provider:wa-1'][0]")
grep -q "names environment variable $VAR, which is not set" <<<"$msg" || fail "doctor's provider row: $msg"
assert_eq "$(sim_stats | json 'j["requests"]')" "0" "requests the provider saw"
echo "ok 2: dispatch and daybreak-callbacks exit 3 naming the variable; doctor --check-providers fails the provider row"

# --- 3. exported, the token is read and sent -------------------------------------------------------
RC=0; OUT=$(env "$VAR=EAAB-e2e" "$OP" doctor --json --min-free-mb 1 --check-providers 2>"$WORK/doctor.err") || RC=$?
msg=$(echo "$OUT" | json "[c['message'] for c in j['checks'] if c['name']=='provider:wa-1'][0]")
grep -q "200, credentials accepted" <<<"$msg" || fail "doctor's provider row with $VAR set: $msg"
echo "ok 3: with $VAR exported the token is read and accepted"

# --- 4. refused at load or on read: exit 3, naming what is wrong --------------------------------
# expect3 NAME CONFIG PATTERN [CMD...]: CMD (default `daybreak status`) with CONFIG exits 3 and
# its stderr matches PATTERN.
expect3() {
  local name=$1 cfg=$2 pattern=$3; shift 3
  local rc=0
  if [ $# -eq 0 ]; then set -- "$OP" status; fi
  DAYBREAK_CONFIG=$cfg "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
  assert_eq "$rc" "3" "$name: exit code ($(cat "$WORK/$name.err"))"
  grep -q -- "$pattern" "$WORK/$name.err" || fail "$name: stderr does not say \"$pattern\": $(cat "$WORK/$name.err")"
}
BASE=$WORK/daybreak.toml
# a token file group or others may read: refused at load (nothing read), naming the file and mode
printf 'EAAB-from-file\n' >"$WORK/wa1.token"; chmod 0640 "$WORK/wa1.token"
sed "s|^token_env = .*|token_file = \"$WORK/wa1.token\"|" "$BASE" >"$WORK/file.toml"
expect3 file_mode "$WORK/file.toml" "secret file $WORK/wa1.token has mode 0640"
chmod 0600 "$WORK/wa1.token"
RC=0; DAYBREAK_CONFIG=$WORK/file.toml "$OP" status --json >/dev/null 2>"$WORK/file_ok.err" || RC=$?
assert_eq "$RC" "0" "token file at 0600 ($(cat "$WORK/file_ok.err"))"
# an empty secret: an empty variable, an empty file
expect3 empty_env "$BASE" "names environment variable $VAR, which is empty" env "$VAR=" "$DISPATCH" --run "$run"
: >"$WORK/wa1.token"
expect3 empty_file "$WORK/file.toml" "secret file $WORK/wa1.token is empty" "$DISPATCH" --run "$run"
assert_eq "$(sim_stats | json 'j["requests"]')" "0" "requests the provider saw"
assert_eq "$(sql "SELECT COUNT(*) FROM runs WHERE run_id=$run AND owner IS NOT NULL")" "0" "runs leased by refused dispatches"
# credentials in clear to a host that is not loopback, unless the section accepts the risk
sed "s|^graph_base = .*|graph_base = \"http://graph.example.com\"|" "$BASE" >"$WORK/http.toml"
expect3 http_graph "$WORK/http.toml" 'key "whatsapp.graph_base": http:// would send every sender'"'"'s access token in clear'
sed 's|^\[whatsapp\]$|[whatsapp]\nallow_insecure = true|' "$WORK/http.toml" >"$WORK/http_ok.toml"
RC=0; DAYBREAK_CONFIG=$WORK/http_ok.toml "$OP" status --json >/dev/null 2>"$WORK/http_ok.err" || RC=$?
assert_eq "$RC" "0" "allow_insecure = true accepts it ($(cat "$WORK/http_ok.err"))"
{ cat "$BASE"; printf '[alerts]\nsmtp_url = "smtp://mail.example.com:587"\nsmtp_from = "a@example.com"\n'; } >"$WORK/smtp.toml"
expect3 alert_smtp "$WORK/smtp.toml" 'key "alerts.smtp_url": smtp:// without smtp_starttls = true'
{ cat "$BASE"; printf '[[webhook.senders]]\nid = "hook"\nendpoint = "http://hooks.example.com/in"\nsigning_secret_env = "X"\n'; } >"$WORK/hook.toml"
expect3 webhook_http "$WORK/hook.toml" 'key "webhook.senders\[0\].endpoint": http://'
# the simulator takes its app secret from a file or the environment, never argv
RC=0; "$SIM" --port 0 --app-secret s >/dev/null 2>&1 || RC=$?
assert_eq "$RC" "2" "daybreak-sim --app-secret (argv) is no longer an option"
printf 'sim-secret\n' >"$WORK/sim.secret"; chmod 0644 "$WORK/sim.secret"
RC=0; timeout 10 "$SIM" --port 0 --app-secret-file "$WORK/sim.secret" >/dev/null 2>"$WORK/sim.err" || RC=$?
assert_eq "$RC" "3" "daybreak-sim --app-secret-file at 0644 ($(cat "$WORK/sim.err"))"
grep -q "mode 0644" "$WORK/sim.err" || fail "daybreak-sim's error does not name the mode: $(cat "$WORK/sim.err")"
echo "ok 4: open secret file modes, empty secrets, http:// and plain SMTP to other hosts exit 3 naming the key; allow_insecure accepts the risk"
