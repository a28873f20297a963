"""kill -9 in the middle of a load: every report page a 250 named is there after a restart.

240 messages over 4 parallel connections from 127.0.0.2, every other one marked
`Auto-Submitted: auto-replied` (no reply mail: its report goes through the committer alone);
when about a third has been acknowledged, ipconfirm is killed with SIGKILL and started again
on the same spool while the clients keep sending. Every token that a client read in a 250 line
must then give its report: GET /r/TOKEN.json is 200 and is the report of that very message.
"""

import collections
import http.client
import json
import os
import re
import smtplib
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
import queue_helpers as q  # noqa: E402

MESSAGES = 240
CLIENTS = 4
LINK = re.compile(r"; report http://127\.0\.0\.1:\d+/r/([A-Za-z0-9_-]{22})$")


class ReportLoad:
    """Like queue_helpers.Load, but records the report token of every 250 (mailed or not)."""

    def __init__(self, port, count, clients, deadline=180):
        self.port, self.count = port, count
        self.tokens = {}  # token -> (message number, sender)
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
        conn, n, tries = None, self.take(), 0
        while n is not None and tries < 400:
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", self.port, local_hostname="mail.sender.test",
                                        source_address=("127.0.0.2", 0), timeout=20)
                    conn.ehlo()
                sender = f"k{n}@sender.test"
                extra = "Auto-Submitted: auto-replied\r\n" if n % 2 else ""
                msg = (f"From: {sender}\r\nTo: ipconfirm@example.test\r\n{extra}"
                       f"Subject: kill {n}\r\nMessage-ID: <kill.{n}@sender.test>\r\n\r\nx\r\n")
                code, resp = conn.mail(sender)
                if code == 250:
                    code, resp = conn.rcpt("ipconfirm@example.test")
                if code == 250:
                    code, resp = conn.data(msg.encode())
                text = resp.decode("latin-1")
                with self.lock:
                    if code == 250:
                        m = LINK.search(text)
                        if m:
                            self.tokens[m.group(1)] = (n, sender)
                        else:
                            self.failed["no link"] += 1
                    else:
                        self.failed[code] += 1
                if code != 250:
                    conn.rset()
                n = self.take()
            except (OSError, smtplib.SMTPException):
                # Killed or refused: that message was not acknowledged. A new connection.
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

    def join(self, timeout=240):
        for t in self.threads:
            t.join(timeout)

    def count_tokens(self):
        with self.lock:
            return len(self.tokens)


def get_json(port, token):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", f"/r/{token}.json")
        r = conn.getresponse()
        body = r.read()
        return r.status, (json.loads(body) if r.status == 200 else None)
    finally:
        conn.close()


class ReportKillNine(unittest.TestCase):
    def setUp(self):
        h.require("dnsmasq")
        self.work = h.Workdir()
        self.dns = h.Dnsmasq(self.work, q.RECORDS)
        self.port, self.http = h.free_port(), h.free_port()
        self.svc = q.Server(self.work, q.config(self.port, self.dns) +
                            f'[http]\nlisten = ["127.0.0.1:{self.http}"]\n'
                            f'public_url = "http://127.0.0.1:{self.http}"\n'
                            "max_report_requests_per_ip_per_minute = 0\n")

    def tearDown(self):
        self.svc.stop()
        self.dns.stop()
        self.work.cleanup()

    def test_every_token_a_250_named_is_fetchable_after_a_restart(self):
        self.svc.start()
        load = ReportLoad(self.port, MESSAGES, CLIENTS).start()
        h.wait_for(lambda: load.count_tokens() >= MESSAGES // 3, 120, "a third of the load")
        self.svc.kill9()
        killed_at = load.count_tokens()
        self.svc.start()
        load.join()
        with load.lock:
            tokens = dict(load.tokens)
        self.assertGreater(len(tokens), killed_at, "no message was accepted after the restart")
        self.assertGreaterEqual(len(tokens), MESSAGES * 9 // 10, f"failures: {load.failed}")
        self.assertEqual(load.failed["no link"], 0)
        missing, wrong = [], []
        for token, (n, sender) in tokens.items():
            status, report = get_json(self.http, token)
            if status != 200:
                missing.append((token, n))
            elif report["envelope"]["mail_from"] != sender or not report["report_url"].endswith(
                    token):
                wrong.append((token, n))
        self.assertEqual(missing, [], f"{len(missing)} of {len(tokens)} pages lost "
                                      f"(kill after {killed_at})\n" + self.svc.read_log()[-3000:])
        self.assertEqual(wrong, [])
        suppressed = sum(1 for n, _ in tokens.values() if n % 2)
        self.assertGreater(suppressed, 0)
        print(f"{len(tokens)} pages fetched after the kill at {killed_at} "
              f"({suppressed} of replies not mailed); client failures {dict(load.failed)}",
              flush=True)


if __name__ == "__main__":
    h.main()
