#!/usr/bin/env bash
# The status receiver under abuse, on 127.0.0.1 (docs/reliability.md, "Hostile input"). Each
# attack runs while a correctly signed callback and GET /healthz are sent every 0.25 s
# (tests/e2e/hostile_client.py); every one must be answered 200 within 2 s, and the receiver's
# peak RSS (VmHWM) must stay under 64 MiB:
#  1. a 400 MiB chunked body with a wrong signature: 411 before the body is read
#  2. a gzip bomb (1000 MiB of zeros in about 1 MiB, Content-Encoding: gzip): 415, never inflated
#  3. a 4 MiB Content-Length body (the default limit is 3 MiB, Meta's maximum): 413 before the body is read
#  4. 50 connections sending their headers one byte every 2 s: each closed after
#     callbacks.header_timeout_seconds, none of them delays the signed callback
#  5. the bounds hold for GET too, and nothing an attack sent was stored
#  6. max_connections: connections past the limit get no answer and no memory until one closes
#  7. bodies being received at once are bounded (16 x max_body_bytes): past that 503, unread
#  8. a body trickling in byte by byte is closed at callbacks.request_timeout_seconds
source "$(dirname "$0")/common.sh"

CALLBACKS=$DAYBREAK_BIN/daybreak-callbacks/daybreak-callbacks
[ -x "$CALLBACKS" ] || fail "no receiver binary at $CALLBACKS"
SECRET="app-secret-abuse"

# config FILE [CALLBACKS-LINES...]
config() {
  local file=$1; shift
  umask 077
  {
    echo "[database]"
    echo "path = \"$DB\""
    echo "[whatsapp]"
    echo "app_secret = \"$SECRET\""
    echo "verify_token = \"vt\""
    echo "[callbacks]"
    echo "header_timeout_seconds = 3"
    for l in "$@"; do echo "$l"; done
  } >"$file"
}

config "$WORK/cb.toml"
start_receiver cb "$WORK/cb.toml"
RECEIVER=$CB_PID
echo "receiver pid $RECEIVER: $(grep -E '^VmRSS' /proc/$RECEIVER/status)"

# --- 1-4. the attacks, each beside signed callbacks -----------------------------------------------
rc=0
python3 "$(dirname "$0")/hostile_client.py" "$CB_PORT" "$RECEIVER" "$SECRET" chunked gzip big slow \
  >"$WORK/abuse.out" 2>&1 || rc=$?
cat "$WORK/abuse.out"
[ "$rc" = 0 ] || fail "the receiver did not hold under abuse (details above; log in $WORK/cb.log)"
echo "ok 1-4: chunked, gzip bomb, 4 MiB body, 50 slow-header connections; signed callbacks answered 200 within 2 s"

# --- 5. GET with a body is held to the same bounds; nothing an attack sent was stored -------------
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
assert_eq "$(code -H 'Transfer-Encoding: chunked' --data-binary x -X GET "http://127.0.0.1:$CB_PORT/healthz")" "411" "GET with a chunked body"
assert_eq "$(code -H 'Content-Encoding: gzip' -X POST -H 'Content-Length: 0' "http://127.0.0.1:$CB_PORT/webhook")" "415" "POST with Content-Encoding"
assert_eq "$(code -X POST "http://127.0.0.1:$CB_PORT/webhook")" "411" "POST without Content-Length"
assert_eq "$(code -X PUT --data-binary x "http://127.0.0.1:$CB_PORT/webhook")" "405" "PUT"
assert_eq "$(code "http://127.0.0.1:$CB_PORT/healthz")" "200" "healthz after the attacks"
# every stored event is one of the signed callbacks (their wamids start with wamid.ABUSE)
assert_eq "$(sql "SELECT COUNT(*) FROM status_events WHERE body NOT LIKE '%wamid.ABUSE%'")" "0" "events from the attacks"
signed=$(grep -c . <(sql "SELECT event_id FROM status_events"))
[ "$signed" -gt 20 ] || fail "only $signed signed callbacks were stored"
echo "ok 5: GET and other methods bounded the same way; $signed signed callbacks stored, nothing else"

kill -TERM "$RECEIVER"; rc=0; wait "$RECEIVER" || rc=$?
assert_eq "$rc" "0" "receiver exit code on SIGTERM"

