#!/usr/bin/env bash
# One-click unsubscribe end to end (RFC 2369 List-Unsubscribe, RFC 8058 List-Unsubscribe-Post),
# on 127.0.0.1 with a real SMTP server (tests/e2e/smtp_sink.py, Debian python3-aiosmtpd):
#  1. an email delivery carries List-Unsubscribe (mailto: and http(s): URIs with the advisor's
#     signed token) and List-Unsubscribe-Post, as Python's email parser reads them; the token is
#     the HMAC the documentation describes (recomputed here in Python)
#  2. the one-click POST to that URL (daybreak-callbacks) opts the advisor's email channel out,
#     with an audit row; a second click changes nothing
#  3. the next night's plan skips the advisor (the other advisor is planned); a re-import of
#     advisors.csv does not opt them back in
#  4. a forged token (made with another secret) and a GET are refused or harmless, the 4xx
#     logged with its reason; nothing changes
source "$(dirname "$0")/common.sh"

require_aiosmtpd
CALLBACKS=$DAYBREAK_BIN/daybreak-callbacks/daybreak-callbacks
[ -x "$CALLBACKS" ] || fail "no receiver binary at $CALLBACKS"
SCALE=20
D=2026-12-07
D2=2026-12-08
UNSUB_SECRET="unsub-secret-e2e"

start_sim wa --mps 80 --time-scale $SCALE --seed 5
start_smtp mail
# The receiver (its config needs no URL, only the database and the secret that checks tokens).
umask 077
cat >"$WORK/cb.toml" <<TOML
[database]
path = "$DB"
[whatsapp]
app_secret = "app-secret-unsub"
[email]
unsubscribe_secret_env = "DAYBREAK_TEST_UNSUB_SECRET"
TOML
export DAYBREAK_TEST_UNSUB_SECRET=$UNSUB_SECRET
start_receiver cb "$WORK/cb.toml"
RECEIVER=$CB_PID
write_config "$SIM_PORT" "
[email]
unsubscribe_url = \"http://127.0.0.1:$CB_PORT/unsubscribe?a={token}\"
unsubscribe_mailto = \"unsubscribe@daybreak.example.com\"
unsubscribe_secret_env = \"DAYBREAK_TEST_UNSUB_SECRET\"
[[email.senders]]
id = \"mail-1\"
url = \"smtp://127.0.0.1:$SMTP_PORT\"
from = \"Daybreak Desk <desk@daybreak.example.com>\"
starttls = false
mps = 20"

mkdir -p "$WORK/data"
cat >"$WORK/data/content.csv" <<CSV
content_id,title,body,language,topics,media_url,valid_from,valid_until,fallback_eligible,emergency
c-mail,Morning brief,Markets steady.,en,markets,,2026-11-01,2026-12-31,true,false
CSV
cat >"$WORK/data/advisors.csv" <<CSV
advisor_id,name,tier,phone,email,timezone,slot,channels,opted_in,language,topics
u-one,Asha Rao,gold,,one@advisors.example.com,,,email,true,en,markets
u-two,Vikram Shah,gold,,two@advisors.example.com,,,email,true,en,markets
CSV
assignments() { { echo "advisor_id,date,content_id"; for a in u-one u-two; do echo "$a,$1,c-mail"; done; } >"$WORK/data/assignments.csv"; }
assignments "$D"
for kind in content advisors assignments; do "$OP" import "$kind" "$WORK/data/$kind.csv" >/dev/null; done
night() { echo "$(date -d "$1 -1 day" +%F)T21:30:00+05:30"; }
DAYBREAK_CLOCK=$(clock_at "$(night "$D")" 1) "$ASSIGN" --date "$D" >/dev/null
DAYBREAK_CLOCK=$(clock_at "$(night "$D")" 1) "$PLAN" --date "$D" >/dev/null
run=$(sql "SELECT run_id FROM runs WHERE date='$D'")
DAYBREAK_CLOCK=$(clock_at "${D}T05:59:25+05:30" $SCALE) "$DISPATCH" --run "$run" --json >"$WORK/d.json" 2>"$WORK/d.log" \
  || { cat "$WORK/d.log"; fail "dispatch failed"; }
assert_eq "$(sql "SELECT group_concat(advisor_id || ':' || state, ' ') FROM (SELECT * FROM deliveries WHERE date='$D' ORDER BY advisor_id)")" \
  "u-one:accepted u-two:accepted" "day 1 deliveries"

# --- 1. the headers, as a mail client's parser reads them ----------------------------------------
"$SMTP_PY" - "$WORK/mail" "$UNSUB_SECRET" "$CB_PORT" >"$WORK/unsub_url" <<'PY' || fail "List-Unsubscribe headers are wrong (above)"
import base64, email, email.policy, glob, hashlib, hmac, json, os, re, sys
d, secret, port = sys.argv[1:]
def token(advisor):  # the documented token: u1.<base64url(id)>.<first 32 hex of HMAC-SHA256>
    b64 = base64.urlsafe_b64encode(advisor.encode()).decode().rstrip("=")
    mac = hmac.new(secret.encode(), b"daybreak-unsubscribe:u1:" + advisor.encode(), hashlib.sha256).hexdigest()[:32]
    return f"u1.{b64}.{mac}"
