#!/usr/bin/env bash
# A slow SMTP relay stalls only its own sender's emails. Two real-time runs of 2,000 WhatsApp
# advisors (the simulator, latency median 40 ms) plus 32 email-only advisors, each email sender
# with its own SMTP server (tests/e2e/smtp_sink.py, Debian python3-aiosmtpd) on 127.0.0.1:
#   run 1 (baseline): both relays answer at once
#   run 2: mail-slow's relay answers the final "." after 3 s (--data-delay 3); mail-fast's at once
# Checked on run 2 against run 1:
#  1. WhatsApp accept lag p50 (accepted_at - planned_at) within 10% of the baseline's
#  2. mail-slow's throughput >= 0.8 x concurrency / 3 s (concurrency = 4), over at most 4
#     connections (sessions reused); mail-fast's emails are not held by it (each under 1 s)
#  3. nothing out of step: every email attempt accepted with the sink's own answer to "."
#     ("reply: 250 2.0.0 Message accepted for delivery"), each address got exactly one message
#  4. nothing lost: every delivery of both runs is final, every email accepted
# Then: several alert emails of one pass go over one connection, each with Date and Message-ID.
source "$(dirname "$0")/common.sh"

require_aiosmtpd

N_WA=2000
N_SLOW=24
N_FAST=8
CONC=4
DELAY=3
start_sim wa --mps 80 --seed 7 --transient-rate 0 --permanent-rate 0 --latency-ms-median 40 --latency-ms-p99 150

# seed DATE: the same 2,000 WhatsApp advisors (same seed) and the email advisors, planned for DATE,
# each email advisor's delivery pointed at its sender.
seed() {
  local day=$1
  "$OP" generate --advisors "$N_WA" --date "$day" --out "$WORK/data" --seed 11 --other-tz-pct 0 --channels whatsapp >/dev/null
  "$OP" import content "$WORK/data/content.csv" >/dev/null
  "$OP" import advisors "$WORK/data/advisors.csv" >/dev/null
  "$OP" import assignments "$WORK/data/assignments.csv" >/dev/null
  local content
  content=$(sed -n 2p "$WORK/data/assignments.csv" | cut -d, -f3)
  {
    echo "advisor_id,name,tier,phone,email,timezone,slot,channels,opted_in,language,topics"
    for i in $(seq 1 $N_SLOW); do echo "es-$i,Slow $i,gold,,slow.$i@advisors.example.com,,,email,true,en,markets"; done
    for i in $(seq 1 $N_FAST); do echo "ef-$i,Fast $i,gold,,fast.$i@advisors.example.com,,,email,true,en,markets"; done
  } >"$WORK/data/mail-advisors.csv"
  {
    echo "advisor_id,date,content_id"
    for i in $(seq 1 $N_SLOW); do echo "es-$i,$day,$content"; done
    for i in $(seq 1 $N_FAST); do echo "ef-$i,$day,$content"; done
  } >"$WORK/data/mail-assignments.csv"
  "$OP" import advisors "$WORK/data/mail-advisors.csv" >/dev/null
  "$OP" import assignments "$WORK/data/mail-assignments.csv" >/dev/null
  DAYBREAK_CLOCK="$(date -d "$day -1 day" +%F)T21:30:00+05:30@$(now_ms)*1" "$ASSIGN" --date "$day" >/dev/null
  DAYBREAK_CLOCK="$(date -d "$day -1 day" +%F)T21:30:00+05:30@$(now_ms)*1" "$PLAN" --date "$day" >/dev/null
  sql "UPDATE deliveries SET sender='mail-slow' WHERE date='$day' AND advisor_id LIKE 'es-%';
       UPDATE deliveries SET sender='mail-fast' WHERE date='$day' AND advisor_id LIKE 'ef-%'"
}

# run_day NAME DATE DELAY: both sinks fresh (mail-slow's answering "." after DELAY s), dispatch in
# real time from 3 s before the window opens; sets RUN.
run_day() {
  local name=$1 day=$2 delay=$3
  start_smtp "$name-slow" --data-delay "$delay"
  local slow_port=$SMTP_PORT
  start_smtp "$name-fast"
  local fast_port=$SMTP_PORT
  write_config "$SIM_PORT" "
[[email.senders]]
id = \"mail-slow\"
url = \"smtp://127.0.0.1:$slow_port\"
from = \"Daybreak <desk@daybreak.example.com>\"
starttls = false
concurrency = $CONC
mps = 10
[[email.senders]]
id = \"mail-fast\"
url = \"smtp://127.0.0.1:$fast_port\"
from = \"Daybreak <desk@daybreak.example.com>\"
starttls = false
concurrency = $CONC
mps = 10"
  seed "$day"
  RUN=$(sql "SELECT run_id FROM runs WHERE date='$day' ORDER BY planned_count DESC LIMIT 1")
  local ws start_iso rc=0
  ws=$(sql "SELECT window_start FROM runs WHERE run_id=$RUN")
  start_iso=$(TZ=Asia/Kolkata date -d "@$(( ws / 1000 - 3 ))" +%FT%T%:z)
  DAYBREAK_CLOCK="$start_iso@$(now_ms)*1" "$DISPATCH" --run "$RUN" --json >"$WORK/$name.json" 2>"$WORK/$name.log" || rc=$?
  assert_eq "$(json 'j["status"]' <"$WORK/$name.json")" "done" "$name: dispatch status (exit $rc)"
}

