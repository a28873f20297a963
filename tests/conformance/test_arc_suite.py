#!/usr/bin/python3
"""Our ARC validation (RFC 8617) against ValiMail's ARC validation suite.

Every scenario of tests/data/arc/arc-draft-validation-tests.yml is a message, the key records it
needs, and the chain validation status a validator must give; each runs through the test-only
driver (header first, body in chunks, DNS rounds) with the scenario's records and nothing else.
The suite predates RFC 8617 (it follows draft 18); where the RFC and the suite disagree, the case
is listed in EXPECTED_DIFFERENCES with the reason, and any other mismatch fails the test.

Run under Debian's /usr/bin/python3; exits 77 when python3-yaml is missing.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError as e:
    print(f"skipped: {e}; install python3-yaml")
    sys.exit(77)

TOOL = os.environ.get("DKIM_VERIFY_TOOL")
SOURCE = os.environ.get("IPCONFIRM_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
SUITE = os.path.join(SOURCE, "tests", "data", "arc", "arc-draft-validation-tests.yml")
if not TOOL or not os.access(TOOL, os.X_OK):
    print("DKIM_VERIFY_TOOL is not set to the dkim_verify_tool binary")
    sys.exit(2)

# Scenario name -> why our result differs from the suite's on purpose.
EXPECTED_DIFFERENCES = {}


def run(message, records):
    with tempfile.TemporaryDirectory() as tmp:
        msg_path = os.path.join(tmp, "message.eml")
        dns_path = os.path.join(tmp, "dns.json")
        with open(msg_path, "wb") as f:
            f.write(message.encode("utf-8"))
        with open(dns_path, "w") as f:
            json.dump({name.lower(): [value] for name, value in records.items()}, f)
        out = subprocess.run([TOOL, "--chunk", "7", dns_path, msg_path], capture_output=True,
                             timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"tool failed: {out.stderr.decode(errors='replace')}")
        return json.loads(out.stdout)["arc"]


def main():
    with open(SUITE) as f:
        scenarios = list(yaml.safe_load_all(f))
    total = passed = 0
    failures, differences = [], []
    for scenario in scenarios:
        records = scenario.get("txt-records") or scenario.get("txt_records") or {}
        for name, test in scenario["tests"].items():
            total += 1
            expected = (test.get("cv") or "").strip().lower() or "fail"
            arc = run(test["message"], records)
            got = arc["result"]
            if got == expected:
                passed += 1
            elif name in EXPECTED_DIFFERENCES:
                passed += 1
                differences.append(f"{name}: suite {expected}, ours {got}: "
                                   f"{EXPECTED_DIFFERENCES[name]}")
            else:
                failures.append(f"{name} ({test.get('description', '')}): expected {expected}, "
                                f"got {got} ({arc['reason']})")
    for d in differences:
        print("expected difference:", d)
    for f in failures:
        print("FAIL:", f)
    print(f"ARC suite: {passed} of {total} scenarios as expected "
          f"({len(differences)} documented differences)")
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
