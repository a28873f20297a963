"""The systemd unit: `systemd-analyze verify` accepts it (its ExecStart pointed at the built
binary, its Documentation= at the built man pages), it has the settings the service relies on,
and `systemd-analyze security --offline=yes` rates its exposure at most 2.0 ("OK").

Environment: IPCONFIRM_BUILD, IPCONFIRM_BIN. Skipped (77) without systemd-analyze.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
REQUIRED = [
    "Type=notify", "StateDirectory=ipconfirm", "ProtectSystem=strict", "NoNewPrivileges=yes",
    "PrivateTmp=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter=@system-service", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
    "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "User=_ipconfirm", "WatchdogSec=",
]


def main():
    tool = shutil.which("systemd-analyze")
    if not tool:
        print("SKIP: systemd-analyze is not installed")
        return SKIP
    build, binary = os.environ["IPCONFIRM_BUILD"], os.environ["IPCONFIRM_BIN"]
    unit = open(os.path.join(build, "dist", "ipconfirm.service"), encoding="utf-8").read()
    failures = [f"the unit lacks {s}" for s in REQUIRED if s not in unit]
    with tempfile.TemporaryDirectory(prefix="ipconfirm-unit-") as d:
        path = os.path.join(d, "ipconfirm.service")
        with open(path, "w", encoding="utf-8") as f:
            f.write(re.sub(r"^ExecStart=\S+", "ExecStart=" + binary, unit, flags=re.M))
        env = dict(os.environ, MANPATH=os.path.join(build, "man"), SYSTEMD_LOG_COLOR="0")
        man = ["--man=yes"] if os.path.exists(os.path.join(build, "man", "man8")) else ["--man=no"]
        p = subprocess.run([tool, "verify", *man, path], capture_output=True, text=True,
                           env=env, timeout=120, cwd=d)
        print(p.stdout + p.stderr)
        if p.returncode != 0 or p.stderr.strip():
            failures.append(f"systemd-analyze verify: exit {p.returncode}: {p.stderr}")
        p = subprocess.run([tool, "security", "--offline=yes", "--no-pager", path],
                           capture_output=True, text=True, env=env, timeout=120, cwd=d)
        m = re.search(r"Overall exposure level for ipconfirm\.service: ([0-9.]+)", p.stdout)
        if not m:
            failures.append(f"no exposure level in: {p.stdout[-500:]} {p.stderr}")
        else:
            print(f"systemd-analyze security: exposure {m.group(1)}")
            if float(m.group(1)) > 2.0:
                failures.append(f"exposure {m.group(1)} is above 2.0:\n{p.stdout}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
