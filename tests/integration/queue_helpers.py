"""Pieces shared by the queue and delivery tests (test_queue_*.py).

A restartable ipconfirm, a small SMTP load generator that records the queue id of every
message that got its 250, and a reader that collects the X-Ipconfirm-Queue-Id of every reply
that reached an smtp-sink.
"""

import base64
import collections
import os
import re
import smtplib
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

RECORDS = ["host-record=mail.sender.test,127.0.0.2"]
QUEUED = re.compile(r"queued as (\S+);")


class Server(h.Ipconfirm):
    """ipconfirm that can be killed and started again on the same spool."""

    def start(self, expect_ok=True):
        before = self.read_log().count(" started ") if os.path.exists(self.log_path) else 0
        self.log = open(self.log_path, "ab")
        self.proc = h.subprocess.Popen([h.binary(), "serve", "--config", self.config],
                                       cwd=self.dir, stdout=self.log, stderr=h.subprocess.STDOUT)
        if expect_ok:
            h.wait_for(lambda: self.read_log().count(" started ") > before or
                       self.proc.poll() is not None, 15, "ipconfirm to start")
            if self.proc.poll() is not None:
                raise RuntimeError("ipconfirm exited at start:\n" + self.read_log())
        return self

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def queue(self, *args):
        return self.run("queue", "--config", self.config, *args)


def message(n, sender):
    return (f"From: {sender}\r\nTo: ipconfirm@example.test\r\nSubject: load {n}\r\n"
            f"Message-ID: <load.{n}.{time.time_ns()}@sender.test>\r\n\r\nmessage {n}\r\n")


def send_one(port, n, source="127.0.0.2", timeout=20, sender=None):
    """Sends one message; returns (code, reply text) of the final dot, or (None, error)."""
    sender = sender or f"s{n}@sender.test"
    try:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="mail.sender.test",
                          source_address=(source, 0), timeout=timeout) as c:
            c.ehlo()
            code, resp = c.mail(sender)
            if code != 250:
                return code, resp.decode("latin-1")
            code, resp = c.rcpt("ipconfirm@example.test")
            if code != 250:
                return code, resp.decode("latin-1")
            code, resp = c.data(message(n, sender).encode())
            return code, resp.decode("latin-1")
    except (OSError, smtplib.SMTPException) as e:
        return None, repr(e)


class Load:
    """`count` messages over `clients` parallel connections, each connection sending messages
    one after the other. A connection that fails is opened again (bounded), so the load goes
    on across a restart of the server. Every 250 is recorded with its queue id."""

    def __init__(self, port, count, clients, source="127.0.0.2", deadline=120):
        self.port, self.count, self.source = port, count, source
        self.acked = {}  # queue id -> message number
        self.failed = collections.Counter()
        self.lock = threading.Lock()
        self.next = 0
        self.end = time.monotonic() + deadline
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(clients)]

    def take(self):
        with self.lock:
            if self.next >= self.count or time.monotonic() > self.end:
                return None
            self.next += 1
            return self.next

    def client(self):
        conn = None
        n = self.take()
        tries = 0
        while n is not None and tries < 400:
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", self.port, local_hostname="mail.sender.test",
                                        source_address=(self.source, 0), timeout=20)
                    conn.ehlo()
                sender = f"s{n}@sender.test"
                code, resp = conn.mail(sender)
                if code == 250:
                    code, resp = conn.rcpt("ipconfirm@example.test")
                if code == 250:
                    code, resp = conn.data(message(n, sender).encode())
                text = resp.decode("latin-1")
                with self.lock:
                    if code == 250 and "no reply mail" in text:
                        self.failed["suppressed"] += 1
                    elif code == 250:
                        self.acked[QUEUED.search(text).group(1)] = n
                    else:
                        self.failed[code] += 1
                if code != 250:
                    conn.rset()
                n = self.take()
            except (OSError, smtplib.SMTPException):
                # The server went away (killed) or refused us: the message was not acknowledged,
                # so it is not owed a reply. Try again on a new connection, a bounded number of
                # times.
                with self.lock:
                    self.failed["connection"] += 1
                tries += 1
                conn = None
                time.sleep(0.05)
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def join(self, timeout=180):
        for t in self.threads:
            t.join(timeout)

    def acked_count(self):
        with self.lock:
            return len(self.acked)


def delivered_ids(sink):
    """Counter: queue id -> how many complete replies carrying it reached the sink."""
    seen = collections.Counter()
    for _, msg in sink.messages():
        qid = msg.get("X-Ipconfirm-Queue-Id")
        if qid and msg.get("Auto-Submitted") and msg.is_multipart():
            seen[str(qid).strip()] += 1
    return seen


