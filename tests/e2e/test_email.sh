#!/usr/bin/env bash
# The email channel end to end: the real binaries (import, assign-fallback, plan-deliveries,
# dispatch) send through a real SMTP server (tests/e2e/smtp_sink.py, Debian python3-aiosmtpd)
# on 127.0.0.1, with SMTP AUTH, next to a simulator whose every WhatsApp send fails permanently.
#  1. an email-only advisor gets one message: envelope, To, encoded Subject, Message-ID, both
#     MIME parts (text and escaped HTML with the media link), the Message-ID in the ledger
#  2. 451, 451, then 250: retried and delivered exactly once, the 4xx attempts in the history
#  3. 550: dead at once (no retry), the smtp:550 attempt in the history with the relay's reply
#     text, shown by daybreak dead show and dead list
#  4. whatsapp|email: WhatsApp's permanent error falls back to email, which delivers; with a 550
#     address too, the delivery ends dead with both attempts
#  5. a wrong SMTP password (535) is a credentials failure, never an acceptance
#  6. webhook: signed JSON POSTs that a receiver verifies; 429 + Retry-After retried, 422 dead,
#     the receiver's "id" kept as the provider message id
source "$(dirname "$0")/common.sh"

require_aiosmtpd

SCALE=20
D=2026-12-07
TITLE='Morning brief — ₹ outlook'
start_sim wa --mps 80 --time-scale $SCALE --seed 5 --transient-rate 0 --permanent-rate 1
start_smtp mail --auth 'desk:pa55-word' --rule 'flaky\.=451x2' --rule 'bad\.=550'
export DAYBREAK_TEST_SMTP_PASSWORD='pa55-word'
write_config "$SIM_PORT" "
[[email.senders]]
id = \"mail-1\"
url = \"smtp://127.0.0.1:$SMTP_PORT\"
from = \"Daybreak Desk <desk@daybreak.example.com>\"
username = \"desk\"
password_env = \"DAYBREAK_TEST_SMTP_PASSWORD\"
starttls = false
mps = 20"

mkdir -p "$WORK/data"
cat >"$WORK/data/content.csv" <<CSV
content_id,title,body,language,topics,media_url,valid_from,valid_until,fallback_eligible,emergency
c-mail,$TITLE,Markets <up> & rates steady; one idea to share with clients.,en,markets;tax,https://cdn.example.com/daybreak/card-1.jpg,2026-11-01,2026-12-31,true,false
CSV
cat >"$WORK/data/advisors.csv" <<CSV
advisor_id,name,tier,phone,email,timezone,slot,channels,opted_in,language,topics
e-ok,Aśha Rāo,gold,,ok.one@advisors.example.com,,,email,true,en,markets
e-flaky,Vikram Shah,silver,,flaky.one@advisors.example.com,,,email,true,en,tax
e-bad,Meera Iyer,standard,,bad.one@advisors.example.com,,,email,true,en,tax
w-fb,Kiran Rao,gold,+919810000001,fb.one@advisors.example.com,,,whatsapp|email,true,en,markets
w-bad,Dev Patel,standard,+919810000002,bad.two@advisors.example.com,,,whatsapp|email,true,en,markets
CSV
{
  echo "advisor_id,date,content_id"
  for a in e-ok e-flaky e-bad w-fb w-bad; do echo "$a,$D,c-mail"; done
} >"$WORK/data/assignments.csv"
for kind in content advisors assignments; do "$OP" import "$kind" "$WORK/data/$kind.csv" >/dev/null; done
NIGHT="$(date -d "$D -1 day" +%F)T21:30:00+05:30"
DAYBREAK_CLOCK=$(clock_at "$NIGHT" 1) "$ASSIGN" --date "$D" >/dev/null
DAYBREAK_CLOCK=$(clock_at "$NIGHT" 1) "$PLAN" --date "$D" >/dev/null
assert_eq "$(sql "SELECT group_concat(advisor_id || ':' || channel, ' ') FROM (SELECT * FROM deliveries WHERE date='$D' ORDER BY advisor_id)")" \
  "e-bad:email e-flaky:email e-ok:email w-bad:whatsapp w-fb:whatsapp" "planned channels"
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")

