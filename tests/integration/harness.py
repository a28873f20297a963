"""Shared pieces of the integration tests: real peers on loopback.

Each test module starts what it needs: dnsmasq serving the test zones, Postfix's smtp-sink as
the smarthost writing each reply to a folder, and the ipconfirm binary with a config written
for the test. Ports are picked free at random on 127.0.0.1. A missing tool makes the module
exit 77, which ctest reports as skipped (never as passed).

Environment: IPCONFIRM_BIN (the binary), IPCONFIRM_SOURCE (the source tree), both set by ctest.
"""

import email
import email.policy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SKIP = 77


def find_tool(name):
    for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin", "/usr/local/sbin"]:
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def require(*tools):
    """Returns the tools' paths, or exits 77 (skipped) naming the first one missing."""
    paths = []
    for t in tools:
        p = find_tool(t)
        if not p:
            print(f"SKIP: {t} is not installed", flush=True)
            sys.exit(SKIP)
        paths.append(p)
    return paths


def binary():
    b = os.environ.get("IPCONFIRM_BIN")
    if not b or not os.path.exists(b):
        print("IPCONFIRM_BIN is not set to the built binary", file=sys.stderr)
        sys.exit(1)
    return b


def free_port(host="127.0.0.1", kind=None):
    """A port free for both TCP and UDP on `host`, below the kernel's ephemeral range (which
    starts at 32768), so that no outgoing connection of another test can take it meanwhile."""
    import random
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(200):
        port = random.randrange(20000, 32000)
        try:
            for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(fam, k) as s:
                    s.bind((host, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port found in 20000-32000")


def wait_for(predicate, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = predicate()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Workdir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="ipconfirm-it-")
        os.chmod(self.path, 0o755)

    def sub(self, *names):
        p = os.path.join(self.path, *names)
        os.makedirs(p, exist_ok=True)
        return p

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class Dnsmasq:
    """dnsmasq in the foreground, authoritative for the test zones, no upstream.

    `lines` are dnsmasq config lines (host-record=..., ptr-record=..., txt-record=...).
    """

    def __init__(self, work, lines, port=None):
        (self.exe,) = require("dnsmasq")
        # A port taken between our check and dnsmasq's bind makes it exit at once: try another.
        for attempt in range(5):
            self.port = port or free_port("127.0.0.1")
            if self._start(work, lines):
                return
            if port:
                break
        with open(self.log.name) as f:
            raise RuntimeError("dnsmasq failed to start:\n" + f.read())

    def _start(self, work, lines):
        conf = os.path.join(work.path, f"dnsmasq-{self.port}.conf")
        base = [
            "no-resolv", "no-hosts", "no-poll", "bind-interfaces", "listen-address=127.0.0.1",
            "local=/test/", "local=/127.in-addr.arpa/", "local=/ip6.arpa/",
            "local=/example/", "log-queries",
        ]
        with open(conf, "w") as f:
            f.write("\n".join(base + list(lines)) + "\n")
        self.log = open(os.path.join(work.path, f"dnsmasq-{self.port}.log"), "w")
        self.proc = subprocess.Popen(
            [self.exe, "--conf-file=" + conf, "--no-daemon", "--log-facility=-",
             f"--port={self.port}", "--pid-file="],
            stdout=self.log, stderr=subprocess.STDOUT)
        # dnsmasq binds before it logs "started"; a TCP connect tells us it listens.
        wait_for(lambda: port_open(self.port) or self.proc.poll() is not None, 10, "dnsmasq")
        time.sleep(0.05)
        if self.proc.poll() is not None:
            self.log.close()
            return False
        return True

    def server(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


class SmtpSink:
    """Postfix's smtp-sink writing each message to its own file in `dir`."""

    def __init__(self, work, extra_args=(), port=None):
        (self.exe,) = require("smtp-sink")
        self.port = port or free_port()
        self.dir = work.sub(f"sink-{self.port}")
        os.chmod(self.dir, 0o777)
        args = [self.exe]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        args += ["-h", "sink.test", "-d", os.path.join(self.dir, "%Y%m%d%H%M%S."), *extra_args,
                 f"127.0.0.1:{self.port}", "100"]
        self.log = open(os.path.join(work.path, f"sink-{self.port}.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: port_open(self.port) or self.proc.poll() is not None, 10, "smtp-sink")
        if self.proc.poll() is not None:
            raise RuntimeError("smtp-sink failed to start")

    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def files(self):
        return sorted(os.path.join(self.dir, f) for f in os.listdir(self.dir))

    def messages(self):
        """Every finished message as (envelope dict, email.message.EmailMessage)."""
        out = []
        for path in self.files():
            with open(path, "rb") as f:
                raw = f.read()
            env, msg = parse_sink_file(raw)
            if msg is not None and not cut_short(raw, msg):
                out.append((env, msg))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def cut_short(raw, msg):
    """smtp-sink writes a dump as the data arrives: a multipart message whose closing boundary
    is not there yet is still being written (a reply is some tens of KiB), not finished."""
    boundary = msg.get_boundary() if msg.is_multipart() else None
    return boundary is not None and b"--" + boundary.encode("latin-1") + b"--" not in raw


def parse_sink_file(raw):
    """smtp-sink's dump: X-Client-Addr, X-Helo-Args, X-Mail-Args, X-Rcpt-Args lines, then the
    message. Returns (envelope, message) with message None when the dump holds no data."""
    env = {"rcpt": []}
    lines = raw.split(b"\n")
    i = 0
    sink_fields = ("X-Client-Addr", "X-Client-Proto", "X-Helo-Args", "X-Mail-Args", "X-Rcpt-Args")
    while i < len(lines) and b": " in lines[i]:
        k, v = lines[i].decode("latin-1").split(": ", 1)
        if k not in sink_fields:
            break
        if k == "X-Rcpt-Args":
            env["rcpt"].append(v.strip())
        elif k == "X-Mail-Args":
            env["mail"] = v.strip()
        else:
            env[k] = v.strip()
        i += 1
    body = b"\n".join(lines[i:])
    if not body.strip():
        return env, None
    return env, email.message_from_bytes(body, policy=email.policy.default)


def report_json(msg):
    """The ipconfirm.json part of a reply, parsed."""
    for part in msg.walk():
        if part.get_filename() == "ipconfirm.json":
            return json.loads(part.get_content() if isinstance(part.get_content(), str)
                              else part.get_content().decode())
    raise AssertionError("the reply has no ipconfirm.json part")


def text_part(msg):
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            return part.get_content()
    return None


def with_service_user(toml_text):
    """Started as root, `serve` refuses to run without [service] user. The tests run as root
    on CI and keep root deliberately (their folders are root's), unless the config says
    otherwise (test_service_privileges.py)."""
    if os.geteuid() != 0 or "[service]" in toml_text:
        return toml_text
    return toml_text + ("" if toml_text.endswith("\n") else "\n") + '[service]\nuser = "root"\n'


class Ipconfirm:
    """The real binary with a config written from `settings` (a TOML text)."""

    def __init__(self, work, toml_text, name="ipconfirm"):
        self.work = work
        self.dir = work.sub(name)
        self.config = os.path.join(self.dir, "ipconfirm.toml")
        self.env = None  # the server's environment; None = ours
        with open(self.config, "w") as f:
            f.write(with_service_user(toml_text))
        self.log_path = os.path.join(self.dir, "serve.log")
        self.proc = None

    def start(self, expect_ok=True):
        # The log is appended to across restarts: wait for one more "started" than before.
        starts = self.read_log().count(" started ") if os.path.exists(self.log_path) else 0
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary(), "serve", "--config", self.config],
                                     cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env)
        if expect_ok:
            wait_for(lambda: self.read_log().count(" started ") > starts
                     or self.proc.poll() is not None, 15, "ipconfirm to start")
            if self.proc.poll() is not None:
                raise RuntimeError("ipconfirm exited at start:\n" + self.read_log())
        return self

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        return self.proc.returncode if self.proc else None

    def run(self, *args, timeout=30):
        """Runs another verb (check, queue ...) with this instance's config."""
        return subprocess.run([binary(), *args], cwd=self.dir, capture_output=True, text=True,
                              timeout=timeout)


def enter_network_namespace(addresses=()):
    """Runs the calling test module again inside a private network namespace (`unshare -rn`:
    a user and a network namespace, no root needed) and, once inside, brings up its loopback
    interface and adds `addresses` (IPv6, each a /128) to it. Whatever the test binds or
    connects to then stays in that namespace and vanishes with it. Exits 77 (skipped) when
    unshare or ip is missing or the kernel refuses the namespace."""
    # unshare without --fork execs the command: the pid stays the same inside.
    if os.environ.get("IPCONFIRM_NETNS") != str(os.getpid()):
        unshare, _ = require("unshare", "ip")
        probe = subprocess.run([unshare, "-rn", "true"], capture_output=True)
        if probe.returncode != 0:
            print("SKIP: unshare -rn is not permitted here: " + probe.stderr.decode(), flush=True)
            sys.exit(SKIP)
        env = dict(os.environ, IPCONFIRM_NETNS=str(os.getpid()))
        sys.stdout.flush()
        os.execve(unshare, [unshare, "-rn", sys.executable, *sys.argv], env)
    (ip,) = require("ip")
    subprocess.run([ip, "link", "set", "lo", "up"], check=True)
    if addresses:
        batch = "".join(f"addr add {a}/128 dev lo nodad\n" for a in addresses)
        subprocess.run([ip, "-6", "-batch", "-"], input=batch.encode(), check=True)


def swaks(*args, timeout=60):
    (exe,) = require("swaks")
    p = subprocess.run([exe, "--hide-informational", *args], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def config_toml(listen, dns_server, smarthost=None, maildir=None, dnsbl=(), extra="",
                lab_networks=("127.0.0.0/8", "::1")):
    lines = [
        'hostname = "mx.example.test"',
        'domains = ["example.test", "example.net"]',
        "[smtp]",
        f"listen = {json.dumps(listen)}",
        "command_timeout = 10",
        "[dns]",
        f"servers = {json.dumps([dns_server])}",
        f"dnsbl = {json.dumps(list(dnsbl))}",
        "timeout_ms = 500",
        "tries = 2",
        # The tests' dnsmasq plays the internet on loopback: report those peers in full, not as
        # a local test (tests/integration/test_local_test.py checks the local-test report).
        "[analysis]",
        f"lab_networks = {json.dumps(list(lab_networks))}",
        "[delivery]",
    ]
    if smarthost:
        lines += ['mode = "smarthost"', f'smarthost = "{smarthost}"']
    else:
        lines += ['mode = "maildir"', f'maildir = "{maildir or "./outbox"}"']
    lines += ["[queue]", 'dir = "./spool"']
    return "\n".join(lines) + "\n" + extra


def main():
    """unittest's main; exit 77 when every test was skipped."""
    result = unittest.main(exit=False, verbosity=2).result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.testsRun and len(result.skipped) == result.testsRun:
        sys.exit(SKIP)
    sys.exit(0)
