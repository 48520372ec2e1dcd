#!/usr/bin/env bash
# Status callbacks end to end on 127.0.0.1:
#  1. GET verification handshake: our token echoes the challenge, any other gets 403
#  2. a wrong or missing X-Hub-Signature-256 gets 401 and changes nothing
#  3. real simulator → real receiver → ledger: every callback duplicated x3, delayed and posted
#     reordered; every delivery ends in the right final state, each status stored once
#  4. an uncertain send is reconciled by a signed `sent` naming it (biz_opaque_callback_data)
#  5. spool mode + `daybreak ingest --spool`: verified requests stored and applied, duplicates once
#  6. no app secret configured: every POST is rejected, and the receiver says so at start
#  7. SIGTERM: the receiver stops cleanly (exit 0)
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/json.sh"

CALLBACKS=$DAYBREAK_BIN/daybreak-callbacks/daybreak-callbacks
[ -x "$CALLBACKS" ] || fail "no receiver binary at $CALLBACKS"
SECRET="app-secret-e2e"
VTOKEN="verify-token-e2e"

# callbacks_config FILE [with_secret=1]: the common config plus the webhook secrets
callbacks_config() {
  local file=$1 with_secret=${2:-1}
  umask 077
  {
    echo "[database]"
    echo "path = \"$DB\""
    echo "[whatsapp]"
    echo "graph_base = \"http://127.0.0.1:$SIM_PORT\""
    if [ "$with_secret" = 1 ]; then
      echo "app_secret = \"$SECRET\""
      echo "verify_token = \"$VTOKEN\""
    fi
    echo "[[whatsapp.senders]]"
    echo 'id = "wa-1"'
    echo 'phone_number_id = "100000001"'
    echo 'token = "test-token"'
    echo "mps = 80"
  } >"$file"
}

# sign FILE [SECRET]: the X-Hub-Signature-256 value for the file's bytes
sign() {
  python3 -c 'import hashlib, hmac, sys; print("sha256=" + hmac.new(sys.argv[1].encode(), open(sys.argv[2], "rb").read(), hashlib.sha256).hexdigest())' \
    "${2:-$SECRET}" "$1"
}

# status_body FILE WAMID STATUS UNIX_SECONDS [DELIVERY_ID]: one status webhook, Meta's shape, with
# non-ASCII and escaped '/' so the signature is checked over the raw bytes
status_body() {
  python3 - "$@" <<'PY'
import json, sys
path, wamid, status, ts = sys.argv[1:5]
st = {"id": wamid, "status": status, "timestamp": ts, "recipient_id": "919810012345",
      "conversation": {"id": "CONV/\u0917\u0941\u0930\u0941", "origin": {"type": "utility"}}}
if len(sys.argv) > 5:
    st["biz_opaque_callback_data"] = sys.argv[5]
body = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550000000",
        "phone_number_id": "100000001"}, "statuses": [st]}}]}]}
text = json.dumps(body).replace("/", "\\/")  # ensure_ascii: \u escapes, as Meta sends them
open(path, "wb").write(text.encode())
PY
}

# post FILE SIGNATURE: prints the HTTP status of a POST to the receiver
post() {
  if [ -n "$2" ]; then
    curl -s -o "$WORK/post.out" -w '%{http_code}' -H "Content-Type: application/json" -H "X-Hub-Signature-256: $2" \
      --data-binary "@$1" "http://127.0.0.1:$CB_PORT/webhook"
  else
    curl -s -o "$WORK/post.out" -w '%{http_code}' -H "Content-Type: application/json" --data-binary "@$1" "http://127.0.0.1:$CB_PORT/webhook"
  fi
}

D1=2026-12-07
SIM_PORT=1  # the receiver never calls the provider; the real port is written below
callbacks_config "$WORK/cb.toml"
# A short pending interval: statuses that outrun dispatch's own write wait for it (status_waits_for)
start_receiver cb "$WORK/cb.toml" --pending-interval-ms 200
RECEIVER=$CB_PID

