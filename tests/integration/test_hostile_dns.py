"""Hostile DNS answers, from a scripted DNS server, against the running binary.

- A reverse zone that answers the connecting address with 3,600 PTR names in one 64 KB answer
  (over TCP after a truncated UDP answer): the reply to the (possibly forged) sender stays
  small, names 10 of them and says how many there were (rdns.ptr_count, rdns.ptr_truncated, and
  the text part).
"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import dns_script as d  # noqa: E402
import harness as h  # noqa: E402
import queue_helpers as q  # noqa: E402

PTR_NAMES = 3600
REVERSE = "2.0.0.127.in-addr.arpa"  # the client sends from 127.0.0.2


def label(n):
    digits = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(digits[(n // 36 ** k) % 36] for k in (2, 1, 0))


def hostile(name, qtype):
    if name.lower() == REVERSE and qtype == d.PTR:
        # "xyz.<the question name>", compressed: 18 bytes per record, 3,600 in 64 KB.
        return [d.Rr(d.PTR, bytes([3]) + label(n).encode() + b"\xc0\x0c") for n in range(PTR_NAMES)]
    return None


class HostileReverseDns(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("smtp-sink")
        cls.work = h.Workdir()
        cls.dns = d.ScriptedDns(hostile)
        cls.sink = h.SmtpSink(cls.work)
        cls.port = h.free_port()
        text = h.config_toml([f"127.0.0.1:{cls.port}"], cls.dns.server(),
                             smarthost=cls.sink.endpoint())
        cls.svc = h.Ipconfirm(cls.work, text).start()

    @classmethod
    def tearDownClass(cls):
        cls.svc.stop()
        cls.sink.stop()
        cls.dns.stop()
        cls.work.cleanup()

    def test_thousands_of_ptr_names_make_a_small_reply(self):
        code, text = q.send_one(self.port, 1, source="127.0.0.2", sender="victim@sender.test")
        self.assertEqual(code, 250, text)
        h.wait_for(lambda: self.sink.files(), 30, "the reply")
        path = self.sink.files()[0]
        size = os.path.getsize(path)
        print(f"\nreply size with {PTR_NAMES} PTR names: {size} bytes", flush=True)
        self.assertLess(size, 64 * 1024)
        ((_, msg),) = self.sink.messages()
        report = h.report_json(msg)
        self.assertEqual(report["rdns"]["ptr_count"], PTR_NAMES)
        self.assertTrue(report["rdns"]["ptr_truncated"])
        self.assertEqual(len(report["rdns"]["ptr"]), 10)
        self.assertEqual(report["rdns"]["ptr"][0], f"aaa.{REVERSE}")
        self.assertRegex(h.text_part(msg), r"the first 10 of\s+3600 names")
        # The forward confirmation looked up at most 10 of the names.
        forward = [x for x in self.dns.recorded() if x.qtype == d.A and "in-addr" in x.name]
        self.assertLessEqual(len({x.name.lower() for x in forward}), 10)


if __name__ == "__main__":
    h.main()
