#!/usr/bin/python3
"""Runs an OpenSPF test suite through ipconfirm's SPF check, with no network.

The suites (rfc7208-tests.yml.gz, rfc4408-tests.yml.gz) ship with Debian's python3-spf. This
script only converts the YAML to JSON (python3-yaml); the C++ driver (spf_suite.cpp) builds the
zone data into DNS answers and runs check_spf() on every case.

Usage: spf_suite.py SUITE.yml.gz DRIVER [DRIVER ARGUMENTS...]
Exits 77 (skipped) when the suite file is missing, else with the driver's exit code.
"""
import gzip
import json
import os
import subprocess
import sys
import tempfile


def plain(value):
    """YAML scalars as JSON strings (MX preferences stay numbers), lists kept."""
    if isinstance(value, list):
        return [v if isinstance(v, int) else plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return "" if value is None else str(value)


def convert(path):
    import yaml  # python3-yaml, installed by scripts/install-deps

    with gzip.open(path, "rb") as f:
        docs = list(yaml.safe_load_all(f))
    scenarios = []
    for doc in docs:
        zone = {}
        for name, entries in (doc.get("zonedata") or {}).items():
            zone[str(name)] = [e if e == "TIMEOUT" else plain(e) for e in entries or []]
        tests = {}
        for test_id, t in (doc.get("tests") or {}).items():
            result = t.get("result")
            tests[str(test_id)] = {
                "host": plain(t.get("host")),
                "mailfrom": plain(t.get("mailfrom")),
                "helo": plain(t.get("helo")),
                "result": [str(r) for r in result] if isinstance(result, list) else [str(result)],
                "explanation": plain(t["explanation"]) if "explanation" in t else None,
                "spec": plain(t.get("spec")),
            }
        scenarios.append({"description": plain(doc.get("description")), "zonedata": zone,
                          "tests": tests})
    return {"suite": os.path.basename(path), "scenarios": scenarios}


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    suite, driver, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    if not os.path.exists(suite):
        print(f"skipped: {suite} not found (Debian package python3-spf)")
        return 77
    data = convert(suite)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "suite.json")
        with open(path, "w") as f:
            json.dump(data, f, ensure_ascii=True)
        return subprocess.call([driver, path, *rest])


if __name__ == "__main__":
    sys.exit(main())
