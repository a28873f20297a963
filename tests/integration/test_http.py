"""The HTTP listener: /metrics (checked by Prometheus's own `promtool check metrics` on real
output after real traffic), /healthz (200, then 503 with an unwritable spool and with a full
queue), and HTTP/1.1 itself: 404, 405, 400, 431, HEAD, keep-alive and pipelining, HTTP/1.0,
the connection cap (503) and the request timeout, each on raw sockets so that the exact bytes
are what the test says.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from smtp_raw import Client  # noqa: E402

RECORDS = ["host-record=mail.sender.test,127.0.0.2"]


def http_raw(port, data, timeout=10):
    """Sends `data` on a fresh connection and returns every byte until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    return out


def parse_responses(raw):
    """Splits a byte stream into [(status, headers dict, body)] using Content-Length."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        raw = rest[n:]
    return out


def get(port, path, method="GET"):
    req = f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
    return parse_responses(http_raw(port, req))[0]


def metrics(port):
    status, headers, body = get(port, "/metrics")
    assert status == 200, status
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return body, values


class Http(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq", "swaks", "smtp-sink", "openssl")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, RECORDS)
        try:
            cls.start_server()
        except Exception:
            cls.dns.stop()
            if getattr(cls, "sink", None):
                cls.sink.stop()
            cls.work.cleanup()
            raise

    @classmethod
    def start_server(cls):
        cls.sink = h.SmtpSink(cls.work)
        cls.key = os.path.join(cls.work.path, "key.pem")
        cls.cert = os.path.join(cls.work.path, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=mx.example.test", "-keyout", cls.key, "-out", cls.cert],
                       check=True, capture_output=True, timeout=60)
        cls.port = h.free_port()
        cls.http = h.free_port()
        toml = h.config_toml([f"127.0.0.1:{cls.port}"], cls.dns.server(),
                             smarthost=cls.sink.endpoint(),
                             extra=f'[http]\nlisten = ["127.0.0.1:{cls.http}"]\n'
                                   "max_connections = 4\nrequest_timeout = 2\n"
                                   "max_request_size = 2048\nmax_header_fields = 20\n")
        toml = toml.replace("command_timeout = 10\n", "command_timeout = 10\n"
                            f'tls_cert = "{cls.cert}"\ntls_key = "{cls.key}"\n')
        cls.svc = h.Ipconfirm(cls.work, toml).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.sink.stop()
        cls.dns.stop()
        cls.work.cleanup()
        assert rc == 0, f"ipconfirm exited {rc} on SIGTERM"

    # --- /metrics -------------------------------------------------------------------------

    def test_metrics_after_traffic_pass_promtool(self):
        # A reply mail (delivered to the sink), a suppressed one (RFC 3834), STARTTLS, a
        # protocol error, a postmaster message.
        rc, out = h.swaks("--server", f"127.0.0.1:{self.port}", "--helo", "mail.sender.test",
                          "--from", "m1@sender.test", "--to", "ipconfirm@example.test", "--tls")
        self.assertEqual(rc, 0, out)
        rc, out = h.swaks("--server", f"127.0.0.1:{self.port}", "--helo", "mail.sender.test",
                          "--from", "m2@sender.test", "--to", "ipconfirm@example.test",
                          "--add-header", "Auto-Submitted: auto-replied")
        self.assertEqual(rc, 0, out)
        self.assertIn("no reply mail: auto-submitted", out)
        with Client(self.port) as c:
            c.reply()
            self.assertTrue(c.cmd("GET / HTTP/1.1").startswith("521"))
        h.wait_for(lambda: len(self.sink.messages()) >= 1, 20, "the reply in the sink")

        def delivered():
            return metrics(self.http)[1].get("ipconfirm_replies_delivered_total", 0) >= 1
        h.wait_for(delivered, 20, "the delivery to be counted")
        body, m = metrics(self.http)
        self.assertGreaterEqual(m['ipconfirm_messages_accepted_total{kind="report"}'], 2)
        self.assertGreaterEqual(m["ipconfirm_replies_queued_total"], 1)
        self.assertGreaterEqual(
            m['ipconfirm_replies_suppressed_total{reason="auto-submitted"}'], 1)
        self.assertGreaterEqual(m["ipconfirm_replies_delivered_total"], 1)
        self.assertGreaterEqual(m["ipconfirm_reply_delivery_seconds_count"], 1)
        self.assertGreaterEqual(m["ipconfirm_smtp_dot_to_250_seconds_count"], 2)
        self.assertGreaterEqual(m['ipconfirm_smtp_dot_to_250_seconds_bucket{le="+Inf"}'], 2)
        self.assertGreaterEqual(m["ipconfirm_smtp_connections_total"], 3)
        self.assertGreaterEqual(m['ipconfirm_smtp_sessions_total{outcome="quit"}'], 2)
        self.assertGreaterEqual(m['ipconfirm_smtp_sessions_total{outcome="protocol_error"}'], 1)
        self.assertGreaterEqual(
            m['ipconfirm_smtp_tls_handshakes_total{mode="starttls",result="ok"}'], 1)
        self.assertGreater(m["ipconfirm_dns_queries_total"], 0)
        self.assertGreaterEqual(m['ipconfirm_http_responses_total{code="200"}'], 1)
        self.assertEqual(m['ipconfirm_build_info{version="0.1.0"}'], 1)
        self.assertIn("ipconfirm_queue_entries", m)
        self.assertIn("ipconfirm_queue_oldest_age_seconds", m)

        # Prometheus's own checker (format and naming conventions) on this real output.
        promtool = h.find_tool("promtool")
        if not promtool:
            self.skipTest("promtool is not installed (Debian package prometheus)")
        p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())

    def test_metrics_content_type_and_head(self):
        status, headers, body = get(self.http, "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        self.assertEqual(int(headers["content-length"]), len(body))
        raw = http_raw(self.http, b"HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        head, _, rest = raw.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK"))
        self.assertRegex(head.decode(), r"Content-Length: \d+")
        self.assertEqual(rest, b"", "HEAD must not send a body")

    # --- /healthz -------------------------------------------------------------------------

    def test_healthz_ok(self):
        status, _, body = get(self.http, "/healthz")
        self.assertEqual(status, 200, body)
        self.assertEqual(body, b"service: ok\nsmtp: ok\nspool: ok\nqueue: ok\n")

    # --- HTTP itself ----------------------------------------------------------------------

    def test_unknown_path_is_404(self):
        status, _, body = get(self.http, "/nope")
        self.assertEqual((status, body), (404, b"404 Not Found\n"))

    def test_other_methods_are_405_with_allow_and_close(self):
        raw = http_raw(self.http, b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                                  b"\r\nhello")
        (status, headers, _), = parse_responses(raw)
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET, HEAD")
        self.assertEqual(headers["connection"], "close")
        status, _, _ = get(self.http, "/metrics", method="DELETE")
        self.assertEqual(status, 405)

    def test_bad_requests_are_400(self):
        for req in (b"garbage\r\n\r\n",
                    b"GET /metrics HTTP/1.1\r\n\r\n",                        # no Host
                    b"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  # two
                    b"GET * HTTP/1.1\r\nHost: t\r\n\r\n",
                    b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
                    b"GET /metrics HTTP/1.1\nHost: t\n\n"):
            raw = http_raw(self.http, req)
            self.assertTrue(raw.startswith(b"HTTP/1.1 400 Bad Request\r\n"), (req, raw[:80]))
            self.assertIn(b"Connection: close\r\n", raw)

    def test_oversized_header_and_too_many_fields_are_431(self):
        big = b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n"
        self.assertTrue(http_raw(self.http, big).startswith(b"HTTP/1.1 431 "))
        many = (b"GET /metrics HTTP/1.1\r\nHost: t\r\n" +
                b"".join(b"X-%d: 1\r\n" % i for i in range(25)) + b"\r\n")
        self.assertTrue(http_raw(self.http, many).startswith(b"HTTP/1.1 431 "))

    def test_keep_alive_and_pipelining(self):
        with socket.create_connection(("127.0.0.1", self.http), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            first = b""
            while b"queue: ok\n" not in first:
                first += s.recv(4096)
            self.assertIn(b"Connection: keep-alive", first)
            # Two requests in one write, on the same connection.
            s.sendall(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                      b"HEAD /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            rest = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                rest += chunk
        # HEAD has a Content-Length but no body: cut the stream by hand.
        a, _, b = rest.partition(b"404 Not Found\n")
        self.assertTrue(a.startswith(b"HTTP/1.1 404 "))
        self.assertTrue(b.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(b.endswith(b"Connection: close\r\n\r\n"))

    def test_http10_closes_unless_asked(self):
        raw = http_raw(self.http, b"GET /healthz HTTP/1.0\r\n\r\n")
        self.assertTrue(raw.startswith(b"HTTP/1.1 200 OK"))
        self.assertIn(b"Connection: close", raw)

    def test_connection_cap_answers_503(self):
        held = []
        try:
            # max_connections = 4: hold four, the fifth is refused with 503.
            for _ in range(4):
                s = socket.create_connection(("127.0.0.1", self.http), timeout=10)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                got = b""
                while b"queue: ok\n" not in got:
                    got += s.recv(4096)
                held.append(s)
            raw = http_raw(self.http, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertTrue(raw.startswith(b"HTTP/1.1 503 "), raw[:80])
            self.assertIn(b"Retry-After: 5", raw)
        finally:
            for s in held:
                s.close()
        h.wait_for(lambda: get(self.http, "/healthz")[0] == 200, 10, "a free slot again")

    def test_idle_and_slow_connections_are_closed(self):
        # request_timeout = 2: a connection that sends nothing, or half a header, is closed.
        for data in (b"", b"GET /metrics HTTP/1.1\r\nHo"):
            with socket.create_connection(("127.0.0.1", self.http), timeout=30) as s:
                s.sendall(data)
                self.assertEqual(s.recv(4096), b"", "the server closes without a response")


class HealthFailures(unittest.TestCase):
    """503 when the spool cannot take a reply: its segments/ or tmp/ is not a folder, or the
    queue is full."""

    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq", "swaks")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, RECORDS)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.work.cleanup()

    def serve(self, name, queue_extra="", smarthost=None):
        port, http = h.free_port(), h.free_port()
        toml = h.config_toml([f"127.0.0.1:{port}"], self.dns.server(), smarthost=smarthost,
                             extra=queue_extra + f'[http]\nlisten = ["127.0.0.1:{http}"]\n')
        svc = h.Ipconfirm(self.work, toml, name=name).start()
        self.addCleanup(lambda: self.assertEqual(svc.stop(), 0, "exit status on SIGTERM"))
        return svc, port, http

    def test_unwritable_spool_is_503_then_200_again(self):
        svc, port, http = self.serve("unwritable")
        self.assertEqual(get(http, "/healthz")[0], 200)
        # segments/, where new replies are appended (no segment is open yet: no mail so far).
        tmp = os.path.join(svc.dir, "spool", "segments")
        shutil.rmtree(tmp)
        with open(tmp, "w") as f:  # a file where the folder was: no file can be made in it
            f.write("x")

        def unhealthy():
            status, _, body = get(http, "/healthz")
            return body if status == 503 else None
        body = h.wait_for(unhealthy, 10, "/healthz to say 503")
        self.assertIn(b"spool: not writable (open: Not a directory)", body)
        self.assertIn(b"smtp: ok\n", body)
        # The same fault refuses mail with 451, never 250.
        rc, out = h.swaks("--server", f"127.0.0.1:{port}", "--from", "a@sender.test",
                          "--to", "ipconfirm@example.test")
        self.assertRegex(out, r"451 4\.3\.0")
        os.unlink(tmp)
        os.mkdir(tmp, 0o700)
        h.wait_for(lambda: get(http, "/healthz")[0] == 200, 10, "/healthz to recover")
        # tmp/, where stored reports and retried replies are written, is probed too.
        tmp = os.path.join(svc.dir, "spool", "tmp")
        shutil.rmtree(tmp)
        with open(tmp, "w") as f:
            f.write("x")
        body = h.wait_for(unhealthy, 10, "/healthz to say 503 for tmp/")
        self.assertIn(b"spool: not writable (open: Not a directory)", body)
        os.unlink(tmp)
        os.mkdir(tmp, 0o700)
        h.wait_for(lambda: get(http, "/healthz")[0] == 200, 10, "/healthz to recover")

    def test_full_queue_is_503(self):
        dead = h.free_port()  # nobody listens: the reply stays queued
        svc, port, http = self.serve("full", queue_extra="max_entries = 1\nretry_first = 3600\n",
                                     smarthost=f"127.0.0.1:{dead}")
        rc, out = h.swaks("--server", f"127.0.0.1:{port}", "--from", "a@sender.test",
                          "--to", "ipconfirm@example.test")
        self.assertEqual(rc, 0, out)
        status, _, body = get(http, "/healthz")
        self.assertEqual(status, 503, body)
        self.assertIn(b"queue: full (1 of 1)", body)
        _, m = metrics(http)
        self.assertEqual(m["ipconfirm_queue_entries"], 1)
        self.assertEqual(m["ipconfirm_queue_capacity"], 1)
        self.assertGreater(m["ipconfirm_queue_oldest_age_seconds"], 0)
        h.wait_for(lambda: metrics(http)[1]["ipconfirm_replies_deferred_total"] >= 1, 30,
                   "the failed attempt to be counted")
        rc, out = h.swaks("--server", f"127.0.0.1:{port}", "--from", "b@sender.test",
                          "--to", "ipconfirm@example.test")
        self.assertRegex(out, r"451 4\.3\.0")
        self.assertEqual(
            metrics(http)[1]['ipconfirm_messages_tempfailed_total{reason="queue_full"}'], 1)


if __name__ == "__main__":
    h.main()
