#!/usr/bin/env python3
"""Drives the operator console (`daybreak serve`) in headless Chromium for test_console.sh.

Chromium is spoken to over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON
messages separated by NUL bytes, Chromium reads fd 3 and writes fd 4), so only the standard
library is needed. The script logs in through the login form, waits for the run on the page,
then, while dispatch runs (test_console.sh starts it once the `ready` file exists):
  1. pauses all sending through the page (the Pause form, the confirmation dialog with a reason,
     which posts to /api/action/pause with the session cookie and the page's CSRF token), and
     checks the simulator accepts nothing from 1 s to 3 s after the answer; the audit row names
     the operator; then resumes the same way;
  2. waits until every delivery of the run is final in the ledger and checks the page's accepted
     count equals the ledger's within 2 s;
  3. fails on any console error, uncaught exception or error log entry (a CSP violation is one).
Prints one JSON line of measurements on success; exits 1 with the reason otherwise.

With --pg-page (test_pg_console.sh: the console on the PostgreSQL ledger) it only logs in and
checks the page: it names the PostgreSQL ledger; the action the console cannot take there
(send-now) has its button disabled with the reason beside it and clicking it opens no dialog;
the others are enabled (cancel and ack with their notes: by delivery id, in this host's SQLite
file); the alerts box says where alerts come from; no console errors.
"""
import argparse
import base64
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request


class Browser:
    def __init__(self, chromium, profile, log):
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()

        def child_fds():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--window-size=1100,1900",
             "--user-data-dir=" + profile, "about:blank"],
            # Python's own descriptors are not inheritable (PEP 446); the dup2'ed 3 and 4 are.
            close_fds=False, preexec_fn=child_fds,
            stdout=log, stderr=log)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.w = os.fdopen(to_chrome_w, "wb", buffering=0)
        self.r = os.fdopen(from_chrome_r, "rb", buffering=0)
        self.next_id = 0
        self.replies = {}
        self.events = []
        self.cv = threading.Condition()
        threading.Thread(target=self._reader, daemon=True).start()
        self.session = None

    def _reader(self):
        buf = b""
        while True:
            chunk = self.r.read(65536)
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                j = json.loads(msg)
                with self.cv:
                    if "id" in j:
                        self.replies[j["id"]] = j
                    else:
                        self.events.append(j)
                    self.cv.notify_all()

    def send(self, method, params=None, session=True, timeout=15):
        with self.cv:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        self.w.write(json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        with self.cv:
            while mid not in self.replies:
                left = deadline - time.time()
                if left <= 0:
                    raise RuntimeError("no answer to " + method)
                self.cv.wait(left)
            reply = self.replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(method + ": " + json.dumps(reply["error"]))
        return reply.get("result", {})

    def open_page(self):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(domain + ".enable")

    def wait_event(self, method, timeout=15):
        deadline = time.time() + timeout
        with self.cv:
            while True:
                for i, e in enumerate(self.events):
                    if e.get("method") == method:
                        self.events.pop(i)
                        return e
                left = deadline - time.time()
                if left <= 0:
                    raise RuntimeError("no " + method)
                self.cv.wait(left)

    def navigate(self, url):
        with self.cv:
            self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def eval(self, expression):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError("evaluate failed: " + json.dumps(r["exceptionDetails"])[:400])
        return r["result"].get("value")

    def errors(self):
        """Console errors, uncaught exceptions and error log entries seen so far."""
        out = []
        with self.cv:
            for e in self.events:
                m, p = e.get("method"), e.get("params", {})
                if m == "Runtime.exceptionThrown":
                    out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:300])
                elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    out.append("console.%s: %s" % (p.get("type"), json.dumps(p.get("args", []))[:300]))
                elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    out.append("log: %s %s" % (p["entry"].get("text"), p["entry"].get("url", "")))
        return out

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def login(b, args):
    b.open_page()
    b.navigate(args.url + "/")
    if not b.eval("location.pathname") == "/login":
        fail("an anonymous visit was not sent to /login")
    b.eval("document.querySelector('input[name=name]').value = %s; document.querySelector('input[name=token]').value = %s; "
           "document.querySelector('form.login').submit(); true" % (json.dumps(args.user), json.dumps(args.token)))
    b.wait_event("Page.loadEventFired")
    if b.eval("location.pathname") != "/":
        fail("login did not lead to the console: " + str(b.eval("location.href")))


