"""Direct MX delivery never connects to an address that is not a public destination.

Inside a private network namespace (unshare -rn) every hostile address is put on `lo` and a
listener waits on port 25 of all of them, so that a connection attempt would succeed and be
seen. dnsmasq gives each test domain an MX host whose only address is one of them: NAT64 (the
well-known prefix with an embedded 127.0.0.1, and the local-use prefix), 6to4 and
IPv4-compatible addresses that embed 127.0.0.1, Teredo, site-local, the discard prefix, SRv6,
the documentation ranges of both families, benchmarking 198.18.0.0/15, 192.0.0.0/24, the Azure
platform address 168.63.129.16, and an address of the host itself. A reply to each is queued
with mode = "mx" and deferred without any connection; the log names why. With allow_private =
true (the switch for tests and closed networks) the same replies do reach the listener, which
shows that the listener would have seen them.
"""

import os
import re
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
import netns  # noqa: E402
import queue_helpers as q  # noqa: E402

# domain -> (address of its MX host, what the refusal must name)
CASES = {
    "nat64.test": ("64:ff9b::7f00:1", "NAT64"),
    "nat64local.test": ("64:ff9b:1::25", "IPv4-IPv6 Translat"),
    "sixtofour.test": ("2002:7f00:1::25", "6to4"),
    "teredo.test": ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    "v4compat.test": ("::127.0.0.1", "IPv4-compatible"),
    "sitelocal.test": ("fec0::25", "site-local"),
    "discard.test": ("100::25", "Discard-Only"),
    "srv6.test": ("5f00::25", "SRv6"),
    "doc6.test": ("3fff::25", "Documentation"),
    "doc6old.test": ("2001:db8::25", "Documentation"),
    "doc4.test": ("192.0.2.25", "TEST-NET-1"),
    "bench.test": ("198.18.0.25", "Benchmarking"),
    "ietf.test": ("192.0.0.25", "IETF Protocol Assignments"),
    "azure.test": ("168.63.129.16", "168.63.129.16"),
    "own.test": ("11.22.33.44", "this host's own address"),
}

if __name__ == "__main__":
    netns.enter([a for a, _ in CASES.values()])

RECORDS = q.RECORDS + [line for d, (a, _) in CASES.items()
                       for line in (f"mx-host={d},mx.{d},10", f"host-record=mx.{d},{a}")]


class Listener:
    """Port 25 on every address of the namespace: records each connection and refuses it."""

    def __init__(self):
        self.seen = []
        self.lock = threading.Lock()
        self.socks = []
        for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr, 25))
            s.listen(64)
            s.settimeout(0.2)
            self.socks.append(s)
        self.stop_flag = False
        self.threads = [threading.Thread(target=self.loop, args=(s,), daemon=True)
                        for s in self.socks]
        for t in self.threads:
            t.start()

    def loop(self, s):
        while not self.stop_flag:
            try:
                c, _ = s.accept()
            except OSError:
                continue
            with self.lock:
                self.seen.append(c.getsockname()[0])
            try:
                c.sendall(b"554 5.7.1 test listener: no mail here\r\n")
            except OSError:
                pass
            c.close()

    def stop(self):
        self.stop_flag = True
        for t in self.threads:
            t.join(2)
        for s in self.socks:
            s.close()


class Destinations(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, RECORDS)
        cls.listener = Listener()

    @classmethod
    def tearDownClass(cls):
        cls.listener.stop()
        cls.dns.stop()
        cls.work.cleanup()

    def setUp(self):
        with self.listener.lock:
            self.listener.seen.clear()

    def serve(self, name, allow_private):
        port = h.free_port()
        text = q.config(port, self.dns, "127.0.0.1:9", queue="retry_first = 600\n",
                        extra_delivery=f"allow_private = {str(allow_private).lower()}\n")
        text = text.replace('mode = "smarthost"', 'mode = "mx"')
        svc = q.Server(self.work, text, name=name).start()
        self.addCleanup(svc.stop)
        return svc, port

    def send_all(self, port):
        ids = {}
        for n, domain in enumerate(CASES):
            code, text = q.send_one(port, n, source="127.0.0.1", sender=f"user@{domain}")
            self.assertEqual(code, 250, text)
            ids[domain] = q.QUEUED.search(text).group(1)
        return ids

    def test_no_connection_to_special_purpose_or_own_addresses(self):
        svc, port = self.serve("refuse", allow_private=False)
        ids = self.send_all(port)
        for domain, qid in ids.items():
            address, reason = CASES[domain]
            line = h.wait_for(lambda: re.search(rf"(deferred|bounced) queue_id={re.escape(qid)} .*",
                                                svc.read_log()), 20, f"{domain} attempted")
            with self.subTest(domain=domain):
                self.assertEqual(line.group(1), "deferred", line.group(0))
                self.assertIn(f"non-public address {address}", line.group(0))
                self.assertIn(reason, line.group(0))
                self.assertNotIn("connect to", line.group(0))
        with self.listener.lock:
            self.assertEqual(self.listener.seen, [])

    def test_allow_private_reaches_them(self):
        # The control: the same MX hosts, allowed, do get a connection (and a 554, so the
        # replies are dropped rather than retried).
        svc, port = self.serve("allow", allow_private=True)
        ids = self.send_all(port)
        for qid in ids.values():
            h.wait_for(lambda: f"bounced queue_id={qid}" in svc.read_log(), 20, qid)
        with self.listener.lock:
            seen = {socket.inet_pton(socket.AF_INET6 if ":" in a else socket.AF_INET, a)
                    for a in self.listener.seen}
        for domain, (address, _) in CASES.items():
            with self.subTest(domain=domain):
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                self.assertIn(socket.inet_pton(family, address), seen)


if __name__ == "__main__":
    h.main()
