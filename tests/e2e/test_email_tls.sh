#!/usr/bin/env bash
# An email relay with a private CA (SMTPS, a self-signed certificate made here with openssl):
#  1. without ca_file the certificate does not verify: every attempt is a certificate failure
#     (curl:60, outcome credentials, not uncertain), the sender's breaker opens, the
#     certificate_failure alert fires for sender:mail-tls, the sender is probed one message at a
#     time every 5 minutes instead of each message spending its retries (fewer attempts than
#     deliveries x retry.max_attempts over the whole morning), and nothing reaches the relay;
#     the deliveries (no other channel) end dead at deadline + drain; advisors whose second
#     channel is WhatsApp get it promptly
#  2. with ca_file naming the certificate, every email is accepted over TLS
#  3. with no ca_file but SSL_CERT_FILE naming it in dispatch's environment, the same
source "$(dirname "$0")/common.sh"

require_aiosmtpd
command -v openssl >/dev/null || { echo "skip: openssl missing"; exit 125; }

# The CA variables of the environment this runs in must not decide case 1 (and 3 sets its own).
unset CURL_CA_BUNDLE SSL_CERT_FILE
SCALE=60
N=6
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$WORK/relay.key" -out "$WORK/relay.pem" 2>/dev/null
start_sim wa --mps 80 --time-scale $SCALE --seed 3 --transient-rate 0 --permanent-rate 0
start_smtp tls --tls-cert "$WORK/relay.pem" --tls-key "$WORK/relay.key"

# config EXTRA: one SMTPS email sender (plus EXTRA keys for it)
config() {
  write_config "$SIM_PORT" "
[breaker]
min_requests = 2
[[email.senders]]
id = \"mail-tls\"
url = \"smtps://127.0.0.1:$SMTP_PORT\"
from = \"desk@daybreak.example.com\"
concurrency = 2
mps = 10
$1"
}

# day DATE: N email-only advisors planned for DATE; sets RUN
day() {
  local d=$1
  "$OP" generate --advisors 20 --date "$d" --out "$WORK/data" --seed 5 --other-tz-pct 0 --channels whatsapp >/dev/null
  "$OP" import content "$WORK/data/content.csv" >/dev/null
  local content
  content=$(sed -n 2p "$WORK/data/assignments.csv" | cut -d, -f3)
  {
    echo "advisor_id,name,tier,phone,email,timezone,slot,channels,opted_in,language,topics"
    for i in $(seq 1 $N); do echo "t-$i,Tls $i,gold,,tls.$i@advisors.example.com,,,email,true,en,markets"; done
    # email first, WhatsApp second
    for i in 1 2; do echo "tw-$i,Both $i,gold,+9198100000$((10 + i)),both.$i@advisors.example.com,,,email|whatsapp,true,en,markets"; done
  } >"$WORK/data/tls-advisors.csv"
  {
    echo "advisor_id,date,content_id"
    for i in $(seq 1 $N); do echo "t-$i,$d,$content"; done
    for i in 1 2; do echo "tw-$i,$d,$content"; done
  } >"$WORK/data/tls-assignments.csv"
  "$OP" import advisors "$WORK/data/tls-advisors.csv" >/dev/null
  "$OP" import assignments "$WORK/data/tls-assignments.csv" >/dev/null
  DAYBREAK_CLOCK=$(clock_at "$(date -d "$d -1 day" +%F)T21:30:00+05:30" 1) "$PLAN" --date "$d" >/dev/null
  RUN=$(sql "SELECT run_id FROM runs WHERE date='$d'")
}

# --- 1. no ca_file: the self-signed certificate does not verify ------------------------------
config ""
D1=2026-12-07
day $D1
rc=0
DAYBREAK_CLOCK=$(clock_at "${D1}T05:59:25+05:30" $SCALE) "$DISPATCH" --run "$RUN" --json >"$WORK/d1.json" 2>"$WORK/d1.log" || rc=$?
assert_eq "$(json 'j["status"]' <"$WORK/d1.json")" "done" "dispatch status (exit $rc)"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$RUN AND state='dead'")" "$N" "deliveries dead (no other channel)"
# Advisors who also have WhatsApp get it, without waiting for the paused email sender.
assert_eq "$(sql "SELECT group_concat(state || ':' || channel, ' ') FROM deliveries WHERE run_id=$RUN AND advisor_id LIKE 'tw-%'")" \
  "accepted:whatsapp accepted:whatsapp" "email|whatsapp advisors"
