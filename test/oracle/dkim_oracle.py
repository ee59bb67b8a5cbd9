"""The independent DKIM judge: dkimpy (Debian python3-dkim) verifies what missive signs.

Protocol (used by test/helpers/dkim-oracle.ts): JSON lines on stdin, one request each,
    {"id": <any>, "op": "verify", "message": "<base64>", "records": {"sel._domainkey.example.com": "v=DKIM1; ..."}}
        -> {"id": <same>, "results": [{"ok": bool, "error": str|null, "log": [str]}, ...]}   one per DKIM-Signature, top first
    {"id": <any>, "op": "canon", "body": "<base64>", "fields": [["<base64 name>", "<base64 value>"], ...]}
        -> {"id": <same>, "body": {"simple": b64, "relaxed": b64}, "fields": {"simple": [b64...], "relaxed": [b64...]}}
and one JSON line per request on stdout, in order. DNS is never asked: every key lookup is
answered from `records` (a name missing there is "no key"), so verification is offline and
repeatable. A request that raises never stops the batch: its error is in the answer.
"""

import base64
import json
import logging
import sys
import traceback

import dkim
from dkim.canonicalization import Relaxed, Simple


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def verify(request):
    message = base64.b64decode(request["message"])
    records = {name.lower().rstrip(".") + ".": value for name, value in request["records"].items()}

    def dnsfunc(name, timeout=5):
        key = name.decode("ascii").lower() if isinstance(name, bytes) else name.lower()
        value = records.get(key)
        return None if value is None else value.encode("ascii")

    count = len([1 for name, _ in dkim.DKIM(message).headers if name.lower() == b"dkim-signature"])
    results = []
    for idx in range(count):
        handler = Collect()
        logger = logging.getLogger("dkim-oracle-%d" % idx)
        logger.handlers = [handler]
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        try:
            ok = bool(dkim.DKIM(message, logger=logger).verify(idx=idx, dnsfunc=dnsfunc))
            results.append({"ok": ok, "error": None, "log": handler.lines[-5:]})
        except Exception as e:  # dkimpy raises for malformed or expired signatures
            results.append({"ok": False, "error": "%s: %s" % (type(e).__name__, e), "log": handler.lines[-5:]})
    return {"results": results}


def canon(request):
    body = base64.b64decode(request["body"])
    fields = [(base64.b64decode(n), base64.b64decode(v)) for n, v in request.get("fields", [])]

    def b64(b):
        return base64.b64encode(b).decode("ascii")

    return {
        "body": {"simple": b64(Simple.canonicalize_body(body)), "relaxed": b64(Relaxed.canonicalize_body(body))},
        "fields": {
            "simple": [b64(n + b":" + v) for n, v in Simple.canonicalize_headers(fields)],
            "relaxed": [b64(n + b":" + v) for n, v in Relaxed.canonicalize_headers(fields)],
        },
    }


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            answer = verify(request) if request["op"] == "verify" else canon(request)
        except Exception as e:
            answer = {"error": "%s: %s" % (type(e).__name__, e), "traceback": traceback.format_exc()}
        answer["id"] = request["id"]
        sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
