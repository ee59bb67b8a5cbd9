"""The independent judge: Python's standard `email` package parses what missive builds.

Protocol (used by test/helpers/python-oracle.ts): JSON lines on stdin,
    {"id": <any>, "data": "<base64 of the message bytes>"}
and one JSON line per input on stdout, in order:
    {"id": <same>, ...summary...}   or   {"id": <same>, "error": "..."}
A message that breaks the parser never stops the batch.
"""

import base64
import email
import email.policy
import email.utils
import json
import sys
import traceback

POLICY = email.policy.default
CRLF_POLICY = email.policy.default.clone(linesep="\r\n")
ADDRESS_HEADERS = {"from": "from", "to": "to", "cc": "cc", "reply-to": "replyTo", "bcc": "bcc", "sender": "sender"}


def defect_names(defects):
    return [type(d).__name__ for d in defects]


def addresses(msg, name):
    out = []
    for header in msg.get_all(name, []) or []:
        for addr in getattr(header, "addresses", ()) or ():
            out.append({"name": addr.display_name, "address": addr.addr_spec})
    return out


def header_str(msg, name):
    value = msg.get(name)
    return None if value is None else str(value)


def b64(data):
    return base64.b64encode(data or b"").decode("ascii")


def is_body_part(part):
    if part.get_content_maintype() != "text" or part.get_content_subtype() not in ("plain", "html"):
        return False
    if part.get_content_disposition() == "attachment":
        return False
    return part.get_filename() is None


def text_of(part, where, defects):
    """Decoded text with CRLF (and lone CR) normalised to LF: get_content() keeps the
    wire's CRLF for 7bit/8bit parts, which would make every comparison depend on it."""
    try:
        text = part.get_content()
    except Exception as exc:  # unknown charset and the like
        defects.append({"where": where, "defect": "ContentDecodeError", "detail": repr(exc)})
        payload = part.get_payload(decode=True) or b""
        text = payload.decode("utf-8", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def tree(part):
    node = {
        "contentType": part.get_content_type(),
        "disposition": part.get_content_disposition(),
        "filename": part.get_filename(),
        "charset": part.get_content_charset(),
        "cte": part.get("content-transfer-encoding") and str(part.get("content-transfer-encoding")),
        # Content-Type parameters, RFC 2231 decoded, by lower-case name.
        "params": {k.lower(): email.utils.collapse_rfc2231_value(v) for k, v in (part.get_params() or [])[1:]},
    }
    if part.is_multipart() and part.get_content_type() != "message/rfc822":
        node["children"] = [tree(p) for p in part.get_payload()]
    return node


def collect_defects(part, where, out):
    for d in part.defects:
        out.append({"where": where, "defect": type(d).__name__, "detail": str(d)})
    for name, value in part.items():
        for d in getattr(value, "defects", ()) or ():
            out.append({"where": "%s: %s" % (where, name), "defect": type(d).__name__, "detail": str(d)})


def walk(part, path, result, details):
    """Leaf parts in order; does not descend into attached messages (message/rfc822)."""
    collect_defects(part, path, details)
    ctype = part.get_content_type()
    if ctype == "message/rfc822":
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        data = inner.as_bytes(policy=CRLF_POLICY) if inner is not None else b""
        result["attachments"].append(
            {
                "filename": part.get_filename(),
                "contentType": ctype,
                "disposition": part.get_content_disposition(),
                "contentId": header_str(part, "content-id"),
                "data": b64(data),
                "message": summarize(inner) if inner is not None else None,
            }
        )
        return
    if part.is_multipart():
        for i, child in enumerate(part.get_payload()):
            walk(child, "%s.%d" % (path, i + 1), result, details)
        return
    if is_body_part(part):
        text = text_of(part, path, details)
        (result["textBodies"] if part.get_content_subtype() == "plain" else result["htmlBodies"]).append(text)
        return
    result["attachments"].append(
        {
            "filename": part.get_filename(),
            "contentType": ctype,
            "disposition": part.get_content_disposition(),
            "contentId": header_str(part, "content-id"),
            "data": b64(part.get_payload(decode=True)),
        }
    )


def summarize(msg):
    date = msg.get("date")
    date_iso = None
    if date is not None:
        try:
            dt = getattr(date, "datetime", None)
            date_iso = dt.isoformat() if dt is not None else None
        except Exception:
            date_iso = None
    result = {
        "subject": header_str(msg, "subject"),
        "messageId": header_str(msg, "message-id"),
        "date": None if date is None else str(date),
        "dateIso": date_iso,
        "headers": [[name, str(value)] for name, value in msg.items()],
        "rawHeaders": [[name, value] for name, value in msg.raw_items()],
        "isMultipart": msg.is_multipart(),
        "contentType": msg.get_content_type(),
        "textBodies": [],
        "htmlBodies": [],
        "attachments": [],
        "parts": tree(msg),
    }
    for header, key in ADDRESS_HEADERS.items():
        result[key] = addresses(msg, header)
    details = []
    walk(msg, "1", result, details)
    result["defects"] = [d["defect"] for d in details]
    result["defectDetails"] = details
    return result


def main():
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        ident = None
        try:
            req = json.loads(line)
            ident = req.get("id")
            data = base64.b64decode(req["data"])
            msg = email.message_from_bytes(data, policy=POLICY)
            result = summarize(msg)
            result["id"] = ident
        except Exception as exc:
            result = {"id": ident, "error": "%s: %s" % (type(exc).__name__, exc), "traceback": traceback.format_exc()}
        try:
            out.write(json.dumps(result) + "\n")
        except Exception as exc:
            out.write(json.dumps({"id": ident, "error": "unserializable result: %r" % (exc,)}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