late=$(sql "SELECT MAX(accepted_at - planned_at) FROM deliveries WHERE run_id=$RUN AND advisor_id LIKE 'tw-%'")
[ "$late" -lt 300000 ] || fail "an email|whatsapp advisor waited $late ms (simulated) for WhatsApp: held by the paused sender"
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$RUN AND advisor_id LIKE 't-%' AND last_error LIKE '%deadline + drain%'")" "$N" \
  "deliveries given up at deadline + drain, not on spent retries"
assert_eq "$(sql "SELECT group_concat(DISTINCT outcome || '/' || error_code) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$RUN AND a.channel='email'")" \
  "credentials/curl:60" "email attempt outcomes"
[ "$(json 'j["breaker_opened"]' <"$WORK/d1.json")" -ge 1 ] || fail "the sender's breaker did not open: $(cat "$WORK/d1.json")"
assert_eq "$(sql "SELECT COUNT(*) FROM alerts WHERE rule='certificate_failure' AND subject='sender:mail-tls'")" "1" "certificate_failure alert"
grep -q "certificate did not verify" "$WORK/d1.log" || fail "dispatch did not log the certificate failure"
tries=$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$RUN AND a.channel='email'")
# Retried per message, N deliveries x retry.max_attempts (3) would reach the relay 18 times.
[ "$tries" -lt $((N * 3)) ] || fail "$tries attempts for $N deliveries: the relay was retried per message"
# After the first failure, one probe at a time: never two attempts started within a pause.
close=$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN delivery_attempts b ON b.attempt_id > a.attempt_id
  AND b.started_at - a.started_at BETWEEN 0 AND 60000 AND b.channel = 'email'
  WHERE a.channel = 'email' AND a.started_at > (SELECT MIN(finished_at) FROM delivery_attempts WHERE channel = 'email')")
assert_eq "$close" "0" "attempts started within a minute of each other after the first failure"
assert_eq "$(ls "$WORK/tls/"*.json 2>/dev/null | wc -l)" "0" "messages the relay took"
echo "ok 1: no ca_file: $tries certificate failures (curl:60) for $N email-only deliveries, breaker open, certificate_failure fired, nothing sent; email|whatsapp advisors got WhatsApp within $late ms (simulated)"

# --- 2. ca_file = the relay's certificate ----------------------------------------------------
config "ca_file = \"$WORK/relay.pem\""
D2=2026-12-08
day $D2
DAYBREAK_CLOCK=$(clock_at "${D2}T05:59:25+05:30" $SCALE) "$DISPATCH" --run "$RUN" --json >"$WORK/d2.json" 2>"$WORK/d2.log" || true
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$RUN AND state='accepted' AND channel='email'")" "$((N + 2))" "accepted by email with ca_file"
assert_eq "$(ls "$WORK/tls/"*.json | wc -l)" "$((N + 2))" "messages the relay took"
echo "ok 2: with ca_file all $((N + 2)) emails accepted over TLS"

# --- 3. SSL_CERT_FILE in the environment, no ca_file -----------------------------------------
config ""
D3=2026-12-09
day $D3
SSL_CERT_FILE="$WORK/relay.pem" DAYBREAK_CLOCK=$(clock_at "${D3}T05:59:25+05:30" $SCALE) "$DISPATCH" --run "$RUN" --json \
  >"$WORK/d3.json" 2>"$WORK/d3.log" || true
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$RUN AND state='accepted' AND channel='email'")" "$((N + 2))" "accepted by email with SSL_CERT_FILE"
assert_eq "$(ls "$WORK/tls/"*.json | wc -l)" "$((2 * N + 4))" "messages the relay took in all"
echo "ok 3: with SSL_CERT_FILE (no ca_file) all $((N + 2)) emails accepted"
