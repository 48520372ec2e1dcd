#!/usr/bin/env python3
"""Hostile clients against daybreak-callbacks on 127.0.0.1 (tests/e2e/test_callbacks_abuse.sh).

Each attack runs while a correctly signed status callback (and GET /healthz) is posted every
0.25 s; every one of those must be answered 200 within 2 s. After each attack the receiver's peak
RSS (VmHWM in /proc/PID/status) must stay under the limit. Prints one line per attack and a JSON
summary on the last line; exits 1 when any check failed (all attacks run regardless, so a run on
a receiver without the bounds shows every failure at once).

Usage: hostile_client.py PORT PID SECRET ATTACK... where ATTACK is chunked, gzip, big, slow.
"""
import hashlib
import hmac
import http.client
import json
import socket
import sys
import threading
import time
import zlib

PORT = int(sys.argv[1])
PID = int(sys.argv[2])
SECRET = sys.argv[3].encode()
ATTACKS = sys.argv[4:]
RSS_LIMIT_KIB = 64 * 1024
SIGNED_DEADLINE_S = 2.0
WRONG_SIG = "sha256=" + "0" * 64

failures = []
seq = [0]


def fail(msg):
    failures.append(msg)
    print("  FAIL: " + msg, flush=True)


def vm_kib(field):
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def status_body():
    seq[0] += 1
    st = {"id": f"wamid.ABUSE{seq[0]:06d}", "status": "delivered", "timestamp": str(1796000000 + seq[0]),
          "recipient_id": "919810012345"}
    body = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
            "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550000000",
                      "phone_number_id": "100000001"}, "statuses": [st]}}]}]}
    return json.dumps(body).encode()


def signed_post():
    """One correctly signed POST on a new connection: (status or error text, seconds)."""
    body = status_body()
    sig = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
        c.request("POST", "/webhook", body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status, time.monotonic() - t0
    except OSError as e:
        return f"error {e!r}", time.monotonic() - t0


def healthz():
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        c.close()
        return r.status, time.monotonic() - t0
    except OSError as e:
        return f"error {e!r}", time.monotonic() - t0


def legit_traffic(stop, results, min_seconds):
    """Signed POSTs and /healthz every 0.25 s until `stop` is set and min_seconds have passed."""
    t_end_min = time.monotonic() + min_seconds
    while not (stop.is_set() and time.monotonic() >= t_end_min):
        results.append(("POST", *signed_post()))
        results.append(("GET /healthz", *healthz()))
        time.sleep(0.25)


def check_legit(name, results):
    bad = [r for r in results if r[1] != 200 or r[2] > SIGNED_DEADLINE_S]
    worst = max((r[2] for r in results), default=0.0)
    if not results:
        fail(f"{name}: no signed callback was posted")
    elif bad:
        fail(f"{name}: {len(bad)} of {len(results)} legitimate requests not answered 200 within {SIGNED_DEADLINE_S} s, "
             f"e.g. {bad[0][0]} -> {bad[0][1]} after {bad[0][2]:.2f} s")
    return worst


def read_status_line(sock, timeout):
    """The status code of whatever the server answered on `sock`, or None."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    if data.startswith(b"HTTP/1."):
        try:
            return int(data.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return None
    return None


def raw_request(head, body_iter, answer_timeout=20.0):
    """Sends `head`, then streams body_iter until the server answers or closes. Returns
    (status or None, body bytes sent, seconds)."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", PORT), timeout=answer_timeout)
    sent = 0
    status = None
    try:
        s.sendall(head)
        s.setblocking(False)
        for piece in body_iter:
            # Stop streaming as soon as the server has said something.
            try:
                peek = s.recv(1, socket.MSG_PEEK)
                if peek or peek == b"":
                    break
            except BlockingIOError:
                pass
            except OSError:
                break
            s.setblocking(True)
            s.settimeout(answer_timeout)
            try:
                s.sendall(piece)
            except OSError:
                break
            sent += len(piece)
            s.setblocking(False)
        s.setblocking(True)
        status = read_status_line(s, answer_timeout)
    finally:
        s.close()
    return status, sent, time.monotonic() - t0


def run_attack(name, attack, expect_status, min_seconds=1.5):
    stop = threading.Event()
    results = []
    legit = threading.Thread(target=legit_traffic, args=(stop, results, min_seconds))
    legit.start()
    t0 = time.monotonic()
    try:
        outcome = attack()
    finally:
        stop.set()
        legit.join()
    elapsed = time.monotonic() - t0
    worst = check_legit(name, results)
    hwm = vm_kib("VmHWM")
    if hwm >= RSS_LIMIT_KIB:
        fail(f"{name}: receiver peak RSS {hwm} KiB, limit {RSS_LIMIT_KIB} KiB")
    got = outcome.get("status")
    if expect_status is not None and got != expect_status:
        fail(f"{name}: the attack was answered {got}, expected {expect_status}")
    print(f"{name}: answered {got}, {json.dumps(outcome)}; {len(results)} legitimate requests, slowest {worst:.2f} s; "
          f"peak RSS {hwm} KiB; {elapsed:.1f} s", flush=True)
    return {"attack": name, "answered": got, "legit": len(results), "slowest_s": round(worst, 3), "vmhwm_kib": hwm,
            **outcome}