rc=0
DAYBREAK_CLOCK=$(clock_at "${D}T05:59:25+05:30" $SCALE) "$DISPATCH" --run "$run" --json >"$WORK/d.json" 2>"$WORK/d.log" || rc=$?
assert_eq "$rc" "1" "dispatch exit code (2 of 5 dead: the SLA is missed)"
assert_eq "$(json 'j["status"]' <"$WORK/d.json")" "done" "dispatch status"

state() { sql "SELECT state || ':' || channel FROM deliveries WHERE date='$D' AND advisor_id='$1'"; }
attempts() { sql "SELECT group_concat(channel || '/' || outcome || '/' || coalesce(error_code, ''), ' ') FROM (SELECT a.* FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.date='$D' AND d.advisor_id='$1' ORDER BY a.attempt_no)"; }

# --- 1. one well-formed message to the email-only advisor -----------------------------------
assert_eq "$(state e-ok)" "accepted:email" "e-ok"
OK_ID=$(sql "SELECT delivery_id FROM deliveries WHERE date='$D' AND advisor_id='e-ok'")
OK_MSGID=$(sql "SELECT provider_message_id FROM deliveries WHERE delivery_id=$OK_ID")
"$SMTP_PY" - "$WORK/mail" "$OK_ID" "$OK_MSGID" "$TITLE" "$D" <<'PY' || fail "message to ok.one is wrong (above)"
import email, email.policy, glob, json, os, sys
d, delivery_id, msgid, title, day = sys.argv[1:]
found = []
for meta_path in sorted(glob.glob(os.path.join(d, "*.json"))):
    meta = json.load(open(meta_path))
    if meta["rcpt_tos"] == ["ok.one@advisors.example.com"]:
        found.append((meta, open(meta_path[:-5] + ".eml", "rb").read()))
assert len(found) == 1, f"{len(found)} messages reached ok.one"
meta, raw = found[0]
assert meta["mail_from"] == "desk@daybreak.example.com", meta
assert meta["auth"] is not None, "the sink saw no AUTH"
m = email.message_from_bytes(raw, policy=email.policy.default)
assert m["To"].addresses[0].addr_spec == "ok.one@advisors.example.com", m["To"]
assert m["To"].addresses[0].display_name == "Aśha Rāo", m["To"]
assert m["From"].addresses[0].addr_spec == "desk@daybreak.example.com", m["From"]
assert str(m["Subject"]) == title, repr(str(m["Subject"]))
assert b"=?UTF-8?B?" in raw.split(b"\r\n\r\n")[0], "the non-ASCII subject is not RFC 2047 encoded"
assert m["Message-ID"] == msgid, (m["Message-ID"], msgid)
assert m["X-Daybreak-Delivery"] == delivery_id, m["X-Daybreak-Delivery"]
assert m.get_content_type() == "multipart/alternative", m.get_content_type()
parts = list(m.iter_parts())
assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"], [p.get_content_type() for p in parts]
text, html = parts[0].get_content(), parts[1].get_content()
assert "Markets <up> & rates steady" in text and title in text, text
assert "https://cdn.example.com/daybreak/card-1.jpg" in text, text
assert "Markets &lt;up&gt; &amp; rates steady" in html, html
assert '<a href="https://cdn.example.com/daybreak/card-1.jpg">' in html, html
# Date comes from the dispatcher's (simulated) clock, never the wall clock; it is absent only
# while the dispatcher does not pass the send time to the adapter (Message::now).
if m["Date"] is not None:
    assert m["Date"].datetime.strftime("%Y-%m-%d") == day, m["Date"]
else:
    print("note: no Date header (the dispatcher does not set Message::now yet)")
PY
echo "ok 1: ok.one got one message: envelope, To, encoded Subject, Message-ID $OK_MSGID, text and HTML parts"

