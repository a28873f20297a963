"""The Received corpus: `ipconfirm check` on every message of tests/data/corpus/ against the
oracle, SpamAssassin's Received parser, whose answers are checked in (oracle.json, written by
tests/corpus/oracle.pl).

Each message is checked as it arrived: --now is the date of its top Received header. DNS is a
dnsmasq on loopback that answers every name with NXDOMAIN at once, so no lookup leaves the
machine and none waits.

The figure that must hold: of the Received headers where ipconfirm or the oracle found a
connecting address, at least 99.5 % agree on it. A header where ipconfirm deliberately differs
from the oracle counts as agreement only when it is listed, with its reason, in
tests/data/corpus/differences.json; a listed difference that no longer occurs fails the test,
so the list stays true. Where the addresses agree, the names (rDNS, HELO, by) must agree too,
unless the difference is listed there with its reason; an unlisted or stale one fails.

Every report is also read against its own hops: no sentence about the path may contradict
what was parsed (see check_path_sentences).
"""

import concurrent.futures
import email.utils
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

CORPUS = os.path.join(os.path.dirname(__file__), "..", "data", "corpus")
PEER = "198.51.100.25"  # documentation address: the corpus's messages did not reach us
FALLBACK_NOW = 1700000000
THRESHOLD = 0.995


def received_values(path):
    """The message's Received field bodies, top first, folding kept."""
    with open(path, "rb") as f:
        raw = f.read().replace(b"\r\n", b"\n")
    header = raw.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    values, cur = [], None
    for line in header.split("\n"):
        if line[:1] in (" ", "\t") and cur is not None:
            cur += "\n" + line
            continue
        if cur is not None:
            values.append(cur)
        cur = line.split(":", 1)[1] if re.match(r"(?i)^Received:", line) else None
    if cur is not None:
        values.append(cur)
    return values


def arrival(values):
    """Epoch seconds of the top Received header's date, or a fixed time."""
    for v in values[:1]:
        if ";" in v:
            t = email.utils.parsedate_tz(" ".join(v.rsplit(";", 1)[1].split()))
            if t:
                try:
                    return int(email.utils.mktime_tz(t))
                except (OverflowError, ValueError):
                    pass
    return FALLBACK_NOW


def norm_ip(text):
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return "invalid:" + text


def check_path_sentences(report):
    """The path notes against the parsed hops: returns a list of contradictions."""
    problems = []
    hops = report["received"]
    notes = report["path"]["notes"]
    named = [i for i, hop in enumerate(hops)
             if hop["parsed"] and (hop["by"] or hop["from_helo"] or hop["from_ip"])]
    top = hops[named[0]] if named else None
    for note in notes:
        if "could not be read" in note:
            if top is not None and named[0] == 0:
                problems.append("says the top header is unreadable, but it was parsed: " + note)
        if "recorded no address" in note and top is not None and top["from_ip"]:
            problems.append("says no address was recorded, but the top hop has " +
                            top["from_ip"] + ": " + note)
        if "no Received header from your side" in note and named:
            problems.append("says there is no Received header, but there are: " + note)
        m = re.search(r"Your internal server .*?\[([0-9a-fA-F:.]+)\].* connected to us from "
                      r"([0-9a-fA-F:.]+)", note)
        if m and m.group(1) == m.group(2):
            problems.append("internal server and gateway have the same address: " + note)
    unparsed = sum(1 for hop in hops if not hop["parsed"])
    said = [n for n in notes if "not understood" in n]
    if unparsed and not said:
        problems.append(f"{unparsed} headers not parsed, no note says so")
    if said and not said[0].startswith(f"{unparsed} Received header"):
        problems.append(f"the note on unread headers says {said[0]!r}, {unparsed} were unread")
    believed = report["path"]["sender_believed_ip"]
    if believed and believed == report["connection"]["ip"]:
        problems.append("behind-nat names the connecting address as the believed one")
    return problems


