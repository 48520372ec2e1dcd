#!/usr/bin/env bash
# The status receiver with Meta's big and odd webhooks, on 127.0.0.1:
#  1. one POST of 1,000 statuses, one of them with a timestamp in an unexpected form: answered
#     200, the 999 others applied to their deliveries, the odd one stored with its reason and
#     shown by `daybreak status rejected`
#  2. a webhook with value.errors (Meta's account-level errors): a
#     whatsapp_account_error alert is raised with the webhook, and the next `daybreak alerts
#     check` (cron runs it every minute) posts it to the on-call webhook
#  3. a 2.5 MB signed body (Meta: "Webhooks payloads can be up to 3MB") is read and stored
#  4. every 4xx answer is logged with its reason, and a flood of them at most 20 lines per 10 s
source "$(dirname "$0")/common.sh"

CALLBACKS=$DAYBREAK_BIN/daybreak-callbacks/daybreak-callbacks
[ -x "$CALLBACKS" ] || fail "no receiver binary at $CALLBACKS"
SECRET="app-secret-batch"
D=2026-12-07
N=1000

start_hook
start_sim prov --mps 80 --time-scale 10 --seed 5
ALERTS="[alerts]
chain = [\"oncall\"]
[alerts.levels.oncall]
webhooks = [\"http://127.0.0.1:$HOOK/oncall\"]"
write_config "$SIM_PORT" "$ALERTS"
# the receiver's config: the same database and alert chain, and the app secret
umask 077
cat >"$WORK/cb.toml" <<TOML
[database]
path = "$DB"
[whatsapp]
app_secret = "$SECRET"
verify_token = "vt"
$ALERTS
TOML

seed_day 1100 "$D"  # some generated advisors are paused or unreachable: at least 1,000 deliveries
# 1,000 deliveries accepted by the provider with a known message id: the 1,000 statuses name them.
sql "UPDATE deliveries SET state = 'accepted', provider_message_id = 'wamid.E2E.' || delivery_id,
     accepted_at = 1796000000000, attempts = 1
     WHERE delivery_id IN (SELECT delivery_id FROM deliveries WHERE date = '$D' ORDER BY delivery_id LIMIT $N)"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D' AND state='accepted'")" "$N" "accepted deliveries"

start_receiver cb "$WORK/cb.toml" --pending-interval-ms 200
RECEIVER=$CB_PID

# post FILE [SIGNATURE]: the HTTP status of a POST of FILE (signed with SECRET unless given)
post() {
  local sig=${2:-$(python3 -c 'import hashlib, hmac, sys; print("sha256=" + hmac.new(sys.argv[1].encode(), open(sys.argv[2], "rb").read(), hashlib.sha256).hexdigest())' "$SECRET" "$1")}
  curl -s -o "$WORK/post.out" -w '%{http_code}' -H "Content-Type: application/json" -H "X-Hub-Signature-256: $sig" \
    --data-binary "@$1" "http://127.0.0.1:$CB_PORT/webhook"
}

# --- 1. 1,000 statuses in one POST, one unreadable ---------------------------------------------
sql "SELECT provider_message_id FROM deliveries WHERE date='$D' AND state='accepted' ORDER BY delivery_id" >"$WORK/wamids"
assert_eq "$(wc -l <"$WORK/wamids")" "$N" "message ids"
python3 - "$WORK/wamids" "$WORK/batch.json" <<'PY'
import json, sys
wamids = open(sys.argv[1]).read().split()
statuses = [{"id": w, "status": "delivered", "timestamp": str(1796000100 + i), "recipient_id": "919810012345",
             "pricing": {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}}
            for i, w in enumerate(wamids)]
statuses[500]["timestamp"] = "2026-12-07T00:30:00Z"  # not unix seconds: this one is rejected, alone
body = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550000000",
        "phone_number_id": "100000001"}, "statuses": statuses}}]}]}