# --- 2. 451, 451, 250 ---------------------------------------------------------------------
assert_eq "$(state e-flaky)" "accepted:email" "e-flaky"
assert_eq "$(grep -c ' flaky.one@' "$WORK/mail/rcpt.log")" "3" "RCPTs for flaky.one"
assert_eq "$(grep ' flaky.one@' "$WORK/mail/rcpt.log" | cut -d' ' -f1 | tr '\n' ' ')" "451 451 250 " "replies to flaky.one"
assert_eq "$(grep -l '"flaky.one@advisors.example.com"' "$WORK"/mail/*.json | wc -l)" "1" "messages delivered to flaky.one"
assert_eq "$(attempts e-flaky)" "email/retryable/smtp:451 email/retryable/smtp:451 email/accepted/" "flaky.one attempt history"
echo "ok 2: 451 twice, then delivered once"

# --- 3. 550 -------------------------------------------------------------------------------
assert_eq "$(state e-bad)" "dead:email" "e-bad"
assert_eq "$(grep -c ' bad.one@' "$WORK/mail/rcpt.log")" "1" "a 5xx is not retried"
assert_eq "$(attempts e-bad)" "email/permanent/smtp:550" "bad.one attempt history"
sql "SELECT last_error FROM deliveries WHERE date='$D' AND advisor_id='e-bad'" | grep -q "smtp:550" || fail "last_error names smtp:550"
# The relay's own words travel with the attempt, the address masked: in dead show and dead list.
BAD_ID=$(sql "SELECT delivery_id FROM deliveries WHERE date='$D' AND advisor_id='e-bad'")
"$OP" dead show "$BAD_ID" >"$WORK/dead-show.txt"
grep -q "RCPT failed: 550; reply: 550 5.1.1 Mailbox unavailable" "$WORK/dead-show.txt" ||
  fail "dead show lacks the relay's reply: $(cat "$WORK/dead-show.txt")"
"$OP" dead list >"$WORK/dead-list.txt"
grep -q "reply: 550 5.1.1 Mailbox unavailable" "$WORK/dead-list.txt" || fail "dead list lacks the relay's reply: $(cat "$WORK/dead-list.txt")"
grep -q "bad.one@" "$WORK/dead-show.txt" "$WORK/dead-list.txt" && fail "an address reached the dead-letter output"
echo "ok 3: 550 is dead at once with its history and the relay's reply"

# --- 4. WhatsApp fails permanently: fallback to email ---------------------------------------
assert_eq "$(state w-fb)" "accepted:email" "w-fb"
assert_eq "$(attempts w-fb)" "whatsapp/permanent/131026 email/accepted/" "w-fb attempt history"
assert_eq "$(grep -l '"fb.one@advisors.example.com"' "$WORK"/mail/*.json | wc -l)" "1" "messages delivered to fb.one"
assert_eq "$(state w-bad)" "dead:email" "w-bad"
assert_eq "$(attempts w-bad)" "whatsapp/permanent/131026 email/permanent/smtp:550" "w-bad attempt history"
assert_eq "$(ls "$WORK"/mail/*.json | wc -l)" "3" "messages the SMTP server accepted in all"
echo "ok 4: WhatsApp's permanent error fell back to email; a 550 there ends dead with both attempts"

