"""Golden tests of `ipconfirm check`: stored messages analysed against a real dnsmasq.

tests/data/check/NN-name.eml is the message, NN-name.args the command-line arguments (a JSON
list), NN-name.expected.json the whole report. The arrival time is fixed with --now, so the
report is deterministic. UPDATE_GOLDEN=1 rewrites the expected files (review the diff!).
"""

import glob
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "check")
NOW = "1795442400"  # 2026-11-23 14:00:00 UTC


def records():
    with open(os.path.join(DATA, "dns.conf")) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def stable(report):
    """The report without what depends on timing: the milliseconds of each DNS query, and the
    order in which concurrent queries went out (the log is sorted by name and type)."""
    log = report.get("dns_log")
    if isinstance(log, list):
        for e in log:
            assert isinstance(e.get("ms"), int) and e["ms"] >= 0, e
            e["ms"] = 0
        log.sort(key=lambda e: (e["name"], e["type"]))
    return report


AUTH = ("spf-", "dkim-", "dmarc-", "arc-", "provider-", "no-one-click-", "format-")


class CheckGolden(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, records())
        cls.svc = h.Ipconfirm(cls.work, h.config_toml(
            ["127.0.0.1:1"], cls.dns.server(), dnsbl=["bl.test"]))

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.work.cleanup()

    def check(self, args, eml, config=None):
        p = self.svc.run("check", "--config", config or self.svc.config, "--now", NOW, *args, eml)
        self.assertEqual(p.returncode, 0, p.stderr)
        return stable(json.loads(p.stdout))

    def test_golden_cases(self):
        cases = sorted(glob.glob(os.path.join(DATA, "*.eml")))
        self.assertGreaterEqual(len(cases), 12)
        for eml in cases:
            base = eml[:-4]
            with self.subTest(case=os.path.basename(base)):
                with open(base + ".args") as f:
                    args = json.load(f)
                got = self.check(args, eml)
                expected_path = base + ".expected.json"
                if os.environ.get("UPDATE_GOLDEN"):
                    with open(expected_path, "w") as f:
                        json.dump(got, f, indent=2)
                        f.write("\n")
                with open(expected_path) as f:
                    expected = json.load(f)
                self.assertEqual(got, expected)

    def test_hint_codes_are_where_they_belong(self):
        """A readable summary of what the golden files pin down."""
        def all_codes(case):
            with open(os.path.join(DATA, case + ".expected.json")) as f:
                return {x["code"] for x in json.load(f)["hints"]}

        def codes(case):  # about the connection
            return {c for c in all_codes(case) if not c.startswith(AUTH)}
        self.assertEqual(codes("01-clean"), {"no-tls"})
        self.assertIn("no-ptr", codes("02-no-ptr"))
        self.assertTrue({"generic-ptr", "ptr-not-confirmed", "helo-not-fqdn"} <= codes("03-dynamic"))
        self.assertTrue({"behind-nat", "helo-literal-mismatch"} <= codes("04-nat-gateway"))
        self.assertIn("dnsbl-listed", codes("05-dnsbl-listed"))
        self.assertEqual(codes("06-dnsbl-refused"), {"dnsbl-refused", "no-tls"})
        self.assertEqual(codes("07-ipv6"), {"no-tls"})
        self.assertIn("helo-mismatch", codes("08-helo-elsewhere"))
        self.assertIn("clock-skew", codes("10-clock-skew"))
        # Sender authentication: unsigned mail from an allowed server, from one that is not,
        # a signed message, and the same with its body changed after signing.
        self.assertEqual(all_codes("01-clean") - codes("01-clean"),
                         {"dkim-none", "provider-reject"})  # bulk senders must sign
        self.assertIn("spf-softfail", all_codes("02-no-ptr"))
        self.assertEqual(all_codes("11-signed"), {"no-tls", "provider-reject"})
        self.assertTrue({"dkim-fail"} <= all_codes("12-body-changed"))
        with open(os.path.join(DATA, "12-body-changed.expected.json")) as f:
            auth = json.load(f)["auth"]
        self.assertEqual(auth["dkim"][0]["result"], "fail")
        self.assertNotEqual(auth["dkim"][0]["body_hash_expected"],
                            auth["dkim"][0]["body_hash_computed"])
        self.assertEqual(auth["dmarc"]["result"], "pass")  # on SPF
        # The providers' verdicts: signed and aligned, only Gmail's TLS rule fails (plain SMTP).
        with open(os.path.join(DATA, "11-signed.expected.json")) as f:
            signed = json.load(f)
        self.assertEqual(signed["verdicts"], {
            "gmail": {"all": "at-risk", "bulk": "reject"},
            "yahoo": {"all": "accept", "bulk": "accept"},
            "microsoft": {"all": "accept", "bulk": "accept"}})
        with open(os.path.join(DATA, "12-body-changed.expected.json")) as f:
            changed = json.load(f)
        self.assertEqual(changed["verdicts"]["yahoo"], {"all": "accept", "bulk": "reject"})
        self.assertEqual([x["rule"] for x in changed["verdicts_failing"]["yahoo"]["bulk"]],
                         ["dkim"])
        for case in ("01-clean", "05-dnsbl-listed", "07-ipv6"):
            self.assertNotIn("no-ptr", codes(case))
            self.assertNotIn("behind-nat", codes(case))
            self.assertNotIn("dns-temperror", codes(case))

    def test_dns_down_is_temperror_not_a_verdict(self):
        dead = h.free_port("127.0.0.1")  # nothing listens there (UDP or TCP)
        cfg = os.path.join(self.svc.dir, "dead-dns.toml")
        with open(cfg, "w") as f:
            f.write(h.config_toml(["127.0.0.1:1"], f"127.0.0.1:{dead}", dnsbl=["bl.test"]))
        r = self.check(["--peer", "203.0.113.7", "--helo", "mail.sender.test"],
                       os.path.join(DATA, "01-clean.eml"), config=cfg)
        self.assertEqual(r["rdns"]["status"], "temperror")
        codes = {x["code"] for x in r["hints"]}
        self.assertIn("dns-temperror", codes)
        self.assertNotIn("no-ptr", codes)
        self.assertNotIn("ptr-not-confirmed", codes)
        self.assertNotIn("helo-mismatch", codes)
        self.assertNotIn("dnsbl-listed", codes)
        self.assertIsNone(r["helo"]["resolves"])


if __name__ == "__main__":
    h.main()
