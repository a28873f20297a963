"""Direct MX delivery against slow and hostile destinations.

- Twenty domains whose MX host (127.0.0.66) accepts connections and never says a word: their
  replies take every delivery slot they can, yet a reply to a good domain (MX on 127.0.0.1, an
  smtp-sink on the same port) is delivered while all twenty are still pending (their
  connections open, none deferred yet). Each domain gets at most max_per_domain sessions.
- A domain with 200 MX records, none of which resolves: one attempt makes at most 1 + 2 x 10
  lookups (it made 401).
- The attempt deadline ends an attempt that a slow server would otherwise hold for minutes.
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
import queue_helpers as q  # noqa: E402

SLOW = [f"slow{n}.test" for n in range(20)]
TARPIT = "127.0.0.66"
RECORDS = (q.RECORDS + ["host-record=tarpit.test,127.0.0.66", "host-record=good-mx.test,127.0.0.1",
                        "mx-host=good.test,good-mx.test,10"] +
           [f"mx-host={d},tarpit.test,10" for d in SLOW] +
           [f"mx-host=many.test,mx{n:03d}.many.test,{n}" for n in range(200)])


class Tarpit:
    """Accepts on TARPIT:port and stays silent; counts the connections it holds open."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((TARPIT, port))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.conns = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            with self.lock:
                self.conns.append(c)

    def open_now(self):
        """Connections the client has not closed."""
        with self.lock:
            alive = 0
            for c in self.conns:
                try:
                    c.setblocking(False)
                    if c.recv(1, socket.MSG_PEEK) == b"":
                        continue  # closed by the client
                    alive += 1  # it sent something: still open
                except BlockingIOError:
                    alive += 1
                except OSError:
                    pass
            return alive

    def total(self):
        with self.lock:
            return len(self.conns)

    def stop(self):
        self.stopping = True
        self.thread.join(2)
        with self.lock:
            for c in self.conns:
                c.close()
        self.sock.close()


class SlowMx(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq", "smtp-sink")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, RECORDS)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.work.cleanup()

    def serve(self, name, delivery=""):
        self.mx_port = h.free_port()
        self.sink = h.SmtpSink(self.work, port=self.mx_port)
        self.addCleanup(self.sink.stop)
        self.tarpit = Tarpit(self.mx_port)
        self.addCleanup(self.tarpit.stop)
        self.port = h.free_port()
        text = q.config(self.port, self.dns, "127.0.0.1:9", queue="retry_first = 600\n",
                        extra_delivery=f"allow_private = true\nmx_port = {self.mx_port}\n" +
                        delivery)
        text = text.replace('mode = "smarthost"', 'mode = "mx"')
        self.svc = q.Server(self.work, text, name=name).start()
        self.addCleanup(self.svc.stop)

    def send(self, n, sender):
        code, text = q.send_one(self.port, n, sender=sender)
        self.assertEqual(code, 250, text)
        return q.QUEUED.search(text).group(1)

    def test_slow_destinations_do_not_hold_up_a_good_one(self):
        self.serve("slow")
        for n, domain in enumerate(SLOW):
            self.send(n, f"user@{domain}")
        # Every slow domain has its one reply in an SMTP session that waits for a greeting.
        h.wait_for(lambda: self.tarpit.open_now() >= len(SLOW), 30, "20 sessions at the tarpit")
        start = time.monotonic()
        good = self.send(100, "user@good.test")
        h.wait_for(lambda: q.delivered_ids(self.sink)[good], 90, "the good reply")
        print(f"\nthe good reply arrived {time.monotonic() - start:.1f} s after its 250, with "
              f"{self.tarpit.open_now()} slow sessions open", flush=True)
        # The order is the point: the good reply went out while all twenty still waited.
        deferred = re.findall(r"deferred queue_id=\S+ to=\S+", self.svc.read_log())
        self.assertEqual(deferred, [])
        self.assertEqual(self.tarpit.open_now(), len(SLOW))
        self.assertEqual(self.tarpit.total(), len(SLOW))

    def test_two_sessions_per_domain(self):
        self.serve("per-domain")
        for n in range(6):
            self.send(n, f"user{n}@slow0.test")
        h.wait_for(lambda: self.tarpit.total() >= 2, 30, "two sessions at the tarpit")
        # The other four wait for those two, without a session of their own.
        good = self.send(100, "user@good.test")
        h.wait_for(lambda: q.delivered_ids(self.sink)[good], 30, "the good reply")
        self.assertEqual(self.tarpit.total(), 2)

    def test_mx_lookups_per_attempt_are_bounded(self):
        self.serve("lookups")
        qid = self.send(1, "user@many.test")
        line = h.wait_for(lambda: re.search(rf"deferred queue_id={re.escape(qid)} .*",
                                            self.svc.read_log()), 60, "the attempt").group(0)
        time.sleep(0.5)
        with open(self.dns.log.name) as f:
            # Lower case: the names go out in random letter case (0x20).
            queries = re.findall(r"query\[(\w+)\] (\S+) from", f.read().lower())
        # Only the delivery's: the report's SPF and DMARC lookups for the sender many.test
        # (TXT many.test, TXT _dmarc.many.test, ...) are not part of an attempt.
        about = [(t, n) for t, n in queries
                 if (t == "mx" and n == "many.test") or
                 (t in ("a", "aaaa") and n.endswith(".many.test"))]
        print(f"\nqueries for one attempt to a domain with 200 MX records: {len(about)}",
              flush=True)
        # The MX query shows twice (its answer is too big for UDP: truncated, then over TCP),
        # then AAAA and A for at most 10 hosts. It was 2 + 2 x 200.
        self.assertLessEqual(len(about), 2 + 2 * 10)
        self.assertIn("10 of 200 MX hosts", line)

    def test_the_attempt_deadline_ends_a_slow_session(self):
        self.serve("deadline", "attempt_deadline = 3\n")
        qid = self.send(1, "user@slow1.test")
        line = h.wait_for(lambda: re.search(rf"deferred queue_id={re.escape(qid)} .*",
                                            self.svc.read_log()), 30, "the deferral").group(0)
        self.assertIn("attempt deadline", line)
        h.wait_for(lambda: self.tarpit.open_now() == 0, 10, "the session to be closed")


if __name__ == "__main__":
    h.main()
