"""postmaster@<domain> is accepted (RFC 5321 §4.5.1), kept or forwarded, never auto-replied.

Two instances: one writes postmaster mail into a Maildir (and its replies into another), one
forwards it through the smarthost (Postfix's smtp-sink) to a configured address. A third one
has small limits: postmaster mail per sending IP, and the size of the postmaster's Maildir. A
fourth one keeps its postmaster Maildir on a file system of its own that the test freezes, so
that the disk work of a 10 MB postmaster message cannot finish: another session must still be
answered meanwhile.
"""

import os
import select
import shutil
import subprocess
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
        cls.addClassCleanup(cls.work.cleanup)  # these run even if setUpClass fails half way
        cls.dns = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.2"])
        cls.addClassCleanup(cls.dns.stop)
        cls.port = h.free_port()
        cls.outbox = os.path.join(cls.work.path, "outbox")
        cls.pm = os.path.join(cls.work.path, "postmaster")
        cls.svc = h.Ipconfirm(cls.work, h.config_toml(
            [f"127.0.0.1:{cls.port}"], cls.dns.server(), maildir=cls.outbox,
            extra=f'[postmaster]\nmaildir = "{cls.pm}"\n'), name="keep").start()
        cls.addClassCleanup(cls.svc.stop)
        cls.sink = h.SmtpSink(cls.work)
        cls.addClassCleanup(cls.sink.stop)
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
        cls.addClassCleanup(cls.work.cleanup)  # these run even if setUpClass fails half way
        cls.dns = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.2"])
        cls.addClassCleanup(cls.dns.stop)
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



def receive_queue_of(server_port, client_port):
    """Bytes the server has not read yet on the connection from `client_port` (IPv4)."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if (int(fields[1].split(":")[1], 16) == server_port and
                    int(fields[2].split(":")[1], 16) == client_port):
                return int(fields[4].split(":")[1], 16)
    return None


class PostmasterDiskWait(unittest.TestCase):
    """The Maildir lives on a small ext4 image mounted in the server's own mount namespace;
    `fsfreeze` there makes every write to it wait until the test thaws it."""

    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq")
        tools = [shutil.which(t) for t in ("unshare", "nsenter", "mkfs.ext4", "fsfreeze")]
        if os.geteuid() != 0 or not all(tools):
            raise unittest.SkipTest("needs root, unshare, nsenter, mkfs.ext4 and fsfreeze")
        cls.unshare, cls.nsenter, mkfs, cls.fsfreeze = tools
        cls.work = h.Workdir()
        cls.addClassCleanup(cls.work.cleanup)  # these run even if setUpClass fails half way
        cls.dns = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.2"])
        cls.addClassCleanup(cls.dns.stop)
        cls.port = h.free_port()
        cls.svc = h.Ipconfirm(cls.work, h.config_toml(
            [f"127.0.0.1:{cls.port}"], cls.dns.server(), maildir="./outbox",
            extra='[postmaster]\nmaildir = "./pmfs/Maildir"\n'), name="frozen")
        image = os.path.join(cls.svc.dir, "pm.img")
        with open(image, "wb") as f:
            f.truncate(64 * 1024 * 1024)
        subprocess.run([mkfs, "-q", "-F", image], check=True, capture_output=True)
        cls.mount = os.path.join(cls.svc.dir, "pmfs")
        os.makedirs(cls.mount)
        # The server runs in a private mount namespace where the image is mounted; exec keeps
        # the pid, so the harness stops it as usual, and the mount goes with the namespace.
        wrapper = os.path.join(cls.svc.dir, "serve-on-image")
        with open(wrapper, "w") as f:
            f.write(f"#!/bin/sh\nset -e\nmount -o loop {image} ./pmfs\n"
                    f'exec "{h.binary()}" "$@"\n')
        os.chmod(wrapper, 0o755)
        svc = cls.svc
        svc.log = open(svc.log_path, "ab")
        svc.proc = subprocess.Popen([cls.unshare, "-m", "--propagation", "private", wrapper,
                                     "serve", "--config", svc.config], cwd=svc.dir,
                                    stdout=svc.log, stderr=subprocess.STDOUT)
        h.wait_for(lambda: " started " in svc.read_log() or svc.proc.poll() is not None, 15,
                   "ipconfirm to start")
        cls.addClassCleanup(svc.stop)
        if svc.proc.poll() is not None:
            raise unittest.SkipTest("could not mount the image: " + svc.read_log()[-300:])

    @classmethod
    def tearDownClass(cls):
        if cls.svc.proc and cls.svc.proc.poll() is None:
            cls.freeze(False)
        rc = cls.svc.stop()
        cls.dns.stop()
        cls.work.cleanup()
        assert rc == 0, f"ipconfirm exited {rc}"

    @classmethod
    def freeze(cls, on):
        subprocess.run([cls.nsenter, "-t", str(cls.svc.proc.pid), "-m", cls.fsfreeze,
                        "--freeze" if on else "--unfreeze", cls.mount],
                       capture_output=True, check=on)

    def client(self, source):
        c = Client(self.port, source=source, timeout=20)
        self.addCleanup(c.close)
        self.assertTrue(c.text().startswith("220"))
        self.assertTrue(c.cmd("EHLO mail.sender.test").startswith("250"))
        return c

    def test_a_session_is_answered_while_a_postmaster_message_waits_for_the_disk(self):
        big = self.client("127.0.0.30")
        other = self.client("127.0.0.31")
        self.assertTrue(big.cmd("MAIL FROM:<a@sender.test>").startswith("250"))
        self.assertTrue(big.cmd("RCPT TO:<postmaster@example.test>").startswith("250"))
        self.assertTrue(big.cmd("DATA").startswith("354"))
        big.send(b"Subject: ten megabytes\r\n\r\n" + (b"y" * 998 + b"\r\n") * 10000)
        self.freeze(True)
        self.addCleanup(self.freeze, False)
        big.send(b".\r\n")
        # The server has read the final dot: from here on it is writing the message, and the
        # write cannot finish while the file system is frozen.
        client_port = big.sock.getsockname()[1]
        h.wait_for(lambda: receive_queue_of(self.port, client_port) == 0, 30,
                   "the server to read the final dot")
        # Another session is still served; the big message is not answered yet.
        other.send(b"NOOP\r\n")
        self.assertEqual(other.text(timeout=10), "250 2.0.0 Ok",
                         "the event loop waited for the postmaster's disk")
        waiting, _, _ = select.select([big.sock], [], [], 0)
        self.assertFalse(waiting or big.buf, "a 250 before the message was written")
        self.freeze(False)
        self.assertRegex(big.text(timeout=60), r"^250 2\.0\.0 .*for the postmaster")
        listing = subprocess.run([self.nsenter, "-t", str(self.svc.proc.pid), "-m", "ls",
                                  os.path.join(self.mount, "Maildir", "new")],
                                 capture_output=True, text=True, check=True).stdout
        self.assertEqual(len(listing.split()), 1, listing)  # seen from the server's namespace


if __name__ == "__main__":
    h.main()
