"""The Debian package: `dpkg-buildpackage -b -us -uc` builds ipconfirm_*.deb, which installs
into a fresh Debian 12 root (debootstrap --variant=minbase; its dependencies come from the
archive through apt), and runs there.

In the root: the package is installed with /etc/ipconfirm/ipconfirm.toml as a conffile, the
system user _ipconfirm owns /var/lib/ipconfirm, the unit and the man pages are in place;
`ipconfirm check` with the installed config prints a report (in a network namespace of its
own, so its DNS lookups fail at once instead of leaving the machine); `ipconfirm serve`
started as root with the installed config drops to _ipconfirm and serves; purging removes the
configuration and the state.

Costly parts are kept between runs in the build folder: the minbase root as a tarball
(IPCONFIRM_DEB_ROOT_TAR overrides where), the package build's source copy at a fixed path so
that ccache (used when installed) hits. Times are printed. Needs root, dpkg-buildpackage,
debhelper, debootstrap, unshare and the Debian archive (IPCONFIRM_DEBIAN_MIRROR, default
http://deb.debian.org/debian); skipped (77) when a tool is missing.

Environment: IPCONFIRM_BUILD, IPCONFIRM_SOURCE.
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
MIRROR = os.environ.get("IPCONFIRM_DEBIAN_MIRROR", "http://deb.debian.org/debian")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def run(cmd, timeout=1800, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        print(f"$ {' '.join(cmd)}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}", flush=True)
    return p


def timed(what, fn):
    t = time.monotonic()
    result = fn()
    print(f"time: {what}: {time.monotonic() - t:.0f} s", flush=True)
    return result


def build_package(source, work):
    src = os.path.join(work, "src", "ipconfirm")
    shutil.rmtree(os.path.join(work, "src"), ignore_errors=True)
    shutil.copytree(source, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "build", "build-*", "run", "__pycache__", "obj-*"))
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=%d" % (os.cpu_count() or 2))
    if os.path.isdir("/usr/lib/ccache"):
        env["PATH"] = "/usr/lib/ccache:" + env["PATH"]
    p = run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=src, env=env, timeout=3000)
    if not check(p.returncode == 0, "dpkg-buildpackage failed"):
        return None
    debs = glob.glob(os.path.join(work, "src", "ipconfirm_*.deb"))
    check(len(debs) == 1, f"expected one ipconfirm_*.deb, found {debs}")
    return debs[0] if debs else None


def root_tarball(work):
    tar = os.environ.get("IPCONFIRM_DEB_ROOT_TAR") or os.path.join(work, "bookworm-minbase.tar")
    if os.path.exists(tar):
        print(f"reusing {tar}", flush=True)
        return tar
    tmp = os.path.join(work, "debootstrap-root")
    shutil.rmtree(tmp, ignore_errors=True)

    def bootstrap():
        return run(["debootstrap", "--variant=minbase", "bookworm", tmp, MIRROR], timeout=2400)
    p = timed("debootstrap --variant=minbase bookworm", bootstrap)
    if not check(p.returncode == 0, "debootstrap failed"):
        return None
    p = run(["tar", "-C", tmp, "-cf", tar + ".tmp", "."])
    shutil.rmtree(tmp, ignore_errors=True)
    if not check(p.returncode == 0, "could not pack the root"):
        return None
    os.rename(tar + ".tmp", tar)
    return tar


def check_install_deps(root, source, env):
    """scripts/install-deps installs postfix and haproxy (for their test tools) into the same
    root without leaving a daemon enabled or running. The root's own policy-rc.d is removed
    first, so that the script's precautions are what is tested."""
    os.remove(os.path.join(root, "usr/sbin/policy-rc.d"))
    shutil.copy(os.path.join(source, "scripts", "install-deps"), os.path.join(root, "tmp"))
    env = dict(env, IPCONFIRM_DEPS_PACKAGES="postfix haproxy")
    p = timed("install-deps (postfix, haproxy) in the root",
              lambda: run(["chroot", root, "sh", "/tmp/install-deps", "test"], env=env))
    if not check(p.returncode == 0, "install-deps failed in the root"):
        return
    for pkg in ("postfix", "haproxy"):
        p = run(["chroot", root, "dpkg-query", "-W", "-f=${Status}", pkg])
        check(p.stdout == "install ok installed", f"install-deps did not install {pkg}")
    wants = glob.glob(os.path.join(root, "etc/systemd/system/*.wants/*"))
    enabled = [w for w in wants if os.path.basename(w).split("@")[0].split(".")[0]
               in ("postfix", "haproxy")]
    check(not enabled, f"install-deps left units enabled: {enabled}")
    started = glob.glob(os.path.join(root, "etc/rc[2-5].d/S*postfix")) + glob.glob(
        os.path.join(root, "etc/rc[2-5].d/S*haproxy"))
    check(not started, f"install-deps left SysV start links: {started}")
    check(not os.path.exists(os.path.join(root, "usr/sbin/policy-rc.d")),
          "install-deps left its policy-rc.d behind")
    # No process of the root runs (a daemon would have the root as its /proc/PID/root).
    real = os.path.realpath(root)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.path.realpath(f"/proc/{pid}/root") == real:
                check(False, f"a process runs in the root: {open(f'/proc/{pid}/cmdline').read()}")
        except OSError:
            pass


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (debootstrap, chroot)")
        return SKIP
    for tool in ("dpkg-buildpackage", "dh", "debootstrap", "unshare", "chroot", "ip"):
        if not shutil.which(tool):
            print(f"SKIP: {tool} is not installed")
            return SKIP
    build, source = os.environ["IPCONFIRM_BUILD"], os.environ["IPCONFIRM_SOURCE"]
    work = os.path.join(build, "deb-test")
    os.makedirs(work, exist_ok=True)

    deb = timed("dpkg-buildpackage -b -us -uc", lambda: build_package(source, work))
    tar = root_tarball(work)
    if not deb or not tar:
        return 1
    p = run(["dpkg-deb", "--contents", deb])
    for path in ("./usr/sbin/ipconfirm", "./etc/ipconfirm/ipconfirm.toml",
                 "./lib/systemd/system/ipconfirm.service", "./usr/share/man/man8/ipconfirm.8.gz",
                 "./usr/share/man/man5/ipconfirm.toml.5.gz", "./var/lib/ipconfirm/",
                 "./usr/share/doc/ipconfirm/examples/ipconfirm.toml"):
        check(path in p.stdout, f"the package lacks {path}")

    root = tempfile.mkdtemp(prefix="root-", dir=work)
    server = None
    try:
        run(["tar", "-C", root, "-xf", tar])
        # No daemon may start in the root; apt needs a resolver to reach the archive.
        with open(os.path.join(root, "usr/sbin/policy-rc.d"), "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(os.path.join(root, "usr/sbin/policy-rc.d"), 0o755)
        shutil.copy("/etc/resolv.conf", os.path.join(root, "etc/resolv.conf"))
        shutil.copy(deb, os.path.join(root, "tmp", "ipconfirm.deb"))
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")

        def install():
            p = run(["chroot", root, "apt-get", "update", "-qq"], env=env)
            if p.returncode != 0:
                return p
            return run(["chroot", root, "apt-get", "install", "-y", "-qq",
                        "--no-install-recommends", "/tmp/ipconfirm.deb"], env=env)
        p = timed("apt-get install ./ipconfirm.deb in the fresh root", install)
        if not check(p.returncode == 0, "installing the package in the fresh root failed"):
            return 1

        def in_root(*cmd, **kw):
            return run(["chroot", root, *cmd], env=env, **kw)
        p = in_root("dpkg-query", "-W", "-f=${Status}\n${Conffiles}\n", "ipconfirm")
        check(p.stdout.startswith("install ok installed"), f"not installed: {p.stdout}")
        check("/etc/ipconfirm/ipconfirm.toml" in p.stdout, "the config is not a conffile")
        p = in_root("getent", "passwd", "_ipconfirm")
        check(p.returncode == 0, "no user _ipconfirm")
        p = in_root("stat", "-c", "%U:%G %a", "/var/lib/ipconfirm")
        check(p.stdout.strip() == "_ipconfirm:_ipconfirm 750",
              f"/var/lib/ipconfirm is {p.stdout.strip()}")
        p = in_root("/usr/sbin/ipconfirm", "--version")
        check(p.returncode == 0 and p.stdout.strip(), "ipconfirm --version failed")

        # check: the installed config loads, the analysis runs, the report is JSON.
        with open(os.path.join(root, "tmp", "message.eml"), "w") as f:
            f.write("From: a@example.org\nTo: ipconfirm@example.test\nSubject: test\n"
                    "Message-ID: <1@example.org>\n\nhello\n")
        p = run(["unshare", "-n", "chroot", root, "/usr/sbin/ipconfirm", "check", "--config",
                 "/etc/ipconfirm/ipconfirm.toml", "--peer", "192.0.2.1", "--helo",
                 "mail.example.org", "/tmp/message.eml"], env=env, timeout=120)
        if check(p.returncode == 0, f"ipconfirm check failed: {p.stderr}"):
            report = json.loads(p.stdout)
            check(report["connection"]["ip"] == "192.0.2.1", "check reported another IP")
            print("ipconfirm check in the root: rdns.status =", report["rdns"]["status"])

        # serve, started as root with the installed config, becomes _ipconfirm and serves.
        log_path = os.path.join(work, "serve.log")
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec chroot "$0" '
                 "/usr/sbin/ipconfirm serve --config /etc/ipconfirm/ipconfirm.toml", root],
                stdout=log, stderr=subprocess.STDOUT, env=env)
            end = time.monotonic() + 30
            while time.monotonic() < end and server.poll() is None:
                if " started " in open(log_path, errors="replace").read():
                    break
                time.sleep(0.1)
            text = open(log_path, errors="replace").read()
            check(" started " in text, f"serve did not start in the root:\n{text}")
            check("privileges user=_ipconfirm" in text, f"serve did not drop to _ipconfirm:\n{text}")
            p = in_root("stat", "-c", "%U", "/var/lib/ipconfirm/spool/queue")
            check(p.stdout.strip() == "_ipconfirm", f"the spool belongs to {p.stdout.strip()}")
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            check(server.wait(30) == 0, "serve did not stop cleanly")
            server = None

        check_install_deps(root, source, env)

        p = in_root("dpkg", "--purge", "ipconfirm")
        check(p.returncode == 0, "dpkg --purge failed")
        check(not os.path.exists(os.path.join(root, "etc/ipconfirm/ipconfirm.toml")),
              "the config is left after purge")
        check(not os.path.exists(os.path.join(root, "var/lib/ipconfirm")),
              "/var/lib/ipconfirm is left after purge")
    finally:
        if server and server.poll() is None:
            server.kill()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
