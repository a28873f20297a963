"""The first end-to-end path: swaks in from 127.0.0.2, report reply out to the smarthost.

Real peers: dnsmasq serves the PTR and A records, Postfix's smtp-sink is the smarthost, swaks
is the sender. Checks the SMTP transcript (the connecting IP in the EHLO reply and in the 250
after DATA), the reply's envelope and headers (RFC 3834), and its JSON contract.
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

RECORDS = [
    # 127.0.0.2: forward-confirmed.
    "host-record=mail.sender.test,127.0.0.2",
    # 127.0.0.3: no PTR at all (the zone is local, so NXDOMAIN).
    # 127.0.0.4: a generic PTR whose name does not resolve back.
    "ptr-record=4.0.0.127.in-addr.arpa,dyn-127-0-0-4.pool.isp.test",
    # 127.0.0.5: a PTR whose name resolves elsewhere.
    "ptr-record=5.0.0.127.in-addr.arpa,mail.elsewhere.test",
    "address=/mail.elsewhere.test/127.0.0.99",
]


class RoundTrip(unittest.TestCase):
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

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.sink.stop()
        cls.dns.stop()
        cls.work.cleanup()
        assert rc == 0, f"ipconfirm exited {rc} on SIGTERM"

    def send(self, source, sender, helo="mail.sender.test", to="ipconfirm@example.test",
             extra=()):
        return h.swaks("--server", f"127.0.0.1:{self.port}", "--local-interface", source,
                       "--helo", helo, "--from", sender, "--to", to, *extra)

    def reply_for(self, recipient):
        def find():
            for env, msg in self.sink.messages():
                if any(recipient in r for r in env["rcpt"]):
                    return env, msg
            return None
        return h.wait_for(find, 15, f"the reply to {recipient}")

    def test_confirmed_sender_gets_a_full_report(self):
        rc, out = self.send("127.0.0.2", "alice@sender.test")
        self.assertEqual(rc, 0, out)
        self.assertIn("250-mx.example.test Hello mail.sender.test [127.0.0.2]", out)
        self.assertRegex(out, r"250 2\.0\.0 Ok: queued as \S+; your IP is 127\.0\.0\.2")
        env, msg = self.reply_for("alice@sender.test")
        # RFC 3834: null envelope sender, one recipient, the auto-reply headers.
        self.assertTrue(env["mail"].startswith("<>"), env)
        self.assertEqual(env["rcpt"], ["<alice@sender.test>"])
        self.assertEqual(msg["From"].addresses[0].addr_spec, "ipconfirm-response@example.test")
        self.assertEqual(msg["Auto-Submitted"], "auto-replied")
        self.assertEqual(msg["Subject"], "Your mail server connected from 127.0.0.2")
        self.assertTrue(msg["In-Reply-To"] and msg["In-Reply-To"] in msg["References"])
        self.assertTrue(msg["Message-ID"].endswith("@mx.example.test>"))
        r = h.report_json(msg)
        self.assertEqual(r["connection"]["ip"], "127.0.0.2")
        self.assertIsInstance(r["connection"]["port"], int)
        self.assertIsNone(r["connection"]["tls"])
        self.assertEqual(r["helo"]["name"], "mail.sender.test")
        self.assertEqual(r["rdns"]["status"], "pass")
        self.assertEqual(r["rdns"]["ptr"], ["mail.sender.test"])
        self.assertTrue(r["rdns"]["forward_confirmed"])
        self.assertEqual(r["envelope"]["mail_from"], "alice@sender.test")
        self.assertEqual(r["envelope"]["rcpt_to"], ["ipconfirm@example.test"])
        self.assertTrue(r["helo"]["matches_ptr"])
        codes = [x["code"] for x in r["hints"]]
        for absent in ("no-ptr", "ptr-not-confirmed", "generic-ptr", "helo-mismatch"):
            self.assertNotIn(absent, codes)
        self.assertIn("no-tls", codes)
        for x in r["hints"]:
            self.assertEqual(set(x), {"code", "severity", "text"})
        self.assertIn("127.0.0.2", h.text_part(msg))

    def test_reply_comes_from_the_domain_mailed(self):
        rc, out = self.send("127.0.0.2", "dora@sender.test", to="ipconfirm@example.net")
        self.assertEqual(rc, 0, out)
        _, msg = self.reply_for("dora@sender.test")
        self.assertEqual(msg["From"].addresses[0].addr_spec, "ipconfirm-response@example.net")

    def test_no_ptr(self):
        rc, out = self.send("127.0.0.3", "bob@sender.test")
        self.assertEqual(rc, 0, out)
        self.assertIn("your IP is 127.0.0.3", out)
        r = h.report_json(self.reply_for("bob@sender.test")[1])
        self.assertEqual(r["rdns"]["status"], "none")
        self.assertEqual(r["rdns"]["ptr"], [])
        self.assertFalse(r["rdns"]["forward_confirmed"])
        self.assertIn("no-ptr", [x["code"] for x in r["hints"]])

    def test_generic_ptr_not_confirmed(self):
        rc, out = self.send("127.0.0.4", "carol@sender.test", helo="dyn-127-0-0-4.pool.isp.test")
        self.assertEqual(rc, 0, out)
        r = h.report_json(self.reply_for("carol@sender.test")[1])
        self.assertEqual(r["rdns"]["status"], "fail")
        self.assertEqual(r["rdns"]["ptr"], ["dyn-127-0-0-4.pool.isp.test"])
        self.assertTrue(r["rdns"]["generic"])
        codes = [x["code"] for x in r["hints"]]
        self.assertIn("generic-ptr", codes)
        self.assertIn("ptr-not-confirmed", codes)
        self.assertNotIn("no-ptr", codes)

    def test_ptr_resolving_elsewhere_fails(self):
        rc, out = self.send("127.0.0.5", "erin@sender.test", helo="mail.elsewhere.test")
        self.assertEqual(rc, 0, out)
        r = h.report_json(self.reply_for("erin@sender.test")[1])
        self.assertEqual(r["rdns"]["status"], "fail")
        self.assertIn("ptr-not-confirmed", [x["code"] for x in r["hints"]])
        self.assertFalse(r["rdns"]["generic"])

    def test_never_a_relay(self):
        before = len(self.sink.files())
        for rcpt, code in (("someone@elsewhere.test", "550 5.7.1"),
                           ("postmaster-not@example.test", "550 5.1.1"),
                           ("ipconfirm%elsewhere.test@example.test", "550 5.1.1")):
            rc, out = self.send("127.0.0.2", "mallory@sender.test", to=rcpt)
            self.assertEqual(rc, 24, out)  # swaks: no recipient accepted
            self.assertIn(code, out)
        self.assertEqual(len(self.sink.files()), before)

    def test_null_sender_gets_no_reply_mail(self):
        rc, out = self.send("127.0.0.2", "<>")
        self.assertEqual(rc, 0, out)
        self.assertIn("your IP is 127.0.0.2", out)
        self.assertIn("no reply mail: null-sender", out)
        # Nothing was queued, and the 250 does not claim it was.
        self.assertRegex(out, r"250 2\.0\.0 Ok: accepted as \S+; your IP is 127\.0\.0\.2 \(")
        self.assertNotIn("queued as", out)
        h.wait_for(lambda: "suppressed" in self.svc.read_log(), 5, "the suppression log line")

    def test_check_verb_prints_the_same_report(self):
        eml = os.path.join(self.work.path, "stored.eml")
        with open(eml, "w") as f:
            f.write("From: a@sender.test\nTo: ipconfirm@example.test\nSubject: x\n"
                    "Message-ID: <stored.1@sender.test>\n"
                    "Received: from internal.sender.test ([10.0.0.5]) by mail.sender.test "
                    "with ESMTP id 1; Mon, 23 Nov 2026 10:00:00 +0000\n\nbody\n")
        p = self.svc.run("check", "--config", self.svc.config, "--peer", "127.0.0.2",
                         "--helo", "mail.sender.test", "--mail-from", "a@sender.test", eml)
        self.assertEqual(p.returncode, 0, p.stderr)
        r = json.loads(p.stdout)
        self.assertEqual(r["connection"]["ip"], "127.0.0.2")
        self.assertEqual(r["rdns"]["status"], "pass")
        self.assertEqual(r["received"][0]["from_ip"], "10.0.0.5")
        self.assertIn("10.0.0.5", r["path"]["internal_hops"])
        p = self.svc.run("check", "--config", self.svc.config, "--peer", "127.0.0.3",
                         "--format", "text", eml)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("YOUR MAIL SERVER CONNECTED FROM 127.0.0.3", p.stdout)
        self.assertIn("no-ptr", p.stdout)


if __name__ == "__main__":
    h.main()
