"""Prepares the benchmark's messages: DKIM-signed once, up front, one per size.

  /usr/bin/python3 bench/messages.py --out DIR --sizes 1024,4096 --domain sender.bench.test \
      --selector bench --from load@sender.bench.test --to ipconfirm@example.test

Run by bench/bench.py with Debian's Python (python3-dkim, dkimpy). It writes into DIR:
  key.pem            an RSA 2048 private key (made by `openssl genpkey`)
  dkim.txt           the DNS TXT value of <selector>._domainkey.<domain> ("v=DKIM1; k=rsa; p=...")
  msg-<size>.lf      the signed message with LF line ends: what `smtp-source -F` sends (it turns
                     each LF into CRLF and dot-stuffs)
  msg-<size>.crlf    the same message with CRLF line ends, for the bench's own probe session
Every message has From, To, Subject, Date, Message-ID and MIME-Version, a plain-text body of
<size> bytes (lines of 76 characters and CRLF) and a DKIM-Signature (rsa-sha256,
relaxed/relaxed, over those fields), which this script verifies against dkim.txt before it
exits. It prints nothing on success; a failure is a message on stderr and exit status 1.
"""

import argparse
import base64
import datetime
import email.utils
import os
import subprocess
import sys

import dkim


def body_of(size):
    line = b"The quick brown fox jumps over the lazy dog: a benchmark body of a fixed size".ljust(
        76, b".")[:76] + b"\r\n"
    n, rest = divmod(size, len(line))
    body = line * n
    if rest >= 2:
        body += b"x" * (rest - 2) + b"\r\n"
    return body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--selector", default="bench")
    ap.add_argument("--from", dest="sender", required=True)
    ap.add_argument("--to", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    key_path = os.path.join(a.out, "key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", key_path], check=True, capture_output=True)
    pub = subprocess.run(["openssl", "pkey", "-in", key_path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    txt = "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()
    with open(os.path.join(a.out, "dkim.txt"), "w") as f:
        f.write(txt + "\n")
    with open(key_path, "rb") as f:
        key = f.read()

    def dnsfunc(name, timeout=5):
        if name.rstrip(b".") == f"{a.selector}._domainkey.{a.domain}".encode():
            return txt.encode()
        return None

    for size in (int(s) for s in a.sizes.split(",")):
        header = (f"From: Bench <{a.sender}>\r\n"
                  f"To: <{a.to}>\r\n"
                  f"Subject: ipconfirm benchmark, {size} bytes\r\n"
                  f"Date: {email.utils.format_datetime(datetime.datetime.now(datetime.timezone.utc))}\r\n"
                  f"Message-ID: <bench-{size}@{a.domain}>\r\n"
                  "MIME-Version: 1.0\r\n"
                  "Content-Type: text/plain; charset=us-ascii\r\n").encode()
        message = header + b"\r\n" + body_of(size)
        sig = dkim.sign(message, a.selector.encode(), a.domain.encode(), key,
                        canonicalize=(b"relaxed", b"relaxed"),
                        include_headers=[b"from", b"to", b"subject", b"date", b"message-id",
                                         b"mime-version", b"content-type"])
        signed = sig + message
        if not dkim.verify(signed, dnsfunc=dnsfunc):
            print(f"messages.py: the signature of the {size}-byte message does not verify",
                  file=sys.stderr)
            return 1
        with open(os.path.join(a.out, f"msg-{size}.crlf"), "wb") as f:
            f.write(signed)
        with open(os.path.join(a.out, f"msg-{size}.lf"), "wb") as f:
            f.write(signed.replace(b"\r\n", b"\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
