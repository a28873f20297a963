"""What message data costs the server in memory (issue 12, finding 5).

A session in DATA keeps only what the report needs, the header (bounded), and passes the body on
in pieces as it arrives; only mail for postmaster@ is kept whole. All sessions together hold at
most [smtp] max_message_memory of message data; past it a message is answered 451 4.3.2, and
what a message held is given back after its 250, 451 or 552.

RSS is read from /proc once the server has read everything the clients sent (its sockets'
receive queues are empty), so the figures do not depend on timing.
"""

import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from smtp_raw import Client, rss_kib  # noqa: E402

MIB = 1024 * 1024


def receive_queues(port):
    """The bytes waiting in the receive queues of the server's sockets on `port` (IPv4)."""
    total = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, queues = fields[1], fields[4]
            if int(local.split(":")[1], 16) == port:
                total += int(queues.split(":")[1], 16)
    return total


def config(port, dns, extra_smtp="", extra=""):
    return h.config_toml([f"127.0.0.1:{port}"], dns, maildir="./outbox", extra=extra).replace(
        "command_timeout = 10\n", "command_timeout = 30\nmax_connections_per_ip = 100\n" +
        extra_smtp)


class MemoryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq")
        # Under AddressSanitizer freed memory waits in a quarantine (256 MB by default) instead
        # of being reused, which would make RSS say nothing about what the server holds.
        options = os.environ.get("ASAN_OPTIONS", "")
        os.environ["ASAN_OPTIONS"] = (options + ":" if options else "") + "quarantine_size_mb=0"
        cls.work = h.Workdir()
        cls.addClassCleanup(cls.work.cleanup)  # these run even if setUpClass fails half way
        cls.dns = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.2"])
        cls.addClassCleanup(cls.dns.stop)
        cls.port = h.free_port()
        cls.svc = h.Ipconfirm(cls.work, config(
            cls.port, cls.dns.server(), "max_message_size = 4194304\n",
            "[reply]\nmax_per_recipient_per_hour = 0\nmax_per_ip_per_hour = 0\n"
            "max_per_network_per_hour = 0\n"), name="mem").start()
        cls.addClassCleanup(cls.svc.stop)
        # A small budget for message data, and postmaster mail (kept whole) to fill it.
        cls.bport = h.free_port()
        cls.budget = h.Ipconfirm(cls.work, config(
            cls.bport, cls.dns.server(),
            f"max_message_size = {900 * 1024}\nmax_message_memory = {MIB}\n",
            '[postmaster]\nmaildir = "./postmaster"\n'), name="budget").start()

    @classmethod
    def tearDownClass(cls):
        rcs = [cls.svc.stop(), cls.budget.stop()]
        cls.dns.stop()
        cls.work.cleanup()
        assert rcs == [0, 0], f"ipconfirm exited {rcs}"

    def in_data(self, port, rcpt="ipconfirm@example.test", source="127.0.0.2"):
        c = Client(port, source=source, timeout=30)
        self.addCleanup(c.close)
        self.assertTrue(c.text().startswith("220"))
        self.assertTrue(c.cmd("EHLO mail.sender.test").startswith("250"))
        self.assertTrue(c.cmd("MAIL FROM:<a@sender.test>").startswith("250"))
        self.assertTrue(c.cmd(f"RCPT TO:<{rcpt}>").startswith("250"))
        self.assertTrue(c.cmd("DATA").startswith("354"))
        c.send(b"From: a@sender.test\r\nSubject: big\r\n\r\n")
        return c

    def send_body(self, c, size):
        line = b"x" * 998 + b"\r\n"  # 1000 octets: the longest line allowed
        for _ in range(size // len(line)):
            c.send(line)

    def all_read(self, port):
        h.wait_for(lambda: receive_queues(port) == 0, 30, "the server to read everything")

    def test_forty_slow_senders_in_data_hold_little(self):
        pid = self.svc.proc.pid
        base = rss_kib(pid)
        clients = [self.in_data(self.port) for _ in range(40)]
        for c in clients:
            self.send_body(c, 2 * MIB)  # and no final dot yet: they are "slow"
        self.all_read(self.port)
        grown = rss_kib(pid) - base
        print(f"\n40 senders x 2 MiB in DATA: RSS grew by {grown} KiB", file=sys.stderr)
        self.assertLess(grown, 20 * 1024, f"RSS grew by {grown} KiB for 80 MiB of bodies")
        for c in clients:
            c.send(b".\r\n")
        for c in clients:
            self.assertRegex(c.text(), r"^250 2\.0\.0 Ok: queued")

    def test_sessions_after_a_552_hold_nothing(self):
        # An instance of its own, so that what other tests freed does not move the figure.
        port = h.free_port()
        svc = h.Ipconfirm(self.work, config(port, self.dns.server(),
                                            "max_message_size = 4194304\n"), name="idle552")
        svc.start()
        self.addCleanup(svc.stop)
        with Client(port) as warm:  # the first session's one-time allocations
            warm.text()
            warm.cmd("QUIT")
        pid = svc.proc.pid
        base = rss_kib(pid)
        clients = []
        for _ in range(10):
            c = self.in_data(port, source="127.0.0.3")
            self.send_body(c, 5 * MIB)
            c.send(b".\r\n")
            self.assertRegex(c.text(), r"^552 5\.3\.4")
            clients.append(c)  # idle from here on
        grown = rss_kib(pid) - base
        print(f"\n10 idle sessions after a 552: RSS grew by {grown} KiB", file=sys.stderr)
        self.assertLess(grown, 8 * 1024, f"RSS grew by {grown} KiB")
        for c in clients:
            self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")

    def test_the_budget_for_message_data_answers_451_and_is_given_back(self):
        # Postmaster mail is kept whole: two of 700 KiB do not fit in 1 MiB at once.
        a = self.in_data(self.bport, "postmaster@example.test")
        self.send_body(a, 700 * 1024)
        self.all_read(self.bport)
        b = self.in_data(self.bport, "postmaster@example.test", source="127.0.0.3")
        self.send_body(b, 700 * 1024)
        b.send(b".\r\n")
        self.assertRegex(b.text(), r"^451 4\.3\.2 ")
        self.assertEqual(b.cmd("NOOP"), "250 2.0.0 Ok")
        a.send(b".\r\n")
        self.assertRegex(a.text(), r"^250 2\.0\.0 .*for the postmaster")
        # What a's message held is given back after its 250 ...
        b = self.in_data(self.bport, "postmaster@example.test", source="127.0.0.3")
        self.send_body(b, 700 * 1024)
        b.send(b".\r\n")
        self.assertRegex(b.text(), r"^250 2\.0\.0 .*for the postmaster")
        # ... and what a message over the size limit held, after its 552.
        c = self.in_data(self.bport, "postmaster@example.test", source="127.0.0.4")
        self.send_body(c, 1000 * 1024)
        c.send(b".\r\n")
        self.assertRegex(c.text(), r"^552 5\.3\.4 ")
        d = self.in_data(self.bport, "postmaster@example.test", source="127.0.0.5")
        self.send_body(d, 700 * 1024)
        d.send(b".\r\n")
        self.assertRegex(d.text(), r"^250 2\.0\.0 .*for the postmaster")
        # Mail for ipconfirm@ keeps only its header: a message larger than the whole budget
        # (but within max_message_size) is taken.
        e = self.in_data(self.bport, source="127.0.0.6")
        self.send_body(e, 850 * 1024)
        a = self.in_data(self.bport, "postmaster@example.test")
        self.send_body(a, 700 * 1024)
        a.send(b".\r\n")
        self.assertRegex(a.text(), r"^250 2\.0\.0 .*for the postmaster")
        e.send(b".\r\n")
        self.assertRegex(e.text(), r"^250 2\.0\.0 Ok: queued")


if __name__ == "__main__":
    h.main()
