#!/usr/bin/env bash
# End-to-end check of daybreak-sim, the WhatsApp Cloud API simulator every other e2e test and the
# demo rely on: a success with its wamid and callback-data count, an over-rate burst answered
# 130429, a missing token answered 190, bad JSON answered 100, a scripted outage, /stats, /reset,
# and a clean stop on SIGTERM. Needs curl, plus jq or python3 to read JSON; exits 125 (skip)
# without them.
set -euo pipefail

# CMake puts the binary at <build>/cmd/daybreak-sim; accept a per-binary folder layout too.
SIM="${DAYBREAK_BIN:?set DAYBREAK_BIN to the cmd directory of a build}/daybreak-sim"
[[ -d "$SIM" ]] && SIM="$SIM/daybreak-sim"
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl not found" >&2; exit 125; }
source "$(dirname "$0")/json.sh"
[[ -x "$SIM" ]] || { echo "FAIL: $SIM is not built" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/daybreak-sim-e2e.XXXXXX")"
SIM_PID=""
cleanup() {
  local rc=$?
  if [[ -n "$SIM_PID" ]] && kill -0 "$SIM_PID" 2>/dev/null; then
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
  fi
  if [[ $rc -eq 0 ]]; then rm -rf "$WORK"; else echo "kept $WORK (simulator log: $WORK/sim.log)" >&2; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }


expect_eq() {  # expect_eq WHAT EXPECTED ACTUAL
  [[ "$3" == "$2" ]] || fail "$1: expected '$2', got '$3'"
}

# --- start: a slow bucket (5 msg/s, burst 5) and near-zero latency keep the test fast and exact.
"$SIM" --host 127.0.0.1 --port 0 --port-file "$WORK/port" --mps 5 \
  --latency-ms-median 1 --latency-ms-p99 3 --seed 7 >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 1 100); do
  [[ -s "$WORK/port" ]] && break
  kill -0 "$SIM_PID" 2>/dev/null || fail "simulator exited at start: $(cat "$WORK/sim.log")"
  sleep 0.1
done
[[ -s "$WORK/port" ]] || fail "no port file after 10 s"
BASE="http://127.0.0.1:$(cat "$WORK/port")"
grep -q "listening on 127.0.0.1:" "$WORK/sim.log" || fail "no start line in the log"
expect_eq healthz ok "$(curl -sf "$BASE/healthz")"

# send NUMBER TOKEN BODY → "<http status> <body>"
send() {
  local auth=()
  [[ -n "$2" ]] && auth=(-H "Authorization: Bearer $2")
  curl -s -o "$WORK/body" -w '%{http_code}' -X POST "${auth[@]}" -H 'Content-Type: application/json' \
    --data-binary "$3" "$BASE/v21.0/$1/messages" >"$WORK/status"
  echo "$(cat "$WORK/status") $(cat "$WORK/body")"
}
template() {  # template TO CALLBACK_DATA → a template send body like daybreak's
  printf '{"messaging_product":"whatsapp","recipient_type":"individual","to":"%s","type":"template","template":{"name":"daily_note","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"Ravi"}]}]},"biz_opaque_callback_data":"%s"}' "$1" "$2"
}

# --- a success: wamid, contacts echo, and the callback data counted once.
out="$(send 1001 tok "$(template '+91 98450 00001' d-1)")"
expect_eq "success status" 200 "${out%% *}"
body="${out#* }"
expect_eq "messaging_product" whatsapp "$(jget "$body" messaging_product)"
[[ "$(jget "$body" messages 0 id)" == wamid.* ]] || fail "no wamid in $body"
expect_eq "contacts input" "+91 98450 00001" "$(jget "$body" contacts 0 input)"
expect_eq "contacts wa_id" 919845000001 "$(jget "$body" contacts 0 wa_id)"
stats="$(curl -sf "$BASE/stats")"
expect_eq "count for d-1" 1 "$(jget "$stats" by_callback_data d-1)"

