"""postmaster@<domain> is accepted (RFC 5321 §4.5.1), kept or forwarded, never auto-replied.

Two instances: one writes postmaster mail into a Maildir (and its replies into another), one
forwards it through the smarthost (Postfix's smtp-sink) to a configured address. A third one
has small limits: postmaster mail per sending IP, and the size of the postmaster's Maildir; and
its disk work must not hold up the other sessions.
"""

import os
import select
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from smtp_raw import Client  # noqa: E402


def maildir_files(d):
    d = os.path.join(d, "new")
    return sorted(os.path.join(d, f) for f in os.listdir(d)) if os.path.isdir(d) else []


class PostmasterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("swaks", "dnsmasq", "smtp-sink")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.2"])
        cls.port = h.free_port()
        cls.outbox = os.path.join(cls.work.path, "outbox")
        cls.pm = os.path.join(cls.work.path, "postmaster")
        cls.svc = h.Ipconfirm(cls.work, h.config_toml(
            [f"127.0.0.1:{cls.port}"], cls.dns.server(), maildir=cls.outbox,
            extra=f'[postmaster]\nmaildir = "{cls.pm}"\n'), name="keep").start()
        cls.sink = h.SmtpSink(cls.work)
        cls.fport = h.free_port()
        cls.fwd = h.Ipconfirm(cls.work, h.config_toml(
            [f"127.0.0.1:{cls.fport}"], cls.dns.server(), smarthost=cls.sink.endpoint(),
            extra='[postmaster]\nforward = "hostmaster@admin.test"\n'), name="forward").start()

    @classmethod
    def tearDownClass(cls):
        rcs = [cls.svc.stop(), cls.fwd.stop()]
        cls.sink.stop()
        cls.dns.stop()
        cls.work.cleanup()
        assert rcs == [0, 0], f"ipconfirm exited {rcs}"

    def send(self, port, to, sender="alice@sender.test"):
        return h.swaks("--server", f"127.0.0.1:{port}", "--local-interface", "127.0.0.2",
                       "--helo", "mail.sender.test", "--from", sender, "--to", to,
                       "--header", "Subject: hello postmaster")

    def test_postmaster_mail_goes_to_the_maildir_and_is_not_answered(self):
        for to in ("postmaster@example.test", "PostMaster@example.net", "postmaster"):
            before = set(maildir_files(self.pm))
            rc, out = self.send(self.port, to)
            self.assertEqual(rc, 0, out)
            self.assertIn("for the postmaster", out)
            # The new file, whatever its name sorts like (maildir names do not sort by time).
            new = sorted(set(maildir_files(self.pm)) - before)
            self.assertEqual(len(new), 1, to)
            with open(new[0], "rb") as f:
                raw = f.read()
            self.assertIn(b"Subject: hello postmaster", raw)
            self.assertIn(b"Return-Path: <alice@sender.test>", raw)
            self.assertIn(b"[127.0.0.2]", raw)
            self.assertNotIn(b"\r", raw, "Maildir files have LF line ends")
        time.sleep(0.5)
        for p in maildir_files(self.outbox):
            with open(p, "rb") as f:
                self.assertNotIn(b"alice@sender.test", f.read(), "a postmaster mail was answered")

    def test_mixed_recipients_copy_the_postmaster_and_report(self):
        before = len(maildir_files(self.pm))
        rc, out = self.send(self.port, "postmaster@example.test,ipconfirm@example.test",
                            sender="carol@sender.test")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"250 2\.0\.0 Ok: queued as .*your IP is 127\.0\.0\.2")
        self.assertEqual(len(maildir_files(self.pm)), before + 1)

        def report():
            for p in maildir_files(self.outbox):
                with open(p, "rb") as f:
                    if b"carol@sender.test" in f.read():
                        return p
            return None
        path = h.wait_for(report, 15, "the report to carol")
        with open(path, "rb") as f:
            self.assertNotIn(b"\r\n", f.read(), "Maildir files have LF line ends")

    def test_postmaster_elsewhere_is_refused(self):
        rc, out = self.send(self.port, "postmaster@elsewhere.test")
        self.assertEqual(rc, 24, out)
        self.assertIn("550 5.7.1", out)

    def test_postmaster_mail_is_forwarded(self):
        rc, out = self.send(self.fport, "postmaster@example.test", sender="bob@sender.test")
        self.assertEqual(rc, 0, out)

        def forwarded():
            for env, msg in self.sink.messages():
                if env["rcpt"] == ["<hostmaster@admin.test>"]:
                    return env, msg
            return None
        env, msg = h.wait_for(forwarded, 15, "the forwarded mail")
        self.assertEqual(msg["Subject"], "hello postmaster")
        self.assertTrue(env["mail"].startswith("<>"), env)
        # No report went to the sender.
        time.sleep(0.5)
        for env, _ in self.sink.messages():
            self.assertNotIn("<bob@sender.test>", env["rcpt"])



