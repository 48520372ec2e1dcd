#!/usr/bin/env python3
"""Status-callback load for scripts/bench (scenario k): Meta-shaped, correctly signed webhook POSTs.

Reads the deliveries to report on from the ledger (delivery_id, provider_message_id), builds for
each one a `sent`, a `delivered` and a `read` body in the shape Meta posts (one status per body,
biz_opaque_callback_data naming the delivery, as dispatch sets it), signs each with
X-Hub-Signature-256, posts a share of them twice (the identical bytes again, later: Meta's
retries), and posts them all over N keep-alive connections (TCP_NODELAY), each sending its next
request as soon as its previous one is answered (closed loop: the rate is the receiver's).

Every request is built before the clock starts; the loop is one thread, non-blocking sockets and
epoll, so the generator's own CPU per request is small and reported (`gen_cpu_us`), to show it
is not the bottleneck. Prints one JSON object: posts, answers by status, callbacks/s, answer time
p50/p99/max (ms, from the request's first byte sent to the answer's last byte read).
"""
import argparse
import hashlib
import hmac
import json
import random
import resource
import select
import socket
import sqlite3
import sys
import time


def body_for(delivery_id, wamid, status, ts, phone_number_id):
    recipient = "9198" + str(10000000 + delivery_id % 90000000)
    st = {"id": wamid, "status": status, "timestamp": str(ts), "recipient_id": recipient,
          "biz_opaque_callback_data": str(delivery_id)}
    if status == "sent":
        st["conversation"] = {"id": "CONVERSATION_" + recipient, "origin": {"type": "utility"}}
        st["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "utility"}
    body = {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
                "statuses": [st]}, "field": "messages"}]}]}
    return json.dumps(body, separators=(",", ":")).encode()


def build_requests(rows, secret, dup_pct, host, seed):
    rng = random.Random(seed)
    now = int(time.time())
    bodies = []
    # In blocks, as a burst produces them: a block's `sent`, then its `delivered`, then its `read`.
    block = 500
    for i in range(0, len(rows), block):
        chunk = rows[i:i + block]
        for k, status in enumerate(("sent", "delivered", "read")):
            for did, wamid in chunk:
                bodies.append(body_for(did, wamid, status, now + k, "100000001"))
    posts = list(bodies)
    # Duplicates: the same bytes again, somewhere later in the stream.
    ndup = len(bodies) * dup_pct // 100
    for idx in rng.sample(range(len(bodies)), ndup):
        at = rng.randint(min(idx + 1, len(posts)), len(posts))
        posts.insert(at, bodies[idx])
    return sign(posts, secret, host), len(bodies), ndup