# --- 1. handshake ----------------------------------------------------------------------------
got=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$CB_PORT/webhook?hub.mode=subscribe&hub.verify_token=$VTOKEN&hub.challenge=1158201444")
assert_eq "$got" "1158201444 200" "handshake with our token"
got=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CB_PORT/webhook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")
assert_eq "$got" "403" "handshake with another token"
got=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CB_PORT/webhook?hub.mode=unsubscribe&hub.verify_token=$VTOKEN&hub.challenge=1")
assert_eq "$got" "403" "handshake with another mode"
echo "ok 1: verification handshake"

# --- 3 (first: it makes the ledger). simulator → receiver → ledger -----------------------------
# The simulator's status timestamps follow the scenario clock, as the ledger's times do (started
# on the system clock, they would land after D1's deadline once the real date passes it). Its
# clock starts a little before dispatch's (seed_day runs in between) so it runs a few scenario
# seconds ahead: statuses stay well inside the 5-minute window.
DAYBREAK_CLOCK=$(clock_at "${D1}T05:59:25+05:30" 10) DAYBREAK_SIM_APP_SECRET="$SECRET" start_sim prov --mps 80 --time-scale 10 --seed 5 --callback-url "http://127.0.0.1:$CB_PORT/webhook" \
  --callback-duplicate 3 --callback-delay-ms 300 --callback-reorder 8 --callback-read-rate 0.5 --callback-fail-rate 0.1
write_config "$SIM_PORT"
seed_day 120 "$D1"
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1'")
run1=$(sql "SELECT run_id FROM runs WHERE date='$D1'")
DAYBREAK_CLOCK=$(clock_at "${D1}T05:59:25+05:30" 10) "$DISPATCH" --run "$run1" --json >"$WORK/d1.json" 2>"$WORK/d1.log"
assert_eq "$(jget "$(cat "$WORK/d1.json")" status)" "done" "dispatch status"
# wait until the simulator has posted everything it queued
for _ in $(seq 1 300); do
  cs=$(curl -s "http://127.0.0.1:$SIM_PORT/stats/callbacks")
  [ "$(jget "$cs" pending)" = "0" ] && [ "$(jget "$cs" posted)" = "$(jget "$cs" queued)" ] && break
  sleep 0.1
done
cs=$(curl -s "http://127.0.0.1:$SIM_PORT/stats/callbacks")
sent=$(jget "$cs" by_status sent); delivered=$(jget "$cs" by_status delivered)
read=$(jget "$cs" by_status read); failed=$(jget "$cs" by_status failed)
assert_eq "$sent" "$n" "a sent callback per delivery"
assert_eq "$(jget "$cs" queued)" "$(( (sent + delivered + read + failed) * 3 ))" "every callback queued three times"
assert_eq "$(jget "$cs" ok)" "$(jget "$cs" queued)" "every POST answered 200"
[ "$(jget "$cs" reordered)" -gt 0 ] || fail "no callback was posted out of order; the reorder path was not exercised"
[ "$read" -gt 0 ] && [ "$failed" -gt 0 ] || fail "expected some read and some failed messages (read=$read failed=$failed)"
# statuses that arrived while their row was still `sending` are applied by the pending pass
for _ in $(seq 1 50); do
  [ "$(sql "SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL")" = "0" ] && break
  sleep 0.1
