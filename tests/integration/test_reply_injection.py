"""Hostile values echoed back: every reply is parsed with Python's email package and must have
exactly our header fields, one recipient, no line over 998 bytes, an ASCII header and a text
part the sender can read. Attempts go through HELO, Subject
(encoded line breaks, non-ASCII), Message-ID and References (folded extra fields) and Received
headers (fake fields in continuation lines, markup, non-ASCII).
"""

import email
import email.policy
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

RECORDS = ["host-record=mail.sender.test,127.0.0.2"]

OUR_FIELDS = {"date", "from", "to", "subject", "message-id", "in-reply-to", "references",
              "auto-submitted", "x-auto-response-suppress", "precedence", "x-ipconfirm-ip",
              "mime-version", "content-type"}

HOSTILE = (
    "From: Eve <eve@sender.test>\n"
    "To: ipconfirm@example.test\n"
    "Subject: =?utf-8?Q?hello=0D=0ABcc:_victim@elsewhere.test=0D=0A=0D=0Abody?=\n"
    " \xc3\xa9t\xc3\xa9 \xe2\x98\x83\n"
    "Message-ID: <m1@sender.test>\n"
    " Bcc: victim@elsewhere.test\n"
    "References: <r1@sender.test>\n"
    "\tX-Evil: 1\n"
    "Received: from evil.test (<script>alert(1)</script> [10.0.0.9])\n"
    " by mx.evil.test with ESMTP id 1\n"
    " Bcc: victim@elsewhere.test; Mon, 23 Nov 2026 10:00:00 +0000\n"
    "Received: from h\xc3\xa9llo.evil.test ([192.168.1.2]) by " + "x" * 900 + ".test;\n"
    " Mon, 23 Nov 2026 10:00:00 +0000\n"
    "\n"
    "Body that must never be echoed: REFLECT-ME\n")


class Injection(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("swaks", "dnsmasq", "smtp-sink")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, RECORDS)
        cls.sink = h.SmtpSink(cls.work)
        cls.port = h.free_port()
        cls.svc = h.Ipconfirm(cls.work, h.config_toml(
            [f"127.0.0.1:{cls.port}"], cls.dns.server(), smarthost=cls.sink.endpoint()))
        cls.svc.start()
        cls.eml = os.path.join(cls.work.path, "hostile.eml")
        with open(cls.eml, "wb") as f:
            f.write(HOSTILE.encode("latin-1"))  # the \x.. escapes above are UTF-8 bytes

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.sink.stop()
        cls.dns.stop()
        cls.work.cleanup()
        assert rc == 0, f"ipconfirm exited {rc}"

    def send(self, sender, helo="mail.sender.test", data=None):
        args = ["--server", f"127.0.0.1:{self.port}", "--local-interface", "127.0.0.2",
                "--helo", helo, "--from", sender, "--to", "ipconfirm@example.test"]
        if data:
            args += ["--data", "@" + data]
        return h.swaks(*args)

    def raw_reply(self, recipient):
        def find():
            for path in self.sink.files():
                with open(path, "rb") as f:
                    raw = f.read()
                env, msg = h.parse_sink_file(raw)
                if (msg is not None and not h.cut_short(raw, msg)
                        and any(recipient in r for r in env["rcpt"])):
                    return raw, env, msg
            return None
        return h.wait_for(find, 15, f"the reply to {recipient}")

    def check_reply(self, recipient):
        raw, env, msg = self.raw_reply(recipient)
        self.assertEqual(len(env["rcpt"]), 1, env)
        self.assertTrue(env["mail"].startswith("<>"), env)
        # The message as smtp-sink stored it (LF endings), after its own X- lines.
        body = raw.split(b"\n")
        start = next(i for i, line in enumerate(body) if line.startswith(b"Date: "))
        header_done = False
        for line in body[start:]:
            self.assertLessEqual(len(line), 998)
            if not header_done:
                if line == b"":
                    header_done = True
                    continue
                line.decode("ascii")  # raises on any non-ASCII byte in the header
        # Parse the reply alone with Python's email package.
        msg = email.message_from_bytes(b"\n".join(body[start:]), policy=email.policy.default)
        names = [k.lower() for k in msg.keys()]
        self.assertEqual(len(names), len(set(names)), names)
        self.assertLessEqual(set(names), OUR_FIELDS, names)
        self.assertNotIn("bcc", names)
        self.assertNotIn("x-evil", names)
        self.assertEqual(len(msg["To"].addresses), 1)
        self.assertEqual(msg["Auto-Submitted"], "auto-replied")
        self.assertTrue(msg.is_multipart())
        self.assertEqual(msg.defects, [])
        text = h.text_part(msg)
        self.assertIn("YOUR MAIL SERVER CONNECTED FROM 127.0.0.2", text)
        self.assertNotIn("REFLECT-ME", raw.decode("utf-8", "replace"))
        return msg, text

    def test_hostile_headers(self):
        rc, out = self.send("eve@sender.test", data=self.eml)
        self.assertEqual(rc, 0, out)
        msg, text = self.check_reply("eve@sender.test")
        self.assertEqual(msg["In-Reply-To"], None)  # "<m1@...> Bcc: ..." is no msg-id
        r = h.report_json(msg)
        self.assertEqual(len(r["received"]), 2)
        html = next(p for p in msg.walk() if p.get_content_type() == "text/html").get_content()
        self.assertNotIn("<script>", html)

    def test_long_and_odd_helo(self):
        helo = "a" * 60 + "." + "b" * 60 + "." + "c" * 60 + ".test"
        rc, out = self.send("helo@sender.test", helo=helo)
        self.assertEqual(rc, 0, out)
        _, text = self.check_reply("helo@sender.test")
        self.assertIn(helo, text)
        rc, out = self.send("helo2@sender.test", helo="[127.0.0.9]")
        self.assertEqual(rc, 0, out)
        _, text = self.check_reply("helo2@sender.test")
        self.assertIn("helo-literal-mismatch", text)


if __name__ == "__main__":
    h.main()
