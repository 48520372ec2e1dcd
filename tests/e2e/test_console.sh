#!/usr/bin/env bash
# The operator console (`daybreak serve`) end to end, against the simulator on 127.0.0.1:
#  1. refusals: a non-loopback --listen without --allow-remote (exit 2), a tokens file readable
#     by others (exit 3)
#  2. access: no session, a session without the CSRF field, a wrong CSRF token and a viewer's
#     session with a good one are each refused with 403 on the pause action, and change nothing
#     (controls and audit log unchanged); GET is not an action (405/403); the headers (CSP
#     without inline script, frame-ancestors 'none', X-Frame-Options, the cookie's HttpOnly and
#     SameSite=Strict) are on
#  3. in headless Chromium (console_browser.py, DevTools protocol over a pipe), during a
#     2,000-advisor run: a pause through the page holds sends from 1 s to 3 s after and its audit
#     row names the operator; after resume the page's accepted count reaches the ledger's final
#     figure within 2 s; no console errors
#  4. history and a day's report are served to a session
#  5. acknowledge and withdraw through the endpoint are audited under the operator's name; a
#     cancel of a final delivery, a replay of one that is not dead, an unknown channel: 400
#  6. ten wrong tokens from one address: the next login, even with the right token, is 429
source "$(dirname "$0")/common.sh"

CHROMIUM=${CHROMIUM:-chromium}
command -v "$CHROMIUM" >/dev/null || { echo "skip: chromium missing"; exit 125; }

start_sim main --mps 80 --time-scale 10 --seed 5 --transient-rate 0 --permanent-rate 0
write_config "$SIM_PORT"
sed -i 's/^mps = 80$/mps = 20/' "$WORK/daybreak.toml"   # 2,000 deliveries take ~10 s real at 10x

# Tokens: alice operator, bob viewer; the file holds only SHA-256 hashes, mode 0600.
TOK_A=alice-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOK_B=bob-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
umask 077
{
  echo "# name role sha256(token)"
  echo "alice operator $(printf %s "$TOK_A" | sha256sum | cut -d' ' -f1)"
  echo "bob viewer $(printf %s "$TOK_B" | sha256sum | cut -d' ' -f1)"
} >"$WORK/console.tokens"

# --- 1. refusals at start --------------------------------------------------------------------
rc=0; "$OP" serve --listen 0.0.0.0:0 --tokens "$WORK/console.tokens" 2>"$WORK/err" || rc=$?
assert_eq "$rc" 2 "serve on 0.0.0.0 without --allow-remote"
grep -q "not a loopback address" "$WORK/err" || fail "no reason given: $(cat "$WORK/err")"
cp "$WORK/console.tokens" "$WORK/open.tokens"; chmod 644 "$WORK/open.tokens"
rc=0; "$OP" serve --listen 127.0.0.1:0 --tokens "$WORK/open.tokens" 2>"$WORK/err" || rc=$?
assert_eq "$rc" 3 "serve with a tokens file readable by others"
grep -q "chmod 600" "$WORK/err" || fail "no reason given: $(cat "$WORK/err")"
echo "ok 1: non-loopback --listen and a group/world-readable tokens file are refused"

D=2026-12-12
seed_day 2000 "$D"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
n=$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run")   # 2,000 advisors; a few are absent or opted out
[ "$n" -gt 1900 ] || fail "only $n deliveries planned for 2,000 advisors"
# The simulated night starts 2.5 minutes before the window (05:59:30; 15 s real at 10x), so Chromium has
# time to start and dispatch starts just before the window: started later, it would claim the
# whole backlog at once and a pause would rightly not stop what it had already claimed.
T0=$(now_ms)
CLK="${D}T05:57:00+05:30@$T0*10"

DAYBREAK_CLOCK=$CLK "$OP" serve --listen 127.0.0.1:0 --port-file "$WORK/serve.port" --tokens "$WORK/console.tokens" \
  2>"$WORK/serve.log" &
SERVE_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/serve.port" ] && break; sleep 0.05; done
[ -s "$WORK/serve.port" ] || fail "serve did not start: $(cat "$WORK/serve.log")"
URL=http://127.0.0.1:$(cat "$WORK/serve.port")
# Every thread of the console runs 10 nice steps below this shell (at most 19), so dispatch's
# threads on the same host run first.
want_ni=$(( $(ps -o ni= -p $$) + 10 )); [ "$want_ni" -le 19 ] || want_ni=19
ni=$(ps -L -o ni= -p "$SERVE_PID" | tr -d ' ' | sort -u | tr '\n' ' ')
assert_eq "$ni" "$want_ni " "the console's threads' nice values"
[ "$(ps -L -o tid= -p "$SERVE_PID" | wc -l)" -ge 2 ] || fail "serve runs one thread only: the check above saw no server thread"