# --- 5. a wrong password is a credentials failure ------------------------------------------
D2=2026-12-08
sed -i "s/$D/$D2/" "$WORK/data/assignments.csv"
"$OP" import assignments "$WORK/data/assignments.csv" >/dev/null
NIGHT2="$(date -d "$D2 -1 day" +%F)T21:30:00+05:30"
DAYBREAK_CLOCK=$(clock_at "$NIGHT2" 1) "$ASSIGN" --date "$D2" >/dev/null
DAYBREAK_CLOCK=$(clock_at "$NIGHT2" 1) "$PLAN" --date "$D2" >/dev/null
sql "UPDATE deliveries SET state='cancelled' WHERE date='$D2' AND advisor_id <> 'e-ok'"
run2=$(sql "SELECT run_id FROM runs WHERE date='$D2'")
export DAYBREAK_TEST_SMTP_PASSWORD='wr0ng-pa55'
DAYBREAK_CLOCK=$(clock_at "${D2}T05:59:25+05:30" $SCALE) "$DISPATCH" --run "$run2" --json >"$WORK/d2.json" 2>"$WORK/d2.log" || true
first=$(sql "SELECT outcome || '/' || error_code FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.date='$D2' AND d.advisor_id='e-ok' ORDER BY a.attempt_no LIMIT 1")
assert_eq "$first" "credentials/smtp:535" "first attempt with a wrong password"
assert_eq "$(sql "SELECT state FROM deliveries WHERE date='$D2' AND advisor_id='e-ok'")" "dead" "delivery with a wrong password"
assert_eq "$(ls "$WORK"/mail/*.json | wc -l)" "3" "nothing accepted with a wrong password"
grep -q "pa55-word\|wr0ng-pa55" "$WORK/d2.log" "$WORK/d.log" && fail "a password reached the log"
echo "ok 5: a wrong password is smtp:535, credentials; nothing sent"

# --- 6. webhook: signed JSON POSTs to a receiver that verifies them -------------------------
cat >"$WORK/hook.py" <<'PY'
# A webhook receiver as an integration would write one: verify the signature over the raw body,
# then answer by advisor: h-busy gets 429 + Retry-After once, h-bad 422, others 200 with an id.
import hashlib, hmac, http.server, json, os, sys
port_file, out_dir, secret = sys.argv[1:4]
os.makedirs(out_dir, exist_ok=True)
tries = {}
class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ts = self.headers.get("X-Daybreak-Timestamp", "")
        sig = self.headers.get("X-Daybreak-Signature", "")
        want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
        sig_ok = hmac.compare_digest(sig, want)
        body = json.loads(raw) if sig_ok else {}
        adv = body.get("advisor_id", "")
        n = tries[adv] = tries.get(adv, 0) + 1
        extra = {}
        if not sig_ok:
            code, answer = 401, {"error": "bad signature"}
        elif adv == "h-busy" and n == 1:
            code, answer, extra = 429, {"error": "slow down"}, {"Retry-After": "1"}
        elif adv == "h-bad":
            code, answer = 422, {"error": "caption rejected"}
        else:
            code, answer = 200, {"id": "post-%s" % body["delivery_id"]}
        with open(os.path.join(out_dir, "requests.ndjson"), "a") as f:
            f.write(json.dumps({"advisor_id": adv, "code": code, "sig_ok": sig_ok, "ts": ts,
                                "delivery": self.headers.get("X-Daybreak-Delivery"),
                                "content_type": self.headers.get("Content-Type"), "body": body}) + "\n")
        data = json.dumps(answer).encode()
        self.send_response(code)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.replace(port_file + ".tmp", port_file)
