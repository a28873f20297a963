"""Pieces shared by the queue and delivery tests (test_queue_*.py).

A restartable ipconfirm, a small SMTP load generator that records the queue id of every
message that got its 250, and a reader that collects the X-Ipconfirm-Queue-Id of every reply
that reached an smtp-sink.
"""

import collections
import os
import re
import smtplib
import socket
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


def send_one(port, n, source="127.0.0.2", timeout=20):
    """Sends one message; returns (code, reply text) of the final dot, or (None, error)."""
    sender = f"s{n}@sender.test"
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
                    if code == 250:
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
    return text + queue


def ephemeral_port_unused():
    """A port on 127.0.0.1 where nothing listens (a smarthost that is down)."""
    return h.free_port()


def wait_port_closed(port, timeout=5):
    def closed():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return False
        except OSError:
            return True
    h.wait_for(closed, timeout, f"port {port} to close")