open(sys.argv[2], "w").write(json.dumps(body))
PY
BAD_WAMID=$(sed -n 501p "$WORK/wamids")
assert_eq "$(post "$WORK/batch.json")" "200" "the 1,000-status POST"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D' AND state='delivered'")" "999" "deliveries moved to delivered"
assert_eq "$(sql "SELECT provider_message_id FROM deliveries WHERE date='$D' AND state='accepted'")" "$BAD_WAMID" "the one left accepted"
assert_eq "$(sql "SELECT COUNT(*) FROM status_updates")" "999" "statuses stored"
assert_eq "$(sql "SELECT state || ' ' || rejected FROM status_events")" "processed 1" "the event: processed, one rejected"
"$OP" --config "$WORK/cb.toml" status rejected --json >"$WORK/rej.json"
assert_eq "$(json 'j["total"]' <"$WORK/rej.json")" "1" "status rejected: total"
assert_eq "$(json 'j["rejected"][0]["provider_message_id"]' <"$WORK/rej.json")" "$BAD_WAMID" "status rejected: the status's id"
assert_eq "$(json 'j["rejected"][0]["reason"]' <"$WORK/rej.json")" \
  'entry[0].changes[0].value.statuses[500].timestamp: expected unix seconds, got "2026-12-07T00:30:00Z"' "status rejected: the reason"
"$OP" --config "$WORK/cb.toml" status rejected | grep -q "^1 status element(s) rejected" || fail "status rejected (text) does not count it"
grep -q "1 element(s) rejected and stored" "$WORK/cb.log" || fail "the receiver did not log the rejected status"
echo "ok 1: 1,000 statuses in one POST, one malformed: 200, 999 applied, the rejected one in 'daybreak status rejected'"

# --- 2. value.errors raises a critical alert, posted by the next alert check -------------------
cat >"$WORK/errors.json" <<'JSON'
{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000000","phone_number_id":"100000001"},"errors":[{"code":131042,"title":"Business eligibility payment issue","message":"Business eligibility payment issue","error_data":{"details":"There was an error related to your payment method."},"href":"/documentation/business-messaging/whatsapp/support/error-codes"}]},"field":"messages"}]}]}
JSON
assert_eq "$(post "$WORK/errors.json")" "200" "the value.errors webhook"
assert_eq "$(sql "SELECT rule || ' ' || state FROM alerts WHERE rule = 'whatsapp_account_error'")" "whatsapp_account_error firing" "alert raised"
sql "SELECT subject || ' | ' || message FROM alerts WHERE rule = 'whatsapp_account_error'" | grep -q '@100000001 | CRITICAL: .*131042 Business eligibility payment issue' \
  || fail "alert subject/message: $(sql "SELECT subject || ' | ' || message FROM alerts")"
# What cron runs every minute (cron/daybreak.crontab: daybreak alerts check) posts it.
"$OP" --config "$WORK/cb.toml" alerts check >/dev/null
grep -q 'whatsapp_account_error' "$WORK/hooks.ndjson" || { cat "$WORK/hooks.ndjson"; fail "the on-call webhook did not receive the alert"; }
grep -q '131042' "$WORK/hooks.ndjson" || fail "the notification does not name the error code"
echo "ok 2: value.errors raised whatsapp_account_error; the next 'daybreak alerts check' posted it to on-call"

# --- 3. a 2.5 MB body is accepted ---------------------------------------------------------------
python3 - "$WORK/big.json" <<'PY'
import json, sys
statuses, size, i = [], 0, 0
while size < 2_500_000:
    s = {"id": "wamid.BIG.%06d" % i, "status": "sent", "timestamp": "1796000200", "recipient_id": "919810012345",
         "conversation": {"id": "CONV%06d" % i, "expiration_timestamp": "1796086600", "origin": {"type": "utility"}},
         "pricing": {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}}
    statuses.append(s); size += len(json.dumps(s)) + 2; i += 1
body = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "100000001"}, "statuses": statuses}}]}]}
open(sys.argv[1], "w").write(json.dumps(body))
print(len(statuses))
PY
BIG_BYTES=$(stat -c %s "$WORK/big.json")
[ "$BIG_BYTES" -ge 2500000 ] && [ "$BIG_BYTES" -lt 3000000 ] || fail "the big body is $BIG_BYTES bytes"
before=$(sql "SELECT COUNT(*) FROM status_updates")
hwm_before=$(awk '/^VmHWM/{print $2}' /proc/$RECEIVER/status)
assert_eq "$(post "$WORK/big.json")" "200" "the 2.5 MB POST"
big_n=$(sql "SELECT COUNT(*) FROM status_updates WHERE provider_message_id LIKE 'wamid.BIG.%'")
[ "$big_n" -gt 5000 ] || fail "only $big_n statuses of the big body stored"
assert_eq "$(sql "SELECT COUNT(*) FROM status_updates")" "$((before + big_n))" "status updates after the big body"
hwm_one=$(awk '/^VmHWM/{print $2}' /proc/$RECEIVER/status)
# six more such bodies at once: at most two are parsed at a time (the rest wait, buffered)
for k in 1 2 3 4 5 6; do sed "s/wamid\.BIG\./wamid.BIG$k./g" "$WORK/big.json" >"$WORK/big$k.json"; done
pids=()
for k in 1 2 3 4 5 6; do post "$WORK/big$k.json" >"$WORK/big$k.code" & pids+=($!); done
wait "${pids[@]}"
for k in 1 2 3 4 5 6; do assert_eq "$(cat "$WORK/big$k.code")" "200" "concurrent big body $k"; done
assert_eq "$(sql "SELECT COUNT(*) FROM status_updates WHERE provider_message_id LIKE 'wamid.BIG_.%'")" "$((6 * big_n))" "statuses of the six bodies"
hwm_six=$(awk '/^VmHWM/{print $2}' /proc/$RECEIVER/status)
echo "ok 3: a $BIG_BYTES-byte signed body read and stored ($big_n statuses), then six more at once; receiver peak RSS $hwm_before kB before, $hwm_one kB after one, $hwm_six kB after the six"