def attack_chunked():
    """400 MiB of zeros as a chunked body with a wrong signature."""
    head = (f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: {WRONG_SIG}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    mib = b"0" * (1 << 20)
    chunk = b"100000\r\n" + mib + b"\r\n"

    def pieces():
        for _ in range(400):
            yield chunk
        yield b"0\r\n\r\n"
    status, sent, secs = raw_request(head, pieces())
    return {"status": status, "body_bytes_sent": sent, "seconds": round(secs, 2)}


def gzip_bomb():
    co = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    zeros = b"\0" * (1 << 20)
    parts = [co.compress(zeros) for _ in range(1000)]
    parts.append(co.flush())
    return b"".join(parts)


BOMB = None


def attack_gzip():
    """1000 MiB of zeros, gzip-compressed (about 1 MiB), Content-Encoding: gzip, wrong signature."""
    bomb = BOMB
    head = (f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: {WRONG_SIG}\r\nContent-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n").encode()
    status, sent, secs = raw_request(head, (bomb[i:i + 65536] for i in range(0, len(bomb), 65536)))
    return {"status": status, "compressed_bytes": len(bomb), "body_bytes_sent": sent, "seconds": round(secs, 2)}


def attack_big():
    """A 4 MiB Content-Length body (over the default max_body_bytes, 3 MiB) with a wrong signature."""
    n = 4 << 20
    head = (f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: {WRONG_SIG}\r\nContent-Length: {n}\r\n\r\n").encode()
    piece = b"{" * 65536
    status, sent, secs = raw_request(head, (piece for _ in range(n // 65536)))
    return {"status": status, "body_bytes_sent": sent, "seconds": round(secs, 2)}


def attack_slow(clients=50, seconds=9.0, byte_every=2.0):
    """50 connections sending their request headers one byte every 2 s. Reports how long the
    receiver let them live."""
    head = (f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: {WRONG_SIG}\r\nContent-Length: 2\r\n\r\n{{}}").encode()
    socks = []
    for _ in range(clients):
        try:
            socks.append(socket.create_connection(("127.0.0.1", PORT), timeout=5))
        except OSError:
            socks.append(None)
    opened = time.monotonic()
    closed_after = [None] * clients
    pos = 0
    t_end = opened + seconds
    while time.monotonic() < t_end and pos < len(head):
        for i, s in enumerate(socks):
            if s is None or closed_after[i] is not None:
                continue
            try:
                s.setblocking(False)
                try:
                    if s.recv(4096) == b"":
                        closed_after[i] = time.monotonic() - opened
                        continue
                except BlockingIOError:
                    pass
                s.setblocking(True)
                s.send(head[pos:pos + 1])
            except OSError:
                closed_after[i] = time.monotonic() - opened
        pos += 1
        time.sleep(byte_every)
    # A last look: which connections has the receiver closed by now?
    for i, s in enumerate(socks):
        if s is None or closed_after[i] is not None:
            continue
        try:
            s.setblocking(False)
            if s.recv(4096) == b"":
                closed_after[i] = time.monotonic() - opened
        except BlockingIOError:
            pass
        except OSError:
            closed_after[i] = time.monotonic() - opened
    for s in socks:
        if s is not None:
            s.close()
    refused = sum(1 for s in socks if s is None)
    closed = [c for c in closed_after if c is not None]
    return {"status": None, "clients": clients, "connect_refused": refused, "closed_by_receiver": len(closed),
            "latest_close_s": round(max(closed), 2) if closed else None, "header_bytes_sent_each": pos}


def main():
    global BOMB
    summary = []
    for a in ATTACKS:
        if a == "chunked":
            summary.append(run_attack("400 MiB chunked body", attack_chunked, 411))
        elif a == "gzip":
            BOMB = gzip_bomb()
            summary.append(run_attack("gzip bomb (1000 MiB of zeros)", attack_gzip, 415))
        elif a == "big":
            summary.append(run_attack("4 MiB Content-Length body", attack_big, 413))
        elif a == "slow":
            out = run_attack("50 slow-header connections", attack_slow, None, min_seconds=0)
            summary.append(out)
            if out["closed_by_receiver"] != out["clients"] - out["connect_refused"]:
                fail(f"50 slow-header connections: only {out['closed_by_receiver']} closed by the receiver "
                     f"within {out['header_bytes_sent_each']} bytes")
        else:
            print(f"unknown attack {a}", file=sys.stderr)
            return 2
    print(json.dumps({"failures": failures, "attacks": summary}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