done
# each distinct body stored once, each status once, nothing pending
assert_eq "$(sql "SELECT COUNT(*) FROM status_events")" "$((sent + delivered + read + failed))" "raw events stored (duplicates once)"
assert_eq "$(sql "SELECT COUNT(*) FROM status_updates")" "$((sent + delivered + read + failed))" "status updates"
assert_eq "$(sql "SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL")" "0" "pending statuses"
assert_eq "$(sql "SELECT COUNT(*) FROM status_events WHERE state != 'processed'")" "0" "unprocessed events"
# final states: read ones read, delivered-not-read delivered, failed ones accepted with the error
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1' AND state='read'")" "$read" "read deliveries"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1' AND state='delivered'")" "$((delivered - read))" "delivered deliveries"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1' AND state='accepted' AND last_error LIKE 'status failed: 131026%'")" "$failed" "failed after acceptance"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1' AND state NOT IN ('accepted','delivered','read')")" "0" "deliveries not accepted"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1' AND (state='read') != (read_at IS NOT NULL)")" "0" "read_at set exactly on read rows"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1' AND (state IN ('delivered','read')) != (delivered_at IS NOT NULL)")" "0" "delivered_at set exactly on delivered/read rows"
# every status matched its delivery by the id it carried, and the wamids agree with the ledger
assert_eq "$(sql "SELECT COUNT(*) FROM status_updates u JOIN deliveries d ON d.delivery_id = u.matched_delivery_id WHERE u.delivery_id != d.delivery_id OR u.provider_message_id != d.provider_message_id")" "0" "statuses matched to the wrong delivery"
echo "ok 3: $n deliveries, $((sent + delivered + read + failed)) statuses x3 reordered: $read read, $((delivered - read)) delivered, $failed failed"

# --- 3b. sla-report shows the delivery truth the callbacks recorded -----------------------------
# The ledger's own counts, by the definitions of man sla-report ("Delivery truth").
db_delivered=$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1' AND state IN ('delivered','read')")
db_on_time=$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1' AND state IN ('delivered','read') AND delivered_at <= deadline_at")
db_read=$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1' AND read_at IS NOT NULL")
db_failed=$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1' AND state='accepted' AND last_error LIKE 'status failed: %'")
db_unknown=$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1' AND state='accepted' AND COALESCE(last_error,'') NOT LIKE 'status failed: %'")
assert_eq "$db_read" "$read" "read rows in the ledger"
assert_eq "$db_failed" "$failed" "failed-after-accept rows in the ledger"
# the simulator answers every message delivered (maybe read) or failed: nothing stays unknown here
# (the unit tests cover unknown rows: sent-only, no status, e-mail)
assert_eq "$db_unknown" "$((n - db_delivered - db_failed))" "status unknown rows"
[ "$db_on_time" -gt 0 ] || fail "expected some deliveries delivered before the deadline"
db_accepted_on_time=$(sql "SELECT COUNT(*) FROM deliveries WHERE date='$D1' AND accepted_at <= deadline_at")
AFTER=$(clock_at "${D1}T07:00:00+05:30" 1)
# the run's stored report (dispatch closed it) with the figures recounted, and the day's from the ledger
for mode in "--run $run1" "--date $D1"; do
  # shellcheck disable=SC2086
  DAYBREAK_CLOCK=$AFTER "$REPORT" $mode --json >"$WORK/truth.json" || true
  r=$(cat "$WORK/truth.json")
  assert_eq "$(jget "$r" eligible)" "$n" "$mode: eligible"
  assert_eq "$(jget "$r" delivered)" "$db_delivered" "$mode: delivered"
  assert_eq "$(jget "$r" delivered_on_time)" "$db_on_time" "$mode: delivered on time"
  assert_eq "$(jget "$r" read)" "$db_read" "$mode: read"
  assert_eq "$(jget "$r" unknown)" "$db_unknown" "$mode: status unknown"
  assert_eq "$(jget "$r" failed_after_accept)" "$db_failed" "$mode: failed after accept"
  assert_eq "$(python3 -c "print(round(100.0 * $db_on_time / $n, 6))")" \
            "$(python3 -c "print(round($(jget "$r" delivered_sla_pct), 6))")" "$mode: delivered SLA %"
  assert_eq "$(jget "$r" on_time)" "$db_accepted_on_time" "$mode: accepted on time (the headline is unchanged)"
