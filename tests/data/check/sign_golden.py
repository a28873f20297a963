"""Writes the DKIM-signed golden messages of tests/data/check (11-signed, 12-body-changed).

Run with Debian's /usr/bin/python3 (python3-dkim): sign_golden.py KEY.pem. The signature's t= is
fixed one minute before the golden tests' --now, so the output is the same on every run with the
same key. The public half of the key used for the files in git is the golden._domainkey.sender.test
record in dns.conf; its private half was not kept (a new key needs a new record there).
"""

import sys
import time

import dkim

MESSAGE = (
    b"Date: Mon, 23 Nov 2026 13:59:00 +0000\r\n"
    b"From: Judy <judy@sender.test>\r\n"
    b"To: ipconfirm@example.test\r\n"
    b"Subject: signed test\r\n"
    b"Message-ID: <signed.1@sender.test>\r\n"
    b"\r\n"
    b"Hello,\r\n"
    b".this line starts with a dot\r\n"
    b"\r\n"
    b"Judy\r\n"
)

time.time = lambda: 1795442340  # 2026-11-23 13:59:00 UTC
key = open(sys.argv[1], "rb").read()
sig = dkim.sign(MESSAGE, b"golden", b"sender.test", key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
signed = sig + MESSAGE
with open("11-signed.eml", "wb") as f:
    f.write(signed)
with open("12-body-changed.eml", "wb") as f:
    f.write(signed + b"-- \r\nThis footer was added by a mailing list after signing.\r\n")