# --- missing and empty token: 190, HTTP 401, Graph error envelope; nothing accepted.
out="$(send 1001 "" "$(template 919845000002 d-2)")"
expect_eq "no token status" 401 "${out%% *}"
expect_eq "no token code" 190 "$(jget "${out#* }" error code)"
expect_eq "no token type" OAuthException "$(jget "${out#* }" error type)"
[[ -n "$(jget "${out#* }" error fbtrace_id)" ]] || fail "no fbtrace_id in ${out#* }"
out="$(curl -s -w ' %{http_code}' -X POST -H 'Authorization: Bearer ' --data-binary "$(template 919845000002 d-2)" "$BASE/v21.0/1001/messages")"
expect_eq "empty token code" 190 "$(jget "${out% *}" error code)"

# --- malformed JSON and a missing `to`: 100, HTTP 400.
out="$(send 1001 tok '{"messaging_product":"whatsapp",')"
expect_eq "bad json status" 400 "${out%% *}"
expect_eq "bad json code" 100 "$(jget "${out#* }" error code)"
out="$(send 1001 tok '{"messaging_product":"whatsapp","type":"text","text":{"body":"hi"}}')"
expect_eq "missing to code" 100 "$(jget "${out#* }" error code)"
[[ "$(jget "${out#* }" error error_data details)" == *to* ]] || fail "details do not name 'to': ${out#* }"

# --- an over-rate burst on another number: 12 at once against a bucket of 5 → some 130429.
burst_cfg="$WORK/burst.curl"
: >"$burst_cfg"
for i in $(seq 1 12); do
  ((i > 1)) && echo "next" >>"$burst_cfg"  # per-URL options: each transfer its own body and output
  {
    echo "request = \"POST\""
    echo "url = \"$BASE/v21.0/2002/messages\""
    echo "header = \"Authorization: Bearer tok\""
    echo "data-binary = \"$(template "9198450001$(printf %02d "$i")" "b-$i" | sed 's/"/\\"/g')\""
    echo "output = \"$WORK/burst.$i\""
    echo "write-out = \"%{http_code}\\n\""
  } >>"$burst_cfg"
done
curl -sS --no-progress-meter --parallel --parallel-max 12 -K "$burst_cfg" >"$WORK/burst.codes"
ok=$(grep -c '^200$' "$WORK/burst.codes" || true)
limited=$(grep -c '^400$' "$WORK/burst.codes" || true)
expect_eq "burst answers" 12 "$((ok + limited))"
((ok >= 5 && ok <= 6)) || fail "burst: expected 5 (or 6 with a refill) accepted, got $ok"
for i in $(seq 1 12); do
  code="$(jget "$(cat "$WORK/burst.$i")" error code)"
  [[ -z "$code" || "$code" == 130429 ]] || fail "burst answer $i has code $code"
done
stats="$(curl -sf "$BASE/stats")"
expect_eq "rejected 130429" "$limited" "$(jget "$stats" rejected 130429)"
details="$(jget "$(cat "$(grep -l 130429 "$WORK"/burst.* | head -1)")" error error_data details)"
expect_eq "130429 details" "Cloud API message throughput has been reached." "$details"

# --- a duplicate: d-1 accepted again is counted and reported.
out="$(send 1001 tok "$(template 919845000001 d-1)")"
expect_eq "resend status" 200 "${out%% *}"

# --- a scripted outage: 131000 with HTTP 503 until lifted.
curl -sf -X POST --data-binary '{"phone_number_id":"3003","down":true}' "$BASE/control" >/dev/null
out="$(send 3003 tok "$(template 919845000003 d-3)")"
expect_eq "outage status" 503 "${out%% *}"
expect_eq "outage code" 131000 "$(jget "${out#* }" error code)"
curl -sf -X POST --data-binary '{"phone_number_id":"3003","down":false}' "$BASE/control" >/dev/null
out="$(send 3003 tok "$(template 919845000003 d-3)")"
expect_eq "after outage status" 200 "${out%% *}"
out="$(curl -s -w ' %{http_code}' -X POST --data-binary '{"phone_number_id":"3003","dwon":true}' "$BASE/control")"
expect_eq "unknown control key" 400 "${out##* }"

# --- /stats: every request above accounted for.
stats="$(curl -sf "$BASE/stats")"
# 1 success + 2 no-token + 2 bad body + 12 burst + 1 resend + 2 outage pair
expect_eq "requests" 20 "$(jget "$stats" requests)"
expect_eq "accepted" "$((1 + ok + 1 + 1))" "$(jget "$stats" accepted)"
expect_eq "rejected 190" 2 "$(jget "$stats" rejected 190)"
expect_eq "rejected 100" 2 "$(jget "$stats" rejected 100)"
expect_eq "rejected 131000" 1 "$(jget "$stats" rejected 131000)"
expect_eq "count for d-1 after resend" 2 "$(jget "$stats" by_callback_data d-1)"
expect_eq "count for d-3" 1 "$(jget "$stats" by_callback_data d-3)"
expect_eq "no count for rejected d-2" "" "$(jget "$stats" by_callback_data d-2)"
expect_eq "duplicates" 1 "$(jget "$stats" duplicates)"
summary="$(curl -sf "$BASE/stats?summary=1")"
expect_eq "summary omits by_callback_data" "" "$(jget "$summary" by_callback_data)"
expect_eq "summary accepted" "$(jget "$stats" accepted)" "$(jget "$summary" accepted)"

# --- /reset zeroes everything.
curl -sf -X POST "$BASE/reset" >/dev/null
stats="$(curl -sf "$BASE/stats")"
expect_eq "requests after reset" 0 "$(jget "$stats" requests)"
expect_eq "accepted after reset" 0 "$(jget "$stats" accepted)"
expect_eq "by_callback_data after reset" "{}" "$(jget "$stats" by_callback_data | tr -d ' \n')"

# --- SIGTERM stops it cleanly (exit 0).
kill -TERM "$SIM_PID"
rc=0
wait "$SIM_PID" || rc=$?
SIM_PID=""
expect_eq "exit status after SIGTERM" 0 "$rc"
grep -q "stopping" "$WORK/sim.log" || fail "no stop line in the log"

echo "PASS: test_simulator"