done
assert_eq "$(jget "$(DAYBREAK_CLOCK=$AFTER "$REPORT" --run "$run1" --json)" report_source)" "stored" "closed run prints its stored report"
DAYBREAK_CLOCK=$AFTER "$REPORT" --run "$run1" >"$WORK/truth.txt" || true
grep -q "failed after accept [0-9.]*% ($db_failed)" "$WORK/truth.txt" || { cat "$WORK/truth.txt"; fail "text report lacks failed after accept ($db_failed)"; }
grep -q "status unknown [0-9.]*% ($db_unknown)" "$WORK/truth.txt" || { cat "$WORK/truth.txt"; fail "text report lacks status unknown ($db_unknown)"; }
w=$(DAYBREAK_CLOCK=$AFTER "$REPORT" --watch --once --run "$run1" --json)
assert_eq "$(jget "$w" runs 0 failed_after_accept)" "$db_failed" "watch: failed after accept"
assert_eq "$(jget "$w" runs 0 delivered_on_time)" "$db_on_time" "watch: delivered on time"
t=$(DAYBREAK_CLOCK=$AFTER "$REPORT" trend --days 1 --to "$D1" --json)
assert_eq "$(jget "$t" dates 0 read)" "$db_read" "trend: read"
assert_eq "$(jget "$t" dates 0 unknown)" "$db_unknown" "trend: status unknown"
# alerts.success_measure: the live_success_low rule of `daybreak alerts check` (no dispatch alive:
# it reads the ledger) on the accepted measure stays quiet (every delivery accepted on time), on the
# delivered measure it fires with the delivered figures (the failed ones were never delivered)
sql "UPDATE runs SET state='running' WHERE run_id=$run1"  # closed runs are not watched live
DURING=$(clock_at "${D1}T06:04:00+05:30" 1)
for measure in accepted delivered; do
  { cat "$WORK/daybreak.toml"; printf '[alerts]\nmin_sample = 5\nlive_success_pct = 99.5\nsuccess_measure = "%s"\n' "$measure"; } >"$WORK/m-$measure.toml"
  DAYBREAK_CONFIG=$WORK/m-$measure.toml DAYBREAK_CLOCK=$DURING "$OP" alerts check --json >"$WORK/m-$measure.json" 2>"$WORK/m-$measure.log" || true
done
sql "UPDATE runs SET state='closed' WHERE run_id=$run1"
assert_eq "$(sql "SELECT COUNT(*) FROM alerts WHERE rule='live_success_low' AND subject='run:$run1' AND message LIKE '%live success %'")" "0" \
  "accepted measure: no live_success_low"
assert_eq "$(sql "SELECT COUNT(*) FROM alerts WHERE rule='live_success_low' AND subject='run:$run1' AND message LIKE '%live delivered success%$db_failed failed after accept%'")" "1" \
  "delivered measure: live_success_low names the delivered figures"
echo "ok 3b: report, watch and trend: $db_on_time delivered on time, $db_read read, $db_unknown unknown, $db_failed failed after accept"

