"""kill -9 in the middle of a load: no reply that was promised with a 250 is lost.

300 messages over 6 parallel connections from 127.0.0.2; when about a third has been
acknowledged, ipconfirm is killed with SIGKILL and started again on the same spool while the
clients keep sending. Every queue id that a client saw in a 250 must then reach the smtp-sink
in a reply's X-Ipconfirm-Queue-Id header. A reply may arrive twice (at-least-once: the kill can
fall between the sink's 250 and the removal from the spool), never zero times.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
import queue_helpers as q  # noqa: E402

MESSAGES = 300
CLIENTS = 6


class KillNine(unittest.TestCase):
    def setUp(self):
        h.require("dnsmasq", "smtp-sink")
        self.work = h.Workdir()
        self.dns = h.Dnsmasq(self.work, q.RECORDS)
        self.sink = h.SmtpSink(self.work)
        self.port = h.free_port()
        self.svc = q.Server(self.work, q.config(self.port, self.dns, self.sink.endpoint(),
                                                queue="retry_first = 1\nretry_max = 2\n"))

    def tearDown(self):
        self.svc.stop()
        self.sink.stop()
        self.dns.stop()
        self.work.cleanup()

    def test_every_acknowledged_message_gets_its_reply(self):
        self.svc.start()
        load = q.Load(self.port, MESSAGES, CLIENTS).start()
        h.wait_for(lambda: load.acked_count() >= MESSAGES // 3, 120, "a third of the load")
        self.svc.kill9()
        killed_at = load.acked_count()
        self.svc.start()
        load.join()
        acked = dict(load.acked)
        self.assertGreater(len(acked), killed_at, "no message was accepted after the restart")
        self.assertGreaterEqual(len(acked), MESSAGES * 9 // 10, f"failures: {load.failed}")
        self.assertEqual(load.failed["suppressed"], 0, "replies suppressed: the test is void")

        def all_delivered():
            seen = q.delivered_ids(self.sink)
            missing = [i for i in acked if seen[i] == 0]
            return seen if not missing else None
        try:
            seen = h.wait_for(all_delivered, 120, "every acknowledged reply at the sink")
        except AssertionError:
            seen = q.delivered_ids(self.sink)
            missing = sorted(i for i in acked if seen[i] == 0)
            self.fail(f"{len(missing)} of {len(acked)} acknowledged replies lost, e.g. "
                      f"{missing[:5]}\n" + self.svc.read_log()[-3000:])
        # Nothing was delivered that nobody was promised (except messages whose 250 the kill
        # cut off before the client read it), and duplicates are rare.
        dups = sum(c - 1 for c in seen.values() if c > 1)
        print(f"acked {len(acked)} (kill after {killed_at}), delivered {len(seen)} distinct, "
              f"{dups} duplicates, client failures {dict(load.failed)}", flush=True)
        self.assertLessEqual(dups, CLIENTS * 4)
        log = self.svc.read_log()
        self.assertIn("queue-open", log)
        h.wait_for(lambda: "0 replies queued" in self.svc.queue("list").stdout, 30,
                   "an empty queue")


if __name__ == "__main__":
    h.main()
