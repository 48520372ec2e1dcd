#!/usr/bin/env bash
# A `failed` status after acceptance, end to end on 127.0.0.1 (docs/state_machine.md, `accepted`
# → `retry_wait`): the simulator answers 5% of accepted WhatsApp messages with a signed `failed`
# status callback carrying 131049 (the per-user marketing limit), posted to a real
# daybreak-callbacks; advisors have `whatsapp|email`; email goes to the SMTP sink.
#  1. dispatch (dispatch.status_wait_seconds = 30) moves each failed delivery to email while its
#     run waits, and the email is accepted before the deadline; nothing is sent twice on one
#     channel (simulator duplicates 0; one email attempt and one SMTP message per address);
#     sla-report shows accepted, delivered and read rates and failed-after-accept (0 here: every
#     failure reached the advisor by email); each failed advisor has a 24 h WhatsApp hold
#  2. a failure arriving after the run closed (status_wait_seconds = 0) is recorded only: the row
#     stays accepted on WhatsApp and sla-report counts it as failed after accept
#  3. the next night, plan-deliveries puts the advisors held by 131049 on email, the others on
#     WhatsApp
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/json.sh"

require_aiosmtpd
CALLBACKS=$DAYBREAK_BIN/daybreak-callbacks/daybreak-callbacks
[ -x "$CALLBACKS" ] || fail "no receiver binary at $CALLBACKS"
SECRET="app-secret-failed"
SCALE=10
N=200
D1=2026-12-07
D2=2026-12-08
D3=2026-12-09

umask 077
{
  printf '[database]\npath = "%s"\n[whatsapp]\napp_secret = "%s"\nverify_token = "v"\n' "$DB" "$SECRET"
  printf '[[whatsapp.senders]]\nid = "wa-1"\nphone_number_id = "100000001"\ntoken = "t"\nmps = 80\n'
} >"$WORK/cb.toml"
start_receiver cb "$WORK/cb.toml" --pending-interval-ms 200
SIM_PIDS+=("$CB_PID")
start_smtp mail

# config WAIT_SECONDS: WhatsApp then email, dispatch keeping a run open WAIT s after its last
# WhatsApp acceptance
config() {
  write_config "$SIM_PORT" "
[[email.senders]]
id = \"mail-1\"
url = \"smtp://127.0.0.1:$SMTP_PORT\"
from = \"Daybreak Desk <desk@daybreak.example.com>\"
starttls = false
mps = 40"
  sed -i "s/^\[dispatch\]$/[dispatch]\nstatus_wait_seconds = $1/" "$WORK/daybreak.toml"
}

# day DATE: N advisors with whatsapp|email, assigned and planned the night before
plan_day() {
  local day=$1 night
  night="$(date -d "$day -1 day" +%F)T21:30:00+05:30"
  DAYBREAK_CLOCK=$(clock_at "$night" 1) "$ASSIGN" --date "$day" >/dev/null
  DAYBREAK_CLOCK=$(clock_at "$night" 1) "$PLAN" --date "$day" --json >"$WORK/plan-$day.json" || true
}

# sim DATE: a simulator on the scenario clock of DATE 06:00, failing 5% with 131049 by callback
sim_for() {
  DAYBREAK_CLOCK=$(clock_at "${1}T05:59:25+05:30" $SCALE) DAYBREAK_SIM_APP_SECRET="$SECRET" start_sim "prov-$1" \
    --mps 160 --time-scale $SCALE --seed 7 --transient-rate 0 --permanent-rate 0 \
    --callback-url "http://127.0.0.1:$CB_PORT/webhook" --callback-delay-ms "$2" --callback-read-rate 0.5 \
    --callback-fail-rate 0.05 --callback-fail-code 131049
}