# --- 2. wrong or missing signature: 401, nothing changes ---------------------------------------
target=$(sql "SELECT delivery_id || ' ' || provider_message_id FROM deliveries WHERE date='$D1' AND state='delivered' LIMIT 1")
tid=${target%% *}; twamid=${target#* }
status_body "$WORK/forged.json" "$twamid" read 1796000000 "$tid"
events_before=$(sql "SELECT COUNT(*) FROM status_events")
assert_eq "$(post "$WORK/forged.json" "$(sign "$WORK/forged.json" wrong-secret)")" "401" "POST with a wrong signature"
assert_eq "$(post "$WORK/forged.json" "")" "401" "POST without a signature"
assert_eq "$(post "$WORK/forged.json" "sha256=")" "401" "POST with an empty signature"
assert_eq "$(sql "SELECT COUNT(*) FROM status_events")" "$events_before" "events after rejected POSTs"
assert_eq "$(sql "SELECT state FROM deliveries WHERE delivery_id=$tid")" "delivered" "state after rejected POSTs"
# the same bytes correctly signed are accepted: non-ASCII and '\/' verify over the raw body
assert_eq "$(post "$WORK/forged.json" "$(sign "$WORK/forged.json")")" "200" "POST with the right signature"
assert_eq "$(sql "SELECT state FROM deliveries WHERE delivery_id=$tid")" "read" "state after the signed read"
echo "ok 2: wrong/missing signatures got 401 and changed nothing"

# --- 4. reconciliation of an uncertain send -------------------------------------------------------
D2=2026-12-08
seed_day 5 "$D2"
uid=$(sql "SELECT delivery_id FROM deliveries WHERE date='$D2' ORDER BY delivery_id LIMIT 1")
# as if dispatch died after the request left: the row is uncertain, no message id recorded
sql "UPDATE deliveries SET state='uncertain', claim_owner='host:1:dead', attempts=1 WHERE delivery_id=$uid"
status_body "$WORK/u-sent.json" "wamid.UNCERTAIN1" sent "$(date -d "${D2}T06:00:05+05:30" +%s)" "$uid"
assert_eq "$(post "$WORK/u-sent.json" "$(sign "$WORK/u-sent.json")")" "200" "POST of the uncertain send's status"
assert_eq "$(sql "SELECT state || ' ' || provider_message_id || ' ' || accepted_at FROM deliveries WHERE delivery_id=$uid")" \
  "accepted wamid.UNCERTAIN1 $(date -d "${D2}T06:00:05+05:30" +%s)000" "reconciled row"
assert_eq "$(sql "SELECT COUNT(*) FROM delivery_changes WHERE delivery_id=$uid AND kind='status'")" "1" "change noted for a running dispatch"
echo "ok 4: an uncertain delivery was settled from its callback"

# --- 5. spool mode and daybreak ingest ----------------------------------------------------------------
mkdir -p "$WORK/spool"
start_receiver spool "$WORK/cb.toml" --spool-dir "$WORK/spool"
SPOOL_PID=$CB_PID
status_body "$WORK/u-del.json" "wamid.UNCERTAIN1" delivered "$(date -d "${D2}T06:00:09+05:30" +%s)"
assert_eq "$(post "$WORK/u-del.json" "$(sign "$WORK/u-del.json")")" "200" "spooled POST"
assert_eq "$(post "$WORK/u-del.json" "$(sign "$WORK/u-del.json")")" "200" "spooled duplicate POST"
assert_eq "$(post "$WORK/u-del.json" "$(sign "$WORK/u-del.json" wrong)")" "401" "spooled POST with a wrong signature"
assert_eq "$(ls "$WORK/spool"/*.req | wc -l)" "2" "spool files (the forged one never written)"
assert_eq "$(sql "SELECT state FROM deliveries WHERE delivery_id=$uid")" "accepted" "state before ingest"
# a web front's own spool file, signature header in another case, CRLF
{ printf 'x-hub-signature-256: %s\r\nContent-Type: application/json\r\n\r\n' "$(sign "$WORK/u-sent.json")"; cat "$WORK/u-sent.json"; } >"$WORK/spool/zz-front.req"
printf 'X-Hub-Signature-256: sha256=00\n\n{}' >"$WORK/spool/zz-forged.req"
rc=0
"$OP" --config "$WORK/cb.toml" ingest --spool "$WORK/spool" --json >"$WORK/ingest.json" 2>"$WORK/ingest.log" || rc=$?
assert_eq "$rc" "1" "ingest exit code with a rejected file"
ing=$(cat "$WORK/ingest.json")
assert_eq "$(jget "$ing" files)" "4" "files ingested"
assert_eq "$(jget "$ing" stored)" "3" "files stored"
assert_eq "$(jget "$ing" duplicates)" "2" "duplicate files (same bytes as before)"
assert_eq "$(jget "$ing" rejected 0 file)" "zz-forged.req" "rejected file"
assert_eq "$(sql "SELECT state FROM deliveries WHERE delivery_id=$uid")" "delivered" "state after ingest"
assert_eq "$(ls "$WORK/spool/done" | wc -l) $(ls "$WORK/spool/rejected" | wc -l)" "3 1" "done and rejected files"
rc=0
"$OP" --config "$WORK/cb.toml" ingest --spool "$WORK/spool" --json >"$WORK/ingest2.json" 2>/dev/null || rc=$?
assert_eq "$rc $(jget "$(cat "$WORK/ingest2.json")" files)" "0 0" "a second ingest finds nothing to do"
kill -TERM "$SPOOL_PID"; wait "$SPOOL_PID"
echo "ok 5: spooled callbacks verified, stored and applied by daybreak ingest"

# --- 6. no app secret: everything rejected ----------------------------------------------------------
callbacks_config "$WORK/nosecret.toml" 0
start_receiver nosecret "$WORK/nosecret.toml"
NOSECRET_PID=$CB_PID
grep -q "app_secret is not set" "$WORK/nosecret.log" || fail "no warning about the missing app secret"
events_before=$(sql "SELECT COUNT(*) FROM status_events")
assert_eq "$(post "$WORK/u-del.json" "$(sign "$WORK/u-del.json")")" "401" "POST with no secret configured"
assert_eq "$(post "$WORK/u-del.json" "$(sign "$WORK/u-del.json" "")")" "401" "POST signed with an empty secret"
assert_eq "$(sql "SELECT COUNT(*) FROM status_events")" "$events_before" "events with no secret"
got=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CB_PORT/webhook?hub.mode=subscribe&hub.verify_token=&hub.challenge=1")
assert_eq "$got" "403" "handshake with no verify token configured"
kill -TERM "$NOSECRET_PID"; wait "$NOSECRET_PID"
echo "ok 6: with no app secret every POST gets 401"

# --- 7. graceful stop ---------------------------------------------------------------------------------
kill -TERM "$RECEIVER"
rc=0; wait "$RECEIVER" || rc=$?
assert_eq "$rc" "0" "receiver exit code on SIGTERM"
grep -q "SIGTERM: stopping" "$WORK/cb.log" || fail "receiver did not log its stop"
assert_eq "$(sql "PRAGMA integrity_check")" "ok" "database integrity"
echo "ok 7: receiver stopped cleanly on SIGTERM"

# --- 8. the simulator's scheduled outage window (/control down_from_ms/down_until_ms) -------------
# A simulator of its own on the system clock (the one above runs on the scenario clock).
start_sim outage --mps 80
send_to() {  # send_to PHONE_NUMBER_ID: prints the HTTP status of one text send
  curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer t' -H 'Content-Type: application/json' \
    -d '{"messaging_product":"whatsapp","to":"919845000001","type":"text","text":{"body":"x"}}' \
    "http://127.0.0.1:$SIM_PORT/v21.0/$1/messages"
}
ctl() { curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$1" "http://127.0.0.1:$SIM_PORT/control"; }
t=$(now_ms)
assert_eq "$(ctl "{\"phone_number_id\":\"900\",\"down_from_ms\":$((t - 1000)),\"down_until_ms\":$((t + 600000))}")" "200" "control: window now"
assert_eq "$(ctl "{\"phone_number_id\":\"901\",\"down_from_ms\":$((t + 600000)),\"down_until_ms\":$((t + 900000))}")" "200" "control: window later"
assert_eq "$(ctl "{\"phone_number_id\":\"902\",\"down_from_ms\":$((t - 2000)),\"down_until_ms\":$((t - 1000))}")" "200" "control: window past"
assert_eq "$(ctl "{\"phone_number_id\":\"903\",\"down_from_ms\":5}")" "400" "control: half a window"
assert_eq "$(send_to 900) $(send_to 901) $(send_to 902)" "503 200 200" "sends inside, before and after a down window"
assert_eq "$(ctl '{"phone_number_id":"900","down":false}')" "200" "control: end the window"
assert_eq "$(send_to 900)" "200" "send after the window was ended"
echo "ok 8: scheduled per-number outage windows in scenario time"
