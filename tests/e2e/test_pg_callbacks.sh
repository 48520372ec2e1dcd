#!/usr/bin/env bash
# Status callbacks into the PostgreSQL ledger, end to end on 127.0.0.1:
#  1. a PostgreSQL server started for the test (initdb + pg_ctl as the postgres user, unix
#     socket in the work directory, random port); daybreak-callbacks with [database] url
#     creates the schema and listens; a day planned with the SQLite tools is copied with
#     `daybreak migrate-ledger`
#  2. a real dispatch on PostgreSQL sends it to the simulator, which posts every status (sent,
#     delivered, read for half, failed for 5%) signed to the receiver, each twice and reordered
#  3. psql shows every delivery as the simulator reported it (read, delivered, accepted with the
#     failure recorded), its times set, and nothing lost: every status the simulator sent is in
#     status_updates (each once, none pending), every request answered 200
#  4. a status that arrives before dispatch records the send answer is pending and applied by
#     the receiver's pending pass once the answer is in the ledger
#  5. `daybreak ingest --spool` with the same url stores and applies into PostgreSQL (a duplicate
#     once, a rejected element kept, read back by `daybreak status rejected`); SIGTERM stops
#     the receiver cleanly
#  6. `daybreak retention purge` with the url, 40 days later, deletes the status events (raw
#     bodies), their statuses and rejected elements in PostgreSQL by [retention] status_days,
#     audited there; --dry-run first only counts them
# Scale: PG_CB_E2E_N advisors (default 2000) on 2 senders of 80 messages per second.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/json.sh"
require_test_pg
CALLBACKS=$DAYBREAK_BIN/daybreak-callbacks/daybreak-callbacks
[ -x "$CALLBACKS" ] || fail "no receiver binary at $CALLBACKS"
SECRET="app-secret-pg-e2e"
D=2026-12-10
N=${PG_CB_E2E_N:-2000}

# --- PostgreSQL for the test, run as an unprivileged user ---
start_test_pg
trap 'rc=$?; set +e; stop_pg; (exit $rc); cleanup' EXIT  # cleanup keeps the work directory of a failure

# --- 1. the receiver on PostgreSQL (no SQLite file on its host) ---
umask 077
printf '[database]\nurl = "%s"\n[whatsapp]\napp_secret = "%s"\nverify_token = "v"\n' "$URL" "$SECRET" >"$WORK/cb.toml"
start_receiver cb "$WORK/cb.toml" --pending-interval-ms 200
RECEIVER=$CB_PID
SIM_PIDS+=("$RECEIVER")  # stopped by cleanup if a check fails
grep -q "PostgreSQL ledger" "$WORK/cb.log" || fail "the receiver does not say it writes to PostgreSQL: $(cat "$WORK/cb.log")"
assert_eq "$(pg "SELECT COUNT(*) FROM status_events")" "0" "the receiver created the schema"

# 4 (first: before any dispatch). A status whose send answer is not recorded yet waits.
clock="${D}T05:59:50+05:30@$(now_ms)*1"
DAYBREAK_CLOCK=$clock DAYBREAK_SIM_APP_SECRET="$SECRET" start_sim prov --mps 160 --seed 5 --transient-rate 0 --permanent-rate 0 \
  --latency-ms-median 20 --latency-ms-p99 80 --callback-url "http://127.0.0.1:$CB_PORT/webhook" \
  --callback-duplicate 2 --callback-delay-ms 200 --callback-reorder 8 --callback-read-rate 0.5 --callback-fail-rate 0.05
write_config "$SIM_PORT" '[[whatsapp.senders]]
id = "wa-2"
phone_number_id = "100000002"
token = "test-token"
mps = 80'
seed_day "$N" "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
[ "$n" -ge $((N * 9 / 10)) ] || fail "planned $n deliveries for $N advisors"
"$OP" migrate-ledger --from "sqlite:$DB" --to "$URL" --date "$D" --json >"$WORK/migrate.json"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='planned'")" "$n" "deliveries copied to PostgreSQL"