for meta_path in sorted(glob.glob(os.path.join(d, "*.json"))):
    meta = json.load(open(meta_path))
    if meta["rcpt_tos"] != ["one@advisors.example.com"]:
        continue
    m = email.message_from_bytes(open(meta_path[:-5] + ".eml", "rb").read(), policy=email.policy.default)
    lu = str(m["List-Unsubscribe"])
    uris = re.findall(r"<([^>]*)>", lu)
    t = token("u-one")
    assert uris == [f"mailto:unsubscribe@daybreak.example.com?subject=unsubscribe%20{t}",
                    f"http://127.0.0.1:{port}/unsubscribe?a={t}"], (lu, uris, t)
    assert str(m["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click", m["List-Unsubscribe-Post"]
    print(uris[1])
    break
else:
    sys.exit("no message to one@advisors.example.com")
PY
URL=$(cat "$WORK/unsub_url")
echo "ok 1: List-Unsubscribe <mailto:…>, <$URL> and List-Unsubscribe-Post parsed by Python's email parser"

# --- 2. the one-click POST ------------------------------------------------------------------------
click() { curl -s -o "$WORK/click.out" -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' --data 'List-Unsubscribe=One-Click' "$1"; }
assert_eq "$(click "$URL")" "200" "the one-click POST"
assert_eq "$(json 'j["unsubscribed"]' <"$WORK/click.out")" "True" "the answer"
assert_eq "$(sql "SELECT opted_in || ' ' || (unsubscribed_at IS NOT NULL) FROM advisor_channels WHERE advisor_id='u-one' AND channel='email'")" "0 1" "u-one's email channel"
assert_eq "$(sql "SELECT opted_in FROM advisor_channels WHERE advisor_id='u-two'")" "1" "u-two untouched"
"$OP" audit --target advisor:u-one --json >"$WORK/audit.json"
python3 - "$WORK/audit.json" <<'PY' || fail "no audit row for the unsubscribe (above)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in (rows[0] if len(rows) == 1 and isinstance(rows[0], list) else rows)]
hits = [r for r in rows if r.get("actor") == "daybreak-callbacks" and r.get("target") == "advisor:u-one"]
assert len(hits) == 1, rows
assert "List-Unsubscribe" in hits[0]["command"] and "unsubscribed" in hits[0]["reason"], hits[0]
PY
assert_eq "$(click "$URL")" "200" "a second click"
assert_eq "$(json 'j["unsubscribed"]' <"$WORK/click.out")" "False" "a second click changes nothing"
assert_eq "$(sql "SELECT COUNT(*) FROM audit_log WHERE actor='daybreak-callbacks'")" "1" "audit rows after two clicks"
echo "ok 2: the one-click POST opted u-one out of email, audited once"

# --- 3. the next plan skips u-one; an import does not opt them back in ------------------------------
"$OP" import advisors "$WORK/data/advisors.csv" >/dev/null
assert_eq "$(sql "SELECT opted_in FROM advisor_channels WHERE advisor_id='u-one' AND channel='email'")" "0" "u-one after a re-import"
assignments "$D2"
"$OP" import assignments "$WORK/data/assignments.csv" >/dev/null
DAYBREAK_CLOCK=$(clock_at "$(night "$D2")" 1) "$ASSIGN" --date "$D2" >/dev/null
DAYBREAK_CLOCK=$(clock_at "$(night "$D2")" 1) "$PLAN" --date "$D2" >/dev/null
assert_eq "$(sql "SELECT group_concat(advisor_id, ' ') FROM deliveries WHERE date='$D2'")" "u-two" "day 2 planned deliveries"
echo "ok 3: the next night's plan skipped u-one (u-two planned); a re-import left u-one opted out"

# --- 4. forged tokens and GETs ----------------------------------------------------------------------
FORGED=$(python3 -c '
import base64, hashlib, hmac
b64 = base64.urlsafe_b64encode(b"u-two").decode().rstrip("=")
print("u1." + b64 + "." + hmac.new(b"guessed", b"daybreak-unsubscribe:u1:u-two", hashlib.sha256).hexdigest()[:32])')
assert_eq "$(click "http://127.0.0.1:$CB_PORT/unsubscribe?a=$FORGED")" "403" "a forged token"
grep -q 'POST /unsubscribe answered 403: the unsubscribe token is not valid' "$WORK/cb.log" || { tail -5 "$WORK/cb.log"; fail "the 403 was not logged with its reason"; }
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' --data 'List-Unsubscribe=No' "$URL")" "400" "a body that is not one-click"
assert_eq "$(curl -s -o "$WORK/get.html" -w '%{http_code}' "$URL")" "200" "a GET of the link"
grep -q '<form method="post"' "$WORK/get.html" || fail "the GET page has no form"
assert_eq "$(sql "SELECT opted_in FROM advisor_channels WHERE advisor_id='u-two'")" "1" "u-two after the forged token and the GET"
assert_eq "$(sql "SELECT COUNT(*) FROM audit_log WHERE actor='daybreak-callbacks'")" "1" "audit rows after the refusals"
kill -TERM "$RECEIVER"; rc=0; wait "$RECEIVER" || rc=$?
assert_eq "$rc" "0" "receiver exit code on SIGTERM"
echo "ok 4: a forged token got 403 (logged), a wrong body 400, a GET only a confirmation form; nothing changed"
