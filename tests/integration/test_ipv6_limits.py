"""Limits that must count IPv6 clients by network, not by address (issue 12, findings 5 and 6).

An IPv6 client usually holds a whole /64 and often a /48: counting single addresses lets one
client open every connection slot, or make a reply per address. This module runs in a private
network namespace (harness.enter_network_namespace) whose loopback carries hundreds of
addresses of the documentation prefix 2001:db8::/32, so that real sockets come from them.

- Connections: max_connections_per_ip counts an IPv6 /64 ([smtp] ipv6_connection_prefix).
- Backscatter: 300 messages from 300 /64s of one /48, each from another sender of one domain,
  get at most [reply] max_per_site_per_hour replies; from other /48s the domain's own limit
  ([reply] max_per_domain_per_hour) ends it.
"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from smtp_raw import Client  # noqa: E402

ONE_48 = [f"2001:db8:1:{n:x}::1" for n in range(300)]          # 300 /64s of 2001:db8:1::/48
MANY_48 = [f"2001:db8:{0x100 + n:x}::1" for n in range(40)]     # 40 other /48s
SAME_64 = [f"2001:db8:2:2::{n:x}" for n in range(0x10, 0x14)]   # 4 addresses of one /64
OTHER_64 = "2001:db8:2:3::10"

if __name__ == "__main__":
    h.enter_network_namespace(ONE_48 + MANY_48 + SAME_64 + [OTHER_64])

SITE_LIMIT = 10
DOMAIN_LIMIT = 25


class Ipv6Limits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq")
        cls.work = h.Workdir()
        cls.addClassCleanup(cls.work.cleanup)  # these run even if setUpClass fails half way
        cls.dns = h.Dnsmasq(cls.work, [])
        cls.addClassCleanup(cls.dns.stop)
        cls.port = h.free_port("::1")
        # Per-hour limits refill one token per 3600/limit seconds (at least 144 s here): the
        # counts below cannot move while the test runs.
        cls.svc = h.Ipconfirm(cls.work, h.config_toml(
            [f"[::1]:{cls.port}"], cls.dns.server(), maildir="./outbox",
            extra="[reply]\nmax_per_recipient_per_hour = 10\nmax_per_ip_per_hour = 30\n"
                  "max_per_network_per_hour = 60\n"
                  f"max_per_site_per_hour = {SITE_LIMIT}\n"
                  f"max_per_domain_per_hour = {DOMAIN_LIMIT}\n"
                  "max_total_per_minute = 0\n").replace(
                "command_timeout = 10\n",
                "command_timeout = 10\nmax_connections_per_ip = 2\n"), name="v6").start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.dns.stop()
        cls.work.cleanup()
        assert rc == 0, f"ipconfirm exited {rc}"

    def greeting(self, source):
        c = Client(self.port, host="::1", source=source, timeout=10)
        self.addCleanup(c.close)
        return c, c.text()

    def test_connections_are_counted_per_64(self):
        first, g1 = self.greeting(SAME_64[0])
        second, g2 = self.greeting(SAME_64[1])
        self.assertTrue(g1.startswith("220 ") and g2.startswith("220 "), (g1, g2))
        # A third address of the same /64 is the same client.
        third, g3 = self.greeting(SAME_64[2])
        self.assertRegex(g3, r"^421 4\.7\.0 .*too many connections")
        self.assertTrue(third.closed())
        # Another /64 is someone else.
        _, g4 = self.greeting(OTHER_64)
        self.assertTrue(g4.startswith("220 "), g4)
        # A slot freed in the /64 is a slot offered again.
        first.cmd("QUIT")
        self.assertTrue(first.closed())

        def greeted_again():
            c = Client(self.port, host="::1", source=SAME_64[3], timeout=10)
            try:
                return c.text().startswith("220 ")
            finally:
                c.close()
        h.wait_for(greeted_again, 5, "the freed slot")

    def send(self, source, sender):
        with Client(self.port, host="::1", source=source, timeout=15) as c:
            c.text()
            c.cmd("EHLO client.victim.test")
            self.assertTrue(c.cmd(f"MAIL FROM:<{sender}>").startswith("250"))
            self.assertTrue(c.cmd("RCPT TO:<ipconfirm@example.test>").startswith("250"))
            self.assertTrue(c.cmd("DATA").startswith("354"))
            c.send(b"Subject: forged\r\n\r\nhello\r\n.\r\n")
            text = c.text()
            self.assertRegex(text, r"^250 2\.0\.0 ")
            m = re.search(r"no reply mail: ([a-z0-9-]+)", text)
            return m.group(1) if m else None

    def test_replies_to_one_domain_from_one_48_and_from_many(self):
        reasons = [self.send(src, f"u{n}@victim.test") for n, src in enumerate(ONE_48)]
        sent = reasons.count(None)
        self.assertEqual(sent, SITE_LIMIT, f"{sent} replies from one /48")
        self.assertEqual(reasons.count("rate-limit-site"), len(ONE_48) - SITE_LIMIT)
        # Other /48s: the domain has DOMAIN_LIMIT - SITE_LIMIT replies left, then no more.
        reasons = [self.send(src, f"v{n}@victim.test") for n, src in enumerate(MANY_48)]
        self.assertEqual(reasons.count(None), DOMAIN_LIMIT - SITE_LIMIT)
        self.assertEqual(reasons.count("rate-limit-domain"),
                         len(MANY_48) - (DOMAIN_LIMIT - SITE_LIMIT))
        # Another domain is not affected.
        self.assertIsNone(self.send(MANY_48[0], "w@elsewhere.test"))
        # Log lines are written once per round of the event loop: the last may follow its 250.
        h.wait_for(lambda: self.svc.read_log().count(" queued ") >= DOMAIN_LIMIT + 1, 10,
                   "the queued lines")
        log = self.svc.read_log()
        self.assertEqual(log.count(" queued "), DOMAIN_LIMIT + 1)
        self.assertIn("reason=rate-limit-site", log)
        self.assertIn("reason=rate-limit-domain", log)


if __name__ == "__main__":
    h.main()