p50_wa() {  # WhatsApp accept lag p50 of run $1, ms
  sql "SELECT accepted_at - planned_at FROM deliveries WHERE run_id=$1 AND channel='whatsapp' AND state='accepted'
       ORDER BY 1 LIMIT 1 OFFSET (SELECT COUNT(*)/2 FROM deliveries WHERE run_id=$1 AND channel='whatsapp' AND state='accepted')"
}

run_day fast 2026-12-07 0
RUN_FAST=$RUN
run_day slow 2026-12-08 "$DELAY"
RUN_SLOW=$RUN

# --- 4 first: nothing lost -------------------------------------------------------------------
for r in $RUN_FAST $RUN_SLOW; do
  assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$r AND state NOT IN ('accepted','delivered','read','dead','cancelled')")" \
    "0" "run $r: deliveries not final"
  assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$r AND channel='email' AND state='accepted'")" \
    "$((N_SLOW + N_FAST))" "run $r: email deliveries accepted"
  wa=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$r AND channel='whatsapp'")
  [ "$wa" -gt $((N_WA * 9 / 10)) ] || fail "run $r: only $wa WhatsApp deliveries planned"
  assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$r AND channel='whatsapp' AND state='accepted'")" \
    "$wa" "run $r: WhatsApp deliveries accepted"
done
echo "ok 4: every delivery of both runs final; all $((N_SLOW + N_FAST)) emails and $wa WhatsApp messages accepted in each"

# --- 1. WhatsApp accept lag ------------------------------------------------------------------
P_FAST=$(p50_wa "$RUN_FAST")
P_SLOW=$(p50_wa "$RUN_SLOW")
echo "WhatsApp accept lag p50: fast relay $P_FAST ms, ${DELAY} s relay $P_SLOW ms"
python3 -c "import sys; sys.exit(0 if $P_SLOW <= 1.10 * $P_FAST else 1)" ||
  fail "WhatsApp accept lag p50 $P_SLOW ms with a ${DELAY} s relay is more than 10% above $P_FAST ms with a fast one"
echo "ok 1: WhatsApp accept lag p50 $P_SLOW ms beside a ${DELAY} s relay, $P_FAST ms beside a fast one"

# --- 2. throughput of the slow sender; the fast sender is not held ---------------------------
read -r n span_ms <<<"$(sql "SELECT COUNT(*), MAX(a.finished_at) - MIN(a.started_at) FROM delivery_attempts a
  JOIN deliveries d USING (delivery_id) WHERE d.run_id=$RUN_SLOW AND a.sender='mail-slow'" | tr '|' ' ')"
assert_eq "$n" "$N_SLOW" "mail-slow attempts (one per email)"
rate=$(python3 -c "print(f'{$n / ($span_ms / 1000):.3f}')")
floor=$(python3 -c "print(f'{0.8 * $CONC / $DELAY:.3f}')")
python3 -c "import sys; sys.exit(0 if $rate >= $floor else 1)" ||
  fail "mail-slow sent $n emails in $span_ms ms: $rate/s < 0.8 x $CONC / $DELAY s = $floor/s"
