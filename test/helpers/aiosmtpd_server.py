"""A real aiosmtpd server for missive's integration tests.

Started by test/helpers/aiosmtpd.ts as
    /usr/bin/python3 test/helpers/aiosmtpd_server.py
with one JSON object (the configuration) on stdin. It binds 127.0.0.1 port 0,
prints one JSON line {"ready": true, "port": N} on stdout and serves until
SIGTERM/SIGINT, or until its parent process goes away (orphan watchdog).

Every message accepted is stored in the spool directory as
    <seq>.eml   the DATA bytes exactly as received (dot-unstuffed, CRLF kept)
    <seq>.json  metadata, written last via temp file + rename, so a reader that
                lists *.json never sees a partial message.
"""

import asyncio
import json
import logging
import os
import shutil
import signal
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def text(value):
    """A str safe for JSON (aiosmtpd uses surrogateescape for non-UTF-8 args)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


class Recorder:
    def __init__(self, spool, reject_rcpts, implicit_tls, pipelining=False):
        self.pipelining = pipelining
        self.spool = spool
        self.seq = 0
        self.reject_rcpts = {r.lower() for r in reject_rcpts}
        self.implicit_tls = implicit_tls

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining and responses:
            # aiosmtpd reads commands one line at a time, so it copes with pipelined input;
            # it just never says so. Announcing it lets tests drive a pipelined session.
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject_rcpts:
            return "550 5.1.1 <%s>: Recipient address rejected" % text(address)
        envelope.rcpt_tos.append(address)
        # aiosmtpd flattens rcpt_options across recipients; keep them per recipient.
        per_rcpt = getattr(envelope, "missive_rcpt_options", None)
        if per_rcpt is None:
            per_rcpt = []
            envelope.missive_rcpt_options = per_rcpt
        per_rcpt.append(list(rcpt_options))
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.seq += 1
        seq = self.seq
        data = envelope.original_content
        if data is None:
            data = envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        ssl_object = None
        if server.transport is not None:
            ssl_object = server.transport.get_extra_info("ssl_object")
        tls_on = ssl_object is not None or server._tls_protocol is not None
        tls_version = None
        if ssl_object is not None:
            try:
                tls_version = ssl_object.version()
            except Exception:
                tls_version = None
        auth_user = None
        if session.authenticated:
            auth_data = session.auth_data
            if isinstance(auth_data, LoginPassword):
                auth_user = text(auth_data.login)
            elif auth_data is not None:
                auth_user = text(auth_data) if isinstance(auth_data, (str, bytes)) else repr(auth_data)
        name = "%06d" % seq
        eml_path = os.path.join(self.spool, name + ".eml")
        write_atomic(eml_path, data)
        meta = {
            "seq": seq,
            "receivedAt": time.time(),
            "mailFrom": text(envelope.mail_from),
            "mailOptions": [text(o) for o in envelope.mail_options],
            "rcptTos": [text(r) for r in envelope.rcpt_tos],
            "rcptOptions": [
                [text(o) for o in opts]
                for opts in getattr(envelope, "missive_rcpt_options", [[] for _ in envelope.rcpt_tos])
            ],
            "smtputf8": bool(envelope.smtp_utf8),
            "authUser": auth_user,
            "tls": bool(tls_on),
            "tlsVersion": tls_version,
            "heloName": text(session.host_name),
            "extendedSmtp": bool(session.extended_smtp),
            "peer": list(session.peer) if session.peer else None,
            "size": len(data),
            "emlFile": name + ".eml",
        }
        write_atomic(
            os.path.join(self.spool, name + ".json"),
            json.dumps(meta).encode("utf-8"),
        )
        return "250 2.0.0 OK queued as %s" % name


def make_authenticator(users):
    encoded = {k.encode("utf-8"): v.encode("utf-8") for k, v in users.items()}

    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        expected = encoded.get(auth_data.login)
        if expected is not None and expected == auth_data.password:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    return authenticator


def main():
    config = json.loads(sys.stdin.readline() or "{}")
    logging.basicConfig(level=getattr(logging, config.get("logLevel", "WARNING")), stream=sys.stderr)
    # aiosmtpd 1.4.3 itself sets the deprecated Session.login_data on every AUTH
    # success and warns about it; that noise would hide real errors in stderr.
    logging.getLogger("mail.log").addFilter(
        lambda record: "login_data is deprecated" not in record.getMessage()
    )
    spool = config["spool"]
    tls_mode = config.get("tls", "none")
    host = config.get("host", "127.0.0.1")

    ssl_context = None
    if tls_mode in ("starttls", "implicit"):
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        ssl_context.load_cert_chain(config["certPath"], config["keyPath"])

    auth = config.get("auth")
    smtp_kwargs = {
        "decode_data": False,
        "enable_SMTPUTF8": bool(config.get("smtputf8", False)),
        "hostname": config.get("hostname") or "aiosmtpd.missive.test",
        "timeout": float(config.get("idleTimeout", 60)),
    }
    if "dataSizeLimit" in config:
        smtp_kwargs["data_size_limit"] = config["dataSizeLimit"] or None
    if tls_mode == "starttls":
        smtp_kwargs["tls_context"] = ssl_context
        smtp_kwargs["require_starttls"] = bool(config.get("requireStartTls", False))
    if auth is not None:
        smtp_kwargs["authenticator"] = make_authenticator(auth.get("users", {}))
        smtp_kwargs["auth_required"] = bool(auth.get("requireAuth", False))
        # aiosmtpd 1.4.3 only counts STARTTLS as "TLS" for auth_require_tls: over
        # implicit TLS it would never offer AUTH. The implicit socket is encrypted,
        # so requiring TLS is satisfied and the check is switched off there.
        smtp_kwargs["auth_require_tls"] = not (
            auth.get("allowPlaintext", False) or tls_mode == "implicit"
        )
        mechanisms = auth.get("mechanisms")
        if mechanisms:
            allowed = {m.upper() for m in mechanisms}
            smtp_kwargs["auth_exclude_mechanism"] = [
                m for m in ("PLAIN", "LOGIN") if m not in allowed
            ]
    else:
        smtp_kwargs["auth_exclude_mechanism"] = ["PLAIN", "LOGIN"]
        smtp_kwargs["auth_require_tls"] = True

    handler = Recorder(spool, config.get("rejectRecipients", []), tls_mode == "implicit", bool(config.get("pipelining", False)))

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return SMTP(handler, loop=loop, **smtp_kwargs)

    server = loop.run_until_complete(
        loop.create_server(
            factory,
            host=host,
            port=0,
            ssl=ssl_context if tls_mode == "implicit" else None,
        )
    )
    port = server.sockets[0].getsockname()[1]

    stop = loop.create_future()

    def on_signal():
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)

    parent = os.getppid()

    async def orphan_watchdog():
        while not stop.done():
            if os.getppid() != parent:
                on_signal()
                return
            await asyncio.sleep(1)

    watchdog = loop.create_task(orphan_watchdog())

    sys.stdout.write(json.dumps({"ready": True, "port": port, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()

    loop.run_until_complete(stop)
    watchdog.cancel()
    server.close()
    try:
        loop.run_until_complete(asyncio.wait_for(server.wait_closed(), 2))
    except Exception:
        pass
    loop.close()
    if config.get("removeSpoolOnExit"):
        # The TS side removes it too; this covers a test worker that died without stop().
        shutil.rmtree(spool, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # the TS side shows stderr when start fails
        sys.stderr.write("aiosmtpd_server.py failed: %r\n" % (exc,))
        sys.stderr.flush()
        sys.exit(2)
