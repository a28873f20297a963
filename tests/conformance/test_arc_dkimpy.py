#!/usr/bin/python3
"""ARC chains sealed by dkimpy (Debian's python3-dkim) validate with our code, and broken ones
do not; our result must match dkimpy's arc_verify on each.

Chains: one set; two sets from two sealers; the body changed after the last seal; an earlier
set's ARC-Authentication-Results changed; the newest seal's cv= changed; a set removed.

Run under Debian's /usr/bin/python3; exits 77 when python3-dkim or python3-authres is missing.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import authres  # noqa: F401  (dkimpy's arc_sign needs it)
    import dkim
except ImportError as e:
    print(f"skipped: {e}; install python3-dkim and python3-authres")
    sys.exit(77)

TOOL = os.environ.get("DKIM_VERIFY_TOOL")
if not TOOL or not os.access(TOOL, os.X_OK):
    print("DKIM_VERIFY_TOOL is not set to the dkim_verify_tool binary")
    sys.exit(2)

DATA = os.path.join(os.path.dirname(dkim.__file__), "tests", "data")


def data(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


KEY_1024 = data("test.private")
KEY_2048 = data("2048_testkey.key")
RECORDS = {
    "arc._domainkey.lists.example.org": [data("test.txt").decode().strip()],
    "fwd._domainkey.forwarder.example": [
        data("2048_testkey_wo_markers.pub.txt").decode().strip()],
}

MESSAGE = (
    b"Authentication-Results: lists.example.org; spf=pass smtp.mailfrom=alice@example.org;\r\n"
    b" dkim=pass header.d=example.org\r\n"
    b"From: Alice <alice@example.org>\r\n"
    b"To: list@lists.example.org\r\n"
    b"Subject: ARC test\r\n"
    b"Date: Thu, 14 Jan 2026 15:00:01 -0800\r\n"
    b"Message-ID: <arc-1@example.org>\r\n"
    b"\r\n"
    b"Hello list,\r\n"
    b".a line with a dot\r\n"
    b"\r\n")


def dkimpy_cv(message):
    def dnsfunc(name, timeout=5):
        records = RECORDS.get(name.decode("ascii", "replace").rstrip(".").lower())
        return records[0] if records else ""
    cv, _, _ = dkim.arc_verify(message, dnsfunc=dnsfunc)
    return (cv or b"fail").decode()


def ours(message):
    with tempfile.TemporaryDirectory() as tmp:
        msg_path, dns_path = os.path.join(tmp, "m.eml"), os.path.join(tmp, "dns.json")
        with open(msg_path, "wb") as f:
            f.write(message)
        with open(dns_path, "w") as f:
            json.dump(RECORDS, f)
        out = subprocess.run([TOOL, dns_path, msg_path], capture_output=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.decode(errors="replace"))
        return json.loads(out.stdout)["arc"]


def seal(message, selector, domain, key, srv_id):
    def dnsfunc(name, timeout=5):
        records = RECORDS.get(name.decode("ascii", "replace").rstrip(".").lower())
        return records[0] if records else ""
    # dkimpy validates the existing chain itself (with our DNS table) to choose cv=.
    return b"".join(dkim.arc_sign(message, selector, domain, key, srv_id,
                                  include_headers=[b"from", b"to", b"subject", b"date",
                                                   b"message-id"],
                                  timestamp=1768400000)) + message


def drop_set(message, instance):
    """The message without the ARC fields of `instance` (each with its continuation lines)."""
    head, body = message.split(b"\r\n\r\n", 1)
    fields, out = [], []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    tag = b"i=%d;" % instance
    for field in fields:
        text = b"\r\n".join(field)
        if text.lower().startswith(b"arc-") and tag in text.replace(b" ", b""):
            continue
        out.append(text)
    return b"\r\n".join(out) + b"\r\n\r\n" + body


def main():
    one = seal(MESSAGE, b"arc", b"lists.example.org", KEY_1024, b"lists.example.org")
    relayed = (b"Authentication-Results: forwarder.example; arc=pass\r\n" + one)
    two = seal(relayed, b"fwd", b"forwarder.example", KEY_2048, b"forwarder.example")
    cases = [
        ("no ARC", MESSAGE, "none"),
        ("one set", one, "pass"),
        ("two sets", two, "pass"),
        ("body changed after the last seal", two + b"footer\r\n", "fail"),
        ("set 1's AAR changed", two.replace(b"i=1; lists.example.org;",
                                            b"i=1; lists.example.org; x=1;"), "fail"),
        ("newest seal's cv= changed", two.replace(b"cv=pass", b"cv=none", 1), "fail"),
        ("set 1 removed", drop_set(two, 1), "fail"),
    ]
    failures = 0
    for name, message, expected in cases:
        got = ours(message)
        theirs = dkimpy_cv(message)
        ok = got["result"] == expected == theirs
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: ours={got['result']} dkimpy={theirs} "
              f"expected={expected} {got['reason']}")
    print(f"{len(cases) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
