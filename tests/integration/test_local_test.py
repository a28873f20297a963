"""A local test, as a new user makes it: swaks to an ipconfirm on loopback whose config names no
lab network (as the built-in one), with a bare HELO and no TLS, from an address with no PTR.

The reply must say that this was a local test and what a test over the internet would check,
and must not give the advice that is about how the internet sees a sender: no "ask your ISP for
a PTR record" for 127.0.0.1, no HELO advice about public A records, no STARTTLS advice. The
facts (no PTR, the HELO) stay in the JSON. A Received header the message carries from a private
relay is read, not called unreadable.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402


class LocalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("swaks", "dnsmasq", "smtp-sink")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, [])  # 127.0.0.x has no PTR: NXDOMAIN at once
        cls.sink = h.SmtpSink(cls.work)
        cls.port = h.free_port()
        cls.svc = h.Ipconfirm(cls.work, h.config_toml(
            [f"127.0.0.1:{cls.port}"], cls.dns.server(), smarthost=cls.sink.endpoint(),
            lab_networks=()))
        cls.svc.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.sink.stop()
        cls.dns.stop()
        cls.work.cleanup()
        assert rc == 0, f"ipconfirm exited {rc} on SIGTERM"

    def reply_for(self, recipient):
        def find():
            for env, msg in self.sink.messages():
                if any(recipient in r for r in env["rcpt"]):
                    return env, msg
            return None
        return h.wait_for(find, 15, f"the reply to {recipient}")

    def test_a_local_swaks_test_gets_local_test_advice(self):
        rc, out = h.swaks("--server", f"127.0.0.1:{self.port}", "--helo", "laptop",
                          "--from", "you@example.org", "--to", "ipconfirm@example.test",
                          "--add-header",
                          "Received: from ws (ws [192.168.1.77]) by gw.example.org (Postfix) "
                          "with ESMTP id 4QX; Mon, 23 Nov 2026 10:00:00 +0000")
        self.assertEqual(rc, 0, out)
        self.assertIn("your IP is 127.0.0.1", out)
        _, msg = self.reply_for("you@example.org")
        r = h.report_json(msg)
        text = h.text_part(msg)
        self.assertEqual(r["connection"]["scope"], "loopback")
        # The connection gets the local-test advice only; the sender authentication and the
        # providers' hints (no DKIM, no reachable SPF or DMARC record for example.org) are
        # about the message.
        auth = ("spf-", "dkim-", "dmarc-", "arc-", "provider-", "no-one-click-", "format-")
        self.assertEqual([x["code"] for x in r["hints"] if not x["code"].startswith(auth)],
                         ["non-public-ip"])
        self.assertIn("spf-local-test", [x["code"] for x in r["hints"]])
        self.assertIn("This was a local test", r["hints"][0]["text"])
        self.assertIn("would check", r["hints"][0]["text"])
        # The facts are still reported.
        self.assertEqual(r["rdns"]["status"], "none")
        self.assertEqual(r["helo"]["kind"], "bare_name")
        for wrong in ("ISP", "A record", "STARTTLS", "the rest of the internet sees",
                      "everything we checked looks right"):
            self.assertNotIn(wrong, text)
        self.assertIn("this was a local test", text)
        self.assertIn("this machine's own (loopback)", " ".join(text.split()))
        self.assertNotIn("could not be read", text)
        self.assertEqual(r["received"][0]["from_ip"], "192.168.1.77")
        self.assertIn("0 things to fix", " ".join(text.split()))

    def test_without_received_headers_no_address_is_called_where_mail_leaves_from(self):
        rc, out = h.swaks("--server", f"127.0.0.1:{self.port}", "--helo", "laptop",
                          "--from", "new@example.org", "--to", "ipconfirm@example.test")
        self.assertEqual(rc, 0, out)
        text = " ".join(h.text_part(self.reply_for("new@example.org")[1]).split())
        self.assertIn("wrote and sent it directly.", text)
        self.assertNotIn("the address your mail leaves from", text)


if __name__ == "__main__":
    h.main()
