#!/usr/bin/python3
"""Our DKIM verdicts against dkimpy's (Debian's python3-dkim), on the same messages and keys.

1. dkimpy's own test vectors (its tests/data: RFC 8463's signed example with an ed25519 and an
   rsa signature, Gmail's degenerate folding, Exim's ed25519 message, a corrupt key, a hostile
   d=) must give the verdict written here, for us and for dkimpy.
2. Messages signed by dkimpy here (rsa 1024 and 2048 with dkimpy's test keys, ed25519; every
   header/body canonicalization; with and without l=; with over-signed header lists; a body with
   a line that starts with a dot, white-space runs and trailing empty lines) must pass, and
   changed copies (a body line changed, a signed header changed, a signed header added, an
   unsigned From added) must not.
3. Where the two verifiers disagree, the case is named in EXPECTED_DIFFERENCES with the reason;
   any other disagreement fails the test.

Run under Debian's /usr/bin/python3; exits 77 when python3-dkim or python3-nacl is missing.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

try:
    import dkim
    import nacl.signing  # noqa: F401  (dkimpy needs it for ed25519)
except ImportError as e:
    print(f"skipped: {e}; install python3-dkim and python3-nacl")
    sys.exit(77)

TOOL = os.environ.get("DKIM_VERIFY_TOOL")
if not TOOL or not os.access(TOOL, os.X_OK):
    print("DKIM_VERIFY_TOOL is not set to the dkim_verify_tool binary")
    sys.exit(2)

DATA = os.path.join(os.path.dirname(dkim.__file__), "tests", "data")


def data(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def crlf(message):
    return message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# Keys: dkimpy's test keys, their DNS records as dkimpy's own tests publish them.
RSA1024_PRIVATE = data("test.private")
RSA1024_RECORD = data("test.txt").decode().strip()
RSA2048_PRIVATE = data("2048_testkey.key")
RSA2048_RECORD = data("2048_testkey_wo_markers.pub.txt").decode().strip()
ED25519_PRIVATE = data("ed25519test.key")
ED25519_RECORD = "v=DKIM1; k=ed25519; p=yi50DjK5O9pqbFpNHklsv9lqaS0ArSYu02qp1S0DW1Y="
GMAIL_RECORD = (
    "k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1Kd87/UeJjenpabgbFwh"
    "+eBCsSTrqmwIYYvywlbhbqoo2DymndFkbjOVIPIldNs/m40KF+yzMn1skyoxcTUGCQ"
    "s8g3FgD2Ap3ZB5DekAo5wMmk4wimDO+U8QzI3SD07y2+07wlNWwIt8svnxgdxGkVbb"
    "hzY8i+RQ9DpSVpPbF7ykQxtKXkv/ahW3KjViiAH+ghvvIhkx4xYSIc9oSwVmAl5Oct"
    "MEeWUwg8Istjqz8BZeTWbf41fbNhte7Y+YqZOwq1Sd0DbvYAD9NOZK9vlfuac0598H"
    "Y+vtSBczUiKERHv1yRbcaQtZFh5wtiRrN04BLUTD21MycBX5jYchHjPY/wIDAQAB")
CORRUPT_RECORD = (  # dkimpy's dnsfunc6: a byte missing inside the DER
    "k=rsa; p=MFwwDQYJKoZIhvNAQEBBQADSwAwSAJBANmBe10IgY+u7h3enWTukkqtUD5PR52T"
    "b/mPfjC0QJTocVBq6Za/PlzfV+Py92VaCak19F4WrbVTK5Gg5tW220MCAwEAAQ==")

RECORDS = {
    "rsa1024._domainkey.example.org": [RSA1024_RECORD],
    "rsa2048._domainkey.example.org": [RSA2048_RECORD],
    "ed._domainkey.example.org": [ED25519_RECORD],
    "brisbane._domainkey.football.example.com": [
        "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="],
    "test._domainkey.football.example.com": [RSA1024_RECORD],
    "20120113._domainkey.gmail.com": [GMAIL_RECORD],
    "sed._domainkey.test.ex": [data("eximtest.dns").decode().strip()],
    "test._domainkey.example.com": [RSA1024_RECORD],
}

KEYS = {  # name: (selector, private key, a=)
    "rsa1024": (b"rsa1024", RSA1024_PRIVATE, b"rsa-sha256"),
    "rsa2048": (b"rsa2048", RSA2048_PRIVATE, b"rsa-sha256"),
    "ed25519": (b"ed", ED25519_PRIVATE, b"ed25519-sha256"),
}

# Cases where our verdict differs from dkimpy's on purpose. Key: the case name's prefix.
EXPECTED_DIFFERENCES = {
    "rsa-sha1": "RFC 8301 §3.1: verifiers must not consider rsa-sha1 signatures valid; dkimpy "
                "still accepts them, we report `policy`.",
}

OUR_MESSAGE = crlf(
    b"From: Alice <alice@example.org>\n"
    b"To: Bob <bob@example.net>\n"
    b"Subject: Quarterly figures\n"
    b"Date: Thu, 14 Jan 2026 15:00:01 -0800\n"
    b"Message-ID: <figures-1@example.org>\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=us-ascii\n"
    b"\n"
    b"Hello Bob,\n"
    b".this line starts with a dot (stuffed on the wire, unstuffed here)\n"
    b"..and this one with two\n"
    b"columns:\t a  \t b   c   \n"
    b"\n"
    b"Alice\n"
    b"\n"
    b"\n")


def dkimpy_verdict(message, index):
    """True if dkimpy verifies signature number `index` (0 = topmost)."""
    def dnsfunc(name, timeout=5):
        key = name.decode("ascii", "replace").rstrip(".").lower()
        records = RECORDS.get(key)
        return records[0] if records else ""
    try:
        return bool(dkim.DKIM(message, minkey=1024).verify(idx=index, dnsfunc=dnsfunc))
    except dkim.DKIMException:
        return False


def our_results(message, now=None, chunk=None):
    with tempfile.TemporaryDirectory() as tmp:
        msg_path = os.path.join(tmp, "message.eml")
        dns_path = os.path.join(tmp, "dns.json")
        with open(msg_path, "wb") as f:
            f.write(message)
        with open(dns_path, "w") as f:
            json.dump(RECORDS, f)
        cmd = [TOOL]
        if now is not None:
            cmd += ["--now", str(now)]
        if chunk is not None:
            cmd += ["--chunk", str(chunk)]
        out = subprocess.run(cmd + [dns_path, msg_path], capture_output=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"tool failed: {out.stderr.decode(errors='replace')}")
        return json.loads(out.stdout)


results = []  # (name, ours, theirs, expected or None, detail)


def compare(name, message, index=0, expect=None, now=None, chunk=None):
    """Checks one signature of `message` with both verifiers. `expect`: the verdict both must
    give (True = pass), or None to require only that they agree."""
    ours_json = our_results(message, now=now, chunk=chunk)["dkim"]
    entry = ours_json[index] if index < len(ours_json) else {"result": "none", "error": ""}
    ours = entry["result"] == "pass"
    theirs = dkimpy_verdict(message, index)
    results.append((name, ours, theirs, expect, f"{entry['result']}: {entry['error']}"))
    return entry


def sign(message, key, canon, length=False, include=None, algorithm=None):
    selector, private, a = KEYS[key]
    sig = dkim.sign(message, selector, b"example.org", private,
                    canonicalize=canon, signature_algorithm=algorithm or a,
                    include_headers=include, length=length)
    return sig + message


def change_body_line(message):
    head, body = message.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n" + body.replace(b"Hello", b"Hallo", 1).replace(
        b"This is a test", b"This is a best", 1).replace(b"Hi.", b"Hi!", 1)


def change_header(message):
    head, body = message.split(b"\r\n\r\n", 1)
    head = head.replace(b"Subject: Quarterly figures", b"Subject: Quarterly figures!")
    head = head.replace(b"Subject: Testing", b"Subject: Testing!")
    head = head.replace(b"Subject: Is dinner ready?", b"Subject: Is lunch ready?")
    return head + b"\r\n\r\n" + body


def add_signed_header(message):
    head, body = message.split(b"\r\n\r\n", 1)
    return head + b"\r\nSubject: a second subject, added below\r\n\r\n" + body


def add_from_on_top(message):
    return b"From: Mallory <mallory@example.com>\r\n" + message


def main():
    started = time.monotonic()
    # 1. dkimpy's shipped vectors.
    rfc8463 = crlf(data("rfc6376.signed.msg"))
    compare("vector rfc8463 ed25519-sha256", rfc8463, 0, True)
    compare("vector rfc8463 rsa-sha256", rfc8463, 1, True)
    compare("vector rfc8463 ed25519, chunk 1", rfc8463, 0, True, chunk=1)
    compare("vector gmail degenerate folding", data("test2.message"), 0, True)
    compare("vector exim ed25519", data("ed25519test2.msg"), 0, True)
    RECORDS["test._domainkey.football.example.com"] = [CORRUPT_RECORD]
    compare("vector corrupt key", crlf(data("rfc6376.signed.rsa.msg")), 0, False)
    RECORDS["test._domainkey.football.example.com"] = [RSA1024_RECORD]
    compare("vector hostile d=", crlf(data("test.message.baddomain")), 0, False)

    # 2. Messages signed by dkimpy, and changed copies.
    bases = {
        "ours": OUR_MESSAGE,
        "dkimpy-test": crlf(data("test.message")),
        "rfc6376": crlf(data("rfc6376.msg")),
    }
    canons = [(h, b) for h in (b"simple", b"relaxed") for b in (b"simple", b"relaxed")]
    oversigned = [b"from", b"from", b"to", b"to", b"subject", b"subject", b"date",
                  b"message-id", b"reply-to", b"cc"]
    for base_name, base in bases.items():
        for key in KEYS:
            for canon in canons:
                for variant in ("plain", "l=", "over-signed"):
                    name = f"{base_name} {key} {canon[0].decode()}/{canon[1].decode()} {variant}"
                    signed = sign(base, key, canon, length=(variant == "l="),
                                  include=oversigned if variant == "over-signed" else None)
                    compare(f"signed {name}", signed, 0, True)
                    compare(f"body changed {name}", change_body_line(signed), 0, False)
                    compare(f"header changed {name}", change_header(signed), 0, False)
                    compare(f"signed header added {name}", add_signed_header(signed), 0, False)
                    compare(f"From added on top {name}", add_from_on_top(signed), 0, False)
                    if variant == "l=":
                        compare(f"appended after l= {name}",
                                signed + b"-- \r\nappended by a list\r\n", 0, True)
        # RFC 8301: rsa-sha1 (documented difference: dkimpy accepts it).
        signed = sign(base, "rsa1024", (b"relaxed", b"relaxed"), algorithm=b"rsa-sha1")
        entry = compare(f"rsa-sha1 {base_name}", signed, 0)
        if entry["result"] != "policy":
            results.append((f"rsa-sha1 {base_name} is policy", False, False, True,
                            entry["result"]))

    # RFC 8301 §3.2: a 512-bit key (made now with openssl) never passes; dkimpy agrees (minkey).
    with tempfile.TemporaryDirectory() as tmp:
        pem = os.path.join(tmp, "k512.pem")
        made = subprocess.run(["openssl", "genrsa", "-traditional", "-out", pem, "512"],
                              capture_output=True)
        if made.returncode == 0:
            pub = subprocess.run(["openssl", "rsa", "-in", pem, "-pubout", "-outform", "DER"],
                                 capture_output=True, check=True).stdout
            RECORDS["rsa512._domainkey.example.org"] = [
                "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()]
            with open(pem, "rb") as f:
                KEYS["rsa512"] = (b"rsa512", f.read(), b"rsa-sha256")
            entry = compare("rsa512 key", sign(OUR_MESSAGE, "rsa512", (b"relaxed", b"simple")),
                            0, False)
            if entry["result"] != "policy" or entry["key_bits"] != 512:
                results.append(("rsa512 key is policy", False, False, True, entry["result"]))
        else:
            print("note: openssl could not make a 512-bit key; that case is not run")

    # 3. Report.
    failures = []
    differences = []
    for name, ours, theirs, expect, detail in results:
        explained = next((why for prefix, why in EXPECTED_DIFFERENCES.items()
                          if name.startswith(prefix)), None)
        if expect is not None and (ours != expect or theirs != expect):
            if ours != expect or explained is None:
                failures.append(f"{name}: ours={ours} dkimpy={theirs} expected={expect} "
                                f"[{detail}]")
                continue
        if ours != theirs:
            if explained:
                differences.append(f"{name}: ours={ours} dkimpy={theirs}: {explained}")
            else:
                failures.append(f"{name}: ours={ours} dkimpy={theirs} (unexplained) [{detail}]")
    for d in differences:
        print("expected difference:", d)
    for f in failures:
        print("FAIL:", f)
    agree = sum(1 for _, ours, theirs, _, _ in results if ours == theirs)
    print(f"{len(results)} cases, {agree} agree with dkimpy, {len(differences)} documented "
          f"differences, {len(failures)} failures ({time.monotonic() - started:.1f} s)")
    print(f"{len(results) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