srv.serve_forever()
PY
export DAYBREAK_TEST_HOOK_SECRET='whsec-e2e-0123'
"$SMTP_PY" "$WORK/hook.py" "$WORK/hook.port" "$WORK/hook" "$DAYBREAK_TEST_HOOK_SECRET" 2>"$WORK/hook.log" &
SIM_PIDS+=($!)
for _ in $(seq 1 200); do [ -s "$WORK/hook.port" ] && break; sleep 0.05; done
[ -s "$WORK/hook.port" ] || fail "webhook receiver did not start: $(cat "$WORK/hook.log")"
HOOK_PORT=$(cat "$WORK/hook.port")
export DAYBREAK_TEST_SMTP_PASSWORD='pa55-word'
write_config "$SIM_PORT" "
[[email.senders]]
id = \"mail-1\"
url = \"smtp://127.0.0.1:$SMTP_PORT\"
from = \"Daybreak Desk <desk@daybreak.example.com>\"
username = \"desk\"
password_env = \"DAYBREAK_TEST_SMTP_PASSWORD\"
starttls = false
mps = 20
[[webhook.senders]]
id = \"hook-1\"
endpoint = \"http://127.0.0.1:$HOOK_PORT/daybreak\"
signing_secret_env = \"DAYBREAK_TEST_HOOK_SECRET\"
mps = 20"
D3=2026-12-09
cat >"$WORK/data/hooks.csv" <<CSV
advisor_id,name,tier,phone,email,timezone,slot,channels,opted_in,language,topics
h-ok,Social One,gold,,,,,webhook,true,en,markets
h-busy,Social Two,silver,,,,,webhook,true,en,markets
h-bad,Social Three,standard,,,,,webhook,true,en,markets
CSV
{
  echo "advisor_id,date,content_id"
  for a in h-ok h-busy h-bad; do echo "$a,$D3,c-mail"; done
} >"$WORK/data/hook-assignments.csv"
"$OP" import advisors "$WORK/data/hooks.csv" >/dev/null
"$OP" import assignments "$WORK/data/hook-assignments.csv" >/dev/null
NIGHT3="$(date -d "$D3 -1 day" +%F)T21:30:00+05:30"
DAYBREAK_CLOCK=$(clock_at "$NIGHT3" 1) "$ASSIGN" --date "$D3" >/dev/null
DAYBREAK_CLOCK=$(clock_at "$NIGHT3" 1) "$PLAN" --date "$D3" >/dev/null
sql "UPDATE deliveries SET state='cancelled' WHERE date='$D3' AND advisor_id NOT LIKE 'h-%'"
run3=$(sql "SELECT run_id FROM runs WHERE date='$D3'")
DAYBREAK_CLOCK=$(clock_at "${D3}T05:59:25+05:30" $SCALE) "$DISPATCH" --run "$run3" --json >"$WORK/d3.json" 2>"$WORK/d3.log" || true
D=$D3
assert_eq "$(state h-ok)" "accepted:webhook" "h-ok"
HOK_ID=$(sql "SELECT delivery_id FROM deliveries WHERE date='$D3' AND advisor_id='h-ok'")
assert_eq "$(sql "SELECT provider_message_id FROM deliveries WHERE delivery_id=$HOK_ID")" "post-$HOK_ID" "provider id from the receiver's answer"
assert_eq "$(state h-busy)" "accepted:webhook" "h-busy"
assert_eq "$(attempts h-busy)" "webhook/rate_limited/http:429 webhook/accepted/" "h-busy attempt history"
assert_eq "$(state h-bad)" "dead:webhook" "h-bad"
assert_eq "$(attempts h-bad)" "webhook/permanent/http:422" "h-bad attempt history"
python3 - "$WORK/hook/requests.ndjson" "$TITLE" "$D3" <<'PY' || fail "webhook requests are wrong (above)"
import datetime, json, sys
path, title, day = sys.argv[1:]
reqs = [json.loads(l) for l in open(path, encoding="utf-8")]
assert len(reqs) == 4, f"{len(reqs)} requests, expected 4 (h-ok, h-busy twice, h-bad)"
for r in reqs:
    assert r["sig_ok"], f"signature did not verify: {r}"
    assert r["content_type"] == "application/json", r
    b = r["body"]
    assert set(b) == {"delivery_id", "attempt", "advisor_id", "content_id", "title", "body", "media_url", "language"}, b
    assert str(b["delivery_id"]) == r["delivery"], r
    assert b["title"] == title and b["content_id"] == "c-mail" and b["language"] == "en", b
    assert b["media_url"] == "https://cdn.example.com/daybreak/card-1.jpg", b
    ts = int(r["ts"])
    if ts != 0:  # the send time from the dispatcher's (simulated) clock, never the wall clock
        # 06:00 IST is 00:30 UTC on the same day
        assert datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d") == day, r
if any(int(r["ts"]) == 0 for r in reqs):
    print("note: X-Daybreak-Timestamp is 0 (the dispatcher does not set Message::now yet)")
busy = [r["body"]["attempt"] for r in reqs if r["advisor_id"] == "h-busy"]
assert sorted(busy) == [1, 2], busy
PY
echo "ok 6: webhook POSTs verify with the signing secret; 429 retried, 422 dead, the receiver's id kept"
