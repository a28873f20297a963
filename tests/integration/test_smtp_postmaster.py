"""postmaster@<domain> is accepted (RFC 5321 §4.5.1), kept or forwarded, never auto-replied.

Two instances: one writes postmaster mail into a Maildir (and its replies into another), one
forwards it through the smarthost (Postfix's smtp-sink) to a configured address.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402


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


if __name__ == "__main__":
    h.main()