opened=$(grep -c ' open$' "$WORK/slow-slow/connections.log")
[ "$opened" -le "$CONC" ] || fail "mail-slow opened $opened connections for $n emails (concurrency $CONC): sessions not reused"
fast_max=$(sql "SELECT MAX(a.latency_ms) FROM delivery_attempts a JOIN deliveries d USING (delivery_id)
  WHERE d.run_id=$RUN_SLOW AND a.sender='mail-fast'")
[ "$fast_max" -lt 1000 ] || fail "mail-fast's slowest email took $fast_max ms beside the slow relay"
echo "ok 2: mail-slow $rate emails/s (floor $floor/s) over $opened connection(s); mail-fast's slowest email $fast_max ms"

# --- 3. nothing out of step ------------------------------------------------------------------
for r in $RUN_FAST $RUN_SLOW; do
  assert_eq "$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$r
    AND a.channel='email' AND (a.outcome <> 'accepted' OR a.error_detail IS NOT 'reply: 250 2.0.0 Message accepted for delivery')")" \
    "0" "run $r: email attempts not accepted with the sink's own answer to the final dot"
done
for sink in fast-slow fast-fast slow-slow slow-fast; do
  dup=$("$SMTP_PY" - "$WORK/$sink" <<'PY'
import collections, glob, json, os, sys
c = collections.Counter(a for p in glob.glob(os.path.join(sys.argv[1], "*.json")) for a in json.load(open(p))["rcpt_tos"])
print(sum(1 for v in c.values() if v > 1), len(c))
PY
)
  [ "${dup%% *}" = 0 ] || fail "$sink: addresses that got more than one message: $dup"
done
echo "ok 3: every email attempt recorded the relay's answer to its own final dot; no address got two messages"

# --- 5. alert emails: one connection per pass, Date and Message-ID ---------------------------
start_smtp alerts
cat >>"$WORK/daybreak.toml" <<TOML
[alerts]
chain = ["oncall"]
smtp_url = "smtp://127.0.0.1:$SMTP_PORT"
smtp_from = "alerts@daybreak.example.com"
[alerts.levels.oncall]
emails = ["one@ops.example.com", "two@ops.example.com", "three@ops.example.com"]
TOML
"$OP" alerts raise nightly_failed --subject date:2026-12-09 --message "nightly job failed (test)" >/dev/null 2>"$WORK/raise.log"
assert_eq "$(ls "$WORK"/alerts/*.json 2>/dev/null | wc -l)" "3" "alert emails received"
assert_eq "$(grep -c ' open$' "$WORK/alerts/connections.log")" "1" "connections for the 3 alert emails of one pass"
"$SMTP_PY" - "$WORK/alerts" <<'PY' || fail "alert emails are wrong (above)"
import email, email.policy, glob, os, sys
ids = set()
for p in sorted(glob.glob(os.path.join(sys.argv[1], "*.eml"))):
    m = email.message_from_bytes(open(p, "rb").read(), policy=email.policy.default)
    assert m["Date"] is not None and m["Date"].datetime is not None, f"{p}: no Date"
    mid = m["Message-ID"]
    assert mid and mid.startswith("<daybreak-alert.") and mid.endswith("@daybreak.example.com>"), f"{p}: Message-ID {mid!r}"
    ids.add(mid)
assert len(ids) == 3, f"Message-IDs not distinct: {ids}"
PY
echo "ok 5: 3 alert emails of one pass over 1 connection, each with Date and its own Message-ID"

# --- 6. a session that timed out is never reused ---------------------------------------------
# A relay that answers "." after 2 s, a sender that waits 1 s: every attempt times out after the
# whole message was handed over (uncertain, resent after the grace). Each attempt must open its
# own connection, and record the last reply it saw (354, the answer to DATA), never another
# message's reply read out of step.
start_smtp silent --data-delay 2
write_config "$SIM_PORT" "
[[email.senders]]
id = \"mail-silent\"
url = \"smtp://127.0.0.1:$SMTP_PORT\"
from = \"desk@daybreak.example.com\"
starttls = false
concurrency = 1
request_timeout_ms = 1000
mps = 10"
D6=2026-12-10
seed "$D6"
sql "UPDATE deliveries SET state='cancelled' WHERE date='$D6' AND NOT (advisor_id LIKE 'es-%' AND CAST(substr(advisor_id, 4) AS INT) <= 3);
     UPDATE deliveries SET sender='mail-silent' WHERE date='$D6' AND state <> 'cancelled'"
run6=$(sql "SELECT run_id FROM deliveries WHERE date='$D6' AND state <> 'cancelled' LIMIT 1")
DAYBREAK_CLOCK=$(clock_at "${D6}T05:59:25+05:30" 20) "$DISPATCH" --run "$run6" --json >"$WORK/d6.json" 2>"$WORK/d6.log" || true
n6=$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run6")
[ "$n6" -ge 3 ] || fail "expected at least 3 attempts on the silent relay, got $n6"
assert_eq "$(sql "SELECT group_concat(DISTINCT a.outcome || '/' || a.error_code) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run6")" \
  "uncertain/curl:28" "attempt outcomes on the silent relay"
assert_eq "$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run6
  AND a.error_detail NOT LIKE '%; reply: 354 %'")" "0" "timed-out attempts whose last reply is not the answer to DATA"
assert_eq "$(grep -c ' open$' "$WORK/silent/connections.log")" "$n6" "connections opened for $n6 attempts"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run6 AND state IN ('sending','retry_wait','uncertain','planned')")" "0" \
  "deliveries left open on the silent relay"
echo "ok 6: $n6 timed-out attempts on a silent relay, each on its own connection, each recording the relay's 354"
