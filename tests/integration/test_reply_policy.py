"""RFC 3834 and the backscatter limits, end to end: each kind of message that must get no reply
mail is sent with swaks to the real binary; the 250 still tells the IP and says why no reply
mail goes out, the log has a `suppressed` line with the reason, and nothing reaches the
smarthost (Postfix's smtp-sink). A control message sent last must arrive, so an empty sink
means "suppressed", not "delivery broken".
"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

RECORDS = ["host-record=mail.sender.test,127.0.0.2"]

DSN = (
    "From: MAILER-DAEMON@sender.test\r\nTo: x@example.test\r\nSubject: failure\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
    "--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b--\r\n")


class Service:
    """dnsmasq + smtp-sink + ipconfirm with `extra` appended to the config."""

    def __init__(self, work, name, extra):
        self.dns = h.Dnsmasq(work, RECORDS)
        self.sink = h.SmtpSink(work)
        self.port = h.free_port()
        self.svc = h.Ipconfirm(work, h.config_toml(
            [f"127.0.0.1:{self.port}"], self.dns.server(), smarthost=self.sink.endpoint(),
            extra=extra), name=name)
        self.svc.start()

    def send(self, sender, source="127.0.0.2", to="ipconfirm@example.test", extra=()):
        return h.swaks("--server", f"127.0.0.1:{self.port}", "--local-interface", source,
                       "--helo", "mail.sender.test", "--from", sender, "--to", to, *extra)

    def recipients(self):
        return [r for env, _ in self.sink.messages() for r in env["rcpt"]]

    def wait_reply(self, recipient):
        return h.wait_for(lambda: any(recipient in r for r in self.recipients()), 15,
                          f"the reply to {recipient}")

    def stop(self):
        rc = self.svc.stop()
        self.sink.stop()
        self.dns.stop()
        return rc


class Rfc3834(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("swaks", "dnsmasq", "smtp-sink")
        cls.work = h.Workdir()
        cls.s = Service(cls.work, "policy", "[reply]\nmax_received = 5\n")

    @classmethod
    def tearDownClass(cls):
        rc = cls.s.stop()
        cls.work.cleanup()
        assert rc == 0, f"ipconfirm exited {rc}"

    def suppressed(self, reason, sender, **kw):
        rc, out = self.s.send(sender, **kw)
        self.assertEqual(rc, 0, out)
        self.assertIn("your IP is 127.0.0.2", out)
        self.assertIn(f"no reply mail: {reason}", out)
        needle = f"reason={reason}"
        h.wait_for(lambda: any(needle in line and "suppressed" in line
                               for line in self.s.svc.read_log().splitlines()),
                   5, f"the log line for {reason}")

    def test_each_rule_suppresses_and_nothing_is_sent(self):
        hdr = lambda *x: ("--add-header", *x)  # noqa: E731
        dsn = os.path.join(self.work.path, "dsn.eml")
        with open(dsn, "w") as f:
            f.write(DSN.replace("\r\n", "\n"))
        received = []
        for i in range(6):
            received += ["--add-header", f"Received: from h{i}.sender.test by h{i + 1}.sender.test; "
                         "Mon, 23 Nov 2026 10:00:00 +0000"]
        cases = [
            ("null-sender", "<>", {}),
            ("daemon-sender", "MAILER-DAEMON@sender.test", {}),
            ("list-sender", "users-request@lists.test", {}),
            ("list-sender", "owner-users@lists.test", {}),
            ("own-address", "ipconfirm@example.test", {}),
            ("own-address", "ipconfirm-response@example.net", {}),
            ("own-address", "postmaster@example.test", {}),
            ("own-address", "postmaster@mx.example.test", {}),
            ("auto-submitted", "a1@sender.test",
             {"extra": hdr("Auto-Submitted: auto-replied")}),
            ("precedence-bulk", "a2@sender.test", {"extra": hdr("Precedence: bulk")}),
            ("precedence-list", "a3@sender.test", {"extra": hdr("Precedence: list")}),
            ("precedence-junk", "a4@sender.test", {"extra": hdr("Precedence: junk")}),
            ("list-headers", "a5@sender.test", {"extra": hdr("List-Id: <users.lists.test>")}),
            ("list-headers", "a6@sender.test",
             {"extra": hdr("List-Unsubscribe: <mailto:u@lists.test>")}),
            ("delivery-report", "a7@sender.test", {"extra": ("--data", "@" + dsn)}),
            ("too-many-received", "a8@sender.test", {"extra": tuple(received)}),
        ]
        for reason, sender, kw in cases:
            with self.subTest(reason=reason, sender=sender):
                self.suppressed(reason, sender, **kw)
        # The control message: a person's mail does get a reply, and it is the only one.
        rc, out = self.s.send("person@sender.test",
                              extra=("--add-header", "Auto-Submitted: no"))
        self.assertEqual(rc, 0, out)
        self.assertNotIn("no reply mail", out)
        self.s.wait_reply("person@sender.test")
        self.assertEqual(self.s.recipients(), ["<person@sender.test>"])

    def test_several_rcpts_give_one_reply_to_the_sender_only(self):
        rc, out = self.s.send("multi@sender.test",
                              to="ipconfirm@example.test,IPCONFIRM@example.test,"
                                 "ipconfirm@example.net")
        self.assertEqual(rc, 0, out)
        self.s.wait_reply("multi@sender.test")
        # Give a second reply (if the code made one) the time to arrive, then count.
        rc, out = self.s.send("after-multi@sender.test")
        self.s.wait_reply("after-multi@sender.test")
        msgs = [(env, msg) for env, msg in self.s.sink.messages()
                if "multi@sender.test>" in " ".join(env["rcpt"])
                and "after" not in " ".join(env["rcpt"])]
        self.assertEqual(len(msgs), 1)
        env, msg = msgs[0]
        self.assertEqual(env["rcpt"], ["<multi@sender.test>"])
        self.assertTrue(env["mail"].startswith("<>"))
        self.assertEqual(msg["Auto-Submitted"], "auto-replied")
        self.assertEqual(len(msg.get_all("To")), 1)


class RateLimits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("swaks", "dnsmasq", "smtp-sink")
        cls.work = h.Workdir()
        cls.s = Service(cls.work, "limits", "[reply]\nmax_per_recipient_per_hour = 2\n"
                        "max_per_ip_per_hour = 3\nmax_per_network_per_hour = 4\n")

    @classmethod
    def tearDownClass(cls):
        rc = cls.s.stop()
        cls.work.cleanup()
        assert rc == 0, f"ipconfirm exited {rc}"

    def send_ok(self, sender, source):
        rc, out = self.s.send(sender, source=source)
        self.assertEqual(rc, 0, out)
        self.assertIn(f"your IP is {source}", out)
        m = re.search(r"no reply mail: (\S+?)\)", out)
        return m.group(1) if m else None

    def test_limits_per_recipient_ip_and_network(self):
        # Recipient: 2 per hour, whatever the source.
        self.assertIsNone(self.send_ok("same@sender.test", "127.0.0.2"))
        self.assertIsNone(self.send_ok("Same@Sender.test", "127.0.0.3"))
        self.assertEqual(self.send_ok("same@sender.test", "127.0.1.2"), "rate-limit-recipient")
        # IP 127.0.0.2: it has sent 1, two more fit, the fourth does not.
        self.assertIsNone(self.send_ok("b1@sender.test", "127.0.0.2"))
        self.assertIsNone(self.send_ok("b2@sender.test", "127.0.0.2"))
        self.assertEqual(self.send_ok("b3@sender.test", "127.0.0.2"), "rate-limit-ip")
        # Network 127.0.0.0/24: 4 replies went out (2 + 1 + 1 ... from .2 and .3): full.
        self.assertEqual(self.send_ok("c1@sender.test", "127.0.0.4"), "rate-limit-network")
        # Another /24 is unaffected.
        self.assertIsNone(self.send_ok("c2@sender.test", "127.0.1.3"))
        log = self.s.svc.read_log()
        for reason in ("rate-limit-recipient", "rate-limit-ip", "rate-limit-network"):
            self.assertIn(f"reason={reason}", log)
        self.s.wait_reply("c2@sender.test")
        got = sorted(self.s.recipients())
        self.assertEqual(got, sorted(["<same@sender.test>", "<Same@Sender.test>",
                                      "<b1@sender.test>", "<b2@sender.test>",
                                      "<c2@sender.test>"]), got)


class TranscriptMode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("swaks", "dnsmasq", "smtp-sink")
        cls.work = h.Workdir()
        cls.s = Service(cls.work, "transcript", "[reply]\nmode = \"transcript\"\n")

    @classmethod
    def tearDownClass(cls):
        rc = cls.s.stop()
        cls.work.cleanup()
        assert rc == 0, f"ipconfirm exited {rc}"

    def test_no_reply_mail_at_all(self):
        for i in range(3):
            rc, out = self.s.send(f"t{i}@sender.test")
            self.assertEqual(rc, 0, out)
            self.assertRegex(out, r"250 2\.0\.0 .*your IP is 127\.0\.0\.2 \(PTR mail\.sender\.test"
                                  r", forward-confirmed; spf=none dkim=none dmarc=none; "
                                  r"no reply mail: transcript-mode\)")
        h.wait_for(lambda: self.s.svc.read_log().count("reason=transcript-mode") == 3, 5,
                   "three log lines")
        self.assertEqual(self.s.sink.files(), [])
        self.assertNotIn(" queued ", self.s.svc.read_log())


if __name__ == "__main__":
    h.main()
