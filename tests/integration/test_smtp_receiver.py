"""The SMTP receiver against hostile and careless clients: one test per rule of the receiver.

Raw-socket dialogs (tests/integration/smtp_raw.py) send exact bytes: over-long lines, bare CR
and LF in commands and in DATA (the SMTP smuggling family), NUL and 8-bit bytes, an HTTP
request, pipelining past DATA, a megabyte without CRLF, thousands of pipelined commands from a
client that never reads, a client sending one byte a second. swaks checks the ordinary path.
Small limits in the config keep every test short. "Nothing became a message" is checked in the
server's log: every accepted message logs `queued` or `suppressed`.
"""

import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from smtp_raw import Client, rss_kib  # noqa: E402

DOMAINS = ["example.test", "example.net", "example.org", "example.com"]
MESSAGE_EVENT = re.compile(r" (queued|suppressed) session=")


def receiver_toml(listen, dns, **smtp):
    lines = [
        'hostname = "mx.example.test"',
        "domains = [" + ", ".join(f'"{d}"' for d in DOMAINS) + "]",
        "[smtp]",
        "listen = [" + ", ".join(f'"{x}"' for x in listen) + "]",
    ]
    lines += [f"{k} = {v}" for k, v in smtp.items()]
    lines += ["[dns]", f'servers = ["{dns}"]', "timeout_ms = 300", "tries = 1",
              "report_deadline_ms = 1000",
              "[delivery]", 'mode = "maildir"', 'maildir = "./outbox"',
              "[queue]", 'dir = "./spool"']
    return "\n".join(lines) + "\n"


class ReceiverTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq", "swaks")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.2"])
        cls.port = h.free_port()
        cls.svc = h.Ipconfirm(cls.work, receiver_toml(
            [f"127.0.0.1:{cls.port}", f"[::1]:{cls.port}"], cls.dns.server(),
            max_message_size=20000, max_recipients=3, max_errors=5, max_commands=40,
            command_timeout=3, connection_deadline=8), name="main").start()
        # A second instance for the connection limits and the bulk tests.
        cls.port_b = h.free_port()
        cls.dual = h.free_port()
        cls.svc_b = h.Ipconfirm(cls.work, receiver_toml(
            [f"127.0.0.1:{cls.port_b}", f"[::]:{cls.dual}"], cls.dns.server(),
            max_connections=4, max_connections_per_ip=2, max_commands=20000,
            command_timeout=3, connection_deadline=30), name="limits").start()

    @classmethod
    def tearDownClass(cls):
        rcs = [cls.svc.stop(), cls.svc_b.stop()]
        cls.dns.stop()
        cls.work.cleanup()
        assert rcs == [0, 0], f"ipconfirm exited {rcs} on SIGTERM"

    # --- helpers -------------------------------------------------------------------------

    def client(self, port=None, **kw):
        c = Client(port or self.port, **kw)
        self.addCleanup(c.close)
        return c

    def ready(self, port=None, helo="mail.sender.test", **kw):
        c = self.client(port, **kw)
        self.assertTrue(c.text().startswith("220 "))
        self.assertTrue(c.cmd("EHLO " + helo).startswith("250 "))
        return c

    def messages(self, svc=None):
        return len(MESSAGE_EVENT.findall((svc or self.svc).read_log()))

    def envelope(self, c, rcpts=("ipconfirm@example.test",)):
        self.assertTrue(c.cmd("MAIL FROM:<a@sender.test>").startswith("250 2.1.0"))
        for r in rcpts:
            self.assertTrue(c.cmd(f"RCPT TO:<{r}>").startswith("250 2.1.5"))
        self.assertTrue(c.cmd("DATA").startswith("354 "))

    def assert_in_step(self, c):
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")

    # --- line and message limits ---------------------------------------------------------

    def test_command_line_of_512_bytes_and_no_more(self):
        c = self.ready()
        self.assertEqual(c.cmd("NOOP " + "x" * (512 - 7)), "250 2.0.0 Ok")  # 512 with CRLF
        self.assertRegex(c.cmd("NOOP " + "x" * (512 - 6)), r"^500 5\.5\.2 line too long")
        self.assert_in_step(c)

    def test_text_line_of_1000_bytes_and_no_more(self):
        before = self.messages()
        c = self.ready()
        self.envelope(c)
        c.send(b"Subject: ok\r\n\r\n" + b"a" * 998 + b"\r\n.\r\n")
        self.assertRegex(c.text(), r"^250 2\.0\.0 Ok: queued as")
        self.envelope(c)
        c.send(b"Subject: long\r\n\r\n" + b"a" * 999 + b"\r\n.\r\n")
        self.assertRegex(c.text(), r"^500 5\.5\.2 .*1000 bytes")
        self.assert_in_step(c)
        h.wait_for(lambda: self.messages() == before + 1, 5, "one message logged")
        time.sleep(0.2)
        self.assertEqual(self.messages(), before + 1)

    def test_size_is_announced_and_checked_at_mail(self):
        c = self.client()
        c.text()
        self.assertIn("SIZE 20000", c.cmd("EHLO mail.sender.test"))
        self.assertRegex(c.cmd("MAIL FROM:<a@sender.test> SIZE=20001"), r"^552 5\.3\.4")
        self.assertRegex(c.cmd("MAIL FROM:<a@sender.test> SIZE=99999999999999999999999"),
                         r"^501 5\.5\.4 .*SIZE")
        self.assertTrue(c.cmd("MAIL FROM:<a@sender.test> SIZE=20000").startswith("250 "))

    def test_oversized_data_refused_after_the_dot_in_step(self):
        before = self.messages()
        c = self.ready()
        self.envelope(c)
        body = b"Subject: big\r\n\r\n" + (b"b" * 78 + b"\r\n") * 400  # 32 kB
        c.send(body + b".\r\n")
        self.assertRegex(c.text(), r"^552 5\.3\.4 message size exceeds")
        self.assert_in_step(c)
        # The transaction was reset: a new one starts at MAIL.
        self.envelope(c)
        c.send(b"Subject: small\r\n\r\nok\r\n.\r\n")
        self.assertRegex(c.text(), r"^250 2\.0\.0 Ok: queued")
        h.wait_for(lambda: self.messages() == before + 1, 5, "the small message")

    def test_recipients_per_message(self):
        c = self.ready()
        self.assertTrue(c.cmd("MAIL FROM:<a@sender.test>").startswith("250 "))
        for d in DOMAINS[:3]:
            self.assertTrue(c.cmd(f"RCPT TO:<ipconfirm@{d}>").startswith("250 "))
        self.assertRegex(c.cmd(f"RCPT TO:<ipconfirm@{DOMAINS[3]}>"), r"^452 4\.5\.3")
        self.assertTrue(c.cmd("RSET").startswith("250 "))

    # --- per-session limits --------------------------------------------------------------

    def test_errors_per_session_then_421_and_close(self):
        c = self.ready()
        for _ in range(4):
            self.assertRegex(c.cmd("BOGUS"), r"^500 5\.5\.2")
        self.assertRegex(c.cmd("BOGUS"), r"^421 4\.7\.0 .*too many errors")
        self.assertTrue(c.closed())

    def test_commands_per_session(self):
        c = self.ready()  # EHLO is command 1
        for _ in range(39):
            self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
        self.assertRegex(c.cmd("NOOP"), r"^421 4\.7\.0 .*too many commands")
        self.assertTrue(c.closed())

    # --- connection limits ---------------------------------------------------------------

    def test_connections_per_ip_and_in_total(self):
        greeted = []
        for src in ("127.0.0.10", "127.0.0.10"):
            c = self.client(self.port_b, source=src)
            self.assertTrue(c.text().startswith("220 "))
            greeted.append(c)
        third = self.client(self.port_b, source="127.0.0.10")
        self.assertRegex(third.text(), r"^421 4\.7\.0 .*too many connections")
        self.assertTrue(third.closed())
        # Other addresses are still greeted, up to the total.
        for src in ("127.0.0.11", "127.0.0.12"):
            c = self.client(self.port_b, source=src)
            self.assertTrue(c.text().startswith("220 "), src)
            greeted.append(c)
        full = self.client(self.port_b, source="127.0.0.13")
        self.assertRegex(full.text(), r"^421 4\.7\.0")
        self.assertTrue(full.closed())
        # A slot freed is a slot offered again.
        greeted[0].cmd("QUIT")
        self.assertTrue(greeted[0].closed())

        def greeted_again():
            c = Client(self.port_b, source="127.0.0.13")
            try:
                return c.text().startswith("220 ")
            finally:
                c.close()
        h.wait_for(greeted_again, 5, "a freed slot")
        for c in greeted:
            c.close()

    # --- time limits ---------------------------------------------------------------------

    def test_command_timeout(self):
        c = self.ready()
        self.assertRegex(c.text(timeout=15), r"^421 4\.4\.2 .*timeout")
        self.assertTrue(c.closed())

    def test_total_deadline_cuts_off_a_slow_client(self):
        c = self.ready()
        line = b"NOOP\r\n"
        cut = False
        for i in range(40):  # 40 s at most; the deadline is 8 s, the command timeout 3 s
            try:
                c.send(line[i % len(line):i % len(line) + 1])
            except OSError:
                cut = True
                break
            time.sleep(1)
            if c.closed(timeout=0.01):
                cut = True
                break
        self.assertTrue(cut, "a client sending one byte a second was never cut off")
        self.assertLess(i, 20)

    # --- bounded memory ------------------------------------------------------------------

    def test_a_megabyte_without_crlf_is_refused_and_closed(self):
        # The 500 comes once the line is proven too long, not when (if ever) its CRLF arrives,
        # and a line that still has no CRLF a few kilobytes later closes the connection.
        pid = self.svc_b.proc.pid
        c = self.ready(self.port_b, source="127.0.0.20")
        base = rss_kib(pid)

        def flood():
            try:
                for _ in range(16):
                    c.sock.sendall(b"A" * 65536)
            except OSError:
                pass  # the server closed: that is the point
        sender = threading.Thread(target=flood)
        sender.start()
        self.addCleanup(sender.join, 30)
        self.assertRegex(c.text(timeout=10), r"^500 5\.5\.2 line too long")
        self.assertTrue(c.closed(timeout=10), "the connection stayed open")
        self.assertLess(rss_kib(pid) - base, 4096, "RSS grew by more than 4 MiB")

    def test_an_over_long_line_that_ends_keeps_the_session_in_step(self):
        c = self.ready(self.port_b, source="127.0.0.24")
        c.send(b"NOOP " + b"x" * 2000 + b"\r\n")
        self.assertRegex(c.text(), r"^500 5\.5\.2 line too long")
        self.assert_in_step(c)

    def test_ten_thousand_pipelined_commands_from_a_client_that_never_reads(self):
        pid = self.svc_b.proc.pid
        base = rss_kib(pid)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.bind(("127.0.0.21", 0))
        s.connect(("127.0.0.1", self.port_b))
        s.settimeout(10)
        batch = b"EHLO x\r\n" + b"NOOP\r\n" * 10000
        try:
            s.sendall(batch)
        except (socket.timeout, OSError):
            pass  # the server stopped reading: that is the point
        self.assertLess(rss_kib(pid) - base, 8192, "RSS grew by more than 8 MiB")
        # Others are still served meanwhile.
        c = self.ready(self.port_b, source="127.0.0.22")
        self.assert_in_step(c)
        c.cmd("QUIT")
        s.close()

    def test_thousands_of_header_lines(self):
        pid = self.svc_b.proc.pid
        before = self.messages(self.svc_b)
        c = self.ready(self.port_b, source="127.0.0.23")
        base = rss_kib(pid)
        self.envelope(c)
        c.send(b"".join(b"X-Header-%d: value\r\n" % i for i in range(20000)) +
               b"Subject: many\r\n\r\nbody\r\n.\r\n")
        self.assertRegex(c.text(timeout=30), r"^250 2\.0\.0")
        self.assert_in_step(c)
        self.assertLess(rss_kib(pid) - base, 32768)
        h.wait_for(lambda: self.messages(self.svc_b) == before + 1, 5, "the message")

    # --- line endings and smuggling ------------------------------------------------------

    def test_bare_lf_and_cr_in_commands(self):
        for bad in (b"NOOP\n", b"NOOP\rRSET\r\n", b"NOOP\r\rNOOP\r\n", b"\nNOOP\r\n"):
            c = self.ready()
            c.send(bad)
            self.assertRegex(c.text(), r"^521 5\.5\.2 .*bare", bad)
            self.assertTrue(c.closed(), bad)

    def test_smuggling_variants_in_data_never_make_a_message(self):
        smuggled = (b"MAIL FROM:<evil@sender.test>\r\nRCPT TO:<ipconfirm@example.test>\r\n"
                    b"DATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n")
        endings = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r", b"\r.\n",
                   b"\n..\n", b"\r\n\x00.\r\n"]
        before = self.messages()
        for end in endings:
            c = self.ready()
            self.envelope(c)
            c.send(b"Subject: first\r\n\r\nfirst" + end + smuggled + b"\r\n.\r\n")
            reply = c.text()
            if end == b"\r\n\x00.\r\n":
                # NUL in the content is not a line-ending attack; the message is one message.
                self.assertRegex(reply, r"^(250|5\d\d) ", end)
                if reply.startswith("250"):
                    before += 1
                c.close()
                continue
            self.assertRegex(reply, r"^521 5\.5\.2 .*bare", end)
            self.assertTrue(c.closed(), end)
        time.sleep(0.5)
        self.assertEqual(self.messages(), before)
        self.assertNotIn("evil@sender.test", self.svc.read_log())

    def test_nothing_pipelined_past_data_becomes_a_message(self):
        before = self.messages()
        c = self.ready()
        c.send(b"MAIL FROM:<a@sender.test>\r\nRCPT TO:<ipconfirm@example.test>\r\nDATA\r\n"
               b"Subject: early\r\n\r\nearly\r\n.\r\n")
        self.assertTrue(c.text().startswith("250 "))
        self.assertTrue(c.text().startswith("250 "))
        self.assertRegex(c.text(), r"^554 5\.5\.0 .*pipelining")
        self.assertTrue(c.closed())
        time.sleep(0.3)
        self.assertEqual(self.messages(), before)

    def test_pipelining_before_data_is_fine(self):
        c = self.ready()
        c.send(b"MAIL FROM:<a@sender.test>\r\nRCPT TO:<ipconfirm@example.test>\r\nDATA\r\n")
        self.assertTrue(c.text().startswith("250 "))
        self.assertTrue(c.text().startswith("250 "))
        self.assertTrue(c.text().startswith("354 "))
        c.send(b"Subject: ok\r\n\r\nok\r\n.\r\nNOOP\r\n")
        self.assertRegex(c.text(), r"^250 2\.0\.0 Ok: queued")
        self.assertEqual(c.text(), "250 2.0.0 Ok")

    # --- non-SMTP bytes ------------------------------------------------------------------

    def test_nul_byte_in_a_command(self):
        c = self.ready()
        c.send(b"NO\x00OP\r\n")
        self.assertRegex(c.text(), r"^521 5\.5\.2 .*NUL")
        self.assertTrue(c.closed())

    def test_8bit_bytes_in_a_command(self):
        c = self.ready()
        c.send("NOOP h\u00e9\r\n".encode())
        self.assertRegex(c.text(), r"^5\d\d 5\.5\.2 .*8-bit")
        self.assertTrue(c.closed())

    def test_8bit_address_needs_smtputf8(self):
        c = self.ready()
        self.assertRegex(c.cmd("MAIL FROM:<j\u00f6rg@sender.test>".encode() + b"\r\n"),
                         r"^553 5\.6\.7")
        self.assertTrue(
            c.cmd("MAIL FROM:<j\u00f6rg@sender.test> SMTPUTF8".encode() + b"\r\n")
            .startswith("250 "))

    def test_http_request_line(self):
        c = self.client()
        c.text()
        c.send(b"GET / HTTP/1.1\r\nHost: mx.example.test\r\n\r\n")
        self.assertRegex(c.text(), r"^521 5\.5\.1 .*not a web server")
        self.assertTrue(c.closed())

    # --- never a relay -------------------------------------------------------------------

    def test_relay_battery_is_refused_and_nothing_queued(self):
        battery = [
            "ipconfirm%elsewhere.test@example.test",
            "ipconfirm@elsewhere.test@example.test",
            "@example.test:ipconfirm@elsewhere.test",
            "@example.test,@example.net:ipconfirm@elsewhere.test",
            "@a:b@c",
            "elsewhere.test!ipconfirm@example.test",
            "elsewhere.test!ipconfirm",
            '"ipconfirm@elsewhere.test"@example.test',
            '"ipconfirm%elsewhere.test"@example.test',
            '"elsewhere.test!ipconfirm"@example.test',
            "ipconfirm@[127.0.0.1]",
            "ipconfirm@[IPv6:::1]",
            "ipconfirm@elsewhere.test",
            "ipconfirm@example.test.elsewhere.test",
            "ipconfirm",
            "someone@example.test",
        ]
        before = self.messages()
        c = self.ready()
        self.assertTrue(c.cmd("MAIL FROM:<a@sender.test>").startswith("250 "))
        for i, rcpt in enumerate(battery):
            if i and i % 3 == 0:  # stay under max_errors (5), DATA below included
                c.cmd("QUIT")
                c = self.ready()
                self.assertTrue(c.cmd("MAIL FROM:<a@sender.test>").startswith("250 "))
            self.assertRegex(c.cmd(f"RCPT TO:<{rcpt}>"), r"^5\d\d 5\.\d\.\d", rcpt)
        self.assertRegex(c.cmd("DATA"), r"^554 5\.5\.1")
        rc, out = h.swaks("--server", f"127.0.0.1:{self.port}", "--from", "a@sender.test",
                          "--to", "ipconfirm%elsewhere.test@example.test")
        self.assertEqual(rc, 24, out)
        time.sleep(0.3)
        self.assertEqual(self.messages(), before)

    # --- the small commands --------------------------------------------------------------

    def test_vrfy_help_rset_noop_quit(self):
        c = self.ready()
        self.assertRegex(c.cmd("VRFY ipconfirm"), r"^252 2\.5\.2")
        help_ = c.cmd("HELP")
        self.assertRegex(help_, r"^214 2\.0\.0")
        self.assertIn("ipconfirm@example.test", help_)
        self.assertTrue(c.cmd("MAIL FROM:<a@sender.test>").startswith("250 "))
        self.assertEqual(c.cmd("RSET"), "250 2.0.0 Ok")
        self.assertRegex(c.cmd("RCPT TO:<ipconfirm@example.test>"), r"^503 5\.5\.1")
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
        self.assertRegex(c.cmd("QUIT"), r"^221 2\.0\.0")
        self.assertTrue(c.closed())

    def test_swaks_round_trip(self):
        rc, out = h.swaks("--server", f"127.0.0.1:{self.port}", "--helo", "mail.sender.test",
                          "--from", "a@sender.test", "--to", "ipconfirm@example.test",
                          "--pipeline")
        self.assertEqual(rc, 0, out)
        self.assertIn("PIPELINING", out)
        self.assertRegex(out, r"250 2\.0\.0 Ok: queued as \S+; your IP is 127\.0\.0\.1")

    # --- IPv6 ----------------------------------------------------------------------------

    def test_ipv6_listener_and_peer(self):
        try:
            c = self.client(host="::1")
        except OSError as e:
            self.skipTest(f"no IPv6 loopback: {e}")
        self.assertIn("your IP is ::1", c.text())
        self.assertIn("::1", c.cmd("EHLO mail.sender.test"))

    def test_ipv4_mapped_peer_reported_as_ipv4(self):
        try:
            c = self.client(self.dual, host="127.0.0.1", source="127.0.0.30")
        except OSError as e:
            self.skipTest(f"no dual-stack listener: {e}")
        greeting = c.text()
        self.assertIn("your IP is 127.0.0.30", greeting)
        self.assertNotIn("ffff", greeting)


if __name__ == "__main__":
    h.main()