# --- 4. 4xx answers are logged with their reason, a flood rate-limited ---------------------------
t_flood0=$(now_ms)
assert_eq "$(post "$WORK/errors.json" "sha256=00")" "401" "a wrong signature"
grep -q 'POST /webhook answered 401: X-Hub-Signature-256 does not match the body' "$WORK/cb.log" || { tail -5 "$WORK/cb.log"; fail "the 401 was not logged with its reason"; }
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Length: 4000000' "http://127.0.0.1:$CB_PORT/webhook")" "413" "a 4 MB Content-Length"
grep -q 'answered 413 before reading its body: Content-Length 4000000' "$WORK/cb.log" || { tail -5 "$WORK/cb.log"; fail "the 413 was not logged with its reason"; }
lines_before=$(grep -c 'answered 4' "$WORK/cb.log")
for i in $(seq 1 100); do
  echo "url = \"http://127.0.0.1:$CB_PORT/webhook\""; echo 'output = "/dev/null"'
  echo 'header = "X-Hub-Signature-256: sha256=01"'; echo 'data = "{}"'
done >"$WORK/flood.curl"
curl -s -K "$WORK/flood.curl"
lines=$(( $(grep -c 'answered 4' "$WORK/cb.log") - lines_before ))
# 20 lines per 10 s window; the window opened at the 401 above (on a slow machine the flood may
# reach into a second one)
windows=$(( ($(now_ms) - t_flood0) / 10000 + 1 ))
[ "$lines" -le $((20 * windows)) ] || fail "$lines log lines for 100 refused requests in $windows 10-s window(s) (at most 20 each)"
[ "$lines" -lt 100 ] || fail "every one of the 100 refusals was logged: no rate limit"
assert_eq "$(sql "SELECT COUNT(*) FROM status_events WHERE body = '{}'")" "0" "nothing of the flood stored"
kill -TERM "$RECEIVER"; rc=0; wait "$RECEIVER" || rc=$?
assert_eq "$rc" "0" "receiver exit code on SIGTERM"
left_out=$(tail -1 "$WORK/cb.log" | grep -o '"refusal_log_lines_left_out":[0-9]*' | cut -d: -f2)
[ "${left_out:-0}" -ge $((100 - lines)) ] || fail "the stop line counts ${left_out:-none} refusal lines left out: $(tail -1 "$WORK/cb.log")"
echo "ok 4: 4xx answers logged with their reasons; a flood of 100 wrote $lines lines, $left_out left out and counted"
