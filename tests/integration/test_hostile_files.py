"""Hostile things in the files and values the server reads and writes (issue 12, finding 10).

- A FIFO in spool/control/ must not stop the server (opening one for reading blocks until a
  writer comes), and a FIFO in spool/queue/ must not stop start-up or `queue list`: spool
  files are opened non-blocking and must be regular files.
- A UTF-8 MAIL FROM carrying NEL (U+0085), CSI (U+009B), LINE SEPARATOR (U+2028) and a bidi
  override (U+202E) must reach neither the log nor `queue list` raw: a terminal or log viewer
  would take them as line breaks, escape sequences or reordering.
- A config file that holds a password, or an auth file, readable by group or others gets a
  warning in the log at start.

Replies go to a smarthost that is not listening, so they stay in the queue for `queue list`.
"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from smtp_raw import Client  # noqa: E402

# NEL, CSI, LINE SEPARATOR, PARAGRAPH SEPARATOR, RIGHT-TO-LEFT OVERRIDE, as UTF-8.
HOSTILE = ["\u0085", "\u009b", "\u2028", "\u2029", "\u202e"]
HOSTILE_BYTES = [c.encode() for c in HOSTILE]


class HostileFilesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq")
        cls.work = h.Workdir()
        cls.addClassCleanup(cls.work.cleanup)  # these run even if setUpClass fails half way
        cls.dns = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.2"])
        cls.addClassCleanup(cls.dns.stop)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.work.cleanup()

    def setUp(self):
        self.port = h.free_port()
        dead = h.free_port()  # nothing listens there: replies stay queued
        self.svc = h.Ipconfirm(self.work, h.config_toml(
            [f"127.0.0.1:{self.port}"], self.dns.server(), smarthost=f"127.0.0.1:{dead}",
            extra="retry_first = 3600\n"), name=f"svc-{self._testMethodName}")
        self.spool = os.path.join(self.svc.dir, "spool")

    def tearDown(self):
        self.svc.stop()

    def queue(self, *args):
        return self.svc.run("queue", "--config", self.svc.config, *args, timeout=20)

    def served(self):
        """One whole SMTP conversation: greeting, EHLO, NOOP, QUIT."""
        with Client(self.port, timeout=10) as c:
            self.assertTrue(c.text().startswith("220 "))
            self.assertTrue(c.cmd("EHLO mail.sender.test").startswith("250"))
            self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
            self.assertTrue(c.cmd("QUIT").startswith("221"))

    def send(self, sender, smtputf8=False):
        with Client(self.port, source="127.0.0.2", timeout=15) as c:
            c.text()
            c.cmd("EHLO mail.sender.test")
            mail = b"MAIL FROM:<" + sender.encode() + b">" + (b" SMTPUTF8" if smtputf8 else b"")
            self.assertTrue(c.cmd(mail + b"\r\n").startswith("250"))
            self.assertTrue(c.cmd("RCPT TO:<ipconfirm@example.test>").startswith("250"))
            self.assertTrue(c.cmd("DATA").startswith("354"))
            c.send(b"Subject: hostile\r\n\r\nhello\r\n.\r\n")
            text = c.text()
            self.assertRegex(text, r"^250 2\.0\.0 Ok: queued as")
            return re.search(r"queued as (\S+);", text).group(1)

    def test_a_fifo_in_control_does_not_stop_the_server(self):
        self.svc.start()
        os.mkfifo(os.path.join(self.spool, "control", "evil"))
        # The server reads control/ at most once a second: let it meet the FIFO.
        h.wait_for(lambda: "control/evil" in self.svc.read_log(), 10, "the FIFO reported")
        self.served()
        qid = self.send("a@sender.test")
        # Requests still work: a delete through control/ is applied.
        r = self.queue("delete", qid)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_a_fifo_in_the_queue_does_not_stop_queue_list_or_start_up(self):
        self.svc.start()
        qid = self.send("b@sender.test")
        fifo = os.path.join(self.spool, "queue", "000000000001.000001.1")
        os.mkfifo(fifo)
        # While the server runs, `queue list` reads the files itself.
        r = self.queue("list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(qid, r.stdout)
        self.assertIn("1 reply queued", r.stdout)
        # At start-up the server reads every entry; the FIFO is set aside, the entry kept.
        self.assertEqual(self.svc.stop(), 0)
        self.svc.start()
        h.wait_for(lambda: "recovered=1" in self.svc.read_log(), 10, "the entry recovered")
        self.assertIn("not a regular file", self.svc.read_log())
        self.assertFalse(os.path.exists(fifo))
        self.served()
        # And without a server, `queue list` opens the spool itself.
        self.assertEqual(self.svc.stop(), 0)
        os.mkfifo(fifo)
        r = self.queue("list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(qid, r.stdout)

    def test_line_and_bidi_controls_in_a_utf8_sender_are_escaped(self):
        self.svc.start()
        sender = "x" + "y".join(HOSTILE) + "z@sender.test"
        self.send(sender, smtputf8=True)
        h.wait_for(lambda: " queued " in self.svc.read_log(), 10, "the queued line")
        with open(self.svc.log_path, "rb") as f:
            log = f.read()
        r = self.svc.run("queue", "--config", self.svc.config, "list")
        listing = r.stdout.encode()
        self.assertIn(b"to=x\\u0085y", log)  # the sender's line is there, escaped
        for raw in HOSTILE_BYTES:
            self.assertNotIn(raw, log, raw)
            self.assertNotIn(raw, listing, raw)
        for shown in (b"\\u0085", b"\\u009b", b"\\u2028", b"\\u2029", b"\\u202e"):
            self.assertIn(shown, log)
            self.assertIn(shown, listing)

    def test_a_symlinked_maildir_folder_is_not_written_through(self):
        # Replies go to a Maildir whose tmp/ someone replaced by a link to another folder.
        self.svc.stop()
        elsewhere = self.work.sub("elsewhere-" + self._testMethodName)
        outbox = os.path.join(self.svc.dir, "outbox")
        os.makedirs(os.path.join(outbox, "new"))
        os.symlink(elsewhere, os.path.join(outbox, "tmp"))
        with open(self.svc.config) as f:
            text = f.read()
        text = re.sub(r'mode = "smarthost"\nsmarthost = "[^"]*"\n',
                      f'mode = "maildir"\nmaildir = "{outbox}"\n', text)
        with open(self.svc.config, "w") as f:
            f.write(text)
        self.svc.start()
        self.send("c@sender.test")
        h.wait_for(lambda: "deferred" in self.svc.read_log(), 10, "the failed delivery")
        self.assertIn("maildir", self.svc.read_log())
        self.assertEqual(os.listdir(elsewhere), [])
        self.assertEqual(os.listdir(os.path.join(outbox, "new")), [])

    def test_secrets_readable_by_others_are_warned_about(self):
        auth = os.path.join(self.svc.dir, "auth")
        with open(auth, "w") as f:
            f.write("user:secret\n")
        plain = os.path.join(self.svc.dir, "plain.toml")
        with open(self.svc.config) as f:
            text = f.read()
        with open(plain, "w") as f:  # no secret in it: readable by all without a word
            f.write(text)
        with open(self.svc.config, "w") as f:
            f.write(text.replace("[delivery]\n", '[delivery]\nsmarthost_user = "u"\n'
                                 'smarthost_password = "secret"\n'))
        os.chmod(self.svc.config, 0o644)
        os.chmod(plain, 0o644)
        os.chmod(auth, 0o640)
        self.svc.start()
        log = self.svc.read_log()
        self.assertRegex(log, r" warning file=\S*ipconfirm\.toml .*readable by group or others")
        self.svc.stop()
        self.svc.config = plain
        with open(plain, "a") as f:
            f.write('[postmaster]\nforward = "pm@admin.test"\n')
        with open(plain) as f:
            text = f.read().replace(
                "[delivery]\n", f'[delivery]\nsmarthost_auth_file = "{auth}"\n')
        with open(plain, "w") as f:
            f.write(text)
        self.svc.start()
        log = self.svc.read_log()
        self.assertRegex(log, r" warning file=\S*/auth .*readable by group or others")
        self.assertNotRegex(log, r" warning file=\S*plain\.toml")
        self.svc.stop()
        os.chmod(auth, 0o600)
        os.chmod(self.svc.config, 0o600)
        self.svc.start()
        self.assertEqual(self.svc.read_log().count(" warning file="), 2, "warned again at 0600")

if __name__ == "__main__":
    h.main()