early=$(pg "SELECT MIN(delivery_id) FROM deliveries WHERE run_id=$run")
python3 - "$WORK/early.json" "$early" <<'PY'
import json, sys
path, did = sys.argv[1:]
st = {"id": "wamid.early-" + did, "status": "delivered", "timestamp": "1796000000", "recipient_id": "919810012345"}
body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "100000001"},
        "statuses": [st]}}]}]}
open(path, "wb").write(json.dumps(body).encode())
PY
sig="sha256=$(python3 -c 'import hashlib, hmac, sys; print(hmac.new(sys.argv[1].encode(), open(sys.argv[2], "rb").read(), hashlib.sha256).hexdigest())' "$SECRET" "$WORK/early.json")"
code=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -H "X-Hub-Signature-256: $sig" --data-binary "@$WORK/early.json" "http://127.0.0.1:$CB_PORT/webhook")
assert_eq "$code" "200" "an early status is answered 200"
assert_eq "$(pg "SELECT COUNT(*) FROM status_updates WHERE provider_message_id='wamid.early-$early' AND applied_at IS NULL")" "1" "an early status is stored pending (durable before its 200)"
sleep 0.5
assert_eq "$(pg "SELECT COUNT(*) FROM status_updates WHERE provider_message_id='wamid.early-$early' AND applied_at IS NULL")" "1" "it stays pending while no delivery has its message id"
# the early status is for a delivery of another day: a row of its own, accepted with that id
pg "INSERT INTO runs(date, slot_at, window_start, window_end, deadline_at, state) VALUES ('2026-12-09', 1, 1, 1, 1, 'closed')" >/dev/null
pg "INSERT INTO deliveries(run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, state, channel, sender, planned_at, deadline_at, provider_message_id, accepted_at, updated_at, order_key)
    SELECT (SELECT run_id FROM runs WHERE date='2026-12-09'), advisor_id, '2026-12-09', 1, content_id, source, tier, tier_rank, 'accepted', channel, sender, 1, 1, 'wamid.early-$early', 1, 1, order_key
    FROM deliveries WHERE delivery_id=$early" >/dev/null
for _ in $(seq 1 100); do
  [ "$(pg "SELECT COUNT(*) FROM status_updates WHERE provider_message_id='wamid.early-$early' AND applied_at IS NULL")" = "0" ] && break
  sleep 0.05
done
assert_eq "$(pg "SELECT state FROM deliveries WHERE provider_message_id='wamid.early-$early'")" "delivered" "the pending status applied once the send answer is recorded"
echo "ok 4: a status before its send answer waited pending and was applied by the receiver's pending pass"

# --- 2. dispatch on PostgreSQL; the simulator posts the statuses to the receiver ---
python3 - "$WORK/daybreak.toml" "$WORK/pg.toml" "$URL" <<'PY'
import re, sys
src, dst, url = sys.argv[1:]
open(dst, "w").write(re.sub(r'(?m)^path = ".*"$', lambda m: 'url = "%s"' % url, open(src).read(), count=1))
PY
grep -q '^url = ' "$WORK/pg.toml" || fail "pg.toml has no url"
rc=0
DAYBREAK_CONFIG=$WORK/pg.toml DAYBREAK_HOST_ID=host-a DAYBREAK_CLOCK=$clock timeout 150 "$DISPATCH" --run "$run" --json >"$WORK/d.json" 2>"$WORK/d.log" || rc=$?
[ "$rc" = 0 ] || { tail -20 "$WORK/d.log" >&2; tail -20 "$WORK/cb.log" >&2; fail "dispatch on PostgreSQL exited $rc"; }
assert_eq "$(pg "SELECT state FROM runs WHERE run_id=$run")" "closed" "run state"
for _ in $(seq 1 600); do
  cs=$(curl -s --max-time 10 "http://127.0.0.1:$SIM_PORT/stats/callbacks")
  [ "$(jget "$cs" pending)" = "0" ] && [ "$(jget "$cs" posted)" = "$(jget "$cs" queued)" ] && break
  sleep 0.1