# --- 6. max_connections ---------------------------------------------------------------------------
config "$WORK/limit.toml" "max_connections = 4"
start_receiver limit "$WORK/limit.toml" --threads 1
python3 - "$CB_PORT" <<'PY' || fail "max_connections was not enforced"
import socket, sys, time
port = int(sys.argv[1])
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]  # the 4 allowed, saying nothing
time.sleep(0.3)
extra = socket.create_connection(("127.0.0.1", port))  # the kernel accepts it; the receiver must not serve it yet
extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
extra.settimeout(1.0)
try:
    early = extra.recv(100)
except socket.timeout:
    early = None
t0 = time.monotonic()
if early is not None:
    sys.exit(f"the fifth connection was answered while 4 were open: {early!r}")
# the idle ones are closed at header_timeout_seconds (3 s); then the fifth is served
extra.settimeout(10)
data = b""
while True:
    chunk = extra.recv(4096)
    if not chunk:
        break
    data += chunk
waited = time.monotonic() - t0
if not data.startswith(b"HTTP/1.1 200"):
    sys.exit(f"the fifth connection got {data[:40]!r}")
print(f"the fifth connection waited {waited + 1.0:.1f} s, until the idle ones were closed, then got 200")
PY
kill -TERM "$CB_PID"; wait "$CB_PID" || true
echo "ok 6: connections past max_connections wait unserved until a slot frees"

# --- 7. the buffered-bodies budget: at most 16 x max_body_bytes being received at once -------------
config "$WORK/budget.toml" "max_body_bytes = 1024"
start_receiver budget "$WORK/budget.toml"
python3 - "$CB_PORT" "$SECRET" <<'PY' || fail "the buffered-bodies budget was not enforced"
import hashlib, hmac, http.client, socket, sys, time
port, secret = int(sys.argv[1]), sys.argv[2].encode()
head = b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1024\r\n\r\n"
def answer(s, timeout):
    s.settimeout(timeout)
    try:
        return s.recv(100)
    except socket.timeout:
        return None
held = []
for i in range(16):  # 16 bodies of 1024 bytes declared, 10 bytes of each sent: the whole budget
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(head + b"{" * 10); held.append(s)
time.sleep(0.3)
for s in held:
    if answer(s, 0.05) is not None:
        sys.exit("a request within the budget was answered before its body was in")
extra = socket.create_connection(("127.0.0.1", port)); extra.sendall(head)
got = answer(extra, 5)
if not got or not got.startswith(b"HTTP/1.1 503"):
    sys.exit(f"the 17th body got {got!r}, expected 503")
for s in held:
    s.close()
time.sleep(0.3)
body = b'{"object":"whatsapp_business_account","entry":[]}'
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
c.request("POST", "/webhook", body, {"X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()})
r = c.getresponse(); r.read()
if r.status != 200:
    sys.exit(f"a signed POST after the budget was freed got {r.status}")
print("the 17th concurrent body got 503 unread; once the others closed, a signed POST got 200")
PY
kill -TERM "$CB_PID"; wait "$CB_PID" || true
grep -q '"refused_busy":1' "$WORK/budget.log" || fail "the stop line does not count the 503: $(tail -1 "$WORK/budget.log")"
echo "ok 7: at most 16 x max_body_bytes of bodies are received at once; past that 503 unread"

# --- 8. a body that trickles in is closed at request_timeout_seconds ------------------------------
config "$WORK/trickle.toml" "request_timeout_seconds = 4"
start_receiver trickle "$WORK/trickle.toml"
python3 - "$CB_PORT" <<'PY' || fail "a trickling body was not cut off at request_timeout_seconds"
import socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
t0 = time.monotonic()
closed = None
for i in range(40):  # one body byte every 0.5 s: 20 s to finish, never idle long enough for an inactivity timeout
    time.sleep(0.5)
    try:
        s.setblocking(False)
        try:
            if s.recv(100) == b"":
                closed = time.monotonic() - t0
                break
        except BlockingIOError:
            pass
        s.setblocking(True)
        s.send(b"{")
    except OSError:
        closed = time.monotonic() - t0
        break
if closed is None or not 3.0 <= closed <= 8.0:
    sys.exit(f"closed after {closed} s, expected about 4 s")
print(f"a body trickling one byte every 0.5 s was closed after {closed:.1f} s")
PY
kill -TERM "$CB_PID"; wait "$CB_PID" || true
grep -q '"closed_slow":1' "$WORK/trickle.log" || fail "the stop line does not count the closed connection: $(tail -1 "$WORK/trickle.log")"
echo "ok 8: a request not whole within request_timeout_seconds is closed"