def sign(posts, secret, host):
    reqs = []
    key = secret.encode()
    for b in posts:
        sig = "sha256=" + hmac.new(key, b, hashlib.sha256).hexdigest()
        reqs.append((f"POST /webhook HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"X-Hub-Signature-256: {sig}\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b)
    return reqs


class Conn:
    __slots__ = ("sock", "buf", "t0", "out", "waiting")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.t0 = 0.0
        self.out = b""
        self.waiting = False  # a request is out and its answer not yet read


def run(port, reqs, nconn, timeout_s, more=None):
    """Posts reqs; with `more` (a function returning new requests, or None when there will be no
    more), idle connections wait for it, polled every 100 ms."""
    ep = select.epoll()
    conns = {}

    def connect():
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        c = Conn(s)
        conns[s.fileno()] = c
        ep.register(s.fileno(), select.EPOLLIN)
        return c

    for _ in range(nconn):
        connect()
    lat = []
    codes = {}
    nxt = 0
    done = 0
    perf = time.perf_counter
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    start = perf()

    idle = []
    reconnects = 0

    def send_next(c):
        nonlocal nxt
        if nxt >= len(reqs):
            idle.append(c)
            return False
        c.t0 = perf()
        c.waiting = True
        data = reqs[nxt]
        nxt += 1
        n = c.sock.send(data)
        if n < len(data):
            c.out = data[n:]
            ep.modify(c.sock.fileno(), select.EPOLLIN | select.EPOLLOUT)
        return True

    active = 0
    for c in conns.values():
        if send_next(c):
            active += 1
    deadline = start + timeout_s
    next_poll = start
    finished = more is None
    while active > 0 or not finished:
        if not finished and perf() >= next_poll:
            next_poll = perf() + 0.25  # a look at the ledger scans its accepted deliveries
            new = more()
            if new is None:
                finished = True
            elif new:
                reqs.extend(new)
                while idle and nxt < len(reqs):
                    if send_next(idle.pop()):
                        active += 1
        if perf() > deadline:
            raise SystemExit(f"callback load: timed out after {timeout_s} s with {len(reqs) - done} answers missing")
        for fd, ev in ep.poll(0.1 if not finished else 1.0):
            c = conns[fd]
            if ev & select.EPOLLOUT and c.out:
                n = c.sock.send(c.out)
                c.out = c.out[n:]
                if not c.out:
                    ep.modify(fd, select.EPOLLIN)
            if not ev & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                continue
            try:
                chunk = c.sock.recv(65536)
            except BlockingIOError:
                continue
            if not chunk:
                if c.waiting or c.buf:
                    raise SystemExit("callback load: the receiver closed a connection with a request unanswered")
                # An idle keep-alive connection past the receiver's callbacks.header_timeout_seconds
                # (while --follow waits for acceptances): closed as any server may; a new one takes its place.
                ep.unregister(fd)
                del conns[fd]
                c.sock.close()
                fresh = connect()
                idle[idle.index(c)] = fresh
                reconnects += 1
                continue
            c.buf += chunk
            while True:
                he = c.buf.find(b"\r\n\r\n")
                if he < 0:
                    break
                head = c.buf[:he]
                cl = 0
                p = head.lower().find(b"content-length:")
                if p >= 0:
                    e = head.find(b"\r\n", p)
                    cl = int(head[p + 15:e if e >= 0 else len(head)])
                if len(c.buf) < he + 4 + cl:
                    break
                code = int(head[9:12])
                codes[code] = codes.get(code, 0) + 1
                c.buf = c.buf[he + 4 + cl:]
                lat.append(perf() - c.t0)
                c.waiting = False
                done += 1
                if not send_next(c):
                    active -= 1
    wall = perf() - start
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    gen_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    for c in conns.values():
        c.sock.close()
    return wall, lat, codes, gen_cpu, reconnects


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True, help="the ledger: deliveries with a provider_message_id are reported on")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--dup-pct", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--follow", type=float, default=0,
                    help="post for deliveries as they are accepted (a dispatch running on the ledger); stop after "
                         "this many seconds without a new acceptance")
    a = ap.parse_args()
    if a.follow > 0:
        return follow(a)
    db = sqlite3.connect(a.db)
    rows = db.execute("SELECT delivery_id, provider_message_id FROM deliveries WHERE provider_message_id IS NOT NULL "
                      "ORDER BY delivery_id").fetchall()
    db.close()
    if not rows:
        raise SystemExit("callback load: no delivery with a provider_message_id in " + a.db)
    reqs, unique, dups = build_requests(rows, a.secret, a.dup_pct, f"127.0.0.1:{a.port}", a.seed)
    wall, lat, codes, gen_cpu, reconnects = run(a.port, reqs, a.connections, a.timeout)
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    print(json.dumps({"messages": len(rows), "unique_callbacks": unique, "duplicates": dups, "posts": len(reqs),
                      "answers": codes, "wall_s": round(wall, 3), "callbacks_per_s": round(len(reqs) / wall),
                      "p50_ms": round(q(0.50), 2), "p99_ms": round(q(0.99), 2), "max_ms": round(lat[-1] * 1000, 2),
                      "gen_cpu_s": round(gen_cpu, 2), "gen_cpu_us": round(gen_cpu / len(reqs) * 1e6, 1),
                      "idle_reconnects": reconnects}))


def follow(a):
    """Beside a dispatch: every 250 ms, the deliveries accepted since the last look get their
    sent, delivered and read (10% of them posted twice), as Meta would post them."""
    db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True, timeout=30)
    host = f"127.0.0.1:{a.port}"
    seen = set()
    state = {"since": 0, "last_new": time.perf_counter(), "unique": 0, "dups": 0}
    rng = random.Random(a.seed)

    def more():
        rows = db.execute("SELECT delivery_id, provider_message_id, accepted_at FROM deliveries "
                          "WHERE provider_message_id IS NOT NULL AND accepted_at >= ?", (state["since"] - 5000,)).fetchall()
        fresh = [(d, w) for d, w, _ in rows if d not in seen]
        if rows:
            state["since"] = max(r[2] for r in rows)
        if not fresh:
            return None if time.perf_counter() - state["last_new"] > a.follow else []
        state["last_new"] = time.perf_counter()
        now = int(time.time())
        bodies = []
        for d, w in fresh:
            seen.add(d)
            for k, status in enumerate(("sent", "delivered", "read")):
                bodies.append(body_for(d, w, status, now + k, "100000001"))
        posts = list(bodies)
        for b in bodies:
            if rng.randrange(100) < a.dup_pct:
                posts.append(b)
                state["dups"] += 1
        state["unique"] += len(bodies)
        return sign(posts, a.secret, host)

    reqs = []
    wall, lat, codes, gen_cpu, reconnects = run(a.port, reqs, a.connections, a.timeout, more)
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0
    print(json.dumps({"messages": len(seen), "unique_callbacks": state["unique"], "duplicates": state["dups"],
                      "posts": len(reqs), "answers": codes, "wall_s": round(wall, 3),
                      "p50_ms": round(q(0.50), 2), "p99_ms": round(q(0.99), 2), "max_ms": round(q(1.0), 2),
                      "gen_cpu_s": round(gen_cpu, 2), "idle_reconnects": reconnects}))


if __name__ == "__main__":
    main()