def pg_page(args):
    b = Browser(args.chromium, os.path.join(args.work, "chromium"), open(os.path.join(args.work, "chromium.log"), "wb"))
    try:
        login(b, args)
        for _ in range(100):
            if b.eval("document.getElementById('ledger').textContent") == "ledger: PostgreSQL":
                break
            time.sleep(0.05)
        else:
            fail("the page does not name the PostgreSQL ledger: %r" % b.eval("document.getElementById('ledger').textContent"))
        forms = {a: (disabled, why) for a, disabled, why in json.loads(b.eval(
            "JSON.stringify([...document.querySelectorAll('form[data-action]')].map(f => [f.dataset.action,"
            " f.querySelector('button[type=submit]').disabled, (f.querySelector('p.why') || {}).textContent || '']))"))}
        for a in ("send-now",):
            disabled, why = forms.get(a, (False, ""))
            if not disabled or not why.startswith("Not available here: "):
                fail("the %s form is not shown as unavailable: %r" % (a, forms.get(a)))
        for a in ("pause", "resume", "withdraw", "replay", "cancel", "ack"):
            if forms.get(a, (True, ""))[0]:
                fail("the %s button is disabled on PostgreSQL" % a)
        if "delivery id" not in forms["cancel"][1]:
            fail("the cancel form has no note about PostgreSQL: %r" % (forms["cancel"],))
        if "SQLite file" not in forms["ack"][1]:
            fail("the acknowledge form does not say the alert is acknowledged in this host's SQLite file: %r" % (forms["ack"],))
        b.eval("document.querySelector('form[data-action=send-now] button[type=submit]').click(); true")
        if b.eval("document.getElementById('confirm').open"):
            fail("a click on the disabled Send button opened the confirmation")
        alerts = b.eval("document.getElementById('alerts').textContent")
        if "SQLite file" not in alerts:
            fail("the alerts box does not say where the alerts come from: %r" % alerts)
        errs = b.errors()
        if errs:
            fail("console errors: " + "; ".join(errs[:5]))
        print(json.dumps({"unavailable": sorted(a for a, (d, _) in forms.items() if d), "send_now_reason": forms["send-now"][1][:80],
                          "ack_note": forms["ack"][1][:80]}))
    finally:
        b.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", default="chromium")
    ap.add_argument("--url", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--db")
    ap.add_argument("--run", type=int)
    ap.add_argument("--sim", help="simulator base URL (its /stats counts accepted requests)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--ready", help="file written once the page shows the run")
    ap.add_argument("--screenshot", help="PNG of the live page, taken during the run")
    ap.add_argument("--pg-page", action="store_true", help="check the page of a console on the PostgreSQL ledger, and exit")
    args = ap.parse_args()
    if args.pg_page:
        return pg_page(args)
    if not (args.db and args.run and args.sim and args.ready):
        ap.error("--db, --run, --sim and --ready are required without --pg-page")

    def sim_accepted():
        with urllib.request.urlopen(args.sim + "/stats", timeout=5) as r:
            return json.load(r)["accepted"]

    db = sqlite3.connect(args.db, timeout=10)

    def ledger(q):
        return db.execute(q).fetchone()[0]

    b = Browser(args.chromium, os.path.join(args.work, "chromium"), open(os.path.join(args.work, "chromium.log"), "wb"))
    try:
        login(b, args)
        sel = "document.querySelector('[data-run=\"%d\"] [data-k=accepted]')" % args.run
        for _ in range(100):
            if b.eval(sel + " !== null"):
                break
            time.sleep(0.05)
        else:
            fail("the page never showed run %d" % args.run)
        open(args.ready, "w").write("ready\n")

        # 1. pause through the page once sending is under way
        base = sim_accepted()
        for _ in range(400):
            if sim_accepted() - base > 150:
                break
            time.sleep(0.05)
        else:
            fail("dispatch did not start sending")
        if args.screenshot:
            time.sleep(0.6)
            png = b.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
            open(args.screenshot, "wb").write(base64.b64decode(png))

        def act(form_action, reason):
            b.eval("document.getElementById('action-result').dataset.status = ''; "
                   "document.querySelector('form[data-action=%s] button[type=submit]').click(); true" % form_action)
            if not b.eval("document.getElementById('confirm').open"):
                fail("the %s button did not ask for confirmation" % form_action)
            b.eval("document.getElementById('confirm-reason').value = %s; document.getElementById('confirm-ok').click(); true"
                   % json.dumps(reason))
            for _ in range(100):
                st = b.eval("document.getElementById('action-result').dataset.status")
                if st:
                    break
                time.sleep(0.02)
            if st != "200":
                fail("%s through the page answered %s: %s" % (form_action, st, b.eval("document.getElementById('action-result').textContent")))

        act("pause", "e2e console: pause test")
        paused_at = time.time()
        time.sleep(1.0)
        a1 = sim_accepted()
        time.sleep(2.0)
        a2 = sim_accepted()
        if a1 != a2:
            fail("sends went on between 1 s and 3 s after the page's pause: %d then %d" % (a1, a2))
        total = ledger("SELECT COUNT(*) FROM deliveries WHERE run_id=%d" % args.run)
        if a2 - base >= total:
            fail("the run finished before the pause; nothing was tested")
        row = db.execute("SELECT actor, command, reason FROM audit_log WHERE target='control:pause' ORDER BY audit_id DESC LIMIT 1").fetchone()
        if not row or row[0] != args.user or not row[1].startswith("daybreak serve: pause") or row[2] != "e2e console: pause test":
            fail("the pause's audit row does not name the operator: %r" % (row,))
        banner = b.eval("document.getElementById('paused').hidden ? '' : document.getElementById('paused').textContent")
        if "pause" not in banner or args.user not in banner:
            fail("the page does not show the pause: %r" % banner)
        # While sends are held the figures stand still: the page's by-sender rows (dispatch's own
        # counts from its progress row) add up to the ledger's planned and accepted counts.
        by_sender = ("(() => { const d = document.querySelector('[data-run=\"%d\"]'); if (!d) return null;"
                     " const h = [...d.querySelectorAll('h3')].find(e => e.textContent === 'By sender'); if (!h) return null;"
                     " return JSON.stringify([...h.nextElementSibling.querySelectorAll('tr')].slice(1)"
                     ".map(tr => [...tr.children].map(td => td.textContent))); })()" % args.run)
        accepted_now = ledger("SELECT COUNT(*) FROM deliveries WHERE run_id=%d AND state IN ('accepted','delivered','read')" % args.run)
        rows = None
        for _ in range(40):
            raw = b.eval(by_sender)
            rows = json.loads(raw) if raw else None
            if rows and sum(int(r[1]) for r in rows) == total and sum(int(r[2]) for r in rows) == accepted_now:
                break
            time.sleep(0.05)
        else:
            fail("the page's by-sender rows %r do not add up to the ledger's %d planned, %d accepted" % (rows, total, accepted_now))
        act("resume", "e2e console: resume")
        resumed_at = time.time()

        # 2. the page's accepted count reaches the ledger's final figure within 2 s
        final_at = None
        for _ in range(3000):
            if ledger("SELECT COUNT(*) FROM deliveries WHERE run_id=%d AND state IN ('planned','sending','retry_wait','uncertain')" % args.run) == 0:
                final_at = time.time()
                break
            time.sleep(0.05)
        if final_at is None:
            fail("the run did not finish")
        final = ledger("SELECT COUNT(*) FROM deliveries WHERE run_id=%d AND state IN ('accepted','delivered','read')" % args.run)
        shown = None
        while time.time() - final_at < 2.0:
            shown = b.eval(sel + ".textContent")
            if shown == str(final):
                break
            time.sleep(0.05)
        caught_up = time.time() - final_at
        if shown != str(final):
            fail("2 s after the run finished the page shows accepted %s, the ledger %d" % (shown, final))

        # 3. no console errors
        errs = b.errors()
        if errs:
            fail("console errors: " + "; ".join(errs[:5]))
        print(json.dumps({"paused_sends_held": a2 - base, "total": total, "final_accepted": final,
                          "page_caught_up_s": round(caught_up, 3), "pause_to_resume_s": round(resumed_at - paused_at, 2)}))
    finally:
        b.close()


if __name__ == "__main__":
    main()
