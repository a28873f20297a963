"""PROXY protocol v1 and v2 on a listener behind a load balancer, with a real HAProxy in front.

HAProxy listens on two ports in TCP mode and forwards to ipconfirm's proxy listener with
`send-proxy` (v1) and `send-proxy-v2`. swaks connects from 127.0.0.3 through HAProxy: the SMTP
dialog and the report must name 127.0.0.3 (connection.proxied = true). Raw dialogs check that
an untrusted peer is closed without a greeting, that a trusted peer without a header is closed,
that an IPv4-mapped source is reported as IPv4, and that the wait for the header is bounded.

A third listener takes both (proxy_protocol_tls_listen: HAProxy `send-proxy` in front of a
port-465-style listener, the TLS passed through): swaks --tlsc and `openssl s_client` through
HAProxy get TLS from the first byte after the header and the report names the client HAProxy
saw; a header and a ClientHello that arrive in one segment still make one handshake; TLS
without the header, and the header without TLS, are closed without a word.
"""

import email
import email.policy
import os
import socket
import ssl
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
        cls.haproxy, _, _, cls.openssl = h.require("haproxy", "swaks", "dnsmasq", "openssl")
        cls.work = h.Workdir()
        cls.key = os.path.join(cls.work.path, "key.pem")
        cls.cert = os.path.join(cls.work.path, "cert.pem")
        subprocess.run([cls.openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "1", "-subj", "/CN=mx.example.test", "-keyout", cls.key, "-out",
                        cls.cert], check=True, capture_output=True, timeout=60)
        cls.dns = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.2"])
        cls.plain = h.free_port()
        cls.proxied = h.free_port()
        cls.proxied_tls = h.free_port()
        cls.outbox = os.path.join(cls.work.path, "outbox")
        toml = h.config_toml([f"127.0.0.1:{cls.plain}"], cls.dns.server(), maildir=cls.outbox)
        toml = toml.replace("command_timeout = 10\n",
                            "command_timeout = 3\n"
                            f'proxy_protocol_listen = ["127.0.0.1:{cls.proxied}"]\n'
                            f'proxy_protocol_tls_listen = ["127.0.0.1:{cls.proxied_tls}"]\n'
                            f'tls_cert = "{cls.cert}"\ntls_key = "{cls.key}"\n'
                            'trusted_proxies = ["127.0.0.1", "::1/128"]\n')
        cls.svc = h.Ipconfirm(cls.work, toml).start()
        cls.v1 = h.free_port()
        cls.v2 = h.free_port()
        cls.t1 = h.free_port()
        cls.t2 = h.free_port()
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
frontend t1
  bind 127.0.0.1:{cls.t1}
  default_backend bt1
backend bt1
  server st1 127.0.0.1:{cls.proxied_tls} send-proxy
frontend t2
  bind 127.0.0.1:{cls.t2}
  default_backend bt2
backend bt2
  server st2 127.0.0.1:{cls.proxied_tls} send-proxy-v2
""")
        cls.hlog = open(os.path.join(cls.work.path, "haproxy.log"), "w")
        cls.hap = subprocess.Popen([cls.haproxy, "-f", cfg, "-db"], stdout=cls.hlog,
                                   stderr=subprocess.STDOUT)
        h.wait_for(lambda: all(h.port_open(p) for p in (cls.v1, cls.v2, cls.t1, cls.t2))
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

    def through_tls(self, port, sender):
        rc, out = h.swaks("--server", f"127.0.0.1:{port}", "--tlsc", "--local-interface",
                          "127.0.0.3", "--helo", "mail.sender.test", "--from", sender,
                          "--to", "ipconfirm@example.test")
        self.assertEqual(rc, 0, out)
        self.assertNotIn("STARTTLS", out)
        self.assertRegex(out, r"<~  250 2\.0\.0 Ok: queued as \S+; your IP is 127\.0\.0\.3")
        r = self.report_for(sender)
        self.assertEqual(r["connection"]["ip"], "127.0.0.3")
        self.assertTrue(r["connection"]["proxied"])
        self.assertRegex(r["connection"]["tls"]["version"], r"^TLSv1\.[23]$")

    def test_haproxy_send_proxy_v1_then_implicit_tls(self):
        self.through_tls(self.t1, "pt1@sender.test")

    def test_haproxy_send_proxy_v2_then_implicit_tls(self):
        self.through_tls(self.t2, "pt2@sender.test")

    def test_openssl_s_client_through_haproxy(self):
        p = subprocess.run([self.openssl, "s_client", "-connect", f"127.0.0.1:{self.t1}",
                            "-CAfile", self.cert, "-verify_return_error", "-quiet"],
                           input=b"EHLO mail.sender.test\r\nQUIT\r\n", capture_output=True,
                           timeout=30)
        out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
        self.assertIn("220 mx.example.test ESMTP ipconfirm: your IP is 127.0.0.1", out)
        self.assertIn("250-mx.example.test Hello mail.sender.test [127.0.0.1]", out)
        self.assertNotIn("STARTTLS", out)
        self.assertIn("221 2.0.0", out)

    def test_header_and_client_hello_in_one_segment(self):
        # The ClientHello is made in memory and sent in the same write as the PROXY header, so
        # the server reads part of the handshake together with the header.
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.check_hostname = False
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname="mx.example.test")
        with self.assertRaises(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = outgoing.read()
        sock = socket.create_connection(("127.0.0.1", self.proxied_tls), timeout=10)
        self.addCleanup(sock.close)
        sock.sendall(b"PROXY TCP4 192.0.2.44 127.0.0.1 4000 465\r\n" + hello)
        received = b""
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = outgoing.read()
                if pending:
                    sock.sendall(pending)
                chunk = sock.recv(65536)
                self.assertTrue(chunk, "closed during the handshake")
                incoming.write(chunk)
        pending = outgoing.read()
        if pending:
            sock.sendall(pending)
        while b"\r\n" not in received:
            try:
                received += tls.read(4096)
            except ssl.SSLWantReadError:
                pending = outgoing.read()
                if pending:
                    sock.sendall(pending)
                chunk = sock.recv(65536)
                self.assertTrue(chunk, "closed before the greeting")
                incoming.write(chunk)
        self.assertRegex(received, rb"^220 mx\.example\.test ESMTP ipconfirm: your IP is "
                                   rb"192\.0\.2\.44\r\n")

    def test_tls_listener_without_header_or_without_tls_is_closed(self):
        # TLS with no PROXY header first: the ClientHello is not a header.
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.check_hostname = False
        raw = socket.create_connection(("127.0.0.1", self.proxied_tls), timeout=10)
        self.addCleanup(raw.close)
        with self.assertRaises((ssl.SSLError, OSError)):
            ctx.wrap_socket(raw, server_hostname="mx.example.test").recv(100)
        # A header, then plaintext SMTP: no greeting in clear, the handshake fails.
        c = Client(self.proxied_tls)
        self.addCleanup(c.close)
        c.send(b"PROXY TCP4 192.0.2.45 127.0.0.1 4000 465\r\nEHLO mail.sender.test\r\n")
        self.assertTrue(c.closed(timeout=15))
        self.assertNotIn(b"220", c.buf)

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