done
cs=$(curl -s --max-time 10 "http://127.0.0.1:$SIM_PORT/stats/callbacks")
sent=$(jget "$cs" by_status sent); delivered=$(jget "$cs" by_status delivered)
read=$(jget "$cs" by_status read); failed=$(jget "$cs" by_status failed)
total=$((sent + delivered + read + failed))
assert_eq "$sent" "$n" "a sent callback per delivery"
assert_eq "$(jget "$cs" queued)" "$((total * 2))" "every callback queued twice"
assert_eq "$(jget "$cs" ok)" "$(jget "$cs" queued)" "every POST answered 200"
[ "$read" -gt 0 ] && [ "$failed" -gt 0 ] || fail "expected some read and some failed messages (read=$read failed=$failed)"
for _ in $(seq 1 100); do
  [ "$(pg "SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL")" = "0" ] && break
  sleep 0.1
done

# --- 3. what psql shows ---
assert_eq "$(pg "SELECT COUNT(*) FROM status_updates WHERE provider_message_id LIKE 'wamid.early-%'")" "1" "the early status"
assert_eq "$(pg "SELECT COUNT(*) FROM status_updates WHERE provider_message_id NOT LIKE 'wamid.early-%'")" "$total" "every status the simulator sent is in status_updates, once"
assert_eq "$(pg "SELECT COUNT(*) FROM status_events")" "$((total + 1))" "raw events stored (duplicates once)"
assert_eq "$(pg "SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL")" "0" "pending statuses"
assert_eq "$(pg "SELECT COUNT(*) FROM status_events WHERE state != 'processed'")" "0" "unprocessed events"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='read'")" "$read" "read deliveries"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='delivered'")" "$((delivered - read))" "delivered deliveries"
# advisors are on WhatsApp only: a failure has no next channel, the row stays accepted with the error
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted' AND last_error LIKE 'status failed: %'")" "$failed" "failed after acceptance, recorded"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state NOT IN ('accepted','delivered','read')")" "0" "deliveries not accepted"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND (state='read') != (read_at IS NOT NULL)")" "0" "read_at set exactly on read rows"
assert_eq "$(pg "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND (state IN ('delivered','read')) != (delivered_at IS NOT NULL)")" "0" "delivered_at set exactly on delivered/read rows"
assert_eq "$(pg "SELECT COUNT(*) FROM status_updates u JOIN deliveries d ON d.delivery_id = u.matched_delivery_id WHERE u.provider_message_id != d.provider_message_id")" "0" "statuses matched to the wrong delivery"
assert_eq "$(pg "SELECT COUNT(*) FROM delivery_changes WHERE kind = 'status_failed'")" "$failed" "a change note per failure for dispatch"
echo "ok 3: $n deliveries on PostgreSQL, $total statuses x2 reordered: $read read, $((delivered - read)) delivered, $failed failed; none lost"

# --- 5. `daybreak ingest --spool` with the same url: into PostgreSQL too ---
mkdir -p "$WORK/spool"
wamid=$(pg "SELECT provider_message_id FROM deliveries WHERE run_id=$run AND state='delivered' ORDER BY delivery_id LIMIT 1")
python3 - "$WORK/late.json" "$wamid" <<'PY'
import json, sys
path, wamid = sys.argv[1:]
st = {"id": wamid, "status": "read", "timestamp": "1796000100", "recipient_id": "919810012345"}
body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "100000001"},
        "statuses": [st, {"id": "wamid.bad", "status": "read", "timestamp": "yesterday"}]}}]}]}
