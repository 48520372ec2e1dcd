#!/usr/bin/env bash
# WhatsApp over https:// end to end: the simulator serves TLS with a self-signed certificate made
# here, and dispatch reaches it with each transport.
#  1. transport "epoll" (OpenSSL on daybreak's own connections), the certificate trusted through
#     SSL_CERT_FILE: every delivery accepted exactly once, over a few kept-alive TLS connections
#  2. transport "curl", the same way (CURL_CA_BUNDLE this time): the same
#  3. each transport with no CA that knows the certificate: nothing reaches the provider, every
#     attempt is recorded as the same certificate failure (curl:60), never as sent, and the sender
#     (not each message) takes the blame: certificate_failure fires for it, its breaker opens and
#     it is probed one message at a time instead of each delivery spending its retries
source "$(dirname "$0")/common.sh"

command -v openssl >/dev/null || { echo "skip: openssl missing"; exit 125; }
unset CURL_CA_BUNDLE SSL_CERT_FILE
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=daybreak-sim" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$WORK/sim.key" -out "$WORK/sim.pem" 2>/dev/null
start_sim tls --mps 80 --time-scale 10 --seed 1 --transient-rate 0 --permanent-rate 0 \
  --tls-cert "$WORK/sim.pem" --tls-key "$WORK/sim.key"
grep -q "listening on https://" "$WORK/tls.log" || fail "the simulator does not say it serves https"
sim_stats() { curl -s --cacert "$WORK/sim.pem" "https://127.0.0.1:$SIM_PORT/stats"; }
# the plain-http probe common.sh uses must not work on a TLS port
curl -s -m 5 "http://127.0.0.1:$SIM_PORT/stats" | grep -q accepted && fail "the TLS port answered plain http"

# config TRANSPORT: write_config with that transport and an https:// graph_base
config() {
  DAYBREAK_TEST_TRANSPORT=$1 write_config "$SIM_PORT" "[breaker]
min_requests = 1000"
  sed -i "s#graph_base = \"http://#graph_base = \"https://#" "$WORK/daybreak.toml"
  grep -q "graph_base = \"https://127.0.0.1:$SIM_PORT\"" "$WORK/daybreak.toml" || fail "config: no https graph_base"
}

# morning DAY TRANSPORT CA_VAR [SCALE]: dispatches DAY's run with TRANSPORT, the certificate named
# by the environment variable CA_VAR (none when empty), time SCALE times faster (10); sets RUN
morning() {
  local day=$1 transport=$2 ca_var=$3 scale=${4:-10}
  config "$transport"
  seed_day 60 "$day"
  RUN=$(sql "SELECT run_id FROM runs WHERE date='$day'")
  local -a env_ca=()
  [ -z "$ca_var" ] || env_ca=("$ca_var=$WORK/sim.pem")
  env "${env_ca[@]}" DAYBREAK_CLOCK="$(clock_at "${day}T05:59:55+05:30" "$scale")" "$DISPATCH" --run "$RUN" --json \
    >"$WORK/$day.json" 2>"$WORK/$day.log" || true
}

# --- 1 and 2: each transport with the certificate trusted --------------------------------------
k=0
for pass in "2026-12-01 epoll SSL_CERT_FILE" "2026-12-02 curl CURL_CA_BUNDLE"; do
  read -r day transport ca_var <<<"$pass"
  before=$(sim_stats | json 'j["accepted"]')
  morning "$day" "$transport" "$ca_var"
  assert_eq "$(json 'j["status"]' <"$WORK/$day.json")" "done" "$transport: dispatch status"
  planned=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$RUN")
  [ "$planned" -gt 40 ] || fail "$transport: expected about 60 deliveries, got $planned"
  assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$RUN AND state='accepted'")" "$planned" "$transport: accepted"
  assert_eq "$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$RUN")" \
    "$planned" "$transport: attempts (one each)"
  stats=$(sim_stats)
  assert_eq "$(( $(echo "$stats" | json 'j["accepted"]') - before ))" "$planned" "$transport: acceptances at the provider"
  assert_eq "$(echo "$stats" | json 'j["duplicates"]')" "0" "$transport: duplicates"
  k=$((k + 1))
  echo "ok $k: $transport over https: $planned deliveries accepted exactly once"
done

# --- 3: no CA that knows the certificate -------------------------------------------------------
for pass in "2026-12-03 epoll" "2026-12-04 curl"; do
  read -r day transport <<<"$pass"
  before=$(sim_stats | json 'j["requests"]')
  # Nothing reaches the provider, so the simulator's pace does not matter; the rows wait for the
  # sender's probes until deadline + drain, which a faster clock shortens.
  morning "$day" "$transport" "" 60
  assert_eq "$(sim_stats | json 'j["requests"]')" "$before" "$transport without the CA: requests that reached the provider"
  planned=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$RUN")
  attempts=$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$RUN")
  [ "$attempts" -gt 0 ] || fail "$transport without the CA: no attempt recorded"
  assert_eq "$(sql "SELECT group_concat(DISTINCT a.error_code) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$RUN")" \
    "curl:60" "$transport without the CA: the attempts' error code"
  assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$RUN AND state IN ('accepted','uncertain')")" "0" \
    "$transport without the CA: deliveries counted as sent"
  assert_eq "$(sql "SELECT group_concat(DISTINCT a.outcome) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.run_id=$RUN")" \
    "credentials" "$transport without the CA: the attempts' outcome (the sender's failure, not the message's)"
  assert_eq "$(sql "SELECT COUNT(*) FROM alerts WHERE rule='certificate_failure' AND subject='sender:wa-1' AND fired_at >= (SELECT window_start - 600000 FROM runs WHERE run_id=$RUN)")" \
    "1" "$transport without the CA: certificate_failure alert"
  grep -q "TLS certificate did not verify" "$WORK/$day.log" || fail "$transport without the CA: dispatch did not log the certificate failure"
  # The burst's first requests leave before the first failure comes back; after it, one probe at a
  # time (never two attempts started within a pause), where retried per message every delivery
  # would try retry.max_attempts (3) times.
  [ "$attempts" -lt $((planned * 3)) ] || fail "$transport without the CA: $attempts attempts for $planned deliveries: retried per message"
  close=$(sql "SELECT COUNT(*) FROM delivery_attempts a JOIN delivery_attempts b ON b.attempt_id > a.attempt_id
    AND b.started_at - a.started_at BETWEEN 0 AND 60000 AND b.delivery_id IN (SELECT delivery_id FROM deliveries WHERE run_id=$RUN)
    WHERE a.delivery_id IN (SELECT delivery_id FROM deliveries WHERE run_id=$RUN) AND a.started_at > (SELECT MIN(a2.finished_at)
      FROM delivery_attempts a2 JOIN deliveries d2 USING (delivery_id) WHERE d2.run_id=$RUN)")
  assert_eq "$close" "0" "$transport without the CA: attempts started within a minute of each other after the first failure"
  assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$RUN AND state='dead'")" "$planned" \
    "$transport without the CA: dead by deadline + drain (the run closes)"
  echo "ok 3: $transport without the CA: $attempts attempts for $planned deliveries, each curl:60, certificate_failure fired, nothing reached the provider"
done
