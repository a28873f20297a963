"""Replies to addresses that need care on the way out: quoted local parts and UTF-8.

The sender's address is the reply's recipient, whatever its form (RFC 5321 §4.1.2, RFC 6531):
- `"john doe"@sender.test` reaches the smarthost (Postfix's smtp-sink) as a Quoted-string;
- `jorg@bücher.test` (ASCII local part, U-label domain) goes as `jorg@xn--bcher-kva.test`, with
  an all-ASCII header, so that a server without SMTPUTF8 takes it; in MX mode its MX is looked
  up under the A-label name;
- `jörg@sender.test` (a UTF-8 local part, which has no ASCII form) goes with SMTPUTF8 to a
  server that offers it (a small scripted SMTP server), and to smtp-sink, which does not, it
  fails permanently with a log line that says why.
"""

import os
import socketserver
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
import queue_helpers as q  # noqa: E402

IDN = "b\u00fccher.test"
ACE = "xn--bcher-kva.test"
JOERG = "j\u00f6rg@sender.test"
RECORDS = q.RECORDS + [f"host-record=mx.{ACE},127.0.0.1", f"mx-host={ACE},mx.{ACE},10"]


class Utf8Smarthost:
    """An SMTP server on 127.0.0.1 that offers SMTPUTF8 and records every command line (as
    bytes) and every message."""

    def __init__(self):
        self.lines, self.messages = [], []
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 20

            def handle(self):
                def send(text):
                    self.wfile.write(text + b"\r\n")

                send(b"220 utf8.test ESMTP")
                for _ in range(50):
                    cmd = self.rfile.readline(2048).rstrip(b"\r\n")
                    with outer.lock:
                        outer.lines.append(cmd)
                    verb = cmd.split(b" ", 1)[0].upper()
                    if not cmd or verb == b"QUIT":
                        send(b"221 bye")
                        return
                    if verb == b"EHLO":
                        send(b"250-utf8.test\r\n250-8BITMIME\r\n250 SMTPUTF8")
                    elif verb == b"DATA":
                        send(b"354 go ahead")
                        data = b""
                        while True:
                            line = self.rfile.readline(100000)
                            if line in (b".\r\n", b""):
                                break
                            data += line
                        with outer.lock:
                            outer.messages.append(data)
                        send(b"250 2.0.0 ok")
                    else:
                        send(b"250 2.0.0 ok")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def send(port, sender, n):
    """One message from `sender` (SMTPUTF8 when it needs it); the 250's queue id."""
    import smtplib
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mail.sender.test",
                      source_address=("127.0.0.2", 0), timeout=20) as c:
        c.ehlo()
        # smtplib's mail() would unquote "john doe"@...: the command goes as it is written.
        c.command_encoding = "utf-8"
        code, resp = c.docmd("MAIL", f"FROM:<{sender}>" + ("" if sender.isascii() else " SMTPUTF8"))
        assert code == 250, (code, resp)
        code, resp = c.rcpt("ipconfirm@example.test")
        assert code == 250, (code, resp)
        code, resp = c.data(q.message(n, "x@sender.test").encode())
        assert code == 250, (code, resp)
        return q.QUEUED.search(resp.decode()).group(1)