open(path, "wb").write(json.dumps(body).encode())
PY
sig="sha256=$(python3 -c 'import hashlib, hmac, sys; print(hmac.new(sys.argv[1].encode(), open(sys.argv[2], "rb").read(), hashlib.sha256).hexdigest())' "$SECRET" "$WORK/late.json")"
{ printf 'X-Hub-Signature-256: %s\r\n\r\n' "$sig"; cat "$WORK/late.json"; } >"$WORK/spool/a.req"
cp "$WORK/spool/a.req" "$WORK/spool/b.req"   # the same request twice
rc=0
"$OP" --config "$WORK/cb.toml" ingest --spool "$WORK/spool" --json >"$WORK/ingest.json" 2>"$WORK/ingest.log" || rc=$?
assert_eq "$rc" "0" "ingest exit status"
assert_eq "$(json 'j["ledger"], j["stored"], j["duplicates"], j["new_updates"], j["rejected_statuses"]' <"$WORK/ingest.json")" "postgresql 2 1 1 1" "ingest into PostgreSQL"
assert_eq "$(pg "SELECT state FROM deliveries WHERE provider_message_id='$wamid'")" "read" "a spooled read applied in PostgreSQL"
assert_eq "$(pg "SELECT COUNT(*) FROM status_rejects WHERE provider_message_id='wamid.bad'")" "1" "the rejected element kept in PostgreSQL"
"$OP" --config "$WORK/cb.toml" status rejected --json >"$WORK/rejected.json"
assert_eq "$(json 'j["ledger"], j["total"], j["rejected"][0]["provider_message_id"]' <"$WORK/rejected.json")" "postgresql 1 wamid.bad" "status rejected reads PostgreSQL"
echo "ok 5: daybreak ingest --spool stored and applied into PostgreSQL; status rejected reads it there"

kill -TERM "$RECEIVER"
rc=0
wait "$RECEIVER" || rc=$?
assert_eq "$rc" "0" "receiver exit code on SIGTERM"
grep -q "SIGTERM: stopping" "$WORK/cb.log" || fail "receiver did not log its stop"

# --- 6. retention of the status tables on PostgreSQL ([retention] status_days, 30 by default) ---
events=$(pg "SELECT COUNT(*) FROM status_events")
updates=$(pg "SELECT COUNT(*) FROM status_updates")
[ "$events" -gt 0 ] || fail "no status events to purge"
later=$(clock_at "$(date -d "$D +40 days" +%F)T03:00:00+05:30" 1)
# retention works on this host's SQLite file too: one of the test's own, not the default path
{ printf '[database]\npath = "%s"\n' "$WORK/host.db"; grep -v '^\[database\]' "$WORK/cb.toml"; } >"$WORK/ret.toml"
DAYBREAK_CLOCK=$later "$OP" --config "$WORK/ret.toml" retention purge --older-than 3650 --dry-run --json >"$WORK/ret-dry.json" ||
  fail "retention purge --dry-run with the url exited $?"
assert_eq "$(json 'j["statuses_postgresql"]["deleted_events"], j["statuses_postgresql"]["deleted_updates"]' <"$WORK/ret-dry.json")" \
  "$events $updates" "retention --dry-run: PostgreSQL's status rows counted"
assert_eq "$(pg "SELECT COUNT(*) FROM status_events")" "$events" "status events after the dry run"
DAYBREAK_CLOCK=$later "$OP" --config "$WORK/ret.toml" retention purge --older-than 3650 --batch 500 --json >"$WORK/ret.json" ||
  fail "retention purge with the url exited $?"
assert_eq "$(json 'j["statuses_postgresql"]["deleted_events"], j["statuses_postgresql"]["deleted_updates"]' <"$WORK/ret.json")" \
  "$events $updates" "retention: PostgreSQL's status rows deleted"
assert_eq "$(pg "SELECT (SELECT COUNT(*) FROM status_events) + (SELECT COUNT(*) FROM status_updates) + (SELECT COUNT(*) FROM status_rejects)")" "0" \
  "status rows left in PostgreSQL"
assert_eq "$(pg "SELECT COUNT(*) FROM audit_log WHERE target='status_events' AND after LIKE '%\"deleted_events\":$events%'")" "1" \
  "the purge's audit row in PostgreSQL"
echo "ok 6: retention purged $events status event(s) and $updates status(es) from PostgreSQL"
echo "ok: status callbacks land in the PostgreSQL ledger"
