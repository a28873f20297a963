"""Hostile DNS answers, from a scripted DNS server, against the running binary.

- A reverse zone that answers the connecting address with 3,600 PTR names in one 64 KB answer
  (over TCP after a truncated UDP answer): the reply to the (possibly forged) sender stays
  small, names 10 of them and says how many there were (rdns.ptr_count, rdns.ptr_truncated, and
  the text part).
- HELO names under a zone the attacker controls, each answering A and AAAA with a 64 KB record
  set: the server's memory does not grow with them (the answers to a name the client chose are
  not cached, a cached answer keeps at most 100 records, and the cache is bounded in bytes).
"""

import os
import re
import smtplib
import sys
import time
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
        h.wait_for(lambda: self.sink.messages(), 30, "the reply")
        path = self.sink.files()[0]
        size = os.path.getsize(path)
        print(f"\nreply size with {PTR_NAMES} PTR names: {size} bytes", flush=True)
        # The PTR names add little (ten are listed); most of the reply is what every report
        # has since the providers' rules came in: the rules, their hints and the JSON part with
        # every rule (about 110 KiB here, where it was under 64 KiB before).
        self.assertLess(size, 160 * 1024)
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


HELO_NAMES = 300
# 64 KB answers: 4,000 A records or 2,300 AAAA records for every name under evil.test.
BIG_A = [d.a(f"198.51.{n // 250}.{n % 250}") for n in range(4000)]
BIG_AAAA = [d.aaaa(f"2001:db8::{n:x}") for n in range(2300)]


def big_answers(name, qtype):
    if name.lower().endswith(".evil.test"):
        return BIG_A if qtype == d.A else BIG_AAAA if qtype == d.AAAA else []
    return None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class HostileHeloNames(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = h.Workdir()
        cls.dns = d.ScriptedDns(big_answers)
        cls.port = h.free_port()
        text = h.config_toml([f"127.0.0.1:{cls.port}"], cls.dns.server())
        # In a sanitizer build AddressSanitizer's quarantine keeps every freed block (up to
        # 256 MB) out of reuse, which RSS would measure instead of the server; no effect
        # otherwise.
        cls.asan_options = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = ":".join(
            filter(None, [cls.asan_options, "quarantine_size_mb=0",
                          "thread_local_quarantine_size_kb=0"]))
        cls.svc = h.Ipconfirm(cls.work, text).start()

    @classmethod
    def tearDownClass(cls):
        cls.svc.stop()
        if cls.asan_options is None:
            os.environ.pop("ASAN_OPTIONS", None)
        else:
            os.environ["ASAN_OPTIONS"] = cls.asan_options
        cls.dns.stop()
        cls.work.cleanup()

    def helo(self, name):
        with smtplib.SMTP("127.0.0.1", self.port, local_hostname=name, timeout=20) as c:
            c.ehlo()

    def answered_over_tcp(self):
        return len([x for x in self.dns.recorded() if x.transport == "tcp"])

    def test_big_answers_to_helo_names_do_not_grow_memory(self):
        self.helo("warm-up.example.test")
        before = rss_kib(self.svc.proc.pid)
        for n in range(HELO_NAMES):
            self.helo(f"h{n}.evil.test")
        # Every HELO name was asked for A and AAAA, each answered over TCP.
        h.wait_for(lambda: self.answered_over_tcp() >= 2 * HELO_NAMES, 120, "the answers")
        time.sleep(1)  # the last answers are parsed after the server sent them
        after = rss_kib(self.svc.proc.pid)
        print(f"\nRSS before {before} KiB, after {HELO_NAMES} HELO names with 64 KB answers: "
              f"{after} KiB", flush=True)
        self.assertLess(after - before, 32 * 1024)


if __name__ == "__main__":
    h.main()
