#!/usr/bin/env python3
"""A real SMTP server for the end-to-end tests (Debian python3-aiosmtpd).

Listens on 127.0.0.1 (port 0 = a free one, written to --port-file once listening), writes every
message it accepts to --dir as NNNNN.eml (the raw DATA) and NNNNN.json (the envelope), and
appends one line per RCPT command to --dir/rcpt.log ("<code> <address>"), so a test sees every
attempt, refused ones included.

Replies are scriptable per recipient with --rule REGEX=SPEC (first matching rule wins):
  250        accept (the default for addresses no rule matches)
  550        always refuse with 550 (any 4xx/5xx code works)
  451x2      refuse with 451 the first 2 times this address is tried, then accept
--auth USER:PASS requires AUTH (PLAIN/LOGIN, allowed without TLS: this is a test server) and
refuses other credentials with 535.
--data-delay N answers the final "." of every message N seconds (a float) after it arrived: a
slow relay. The other sessions go on meanwhile (asyncio), as on a real relay.
--tls-cert PEM --tls-key PEM serves SMTPS (TLS from the first byte) with that certificate.
Every connection is logged to --dir/connections.log ("<n> open" / "<n> close"), and every
message's session number goes into its NNNNN.json ("conn"), so a test can count connections.
"""
import argparse
import asyncio
import json
import os
import re
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

TEXT = {
    250: "2.1.5 OK",
    421: "4.3.0 Service not available, closing channel",
    450: "4.2.0 Mailbox unavailable",
    451: "4.3.0 Local error in processing, try again later",
    452: "4.3.1 Insufficient system storage",
    550: "5.1.1 Mailbox unavailable",
    552: "5.3.4 Message too big",
    553: "5.1.3 Mailbox name not allowed",
    554: "5.7.1 Transaction failed",
}


def parse_rule(text):
    pattern, _, spec = text.rpartition("=")
    m = re.fullmatch(r"(\d{3})(?:x(\d+))?", spec)
    if not pattern or not m:
        raise argparse.ArgumentTypeError(f"--rule {text!r}: expected REGEX=CODE or REGEX=CODExN")
    code = int(m.group(1))
    times = int(m.group(2)) if m.group(2) else None  # None: always
    return re.compile(pattern), code, times


class Sink:
    def __init__(self, directory, rules, data_delay=0.0):
        self.dir = directory
        self.rules = rules
        self.data_delay = data_delay
        self.tries = {}
        self.count = 0

    def _log(self, code, address):
        with open(os.path.join(self.dir, "rcpt.log"), "a", encoding="utf-8") as f:
            f.write(f"{code} {address}\n")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        n = self.tries.get(address, 0) + 1
        self.tries[address] = n
        code = 250
        for pattern, rule_code, times in self.rules:
            if pattern.search(address):
                code = rule_code if times is None or n <= times else 250
                break
        self._log(code, address)
        if code != 250:
            return f"{code} {TEXT.get(code, 'refused by rule')}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay > 0:
            await asyncio.sleep(self.data_delay)  # this session only: the others go on
        self.count += 1
        base = os.path.join(self.dir, f"{self.count:05d}")
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.content)
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "size": len(envelope.content),
                "auth": session.authenticated,
                "conn": getattr(server, "conn_no", 0)}
        with open(base + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(meta, f)
        # The .json appears last and atomically: a reader that sees it sees the whole message.
        os.replace(base + ".eml.tmp", base + ".eml")
        os.replace(base + ".json.tmp", base + ".json")
        return "250 2.0.0 Message accepted for delivery"


class LoggedSMTP(SMTP):
    """aiosmtpd's SMTP that numbers its connections and logs their opening and closing."""
    opened = 0

    def __init__(self, handler, directory, **kwargs):
        super().__init__(handler, **kwargs)
        self.log_path = os.path.join(directory, "connections.log")

    def connection_made(self, transport):
        LoggedSMTP.opened += 1
        self.conn_no = LoggedSMTP.opened
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"{self.conn_no} open\n")
        super().connection_made(transport)

    def connection_lost(self, exc):
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"{getattr(self, 'conn_no', 0)} close\n")
        super().connection_lost(exc)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--rule", action="append", type=parse_rule, default=[])
    ap.add_argument("--auth", help="USER:PASS required from every client")
    ap.add_argument("--tls-cert", help="PEM certificate: serve SMTPS")
    ap.add_argument("--tls-key", help="PEM key of --tls-cert")
    ap.add_argument("--data-delay", type=float, default=0.0, help="seconds before answering the final \".\"")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    sink = Sink(args.dir, args.rule, args.data_delay)

    kwargs = {"decode_data": False, "hostname": "sink.test", "enable_SMTPUTF8": True}
    if args.auth:
        user, _, password = args.auth.partition(":")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and \
                auth_data.password.decode() == password
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

        kwargs.update(auth_required=True, auth_require_tls=False, authenticator=authenticator)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ssl_ctx = None
    if args.tls_cert:
        import ssl
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(args.tls_cert, args.tls_key)
    server = loop.run_until_complete(loop.create_server(lambda: LoggedSMTP(sink, args.dir, loop=loop, **kwargs), args.host,
                                                        args.port, ssl=ssl_ctx))
    port = server.sockets[0].getsockname()[1]
    with open(args.port_file + ".tmp", "w") as f:
        f.write(f"{port}\n")
    os.replace(args.port_file + ".tmp", args.port_file)
    print(f"smtp_sink: listening on {args.host}:{port}, writing to {args.dir}", file=sys.stderr, flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