# wait_callbacks: until the simulator has posted everything it queued and nothing is pending
wait_callbacks() {
  local cs
  for _ in $(seq 1 400); do
    cs=$(curl -s "http://127.0.0.1:$SIM_PORT/stats/callbacks")
    [ "$(jget "$cs" pending)" = "0" ] && [ "$(jget "$cs" posted)" = "$(jget "$cs" queued)" ] && break
    sleep 0.1
  done
  for _ in $(seq 1 100); do
    [ "$(sql "SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL")" = "0" ] && break
    sleep 0.1
  done
}


# --- 1. failures while the run is open go to email ------------------------------------------
sim_for "$D1" 300
config 30
"$OP" generate --advisors "$N" --date "$D1" --out "$WORK/data" --seed 11 --other-tz-pct 0 --channels 'whatsapp|email' >/dev/null
for kind in content advisors assignments; do "$OP" import "$kind" "$WORK/data/$kind.csv" >/dev/null; done
for day in "$D2" "$D3"; do
  "$OP" generate --advisors "$N" --date "$day" --out "$WORK/data-$day" --seed 11 --other-tz-pct 0 --channels 'whatsapp|email' >/dev/null
  "$OP" import assignments "$WORK/data-$day/assignments.csv" >/dev/null
done
plan_day "$D1"
run1=$(sql "SELECT run_id FROM runs WHERE date='$D1'")
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1 AND channel='whatsapp'")" "$N" "planned on WhatsApp"
rc=0
DAYBREAK_CLOCK=$(clock_at "${D1}T05:59:25+05:30" $SCALE) "$DISPATCH" --run "$run1" --json >"$WORK/d1.json" 2>"$WORK/d1.log" || rc=$?
assert_eq "$rc" "0" "dispatch exit (SLA met)"
wait_callbacks
cs=$(curl -s "http://127.0.0.1:$SIM_PORT/stats/callbacks")
failed=$(jget "$cs" by_status failed)
[ "$failed" -gt 0 ] || fail "the simulator failed no message (5% of $N expected)"
echo "simulator: $failed of $N accepted messages answered failed 131049 by callback"
d1=$(cat "$WORK/d1.json")
assert_eq "$(jget "$d1" rerouted_after_failed)" "$failed" "dispatch moved every failed delivery to the next channel"
assert_eq "$(jget "$d1" failed_after_accept)" "0" "none recorded only"
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run1")" "closed" "run closed"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1 AND state NOT IN ('accepted','delivered','read')")" "0" \
  "every delivery final and accepted"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1 AND channel='email' AND state='accepted' AND accepted_at <= deadline_at")" \
  "$failed" "the failed advisors got the email before the deadline"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run1 AND channel='email' AND last_error LIKE 'rerouted after status failed: 131049%'")" \
  "$failed" "the reroute is recorded on the row"
# nothing twice on one channel
assert_eq "$(jget "$(sim_stats)" duplicates)" "0" "simulator duplicates (WhatsApp)"
assert_eq "$(sql "SELECT COUNT(*) FROM (SELECT a.delivery_id, a.channel FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run1 GROUP BY a.delivery_id, a.channel HAVING COUNT(*) > 1)")" \
  "0" "one attempt per delivery and channel"
assert_eq "$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run1 AND a.channel='email' AND a.outcome='accepted'")" \
  "$failed" "email attempts"
mails=$("$SMTP_PY" - "$WORK/mail" <<'PY'
import collections, glob, json, os, sys
c = collections.Counter()
for p in glob.glob(os.path.join(sys.argv[1], "*.json")):
    for r in json.load(open(p))["rcpt_tos"]:
        c[r] += 1
print(sum(c.values()), max(c.values()) if c else 0)
PY
)
assert_eq "$mails" "$failed 1" "SMTP messages received, at most one per address"
assert_eq "$(sql "SELECT COUNT(*) FROM whatsapp_holds WHERE error_code = 131049")" "$failed" "a 24 h WhatsApp hold per failed advisor"
assert_eq "$(sql "SELECT COUNT(*) FROM whatsapp_holds h JOIN status_updates u ON u.matched_delivery_id = h.delivery_id AND u.status = 'failed' WHERE h.until = u.provider_at + 86400000")" \
  "$failed" "holds last 24 h from the failure"
