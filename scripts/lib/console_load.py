#!/usr/bin/env python3
"""Operators' pages on `daybreak serve`, for scripts/bench (BENCH_CONSOLE=1).

Each page logs in with the operator's token once, then does what the console's script does in a
browser: GET /api/live twice a second and /api/history once a minute; and, as a person reloading,
GET / every 10 s. Every request's answer time is recorded (connect included: a page keeps one
keep-alive connection, as a browser would). Runs until the process --follow names has exited,
then prints one JSON line: requests, errors, and p50/p99/max ms per endpoint and over all.
"""
import argparse
import http.client
import json
import os
import threading
import time
import urllib.parse


def percentile(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))]


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class Page(threading.Thread):
    def __init__(self, port, name, token, follow, results, lock):
        super().__init__(daemon=True)
        self.port, self.name, self.token, self.follow = port, name, token, follow
        self.results, self.lock = results, lock
        self.errors = 0

    def request(self, conn, method, path, body=None, headers=None):
        t0 = time.monotonic()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        ms = (time.monotonic() - t0) * 1000.0
        return r, data, ms

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        body = urllib.parse.urlencode({"name": self.name, "token": self.token})
        r, _, _ = self.request(conn, "POST", "/login", body,
                               {"Content-Type": "application/x-www-form-urlencoded"})
        cookie = r.getheader("Set-Cookie", "").split(";")[0]
        if r.status not in (200, 302, 303) or not cookie:
            with self.lock:
                self.results.setdefault("login_failed", []).append(r.status)
            return
        hdr = {"Cookie": cookie}
        start = time.monotonic()
        next_live, next_page, next_history = start, start, start
        while alive(self.follow):
            now = time.monotonic()
            due = []
            if now >= next_live:
                due.append("/api/live")
                next_live += 0.5
            if now >= next_page:
                due.append("/")
                next_page += 10.0
            if now >= next_history:
                due.append("/api/history")
                next_history += 60.0
            for path in due:
                try:
                    r, _, ms = self.request(conn, "GET", path, headers=hdr)
                    ok = r.status == 200
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    ok, ms = False, None
                with self.lock:
                    if ok:
                        self.results.setdefault(path, []).append(ms)
                    else:
                        self.errors += 1
            time.sleep(max(0.0, min(next_live, next_page, next_history) - time.monotonic()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--pages", type=int, default=5)
    ap.add_argument("--follow", type=int, required=True, help="pid: stop when it exits")
    a = ap.parse_args()
    results, lock = {}, threading.Lock()
    pages = [Page(a.port, a.name, a.token, a.follow, results, lock) for _ in range(a.pages)]
    for p in pages:
        p.start()
    for p in pages:
        p.join()
    out = {"pages": a.pages, "errors": sum(p.errors for p in pages)}
    if "login_failed" in results:
        out["login_failed"] = results.pop("login_failed")
    every = []
    for path, xs in sorted(results.items()):
        every += xs
        out[path] = {"n": len(xs), "p50_ms": round(percentile(xs, 0.5), 1), "p99_ms": round(percentile(xs, 0.99), 1),
                     "max_ms": round(max(xs), 1)}
    if every:
        out["all"] = {"n": len(every), "p50_ms": round(percentile(every, 0.5), 1),
                      "p99_ms": round(percentile(every, 0.99), 1), "max_ms": round(max(every), 1)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
