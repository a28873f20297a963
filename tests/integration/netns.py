"""A private network namespace for tests that need addresses other than 127.0.0.0/8 and ::1.

enter(addresses) runs the calling test module again inside a new user and network namespace
(`unshare -rn`: no root needed, nothing outside is touched), brings `lo` up there and adds
`addresses` to it, so that the test can bind port 25 on documentation, benchmarking or
translated addresses and watch whether anything connects. Inside, the caller is root of the
namespace only. When user namespaces are not available the module exits 77 (skipped).
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

_MARK = "IPCONFIRM_IN_NETNS"


def enter(addresses=()):
    """Returns inside the namespace, with `lo` up and `addresses` on it; the first call (outside)
    never returns: it replaces this process by the same test run inside the namespace."""
    if os.environ.get(_MARK) == "1":
        (ip,) = h.require("ip")
        subprocess.run([ip, "link", "set", "lo", "up"], check=True)
        for a in addresses:
            family, prefix = ("-6", "128") if ":" in a else ("-4", "32")
            subprocess.run([ip, family, "addr", "add", f"{a}/{prefix}", "dev", "lo"], check=True)
        return
    unshare, _ = h.require("unshare", "ip")
    probe = subprocess.run([unshare, "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        print("SKIP: no user and network namespaces here (unshare -rn failed: "
              f"{probe.stderr.decode(errors='replace').strip()})", flush=True)
        sys.exit(h.SKIP)
    env = dict(os.environ, **{_MARK: "1"})
    sys.stdout.flush()
    os.execve(unshare, [unshare, "-rn", sys.executable, os.path.abspath(sys.argv[0]),
                        *sys.argv[1:]], env)
