"""Delivery faults, with Postfix's smtp-sink as a misbehaving smarthost.

- 4xx at DATA: the reply stays queued and is retried; once the smarthost is fixed it arrives.
- 5xx at RCPT: dropped and logged at once, never retried (the reply has a null sender).
- Disconnect without a reply: retried, then delivered.
- A smarthost that is down, then comes back: delivered; one that stays down past the
  lifetime: dropped and logged.
- A restart with a full queue: everything is delivered after the restart.
- `ipconfirm queue flush` and `delete` on the running server.
- `ipconfirm queue list`, `delete` and `flush` on replies still in the spool's segment files
  (never attempted to the end), with the server running and after a kill -9 with none.
- An older spool, one file per reply in queue/ (the format before segments): every reply is
  delivered once the new server starts on it.
- The queue cap: new mail gets 451 4.3.0, not 250.
- A full disk (a small tmpfs in a private mount namespace): 451 4.3.0, never 250.

Retries are made fast for the test with [queue] retry_first = 1, retry_max = 2.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
import queue_helpers as q  # noqa: E402

FAST_RETRY = "retry_first = 1\nretry_max = 2\n"


class BlackHole:
    """A smarthost that accepts connections and never says a word: every delivery attempt
    waits (for the client's greeting timeout), so the replies stay in the spool as written,
    never attempted to the end."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.held = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)
        for c in self.held:
            c.close()


def old_spool_entry(qid, recipient, created, data):
    """One reply as the spool stored it before segments: queue/<id>, format version 1
    (responder/queue/spool.hpp), CRC-32 as zlib computes it."""
    fields = [("id", qid), ("recipient", recipient), ("sender", ""),
              ("origin", "from 127.0.0.2 (written by an older version)"),
              ("created", str(created)), ("next-attempt", str(created)), ("attempts", "0"),
              ("last-error", ""), ("data", data)]
    out = b"ipconfirm-spool 1\n"
    for name, value in fields:
        raw = value.encode() if isinstance(value, str) else value
        out += f"{name} {len(raw)}\n".encode() + raw + b"\n"
    return out + f"crc32 {zlib.crc32(out):08x}\n".encode()


def reply_message(n):
    return ("From: ipconfirm-response@example.test\r\nTo: old{0}@sender.test\r\n"
            "Subject: your report {0}\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/alternative; boundary=b\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nreport {0}\r\n--b--\r\n").format(n)


class Faults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq", "smtp-sink")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, q.RECORDS)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.work.cleanup()

    def setUp(self):
        self.sinks = []
        self.svc = None
        self.port = h.free_port()
        self.sink_port = h.free_port()

    def tearDown(self):
        if self.svc:
            self.svc.stop()
        for s in self.sinks:
            s.stop()

    def sink(self, *args):
        s = h.SmtpSink(self.work, extra_args=args, port=self.sink_port)
        self.sinks.append(s)
        return s

    def stop_sink(self, s):
        s.stop()
        q.wait_port_closed(self.sink_port)

    def serve(self, queue=FAST_RETRY, name=None):
        self.svc = q.Server(self.work, q.config(self.port, self.dns,
                                                f"127.0.0.1:{self.sink_port}", queue=queue),
                            name=name or self.id().rsplit(".", 1)[-1])
        return self.svc.start()

    def send(self, n):
        code, text = q.send_one(self.port, n)
        self.assertEqual(code, 250, text)
        self.assertNotIn("no reply mail", text)
        return q.QUEUED.search(text).group(1)

    def wait_log(self, pattern, timeout=20):
        return h.wait_for(lambda: re.search(pattern, self.svc.read_log()), timeout, pattern)

    def wait_delivered(self, sink, ids, timeout=30):
        h.wait_for(lambda: all(q.delivered_ids(sink)[i] for i in ids), timeout,
                   f"{len(ids)} replies at the sink")

    def queue_ids(self):
        p = self.svc.queue("list")
        self.assertEqual(p.returncode, 0, p.stderr)
        return re.findall(r"^(\S+)  to=", p.stdout, re.M)

    def retried_then_fixed(self, *fault, stored_by_bad_sink=False):
        bad = self.sink(*fault)
        self.serve()
        qid = self.send(1)
        self.wait_log(rf"deferred queue_id={re.escape(qid)} .*attempts=2")
        if not stored_by_bad_sink:
            self.assertEqual(q.delivered_ids(bad)[qid], 0)
        self.assertIn(qid, self.queue_ids())
        self.stop_sink(bad)
        good = self.sink()
        self.wait_delivered(good, [qid])
        self.wait_log(rf"delivered queue_id={re.escape(qid)} ")
        h.wait_for(lambda: qid not in self.queue_ids(), 10, "the entry to leave the queue")

    def test_4xx_at_data_is_retried_until_the_sink_is_fixed(self):
        self.retried_then_fixed("-r", "DATA")

    def test_4xx_after_the_dot_is_retried(self):
        # smtp-sink writes the message to its folder before it answers 4xx to the dot.
        self.retried_then_fixed("-r", ".", stored_by_bad_sink=True)

    def test_disconnect_without_reply_is_retried(self):
        self.retried_then_fixed("-q", "DATA")

    def test_5xx_at_rcpt_is_dropped_not_retried(self):
        bad = self.sink("-f", "RCPT")
        self.serve()
        qid = self.send(2)
        self.wait_log(rf"bounced queue_id={re.escape(qid)} ")
        self.assertNotIn(qid, self.queue_ids())
        time.sleep(3)  # longer than retry_max: a retry would have happened by now
        log = self.svc.read_log()
        self.assertEqual(log.count(f"queue_id={qid} "), 2, log)  # queued, bounced
        self.assertNotIn(f"deferred queue_id={qid}", log)
        self.assertEqual(q.delivered_ids(bad)[qid], 0)

    def test_lifetime_ends_retries(self):
        self.serve(queue="retry_first = 1\nretry_max = 1\nlifetime = 3\n")
        qid = self.send(4)
        self.wait_log(rf"expired queue_id={re.escape(qid)} ")
        self.assertNotIn(qid, self.queue_ids())

    def test_smarthost_down_then_back(self):
        self.serve()
        qid = self.send(3)
        self.wait_log(rf"deferred queue_id={re.escape(qid)} ")
        good = self.sink()
        self.wait_delivered(good, [qid])

    def test_restart_with_a_full_queue_delivers_everything(self):
        self.serve()
        ids = [self.send(10 + i) for i in range(20)]
        h.wait_for(lambda: self.svc.read_log().count("deferred queue_id=") >= 20, 30,
                   "every entry tried once")
        self.assertEqual(sorted(self.queue_ids()), sorted(ids))
        self.assertEqual(self.svc.stop(), 0)
        self.assertEqual(sorted(self.queue_ids()), sorted(ids))  # the stopped server's spool
        good = self.sink()
        self.svc.start()
        self.assertIn("recovered=20", self.svc.read_log())
        self.wait_delivered(good, ids)
        h.wait_for(lambda: not self.queue_ids(), 10, "an empty queue")

    def test_flush_sends_what_is_not_due_yet(self):
        self.serve(queue="retry_first = 3600\nretry_max = 3600\n")
        ids = [self.send(20 + i) for i in range(3)]
        h.wait_for(lambda: self.svc.read_log().count("deferred queue_id=") >= 3, 30,
                   "every entry tried once")
        good = self.sink()
        p = self.svc.queue("flush")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.wait_delivered(good, ids)
        h.wait_for(lambda: not self.queue_ids(), 10, "an empty queue")

    def test_queue_cap_answers_451(self):
        self.serve(queue="max_entries = 3\nretry_first = 3600\n")
        ids = [self.send(30 + i) for i in range(3)]
        code, text = q.send_one(self.port, 33)
        self.assertEqual(code, 451, text)
        self.assertIn("4.3.0", text)
        self.assertEqual(sorted(self.queue_ids()), sorted(ids))
        self.wait_log("queue-error .*queue full")

    def test_queue_delete_while_running(self):
        self.serve(queue="retry_first = 3600\n")
        a, b = self.send(40), self.send(41)
        self.wait_log(rf"deferred queue_id={re.escape(b)} ")
        p = self.svc.queue("delete", a)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.queue_ids(), [b])
        p = self.svc.queue("delete", a)
        self.assertEqual(p.returncode, 1)
        self.assertIn("not found", p.stderr)
        p = self.svc.queue("delete", "../../etc/passwd")
        self.assertEqual(p.returncode, 1)
        good = self.sink()
        self.svc.queue("flush")
        self.wait_delivered(good, [b])
        self.assertEqual(q.delivered_ids(good)[a], 0)

    def test_queue_verbs_on_replies_in_segments(self):
        hole = BlackHole(self.sink_port)
        try:
            self.serve(queue="retry_first = 3600\n")
            a, b, c = self.send(50), self.send(51), self.send(52)
            spool = os.path.join(self.svc.dir, "spool")
            # Written into a segment, attempted but not yet answered: nothing in queue/.
            self.assertTrue(os.listdir(os.path.join(spool, "segments")))
            self.assertEqual(os.listdir(os.path.join(spool, "queue")), [])
            self.assertEqual(sorted(self.queue_ids()), sorted([a, b, c]))
            p = self.svc.queue("delete", a)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(sorted(self.queue_ids()), sorted([b, c]))
            self.svc.kill9()
        finally:
            hole.stop()
        # No server: the verbs open the spool themselves (recovering its segments).
        self.assertEqual(sorted(self.queue_ids()), sorted([b, c]))
        p = self.svc.queue("delete", b)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.queue_ids(), [c])
        p = self.svc.queue("flush")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1 reply due now", p.stdout)
        # Flushed: moved out of its segment into a file of its own.
        self.assertEqual(os.listdir(os.path.join(spool, "queue")), [c])
        good = self.sink()
        self.svc.start()
        self.wait_delivered(good, [c])
        h.wait_for(lambda: not self.queue_ids(), 10, "an empty queue")
        seen = q.delivered_ids(good)
        self.assertEqual((seen[a], seen[b]), (0, 0), "a deleted reply was sent")

    def test_an_older_spool_is_delivered_after_an_upgrade(self):
        good = self.sink()
        self.svc = q.Server(self.work, q.config(self.port, self.dns,
                                                f"127.0.0.1:{self.sink_port}", queue=FAST_RETRY),
                            name="upgrade")
        queue_dir = os.path.join(self.svc.dir, "spool", "queue")
        os.makedirs(queue_dir, exist_ok=True)
        os.makedirs(os.path.join(self.svc.dir, "spool", "tmp"), exist_ok=True)
        now = int(time.time())
        old = [f"{now - 60:012d}.{i:06d}.4242" for i in range(5)]
        for i, qid in enumerate(old):
            with open(os.path.join(queue_dir, qid), "wb") as f:
                f.write(old_spool_entry(qid, f"old{i}@sender.test", now - 60, reply_message(i)))
        self.assertEqual(sorted(self.queue_ids()), old)  # read without a server, too
        self.svc.start()
        self.wait_log(r"queue-open .*recovered=5 ")
        new = [self.send(60 + i) for i in range(3)]
        self.wait_delivered(good, old + new)
        h.wait_for(lambda: not self.queue_ids(), 10, "an empty queue")
        self.assertEqual(os.listdir(queue_dir), [])

    def test_full_disk_answers_451_never_250(self):
        unshare = shutil.which("unshare")
        if not unshare or os.geteuid() != 0:
            self.skipTest("needs unshare and root for a private tmpfs")
        probe = subprocess.run([unshare, "-m", "--propagation", "private", "true"],
                               capture_output=True)
        if probe.returncode != 0:
            self.skipTest("unshare -m is not permitted here")
        self.svc = q.Server(self.work, q.config(self.port, self.dns,
                                                f"127.0.0.1:{self.sink_port}",
                                                queue="retry_first = 3600\n"), name="diskfull")
        spool = os.path.join(self.svc.dir, "spool")
        os.makedirs(spool, exist_ok=True)
        # The server runs in its own mount namespace with a 256 KiB tmpfs as its spool (a reply
        # with the providers' rules is some 80 KiB, so a few fit); exec
        # keeps the pid, so the harness stops it as usual.
        wrapper = os.path.join(self.svc.dir, "serve-on-tmpfs")
        with open(wrapper, "w") as f:
            # 8 KiB of ballast that the test removes once the disk is full, as an operator
            # would free space, so that the flush request below finds room whatever size the
            # replies have.
            f.write("#!/bin/sh\nset -e\nmount -t tmpfs -o size=256k tmpfs ./spool\n"
                    "head -c 8192 /dev/zero > ./spool/ballast\n"
                    f'exec "{h.binary()}" "$@"\n')
        os.chmod(wrapper, 0o755)
        self.start_in_namespace(unshare, wrapper)
        # The queue verbs must see the tmpfs: they run in the server's mount namespace.
        nsenter = shutil.which("nsenter")
        if not nsenter:
            self.skipTest("nsenter is not installed")
        pid = str(self.svc.proc.pid)
        self.svc.queue = lambda *args: subprocess.run(
            [nsenter, "-t", pid, "-m", "sh", "-c", 'cd "$0" && exec "$@"', self.svc.dir,
             h.binary(), "queue", "--config", self.svc.config, *args],
            capture_output=True, text=True, timeout=30)
        accepted, refused = [], []
        for n in range(60):
            code, text = q.send_one(self.port, 100 + n)
            if code == 250:
                self.assertNotIn("no reply mail", text)
                accepted.append(q.QUEUED.search(text).group(1))
            else:
                self.assertEqual(code, 451, text)
                self.assertIn("4.3.0", text)
                refused.append(n)
                if len(refused) >= 3:
                    break
        self.assertTrue(accepted, "nothing fitted in 256 KiB")
        self.assertGreaterEqual(len(refused), 3, f"{len(accepted)} accepted, none refused")
        self.wait_log("queue-error .*no space")
        # Everything acknowledged is in the queue and reaches the smarthost once it is up.
        self.assertEqual(sorted(self.queue_ids()), sorted(accepted))
        good = self.sink()
        freed = subprocess.run([nsenter, "-t", pid, "-m", "rm", os.path.join(spool, "ballast")],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(freed.returncode, 0, freed.stderr)
        flushed = self.svc.queue("flush")
        self.assertEqual(flushed.returncode, 0, flushed.stderr)
        self.wait_delivered(good, accepted)

    def start_in_namespace(self, unshare, wrapper):
        svc = self.svc
        before = svc.read_log().count(" started ") if os.path.exists(svc.log_path) else 0
        svc.log = open(svc.log_path, "ab")
        svc.proc = subprocess.Popen([unshare, "-m", "--propagation", "private", wrapper,
                                     "serve", "--config", svc.config], cwd=svc.dir,
                                    stdout=svc.log, stderr=subprocess.STDOUT)
        h.wait_for(lambda: svc.read_log().count(" started ") > before or
                   svc.proc.poll() is not None, 15, "ipconfirm to start")
        if svc.proc.poll() is not None:
            self.skipTest("could not mount a tmpfs: " + svc.read_log()[-300:])


if __name__ == "__main__":
    h.main()
