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