# --- 2. access control -----------------------------------------------------------------------
login() {  # login NAME TOKEN JAR: logs in, prints the page's CSRF token
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -c "$3" --data-urlencode "name=$1" --data-urlencode "token=$2" "$URL/login")
  assert_eq "$code" 303 "login of $1"
  curl -s -b "$3" "$URL/" | sed -n 's/.*name="csrf-token" content="\([0-9a-f]*\)".*/\1/p'
}
state() { sql "SELECT COUNT(*) FROM audit_log; SELECT * FROM controls" | md5sum; }
post_code() { curl -s -o "$WORK/post.out" -w '%{http_code}' "$@"; }

code=$(post_code --data-urlencode "name=alice" --data-urlencode "token=wrong" "$URL/login")
assert_eq "$code" 403 "login with a wrong token"
CSRF_A=$(login alice "$TOK_A" "$WORK/alice.jar")
CSRF_B=$(login bob "$TOK_B" "$WORK/bob.jar")
[ ${#CSRF_A} = 64 ] || fail "no CSRF token on alice's page"
grep -q "HttpOnly" "$WORK/alice.jar" || fail "session cookie is not HttpOnly: $(cat "$WORK/alice.jar")"
s0=$(state)
assert_eq "$(post_code --data "scope=all&reason=x" "$URL/api/action/pause")" 403 "pause without a session"
assert_eq "$(post_code -b "$WORK/alice.jar" --data "scope=all&reason=x" "$URL/api/action/pause")" 403 "pause without the CSRF field"
grep -q "CSRF" "$WORK/post.out" || fail "refusal does not say why: $(cat "$WORK/post.out")"
assert_eq "$(post_code -b "$WORK/alice.jar" --data "scope=all&reason=x&csrf=$CSRF_B" "$URL/api/action/pause")" 403 "pause with another session's CSRF token"
assert_eq "$(post_code -b "$WORK/bob.jar" --data "scope=all&reason=x&csrf=$CSRF_B" "$URL/api/action/pause")" 403 "pause by a viewer"
grep -q "viewer" "$WORK/post.out" || fail "viewer refusal does not say why: $(cat "$WORK/post.out")"
assert_eq "$(post_code -b "$WORK/alice.jar" -H "Origin: http://evil.example" --data "scope=all&reason=x&csrf=$CSRF_A" "$URL/api/action/pause")" 403 "cross-origin pause"
assert_eq "$(post_code -b "$WORK/alice.jar" "$URL/api/action/pause?csrf=$CSRF_A&scope=all&reason=x")" 405 "GET on an action"
assert_eq "$(post_code -b "$WORK/alice.jar" --data "scope=all&reason=%20&csrf=$CSRF_A" "$URL/api/action/pause")" 400 "pause without a reason"
assert_eq "$(state)" "$s0" "state after refused actions"
assert_eq "$(post_code -b "$WORK/bob.jar" "$URL/api/live")" 200 "a viewer reads the live figures"
curl -s -D "$WORK/headers" -o /dev/null -b "$WORK/alice.jar" "$URL/"
grep -qi "^Content-Security-Policy: default-src 'none'; script-src 'self';" "$WORK/headers" || fail "CSP: $(cat "$WORK/headers")"
grep -qi "frame-ancestors 'none'" "$WORK/headers" || fail "no frame-ancestors"
grep -qi "^X-Frame-Options: DENY" "$WORK/headers" || fail "no X-Frame-Options"
curl -s -D "$WORK/login.headers" -o /dev/null --data-urlencode "name=alice" --data-urlencode "token=$TOK_A" "$URL/login"
grep -qi "^Set-Cookie: daybreak_session=[0-9a-f]*; Path=/; HttpOnly; SameSite=Strict" "$WORK/login.headers" ||
  fail "cookie flags: $(grep -i set-cookie "$WORK/login.headers")"
if curl -s -b "$WORK/alice.jar" "$URL/" | grep -q "<script>"; then fail "inline script on the page"; fi
echo "ok 2: no session, no or wrong CSRF token, a viewer, another origin, GET: 403/405, nothing changed; headers set"

# --- 3. the page in Chromium during a 2,000-advisor run --------------------------------------
python3 "$DAYBREAK_SOURCE_DIR/tests/e2e/console_browser.py" --chromium "$CHROMIUM" --url "$URL" --user alice --token "$TOK_A" \
  --db "$DB" --run "$run" --sim "http://127.0.0.1:$SIM_PORT" --work "$WORK" --ready "$WORK/ready" \
  ${CONSOLE_SCREENSHOT:+--screenshot "$CONSOLE_SCREENSHOT"} >"$WORK/browser.json" 2>"$WORK/browser.err" &
BROWSER=$!
for _ in $(seq 1 400); do [ -s "$WORK/ready" ] && break; kill -0 $BROWSER 2>/dev/null || break; sleep 0.05; done
[ -s "$WORK/ready" ] || { wait $BROWSER || true; fail "browser: $(cat "$WORK/browser.err")"; }
[ "$(now_ms)" -lt $((T0 + 14500)) ] || fail "Chromium took more than 14 s to show the page; the window had opened"
while [ "$(now_ms)" -lt $((T0 + 14500)) ]; do sleep 0.05; done   # 5 s (simulated) before the window
DAYBREAK_CLOCK=$CLK "$DISPATCH" --run "$run" --json >"$WORK/d.json" 2>"$WORK/d.log" &
DISP=$!
rc=0; wait $BROWSER || rc=$?
[ $rc = 0 ] || fail "browser: $(cat "$WORK/browser.err")"
wait $DISP || true
assert_eq "$(sql "SELECT COUNT(*) FROM deliveries WHERE run_id=$run AND state='accepted'")" "$n" "accepted at the end"
assert_eq "$(sql "SELECT actor FROM audit_log WHERE target='control:pause' ORDER BY audit_id")" "alice
alice" "audit rows of the page's pause and resume"
echo "ok 3: in Chromium: $(cat "$WORK/browser.json")"

# --- 4. history and reports ------------------------------------------------------------------
curl -s -b "$WORK/bob.jar" "$URL/api/history" | json "[d['date'] for d in j['dates'] if d['runs'] > 0] == ['$D'] or sys.exit(1)" >/dev/null ||
  fail "history does not list $D: $(curl -s -b "$WORK/bob.jar" "$URL/api/history")"
curl -s -D "$WORK/rep.headers" -o "$WORK/report.html" -b "$WORK/bob.jar" "$URL/report?date=$D"
grep -q "daybreak SLA report, delivery day $D" "$WORK/report.html" || fail "report page: $(head -c 300 "$WORK/report.html")"
grep -qi "^Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline';" "$WORK/rep.headers" || fail "report CSP"
assert_eq "$(post_code "$URL/report?date=$D")" 303 "report without a session"
echo "ok 4: 30-day history and the day's HTML report are served to a viewer, not to anyone else"

# --- 5. the other actions, through the endpoint, audited under the operator's name ------------
act() { post_code -b "$WORK/alice.jar" --data-urlencode "csrf=$CSRF_A" "$@"; }
"$OP" alerts raise nightly_failed --subject "date:$D" --message "e2e: console ack" >/dev/null 2>&1
alert=$(sql "SELECT alert_id FROM alerts WHERE state='firing' AND subject='date:$D'")
[ -n "$alert" ] || fail "no alert raised"
# The live frame is shared by every page and rebuilt at most every 400 ms: the alert shows within a second.
listed=0
for _ in $(seq 1 20); do
  curl -s -b "$WORK/bob.jar" "$URL/api/live" | json "[a['alert_id'] for a in j['alerts']] == [$alert] or sys.exit(1)" >/dev/null 2>&1 &&
    { listed=1; break; }
  sleep 0.1
done
[ "$listed" = 1 ] || fail "the live view does not list alert $alert within 2 s"
assert_eq "$(act --data "alert_id=$alert" --data "reason=e2e: looking" "$URL/api/action/ack")" 200 "ack through the console"
assert_eq "$(sql "SELECT acknowledged_by FROM alerts WHERE alert_id=$alert")" alice "alert acknowledged by"
assert_eq "$(act --data "alert_id=$alert" --data "reason=again" "$URL/api/action/ack")" 400 "second ack"
grep -q "already acknowledged" "$WORK/post.out" || fail "second ack: $(cat "$WORK/post.out")"
c=$(sql "SELECT content_id FROM deliveries WHERE run_id=$run LIMIT 1")
assert_eq "$(act --data "content_id=$c" --data "reason=e2e: compliance pull" "$URL/api/action/withdraw")" 200 "withdraw through the console"
assert_eq "$(sql "SELECT actor || '|' || reason FROM audit_log WHERE target='$c' AND command='content withdraw'")" "alice|e2e: compliance pull" "withdraw audit"
s1=$(state)
d1=$(sql "SELECT delivery_id FROM deliveries WHERE run_id=$run LIMIT 1")
assert_eq "$(act --data "delivery_id=$d1" --data "reason=e2e" "$URL/api/action/cancel")" 400 "cancel of a final delivery"
grep -q "already final" "$WORK/post.out" || fail "cancel refusal: $(cat "$WORK/post.out")"
assert_eq "$(act --data "delivery_ids=$d1" --data "reason=e2e" "$URL/api/action/replay")" 400 "replay of a delivery that is not dead"
grep -q "not dead" "$WORK/post.out" || fail "replay refusal: $(cat "$WORK/post.out")"
assert_eq "$(act --data "scope=sms" --data "reason=e2e" "$URL/api/action/pause")" 400 "pause of an unknown channel"
assert_eq "$(state)" "$s1" "state after refused actions"
# send-now: the check shows the capacity verdict and writes nothing; the send needs confirm=yes;
# a viewer may do neither.
u=$(sql "SELECT content_id FROM content WHERE withdrawn_at IS NULL AND (valid_from='' OR valid_from<='$D')
         AND (valid_until='' OR valid_until>='$D') ORDER BY content_id LIMIT 1")
runs0=$(sql "SELECT COUNT(*) FROM runs")
assert_eq "$(act --data "content_id=$u&segment=tier:gold&reason=e2e: urgent" "$URL/api/action/send-now-check")" 200 "send-now check"
grep -q '"verdict_text":"urgent run: ' "$WORK/post.out" || fail "send-now check: $(cat "$WORK/post.out")"
assert_eq "$(act --data "content_id=$u&segment=tier:gold&reason=e2e: urgent" "$URL/api/action/send-now")" 400 "send-now without confirm"
assert_eq "$(post_code -b "$WORK/bob.jar" --data "content_id=$u&segment=tier:gold&reason=x&confirm=yes&csrf=$CSRF_B" \
  "$URL/api/action/send-now")" 403 "send-now by a viewer"
assert_eq "$(sql "SELECT COUNT(*) FROM runs")" "$runs0" "runs after the check and the refused sends"
assert_eq "$(act --data "content_id=$u&segment=tier:gold&reason=e2e: urgent&confirm=yes" "$URL/api/action/send-now")" 200 "send-now"
urun=$(json 'j["run_id"]' <"$WORK/post.out")
assert_eq "$(sql "SELECT kind FROM runs WHERE run_id=$urun")" "urgent" "console send-now run kind"
assert_eq "$(sql "SELECT actor || '|' || reason FROM audit_log WHERE target='run:$urun'")" "alice|e2e: urgent" "send-now audit"
echo "ok 5: ack, withdraw and send-now through the console are audited as alice; bad cancel/replay/pause are 400 and change nothing"

# --- 6. guessing is throttled: ten wrong tokens from an address, then even the right one is 429 --
for i in $(seq 1 10); do
  assert_eq "$(post_code --data-urlencode "name=alice" --data-urlencode "token=guess-$i" "$URL/login")" 403 "wrong token $i"
done
code=$(curl -s -D "$WORK/throttle.headers" -o /dev/null -w '%{http_code}' --data-urlencode "name=alice" \
  --data-urlencode "token=$TOK_A" "$URL/login")
assert_eq "$code" 429 "login after ten failures in a minute"
grep -qi "^Retry-After: [1-9]" "$WORK/throttle.headers" || fail "no Retry-After: $(cat "$WORK/throttle.headers")"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -b "$WORK/alice.jar" "$URL/api/live")" 200 "a session opened before goes on"
kill "$SERVE_PID"; wait "$SERVE_PID" || true
echo "ok 6: ten wrong tokens from one address: the eleventh login is 429 with Retry-After; open sessions go on"