class PostmasterLimits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.2"])
        cls.port = h.free_port()
        cls.pm = os.path.join(cls.work.path, "postmaster")
        cls.svc = h.Ipconfirm(cls.work, h.config_toml(
            [f"127.0.0.1:{cls.port}"], cls.dns.server(), maildir="./outbox",
            extra=f'[postmaster]\nmaildir = "{cls.pm}"\nmax_per_ip_per_hour = 2\n'
                  "max_per_network_per_hour = 100\nmax_total_per_minute = 100\n"
                  "max_maildir_messages = 6\n"), name="limits").start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.dns.stop()
        cls.work.cleanup()
        assert rc == 0, f"ipconfirm exited {rc}"

    def client(self, source):
        c = Client(self.port, source=source, timeout=20)
        self.addCleanup(c.close)
        self.assertTrue(c.text().startswith("220"))
        self.assertTrue(c.cmd("EHLO mail.sender.test").startswith("250"))
        return c

    def to_postmaster(self, source, body=b"hello\r\n"):
        """Sends one message to postmaster@; returns the reply to DATA, or to the final dot."""
        c = self.client(source)
        self.assertTrue(c.cmd("MAIL FROM:<a@sender.test>").startswith("250"))
        self.assertTrue(c.cmd("RCPT TO:<postmaster@example.test>").startswith("250"))
        reply = c.cmd("DATA")
        if not reply.startswith("354"):
            return reply
        c.send(b"Subject: for the postmaster\r\n\r\n" + body + b".\r\n")
        return c.text()

    def test_a_noop_is_not_held_up_by_a_10_mb_postmaster_message(self):
        big = self.client("127.0.0.30")
        other = self.client("127.0.0.31")
        self.assertTrue(big.cmd("MAIL FROM:<a@sender.test>").startswith("250"))
        self.assertTrue(big.cmd("RCPT TO:<postmaster@example.test>").startswith("250"))
        self.assertTrue(big.cmd("DATA").startswith("354"))
        line = b"y" * 998 + b"\r\n"
        big.send(b"Subject: ten megabytes\r\n\r\n" + line * 10000)
        tmp = os.path.join(self.pm, "tmp")
        before = set(os.listdir(tmp)) if os.path.isdir(tmp) else set()
        big.send(b".\r\n")
        # The server has begun writing the message into the Maildir ...
        h.wait_for(lambda: os.path.isdir(tmp) and set(os.listdir(tmp)) - before, 30,
                   "the Maildir write to begin")
        # ... and meanwhile another session's NOOP is answered: the disk work runs off the
        # event loop, so the NOOP's reply comes before the 250 of the big message.
        started = time.monotonic()
        other.send(b"NOOP\r\n")
        self.assertEqual(other.text(), "250 2.0.0 Ok")
        noop_ms = (time.monotonic() - started) * 1000
        waiting, _, _ = select.select([big.sock], [], [], 0)
        self.assertFalse(waiting or big.buf, "the 250 of the big message came before the NOOP's")
        self.assertRegex(big.text(timeout=60), r"^250 2\.0\.0 .*for the postmaster")
        print(f"\nNOOP during a 10 MB postmaster delivery: {noop_ms:.2f} ms", file=sys.stderr)

    def test_postmaster_mail_is_rate_limited_per_ip(self):
        for _ in range(2):
            self.assertRegex(self.to_postmaster("127.0.0.40"), r"^250 2\.0\.0 .*for the postmaster")
        self.assertRegex(self.to_postmaster("127.0.0.40"), r"^451 4\.7\.1 ")
        self.assertRegex(self.to_postmaster("127.0.0.41"), r"^250 2\.0\.0 .*for the postmaster")
        h.wait_for(lambda: "reason=rate-limit-ip" in self.svc.read_log(), 5, "the log line")

    def test_the_postmaster_maildir_is_capped(self):
        new = os.path.join(self.pm, "new")
        n = len(os.listdir(new)) if os.path.isdir(new) else 0
        sources = iter(f"127.0.1.{i}" for i in range(1, 100))
        while n < 6:
            self.assertRegex(self.to_postmaster(next(sources)), r"^250 ")
            n += 1
        self.assertRegex(self.to_postmaster(next(sources)), r"^452 4\.2\.2 .*full")
        os.unlink(os.path.join(new, sorted(os.listdir(new))[0]))
        self.assertRegex(self.to_postmaster(next(sources)), r"^250 2\.0\.0 .*for the postmaster")


if __name__ == "__main__":
    h.main()
