"""STARTTLS (RFC 3207) and implicit TLS (RFC 8314) on the receiver.

A certificate is generated at test time with openssl. swaks --tls and `openssl s_client
-starttls smtp` are the clients; raw dialogs check that plaintext pipelined after STARTTLS is
refused (CVE-2011-0411), that the session forgets the plaintext EHLO/MAIL after the handshake,
that TLS 1.1 is refused (by us: the same client completes TLS 1.1 with `openssl s_server`), and
that the TLS version and cipher reach the report (connection.tls).
"""

import os
import re
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from smtp_raw import Client  # noqa: E402

DOMAINS = ["example.test"]


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        (cls.openssl,) = h.require("openssl", "swaks", "dnsmasq")[:1]
        cls.work = h.Workdir()
        cls.key = os.path.join(cls.work.path, "key.pem")
        cls.cert = os.path.join(cls.work.path, "cert.pem")
        subprocess.run([cls.openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "1", "-subj", "/CN=mx.example.test", "-keyout", cls.key, "-out",
                        cls.cert], check=True, capture_output=True, timeout=60)
        cls.dns = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.2"])
        cls.port = h.free_port()
        cls.tls_port = h.free_port()
        cls.outbox = os.path.join(cls.work.path, "outbox")
        toml = h.config_toml([f"127.0.0.1:{cls.port}"], cls.dns.server(), maildir=cls.outbox)
        toml = toml.replace("command_timeout = 10\n",
                            "command_timeout = 5\n"
                            f'tls_cert = "{cls.cert}"\ntls_key = "{cls.key}"\n'
                            f'implicit_tls_listen = ["127.0.0.1:{cls.tls_port}"]\n')
        cls.svc = h.Ipconfirm(cls.work, toml).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.dns.stop()
        cls.work.cleanup()
        assert rc == 0, f"ipconfirm exited {rc} on SIGTERM"

    def replies(self):
        d = os.path.join(self.outbox, "new")
        return [os.path.join(d, f) for f in os.listdir(d)] if os.path.isdir(d) else []

    def report_for(self, sender):
        def find():
            for p in self.replies():
                with open(p, "rb") as f:
                    raw = f.read()
                if sender.encode() in raw:
                    import email
                    import email.policy
                    return email.message_from_bytes(raw, policy=email.policy.default)
            return None
        return h.report_json(h.wait_for(find, 15, f"the reply to {sender}"))

    def client_context(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.check_hostname = False
        return ctx

    def test_starttls_with_swaks_reaches_the_report(self):
        rc, out = h.swaks("--server", f"127.0.0.1:{self.port}", "--tls", "--helo",
                          "mail.sender.test", "--from", "tls1@sender.test",
                          "--to", "ipconfirm@example.test")
        self.assertEqual(rc, 0, out)
        self.assertIn("STARTTLS", out)
        self.assertRegex(out, r"<~  250 2\.0\.0 Ok: queued")
        tls = self.report_for("tls1@sender.test")["connection"]["tls"]
        self.assertRegex(tls["version"], r"^TLSv1\.[23]$")
        self.assertTrue(tls["cipher"])

    def test_openssl_s_client_starttls(self):
        p = subprocess.run([self.openssl, "s_client", "-starttls", "smtp", "-connect",
                            f"127.0.0.1:{self.port}", "-CAfile", self.cert, "-quiet",
                            "-verify_return_error"],
                           input=b"EHLO mail.sender.test\r\nQUIT\r\n", capture_output=True,
                           timeout=30)
        out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
        self.assertIn("250-mx.example.test Hello mail.sender.test", out)
        self.assertNotIn("STARTTLS", out.split("Hello", 1)[1])  # not offered twice
        self.assertIn("221 2.0.0", out)

    def test_plaintext_pipelined_after_starttls_is_refused(self):
        before = len(self.replies())
        c = Client(self.port)
        self.addCleanup(c.close)
        c.text()
        c.cmd("EHLO mail.sender.test")
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@sender.test>\r\n")
        self.assertRegex(c.text(), r"^554 5\.5\.0 .*pipelining")
        self.assertTrue(c.closed())
        time.sleep(0.3)
        self.assertEqual(len(self.replies()), before)

    def test_session_resets_after_the_handshake(self):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        c = Client.__new__(Client)
        c.sock, c.buf, c.timeout = raw, b"", 10
        self.addCleanup(c.close)
        c.text()
        self.assertIn("STARTTLS", c.cmd("EHLO mail.sender.test"))
        self.assertTrue(c.cmd("MAIL FROM:<a@sender.test>").startswith("250"))
        self.assertRegex(c.cmd("STARTTLS"), r"^220 2\.0\.0")
        c.sock = self.client_context().wrap_socket(raw, server_hostname="mx.example.test")
        self.assertRegex(c.cmd("MAIL FROM:<a@sender.test>"), r"^503 5\.5\.1")
        ehlo = c.cmd("EHLO mail.sender.test")
        self.assertNotIn("STARTTLS", ehlo)
        self.assertRegex(c.cmd("STARTTLS"), r"^502 5\.5\.1")
        self.assertTrue(c.cmd("MAIL FROM:<a@sender.test>").startswith("250"))

    def test_implicit_tls_listener(self):
        rc, out = h.swaks("--server", f"127.0.0.1:{self.tls_port}", "--tlsc", "--helo",
                          "mail.sender.test", "--from", "tls2@sender.test",
                          "--to", "ipconfirm@example.test")
        self.assertEqual(rc, 0, out)
        self.assertNotIn("STARTTLS", out)
        tls = self.report_for("tls2@sender.test")["connection"]["tls"]
        self.assertRegex(tls["version"], r"^TLSv1\.[23]$")

    # The client must be willing to speak TLS 1.1, or a refusal proves nothing: OpenSSL 3 only
    # offers it at security level 0. The same s_client command first completes a TLS 1.1
    # handshake with `openssl s_server -tls1_1`, then fails against ipconfirm, whose log names
    # the refused protocol.
    TLS11 = ["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]

    def s_client_tls11(self, port, *extra):
        p = subprocess.run([self.openssl, "s_client", "-connect", f"127.0.0.1:{port}",
                            *self.TLS11, *extra], input=b"", capture_output=True, timeout=30)
        return p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")

    def test_tls_1_1_client_is_willing(self):
        port = h.free_port()
        # s_server stops when its stdin ends: keep a pipe open while it serves. It says ACCEPT
        # when it listens (a probe connection would use up its one accept).
        log_path = os.path.join(self.work.path, "s_server.log")
        log = open(log_path, "wb")
        server = subprocess.Popen([self.openssl, "s_server", "-accept", f"127.0.0.1:{port}",
                                   "-cert", self.cert, "-key", self.key, "-naccept", "1",
                                   *self.TLS11], stdin=subprocess.PIPE, stdout=log,
                                  stderr=subprocess.STDOUT)

        def stop():
            server.stdin.close()
            server.kill()
            server.wait()
            log.close()
        self.addCleanup(stop)

        def listening():
            with open(log_path, "rb") as f:
                return b"ACCEPT" in f.read() or server.poll() is not None
        h.wait_for(listening, 10, "s_server")
        out = self.s_client_tls11(port)
        self.assertRegex(out, r"Protocol *: TLSv1\.1")
        self.assertRegex(out, r"New, \S+, Cipher is [A-Z0-9]")  # a cipher: it completed
        self.assertNotIn("Cipher is (NONE)", out)

    def test_tls_1_1_is_refused_on_both_kinds_of_listener(self):
        for port, extra in ((self.tls_port, ()), (self.port, ("-starttls", "smtp"))):
            with self.subTest(port=port):
                failures = self.svc.read_log().count(" tls-failed ") + \
                    self.svc.read_log().count("TLS handshake failed")
                out = self.s_client_tls11(port, *extra)
                self.assertIn("Cipher is (NONE)", out)
                # The server said no: its alert, and its log line with the reason.
                self.assertRegex(out, r"alert protocol version|unsupported protocol")
                h.wait_for(lambda: self.svc.read_log().count(" tls-failed ") +
                           self.svc.read_log().count("TLS handshake failed") > failures, 5,
                           "the server's log line")
                self.assertRegex(self.svc.read_log(), r"unsupported protocol")

    def test_plaintext_on_the_implicit_tls_listener_is_not_answered(self):
        c = Client(self.tls_port)
        self.addCleanup(c.close)
        c.send(b"EHLO mail.sender.test\r\n")
        self.assertTrue(c.closed(timeout=15))
        self.assertNotRegex(c.buf, re.compile(rb"^2\d\d"))

    def test_stalled_handshake_is_cut_off(self):
        c = Client(self.tls_port)
        self.addCleanup(c.close)
        self.assertTrue(c.closed(timeout=20))  # the command timeout is 5 s


if __name__ == "__main__":
    h.main()
