"""PROXY protocol v1 and v2 on a listener behind a load balancer, with a real HAProxy in front.

HAProxy listens on two ports in TCP mode and forwards to ipconfirm's proxy listener with
`send-proxy` (v1) and `send-proxy-v2`. swaks connects from 127.0.0.3 through HAProxy: the SMTP
dialog and the report must name 127.0.0.3 (connection.proxied = true). Raw dialogs check that
an untrusted peer is closed without a greeting, that a trusted peer without a header is closed,
that an IPv4-mapped source is reported as IPv4, and that the wait for the header is bounded.
"""

import email
import email.policy
import os
import struct
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from smtp_raw import Client  # noqa: E402


class ProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        (cls.haproxy,) = h.require("haproxy", "swaks", "dnsmasq")[:1]
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.2"])
        cls.plain = h.free_port()
        cls.proxied = h.free_port()
        cls.outbox = os.path.join(cls.work.path, "outbox")
        toml = h.config_toml([f"127.0.0.1:{cls.plain}"], cls.dns.server(), maildir=cls.outbox)
        toml = toml.replace("command_timeout = 10\n",
                            "command_timeout = 3\n"
                            f'proxy_protocol_listen = ["127.0.0.1:{cls.proxied}"]\n'
                            'trusted_proxies = ["127.0.0.1", "::1/128"]\n')
        cls.svc = h.Ipconfirm(cls.work, toml).start()
        cls.v1 = h.free_port()
        cls.v2 = h.free_port()
        cfg = os.path.join(cls.work.path, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(f"""global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend v1
  bind 127.0.0.1:{cls.v1}
  default_backend b1
backend b1
  server s1 127.0.0.1:{cls.proxied} send-proxy
frontend v2
  bind 127.0.0.1:{cls.v2}
  default_backend b2
backend b2
  server s2 127.0.0.1:{cls.proxied} send-proxy-v2
""")
        cls.hlog = open(os.path.join(cls.work.path, "haproxy.log"), "w")
        cls.hap = subprocess.Popen([cls.haproxy, "-f", cfg, "-db"], stdout=cls.hlog,
                                   stderr=subprocess.STDOUT)
        h.wait_for(lambda: (h.port_open(cls.v1) and h.port_open(cls.v2))
                   or cls.hap.poll() is not None, 10, "haproxy")
        if cls.hap.poll() is not None:
            raise RuntimeError("haproxy did not start")

    @classmethod
    def tearDownClass(cls):
        cls.hap.terminate()
        try:
            cls.hap.wait(5)
        except subprocess.TimeoutExpired:
            cls.hap.kill()
        cls.hlog.close()
        rc = cls.svc.stop()
        cls.dns.stop()
        cls.work.cleanup()
        assert rc == 0, f"ipconfirm exited {rc} on SIGTERM"

    def report_for(self, sender):
        d = os.path.join(self.outbox, "new")

        def find():
            for name in os.listdir(d) if os.path.isdir(d) else []:
                with open(os.path.join(d, name), "rb") as f:
                    raw = f.read()
                if sender.encode() in raw:
                    return email.message_from_bytes(raw, policy=email.policy.default)
            return None
        return h.report_json(h.wait_for(find, 15, f"the reply to {sender}"))

    def through(self, port, sender):
        rc, out = h.swaks("--server", f"127.0.0.1:{port}", "--local-interface", "127.0.0.3",
                          "--helo", "mail.sender.test", "--from", sender,
                          "--to", "ipconfirm@example.test")
        self.assertEqual(rc, 0, out)
        self.assertIn("your IP is 127.0.0.3", out)
        self.assertIn("[127.0.0.3]", out)
        r = self.report_for(sender)
        self.assertEqual(r["connection"]["ip"], "127.0.0.3")
        self.assertTrue(r["connection"]["proxied"])

    def test_haproxy_send_proxy_v1(self):
        self.through(self.v1, "pv1@sender.test")

    def test_haproxy_send_proxy_v2(self):
        self.through(self.v2, "pv2@sender.test")

    def test_direct_connection_is_not_proxied(self):
        rc, out = h.swaks("--server", f"127.0.0.1:{self.plain}", "--local-interface",
                          "127.0.0.3", "--helo", "mail.sender.test", "--from",
                          "direct@sender.test", "--to", "ipconfirm@example.test")
        self.assertEqual(rc, 0, out)
        self.assertFalse(self.report_for("direct@sender.test")["connection"]["proxied"])

    def test_untrusted_peer_is_closed_without_greeting(self):
        c = Client(self.proxied, source="127.0.0.5")
        self.addCleanup(c.close)
        c.send(b"PROXY TCP4 192.0.2.1 127.0.0.1 4000 25\r\n")
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"")
        h.wait_for(lambda: "proxy-refused" in self.svc.read_log()
                   and "127.0.0.5" in self.svc.read_log(), 5, "the log line")

    def test_trusted_peer_without_header_is_closed(self):
        c = Client(self.proxied)
        self.addCleanup(c.close)
        c.send(b"EHLO mail.sender.test\r\n")
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"")

    def test_header_wait_is_bounded(self):
        c = Client(self.proxied)
        self.addCleanup(c.close)
        c.send(b"PROXY TCP4 192.0.2.1 ")  # and then nothing
        self.assertTrue(c.closed(timeout=15))
        self.assertEqual(c.buf, b"")

    def test_endless_header_is_refused(self):
        c = Client(self.proxied)
        self.addCleanup(c.close)
        sig = b"\r\n\r\n\x00\r\nQUIT\n"
        c.send(sig + bytes([0x21, 0x11]) + struct.pack("!H", 65000) + b"\x00" * 4000)
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"")

    def test_v2_ipv4_mapped_source_is_reported_as_ipv4(self):
        c = Client(self.proxied)
        self.addCleanup(c.close)
        sig = b"\r\n\r\n\x00\r\nQUIT\n"
        src = bytes(10) + b"\xff\xff" + bytes([127, 0, 0, 9])
        dst = bytes(15) + b"\x01"
        c.send(sig + bytes([0x21, 0x21]) + struct.pack("!H", 36) + src + dst +
               struct.pack("!HH", 40000, 25))
        greeting = c.text()
        self.assertIn("your IP is 127.0.0.9", greeting)
        self.assertNotIn("ffff", greeting)


if __name__ == "__main__":
    h.main()
