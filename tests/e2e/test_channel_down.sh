#!/usr/bin/env bash
# WhatsApp fully down: advisors whose preference is
# whatsapp|email get email before the deadline. The one WhatsApp number answers 131000 to every
# send; its breaker opens after the first few failures, every WhatsApp sender being open moves
# the deliveries to email at once, and the SLA counts the fallback channel.
source "$(dirname "$0")/common.sh"

require_aiosmtpd

D=2026-12-07
SCALE=10
start_sim wa --mps 80 --time-scale $SCALE --seed 9 --transient-rate 0 --permanent-rate 0
start_smtp mail
write_config "$SIM_PORT" "
[[email.senders]]
id = \"mail-1\"
url = \"smtp://127.0.0.1:$SMTP_PORT\"
from = \"desk@daybreak.example.com\"
starttls = false
mps = 50
[breaker]
min_requests = 5
open_seconds = 30"
"$OP" generate --advisors 300 --date "$D" --out "$WORK/data" --seed 13 --other-tz-pct 0 --channels 'whatsapp|email' >/dev/null
"$OP" import content "$WORK/data/content.csv" >/dev/null
"$OP" import advisors "$WORK/data/advisors.csv" >/dev/null
"$OP" import assignments "$WORK/data/assignments.csv" >/dev/null
DAYBREAK_CLOCK="$(date -d "$D -1 day" +%F)T21:30:00+05:30@$(now_ms)*1" "$ASSIGN" --date "$D" >/dev/null
DAYBREAK_CLOCK="$(date -d "$D -1 day" +%F)T21:30:00+05:30@$(now_ms)*1" "$PLAN" --date "$D" >/dev/null
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")
[ "$n" -gt 250 ] || fail "expected about 300 planned deliveries, got $n"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND channel<>'whatsapp'")" "0" "planned on WhatsApp first"

# WhatsApp is down for the whole morning
curl -s -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT/control" -d '{"phone_number_id":"100000001","down":true}'
DAYBREAK_CLOCK=$(clock_at "${D}T05:59:25+05:30" $SCALE) "$DISPATCH" --run "$run" --json >"$WORK/d.json" 2>"$WORK/d.log" || true

grep -q "sender wa-1: breaker open" "$WORK/d.log" || fail "the WhatsApp sender's breaker never opened"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted' AND channel='email'")" "$n" "accepted by email"
wa_attempts=$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$run AND a.channel='whatsapp'")
[ "$wa_attempts" -lt $((n / 2)) ] || fail "$wa_attempts WhatsApp attempts for $n deliveries: the open breaker did not stop them"
mails=$(find "$WORK/mail" -type f -name '*.eml' | wc -l)
[ "$mails" -ge "$n" ] || fail "the SMTP server got $mails messages for $n deliveries"
ontime=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND accepted_at <= deadline_at")
sla=$("$REPORT" --run "$run" --json | json 'j["sla_pct"]')
awk -v s="$sla" 'BEGIN{exit !(s >= 99)}' || fail "SLA $sla% < 99% with email fallback ($ontime/$n on time)"
echo "ok: WhatsApp down, $n/$n delivered by email ($ontime on time, SLA $sla%), $wa_attempts WhatsApp attempts before the breaker held"