rep=$("$REPORT" --run "$run1" --json)
assert_eq "$(jget "$rep" eligible)" "$N" "eligible"
assert_eq "$(jget "$rep" on_time)" "$N" "accepted on time"
assert_eq "$(jget "$rep" failed_after_accept)" "0" "failed after accept (every failure reached the advisor by email)"
[ "$(jget "$rep" delivered)" -gt 0 ] && [ "$(jget "$rep" read)" -gt 0 ] || fail "no delivered or read status counted: $rep"
txt=$("$REPORT" --run "$run1")
for w in "delivered" "read" "failed after accept"; do
  grep -q "$w" <<<"$txt" || fail "sla-report text lacks '$w': $txt"
done
echo "ok 1: $failed failed by callback, each emailed once before the deadline; sla-report: accepted on time $(jget "$rep" on_time)/$N ($(jget "$rep" sla_pct)%), delivered on time $(jget "$rep" delivered_sla_pct)%, read $(jget "$rep" read_pct)%, failed after accept $(jget "$rep" failed_after_accept)"

# --- 2. a failure after the run closed is recorded only ---------------------------------------
kill "${SIM_PIDS[-1]}" 2>/dev/null || true
sim_for "$D2" 20000  # statuses 20 s (scenario) apart: the run has closed when `failed` comes, after 06:00
config 0
plan_day "$D2"
run2=$(sql "SELECT run_id FROM runs WHERE date='$D2'")
held2=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run2 AND channel='email'")
DAYBREAK_CLOCK=$(clock_at "${D2}T05:59:25+05:30" $SCALE) "$DISPATCH" --run "$run2" --json >"$WORK/d2.json" 2>"$WORK/d2.log" || true
assert_eq "$(sql "SELECT state FROM runs WHERE run_id=$run2")" "closed" "run 2 closed before the statuses"
wait_callbacks
failed2=$(jget "$(curl -s "http://127.0.0.1:$SIM_PORT/stats/callbacks")" by_status failed)
[ "$failed2" -gt 0 ] || fail "no failed status on day 2"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run2 AND state='accepted' AND channel='whatsapp' AND last_error LIKE 'status failed: 131049%'")" \
  "$failed2" "recorded on the accepted WhatsApp rows, not moved"
assert_eq "$(jget "$(cat "$WORK/d2.json")" rerouted_after_failed)" "0" "nothing moved after the close"
rep2=$("$REPORT" --run "$run2" --json)
assert_eq "$(jget "$rep2" failed_after_accept)" "$failed2" "sla-report failed after accept"
echo "ok 2: $failed2 failed after the close, recorded only ($held2 held from day 1 sent by email)"

# --- 3. the next night plans the held advisors on email ---------------------------------------
plan_day "$D3"
held_now=$(sql "SELECT COUNT(*) FROM whatsapp_holds WHERE until > strftime('%s', '${D3}T06:00:00+05:30') * 1000")
[ "$held_now" -gt 0 ] || fail "no hold is still in force at $D3 06:00"
run3=$(sql "SELECT run_id FROM runs WHERE date='$D3'")
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries d JOIN whatsapp_holds h USING (advisor_id) WHERE d.run_id=$run3 AND h.until > d.slot_at AND d.channel='email'")" \
  "$held_now" "held advisors planned on email"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries d WHERE d.run_id=$run3 AND d.channel='whatsapp' AND d.advisor_id IN (SELECT advisor_id FROM whatsapp_holds WHERE until > d.slot_at)")" \
  "0" "no held advisor planned on WhatsApp"
assert_eq "$(jget "$(cat "$WORK/plan-$D3.json")" whatsapp_held)" "$held_now" "plan report counts them"
echo "ok 3: $held_now advisors held by 131049 planned on email for $D3"
echo "PASS"