class ReplyAddresses(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq", "smtp-sink")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, RECORDS)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.work.cleanup()

    def serve(self, name, smarthost=None, mx_port=None):
        port = h.free_port()
        if mx_port:
            text = q.config(port, self.dns, "127.0.0.1:9",
                            extra_delivery=f"allow_private = true\nmx_port = {mx_port}\n")
            text = text.replace('mode = "smarthost"', 'mode = "mx"')
        else:
            text = q.config(port, self.dns, smarthost)
        svc = q.Server(self.work, text, name=name).start()
        self.addCleanup(svc.stop)
        return svc, port

    def outcome(self, svc, qid):
        """The log line that ended the queue entry `qid` (delivered or bounced)."""
        def find():
            for line in svc.read_log().splitlines():
                if f"queue_id={qid}" in line and (" delivered " in line or " bounced " in line):
                    return line
            return None
        return h.wait_for(find, 20, f"the outcome of {qid}")

    def test_smtp_sink_quoted_local_part_and_idn_domain(self):
        sink = h.SmtpSink(self.work)
        self.addCleanup(sink.stop)
        svc, port = self.serve("sink", smarthost=sink.endpoint())

        qid = send(port, '"john doe"@sender.test', 1)
        self.assertIn(" delivered ", self.outcome(svc, qid))
        env, msg = [(e, m) for e, m in sink.messages()
                    if m.get("X-Ipconfirm-Queue-Id", "").strip() == qid][0]
        self.assertEqual(env["rcpt"], ['<"john doe"@sender.test>'])
        self.assertEqual(env["mail"], "<>")
        self.assertIn('"john doe"@sender.test', str(msg["To"]))

        qid = send(port, f"jorg@{IDN}", 2)
        self.assertIn(" delivered ", self.outcome(svc, qid))
        files = [f for f in sink.files() if qid.encode() in read(f)]
        self.assertEqual(len(files), 1)
        with open(files[0], "rb") as f:
            raw = f.read()
        env, msg = h.parse_sink_file(raw)
        self.assertEqual(env["rcpt"], [f"<jorg@{ACE}>"])
        header = raw.split(b"\n\n", 1)[0]
        self.assertTrue(header.isascii(), header)
        self.assertIn(f"<jorg@{ACE}>".encode(), header)

        qid = send(port, JOERG, 3)
        line = self.outcome(svc, qid)
        self.assertIn(" bounced ", line)
        self.assertIn("RCPT TO: the recipient's address has non-ASCII characters and the server "
                      "does not offer SMTPUTF8", line)
        self.assertFalse(any(qid.encode() in read(f) for f in sink.files()))

    def test_smtputf8_server_gets_the_utf8_address(self):
        smarthost = Utf8Smarthost()
        self.addCleanup(smarthost.stop)
        svc, port = self.serve("utf8", smarthost=smarthost.endpoint())
        qid = send(port, JOERG, 4)
        self.assertIn(" delivered ", self.outcome(svc, qid))
        with smarthost.lock:
            lines, messages = list(smarthost.lines), list(smarthost.messages)
        mails = [m for m in lines if m.startswith(b"MAIL FROM:")]
        self.assertEqual(len(mails), 1, lines)
        # BODY=8BITMIME may come before it (the report quotes the UTF-8 address).
        self.assertRegex(mails[0], rb"^MAIL FROM:<>( BODY=8BITMIME)? SMTPUTF8$")
        self.assertIn(b"RCPT TO:<" + JOERG.encode() + b">", lines)
        self.assertEqual(len(messages), 1)
        self.assertIn(b"To: <" + JOERG.encode() + b">", messages[0])

        # An ASCII recipient on the same server: no SMTPUTF8 asked for.
        qid = send(port, '"john doe"@sender.test', 5)
        self.assertIn(" delivered ", self.outcome(svc, qid))
        with smarthost.lock:
            mails = [m for m in smarthost.lines if m.startswith(b"MAIL FROM:")]
            self.assertEqual(len(mails), 2, smarthost.lines)
            self.assertNotIn(b"SMTPUTF8", mails[1])
            self.assertIn(b'RCPT TO:<"john doe"@sender.test>', smarthost.lines)

    def test_mx_of_an_idn_domain_is_looked_up_as_a_labels(self):
        mx_port = h.free_port()
        sink = h.SmtpSink(self.work, port=mx_port)
        self.addCleanup(sink.stop)
        svc, port = self.serve("mx", mx_port=mx_port)
        qid = send(port, f"jorg@{IDN}", 6)
        self.assertIn(" delivered ", self.outcome(svc, qid))
        self.assertEqual(q.delivered_ids(sink)[qid], 1)


if __name__ == "__main__":
    h.main()