def config(port, dns, smarthost=None, extra_delivery="", queue=""):
    text = h.config_toml([f"127.0.0.1:{port}"], dns.server(), smarthost=smarthost)
    # config_toml ends with the [queue] table; add keys to [queue] and a second [delivery]
    # would be an error, so delivery keys go in through the text right after "mode".
    if extra_delivery:
        text = text.replace("[queue]\n", extra_delivery.rstrip("\n") + "\n[queue]\n")
    # The tests send many messages from one address: the backscatter limits would suppress
    # most replies.
    return (text + queue + "[reply]\nmax_per_recipient_per_hour = 0\nmax_per_ip_per_hour = 0\n"
            "max_per_network_per_hour = 0\nmax_per_domain_per_hour = 0\n"
            "max_per_site_per_hour = 0\nmax_total_per_minute = 0\n")


def wait_port_closed(port, timeout=5):
    def closed():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return False
        except OSError:
            return True
    h.wait_for(closed, timeout, f"port {port} to close")


class TlsAuthSmarthost:
    """A small SMTP server on 127.0.0.1 that offers STARTTLS and, inside TLS, AUTH PLAIN and
    LOGIN; it accepts mail only from a client that authenticated with `user`/`password`, and
    records each message with whether it came over TLS and which credentials were used."""

    def __init__(self, work, user, password, mechanisms="PLAIN LOGIN", cert=None, key=None):
        (openssl,) = h.require("openssl")
        if cert:
            self.cert, self.key = cert, key
        else:
            self.key = os.path.join(work.path, "smarthost-key.pem")
            self.cert = os.path.join(work.path, "smarthost-cert.pem")
            subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "1", "-subj", "/CN=smarthost.test", "-keyout", self.key, "-out",
                            self.cert], check=True, capture_output=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, self.key)
        self.user, self.password, self.mechanisms = user, password, mechanisms
        self.messages = []  # dicts: tls, auth (user, password) or None, data (bytes)
        self.auth_attempts = []  # every AUTH command's first line, whatever its outcome
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 20

            def handle(self):
                try:
                    sock = outer.session(self.request)
                except OSError:  # a client that drops the session, inside TLS or not
                    return
                if sock is not self.request:
                    sock.close()

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

    def session(self, sock):
        f = sock.makefile("rb")
        tls, auth, mail = False, None, None

        def send(text):
            sock.sendall(text.encode() + b"\r\n")

        def line():
            return f.readline(2048).decode("latin-1").rstrip("\r\n")

        send("220 smarthost.test ESMTP")
        for _ in range(100):  # a session of ours needs about ten commands
            cmd = line()
            verb = cmd.split(" ", 1)[0].upper()
            if not cmd or verb == "QUIT":
                send("221 bye")
                return sock
            if verb == "EHLO":
                ext = [f"AUTH {self.mechanisms}"] if tls else ["STARTTLS"]
                send("\r\n".join([f"250-smarthost.test"] + [f"250-{e}" for e in ext[:-1]] +
                                  [f"250 {ext[-1]}"]))
            elif verb == "STARTTLS" and not tls:
                send("220 go ahead")
                sock = self.ctx.wrap_socket(sock, server_side=True)
                f = sock.makefile("rb")
                tls = True
            elif verb == "AUTH" and tls:
                with self.lock:
                    self.auth_attempts.append(cmd)
                parts = cmd.split(" ")
                if parts[1].upper() not in self.mechanisms.split():
                    send("504 5.5.4 mechanism not offered")
                    continue
                if parts[1].upper() == "PLAIN":
                    blob = parts[2] if len(parts) > 2 else (send("334 "), line())[1]
                    _, u, p = base64.b64decode(blob).decode().split("\0")
                else:
                    send("334 VXNlcm5hbWU6")
                    u = base64.b64decode(line()).decode()
                    send("334 UGFzc3dvcmQ6")
                    p = base64.b64decode(line()).decode()
                if (u, p) == (self.user, self.password):
                    auth = (u, p)
                    send("235 2.7.0 ok")
                else:
                    send("535 5.7.8 bad credentials")
            elif verb == "MAIL":
                if auth is None:
                    send("530 5.7.0 authentication required")
                else:
                    mail = cmd
                    send("250 ok")
            elif verb == "RCPT":
                send("250 ok")
            elif verb == "DATA" and mail:
                send("354 go")
                data = []
                while True:
                    ln = f.readline(4096)
                    if ln in (b".\r\n", b""):
                        break
                    data.append(ln[1:] if ln.startswith(b"..") else ln)
                with self.lock:
                    self.messages.append({"tls": tls, "auth": auth, "data": b"".join(data)})
                send("250 2.0.0 queued")
            elif verb in ("RSET", "NOOP"):
                send("250 ok")
            else:
                send("502 5.5.2 not here")
        return sock

    def queue_ids(self):
        with self.lock:
            out = []
            for m in self.messages:
                found = re.search(rb"^X-Ipconfirm-Queue-Id: (\S+)", m["data"], re.M)
                if found:
                    out.append((found.group(1).decode(), m))
            return out