class ReceivedCorpus(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq")
        cls.work = h.Workdir()
        # Every name is local and unknown: NXDOMAIN at once, nothing forwarded.
        cls.dns = h.Dnsmasq(cls.work, ["local=/#/"])
        cls.svc = h.Ipconfirm(cls.work, h.config_toml(["127.0.0.1:1"], cls.dns.server()))
        with open(os.path.join(CORPUS, "oracle.json")) as f:
            cls.oracle = json.load(f)["messages"]
        with open(os.path.join(CORPUS, "differences.json")) as f:
            cls.differences = json.load(f)
        with open(os.path.join(CORPUS, "manifest.json")) as f:
            cls.manifest = json.load(f)
        cls.reports = cls.run_checks()

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.work.cleanup()

    @classmethod
    def run_checks(cls):
        files = sorted(cls.oracle)

        def one(name):
            path = os.path.join(CORPUS, "messages", name)
            now = arrival(received_values(path))
            p = cls.svc.run("check", "--config", cls.svc.config, "--peer", PEER,
                            "--now", str(now), path, timeout=60)
            if p.returncode != 0:
                return name, {"error": p.stderr}
            return name, json.loads(p.stdout)

        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            return dict(pool.map(one, files))

    def test_manifest_names_every_message(self):
        files = sorted(os.listdir(os.path.join(CORPUS, "messages")))
        listed = [m["file"] for m in self.manifest["messages"]]
        self.assertEqual(files, sorted(listed))
        self.assertEqual(sorted(self.oracle), files)
        self.assertGreaterEqual(len(files), 500)
        for source in self.manifest["sources"]:
            self.assertTrue(source["licence"], source["id"])
        for m in self.manifest["messages"]:
            self.assertTrue(m["licence"] and m["package"] and m["path"] and m["sha256"], m)

    def test_oracle_is_what_the_script_writes(self):
        """When SpamAssassin is installed, oracle.json is exactly what oracle.pl gives today."""
        perl = shutil.which("perl")
        if not perl or subprocess.run([perl, "-MMail::SpamAssassin", "-e", "1"],
                                      capture_output=True).returncode != 0:
            self.skipTest("SpamAssassin's Perl modules are not installed")
        p = subprocess.run([perl, os.path.join(os.path.dirname(__file__), "..", "corpus",
                                               "oracle.pl"), os.path.join(CORPUS, "messages")],
                           capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["messages"], self.oracle)

    def test_from_ip_agreement(self):
        listed = {(d["file"], d["hop"]): d for d in self.differences["hops"]}
        listed_names = {(d["file"], d["hop"], d["field"]): d for d in self.differences["names"]}
        reasons = self.differences["reasons"]
        for d in list(listed.values()) + list(listed_names.values()):
            self.assertIn(d["reason"], reasons, d)
        used_names = set()
        name_unlisted = []
        hops = with_ip = agree = deliberate = 0
        names = {"rdns": [0, 0, 0], "helo": [0, 0, 0], "by": [0, 0, 0]}
        unlisted, stale, errors = [], [], []
        used = set()
        for name in sorted(self.oracle):
            report = self.reports[name]
            if "error" in report:
                errors.append(f"{name}: {report['error']}")
                continue
            ours_hops = report["received"]
            oracle_hops = self.oracle[name]
            self.assertEqual(len(ours_hops), len(oracle_hops), name)
            values = received_values(os.path.join(CORPUS, "messages", name))
            for i, (ours, theirs) in enumerate(zip(ours_hops, oracle_hops)):
                hops += 1
                parsed = theirs["status"] == "parsed"
                a = norm_ip(ours["from_ip"])
                b = norm_ip(theirs.get("ip")) if parsed else None
                if a is None and b is None:
                    continue
                with_ip += 1
                key = (name, i)
                if a == b:
                    agree += 1
                    if key in listed:
                        stale.append(f"{name} hop {i}: listed, but both now say {a}")
                    if parsed:
                        for field, ours_field in (("rdns", "from_name"), ("helo", "from_helo"),
                                                  ("by", "by")):
                            names[field][1] += 1
                            x, y = ours[ours_field].lower(), theirs[field].lower()
                            if field == "helo":  # SpamAssassin writes [ and ] as !
                                x = x.replace("[", "!").replace("]", "!")
                            names[field][0] += x == y
                            nd = listed_names.get((name, i, field))
                            if x == y:
                                if nd:
                                    stale.append(f"{name} hop {i} {field}: listed, both now {x!r}")
                                continue
                            if nd and nd["ours"] == x and nd["oracle"] == y:
                                used_names.add((name, i, field))
                                names[field][2] += 1
                                continue
                            if nd:
                                used_names.add((name, i, field))
                            name_unlisted.append(f"{name} hop {i} {field}: ours={x!r} oracle="
                                                 f"{y!r}\n    {' '.join(values[i].split())[:300]}")
                    continue
                d = listed.get(key)
                if d and d["ours"] == a and d["oracle"] == b:
                    deliberate += 1
                    used.add(key)
                    continue
                if d:
                    stale.append(f"{name} hop {i}: listed as ours={d['ours']} "
                                 f"oracle={d['oracle']}, now ours={a} oracle={b}")
                    used.add(key)
                unlisted.append(f"{name} hop {i}: ours={a} oracle={b}\n    "
                                f"{' '.join(values[i].split())[:300]}")
        for key in set(listed_names) - used_names:
            if not any(x.startswith(f"{key[0]} hop {key[1]} {key[2]}:") for x in stale):
                stale.append(f"{key[0]} hop {key[1]} {key[2]}: listed, but not compared any more")
        for key in set(listed) - used:
            if not any(s.startswith(f"{key[0]} hop {key[1]}:") for s in stale):
                stale.append(f"{key[0]} hop {key[1]}: listed, but neither side has an address")

        share = (agree + deliberate) / with_ip if with_ip else 0.0
        print(f"\ncorpus: {len(self.oracle)} messages, {hops} Received headers, {with_ip} with "
              f"an address on either side")
        print(f"from-IP agreement: {agree} equal + {deliberate} listed differences = "
              f"{agree + deliberate}/{with_ip} = {100 * share:.2f} % "
              f"(equal alone: {100 * agree / max(with_ip, 1):.2f} %); "
              f"{len(unlisted)} unlisted differences")
        for field, (same, total, deliberate_names) in names.items():
            print(f"  {field} where the address agrees: {same} equal + {deliberate_names} listed "
                  f"differences = {same + deliberate_names}/{total}; equal alone "
                  f"{100 * same / max(total, 1):.1f} %")
        for line in (unlisted + name_unlisted)[:40]:
            print("  unlisted: " + line)
        self.assertEqual(errors, [])
        self.assertEqual(name_unlisted, [], "names that differ from the oracle and are not listed")
        self.assertEqual(stale, [], "differences.json lists differences that do not occur")
        self.assertGreaterEqual(share, THRESHOLD)

    def test_dns_answered_locally(self):
        """dnsmasq answered every lookup at once with NXDOMAIN: no report waited or failed."""
        statuses = {r["rdns"]["status"] for r in self.reports.values() if "error" not in r}
        self.assertEqual(statuses, {"none"})

    def test_path_sentences_match_the_hops(self):
        problems = []
        for name, report in sorted(self.reports.items()):
            if "error" in report:
                continue
            for p in check_path_sentences(report):
                problems.append(f"{name}: {p}")
        self.assertEqual(problems[:20], [])


if __name__ == "__main__":
    h.main()
