"""The ipconfirm benchmark: one run, one table. Started by bench/run (read it first).

On loopback only, it starts
  - dnsmasq, authoritative for the bench zones: A and PTR records for every client address and
    an (empty) DNS blocklist zone, so each connection costs ipconfirm real PTR, A and DNSBL
    lookups;
  - smtp-sink as the smarthost that receives ipconfirm's replies, writing each to its own file;
  - a second, bare smtp-sink that does nothing but accept: the limit of this machine;
  - ipconfirm (release build) with a config written for the bench;
then for each (sessions, size) drives Postfix's smtp-source against the bare sink and against
ipconfirm, while a probe session of our own (asyncio, below) sends messages alongside and
timestamps the final dot, the 250 and, from the sink's file times, the arrival of the reply.

Every wait is bounded in time and every loop in count; a stage that overruns is reported as
such in the table, never waited for without end.
"""

import argparse
import asyncio
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SESSIONS = (1, 10, 50)
SIZES = (1024, 4096, 65536)
PROBE_BASE = "127.0.0.2"  # the probe's client address; PTR/A records below
IDLE_ADDRS = [f"127.0.1.{i}" for i in range(1, 51)]  # 50 addresses x 200 idle connections
SENDER = "load@sender.bench.test"
RCPT = "ipconfirm@example.test"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def stop(proc, timeout=10):
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def cpu_seconds(pid):
    """User + system CPU time a process has used so far (from /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Peers:
    def __init__(self, work, binary):
        self.work = work
        self.procs = []
        self.cleanup = []  # folders outside `work` to remove at the end
        # DNS.
        self.dns_port = free_port(socket.SOCK_DGRAM)
        lines = [
            "no-resolv", "no-hosts", "no-poll", "bind-interfaces", "listen-address=127.0.0.1",
            "local=/test/", "local=/127.in-addr.arpa/", "local=/ip6.arpa/",
            "host-record=client.bench.test,127.0.0.1",
            f"host-record=probe.bench.test,{PROBE_BASE}",
            "dns-forward-max=1000",
        ]
        lines += [f"host-record=idle{i}.bench.test,{a}" for i, a in enumerate(IDLE_ADDRS)]
        conf = os.path.join(work, "dnsmasq.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.dns = self.spawn("dnsmasq", ["dnsmasq", "--conf-file=" + conf, "--no-daemon",
                                          "--log-facility=-", f"--port={self.dns_port}",
                                          "--pid-file="])
        if not wait_port(self.dns_port, self.dns):
            raise RuntimeError("dnsmasq did not start: see " + work + "/dnsmasq.log")
        # The smarthost, writing each reply to a file, and the bare sink. The sink's files are
        # the bench's instrumentation (they time the replies' arrival), not ipconfirm's work:
        # in memory (/dev/shm) where there is one, so that they cost the shared cores little.
        shm = "/dev/shm"
        if os.path.isdir(shm) and os.access(shm, os.W_OK):
            self.sink_dir = tempfile.mkdtemp(prefix="ipconfirm-bench-sink.", dir=shm)
            self.cleanup.append(self.sink_dir)
        else:
            self.sink_dir = os.path.join(work, "sink")
            os.makedirs(self.sink_dir)
        os.chmod(self.sink_dir, 0o777)
        self.sink_port = free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.sink = self.spawn("sink", ["smtp-sink", *user, "-h", "sink.bench.test", "-d",
                                        os.path.join(self.sink_dir, "%Y%m%d%H%M%S."),
                                        f"127.0.0.1:{self.sink_port}", "1000"])
        self.bare_port = free_port()
        self.bare = self.spawn("bare-sink", ["smtp-sink", *user, "-h", "bare.bench.test",
                                             f"127.0.0.1:{self.bare_port}", "1000"])
        for p, port in ((self.sink, self.sink_port), (self.bare, self.bare_port)):
            if not wait_port(port, p):
                raise RuntimeError("smtp-sink did not start")
        # ipconfirm.
        self.port = free_port()
        self.spool = os.path.join(work, "spool")  # on the work folder's disk: fsync is real
        cfg = os.path.join(work, "ipconfirm.toml")
        with open(cfg, "w") as f:
            f.write(f"""hostname = "mx.example.test"
domains = ["example.test"]
[smtp]
listen = ["127.0.0.1:{self.port}"]
max_connections = 12000
max_connections_per_ip = 12000
max_commands = 100000
command_timeout = 120
connection_deadline = 3600
[dns]
servers = ["127.0.0.1:{self.dns_port}"]
dnsbl = ["bl.bench.test"]
timeout_ms = 1000
tries = 2
[delivery]
mode = "smarthost"
smarthost = "127.0.0.1:{self.sink_port}"
[queue]
dir = "{self.spool}"
max_entries = 200000
[reply]
# The load comes from one address: the backscatter limits would suppress most replies.
max_per_recipient_per_hour = 0
max_per_ip_per_hour = 0
max_per_network_per_hour = 0
max_per_domain_per_hour = 0
max_per_site_per_hour = 0
max_total_per_minute = 0
""")
            if os.geteuid() == 0:  # serve refuses root without [service] user
                f.write('[service]\nuser = "root"\n')
        self.ipc = self.spawn("ipconfirm", [binary, "serve", "--config", cfg], cwd=work)
        if not wait_port(self.port, self.ipc):
            raise RuntimeError("ipconfirm did not start: see " + work + "/ipconfirm.log")

    def spawn(self, name, args, cwd=None):
        logf = open(os.path.join(self.work, name + ".log"), "w")
        p = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, cwd=cwd)
        self.procs.append(p)
        return p

    def queued(self):
        try:
            return len(os.listdir(os.path.join(self.spool, "queue")))
        except OSError:
            return -1

    def stop_all(self, keep=False):
        for p in reversed(self.procs):
            stop(p)
        if not keep:
            for d in self.cleanup:
                shutil.rmtree(d, ignore_errors=True)


# --- the probe: one SMTP session of our own that timestamps the dot and the 250 -------------


class Probe:
    """Sends messages one after the other until stopped; records, for each, the time from the
    final dot to the 250 and the time the 250 arrived (to match the reply in the sink)."""

    def __init__(self, port, size, tag):
        self.port, self.size, self.tag = port, size, tag
        self.dot_to_250 = []  # seconds
        self.sent = {}  # recipient of the reply (our MAIL FROM) -> (wall, monotonic) time of the dot
        self.errors = 0
        self.stopping = False

    async def run(self, max_messages=100000, max_seconds=600):
        body_line = b"X" * 76 + b"\r\n"
        body = body_line * max(1, self.size // len(body_line))
        end = time.monotonic() + max_seconds
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port, local_addr=(PROBE_BASE, 0)), 10)
        except (OSError, asyncio.TimeoutError):
            self.errors += 1
            return

        async def reply():
            while True:
                line = await asyncio.wait_for(r.readline(), 30)
                if not line:
                    raise ConnectionError("closed")
                if line[3:4] != b"-":
                    return line

        try:
            await reply()
            w.write(b"EHLO probe.bench.test\r\n")
            await reply()
            n = 0
            while not self.stopping and n < max_messages and time.monotonic() < end:
                n += 1
                sender = f"probe-{self.tag}-{n}@sender.bench.test"
                w.write(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n".encode())
                codes = [await reply(), await reply(), await reply()]
                if not codes[2].startswith(b"354"):
                    self.errors += 1
                    w.write(b"RSET\r\n")
                    await reply()
                    continue
                w.write(f"From: <{sender}>\r\nTo: <{RCPT}>\r\nSubject: probe {n}\r\n"
                        f"Message-ID: <probe-{self.tag}-{n}@sender.bench.test>\r\n\r\n"
                        .encode() + body)
                await w.drain()
                wall0 = time.time()  # the sink's file times are wall-clock times
                t0 = time.monotonic()
                w.write(b".\r\n")
                line = await reply()
                t1 = time.monotonic()
                if line.startswith(b"250"):
                    self.dot_to_250.append(t1 - t0)
                    self.sent[sender] = (wall0, t0)
                else:
                    self.errors += 1
            w.write(b"QUIT\r\n")
            await asyncio.wait_for(r.read(), 10)
        except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            self.errors += 1
        finally:
            w.close()


def sink_arrivals(sink_dir, seen, wanted):
    """Maps reply recipient -> wall-clock time its file was last written, for new sink files."""
    out = {}
    for name in os.listdir(sink_dir):
        if name in seen:
            continue
        seen.add(name)
        path = os.path.join(sink_dir, name)
        try:
            with open(path, "rb") as f:
                head = f.read(2048)
            mtime = os.stat(path).st_mtime
        except OSError:
            continue
        for m in re.finditer(rb"^X-Rcpt-Args: <([^>]*)>", head, re.M):
            rcpt = m.group(1).decode(errors="replace")
            if rcpt in wanted:
                out[rcpt] = mtime
    return out


def smtp_source(port, sessions, size, count, timeout):
    """Runs smtp-source; returns (messages per second, error text or None)."""
    args = ["smtp-source", "-s", str(sessions), "-m", str(count), "-l", str(size),
            "-f", SENDER, "-t", RCPT, "-M", "client.bench.test", f"127.0.0.1:{port}"]
    t0 = time.monotonic()
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout}s"
    dt = time.monotonic() - t0
    if p.returncode != 0:
        return count / dt, (p.stderr or p.stdout).strip().splitlines()[-1:] or ["failed"]
    return count / dt, None


async def run_with_probe(peers, port, sessions, size, count, timeout, tag):
    probe = Probe(port, size, tag)
    task = asyncio.create_task(probe.run(max_seconds=timeout))
    loop = asyncio.get_running_loop()
    rate, err = await loop.run_in_executor(None, smtp_source, port, sessions, size, count, timeout)
    probe.stopping = True
    try:
        await asyncio.wait_for(task, 40)
    except asyncio.TimeoutError:
        task.cancel()
        probe.errors += 1
    return rate, err, probe


def drain(peers, timeout):
    """Waits until ipconfirm's queue is empty; returns seconds taken or None on timeout."""
    t0 = time.monotonic()
    end = t0 + timeout
    while time.monotonic() < end:
        if peers.queued() == 0:
            return time.monotonic() - t0
        time.sleep(0.1)
    return None


def ms(v):
    return "-" if v is None else f"{v * 1000:.1f}"


async def idle_connections(peers, count, hold=3.0):
    """Opens `count` connections that read the greeting and then sit idle; returns the RSS
    growth of ipconfirm per connection in bytes, and how many connections got a 220."""
    pid = peers.ipc.pid
    await asyncio.sleep(1.0)
    before = rss_kib(pid)
    conns = []
    greeted = 0
    per_batch = 200
    for b in range(0, count, per_batch):
        addr = IDLE_ADDRS[(b // per_batch) % len(IDLE_ADDRS)]

        async def one():
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", peers.port, local_addr=(addr, 0)), 20)
                line = await asyncio.wait_for(r.readline(), 20)
                return (r, w, line.startswith(b"220"))
            except (OSError, asyncio.TimeoutError):
                return None

        res = await asyncio.gather(*[one() for _ in range(min(per_batch, count - b))])
        for x in res:
            if x:
                conns.append(x)
                greeted += x[2]
    await asyncio.sleep(hold)  # let the DNS lookups started at connect finish
    after = rss_kib(pid)
    for r, w, _ in conns:
        w.close()
    await asyncio.sleep(1.0)
    per = None
    if before is not None and after is not None and greeted:
        per = (after - before) * 1024 / greeted
    return per, greeted, before, after


def memory_run(peers, total, sessions, size, timeout):
    """Sends `total` messages in one smtp-source run while sampling ipconfirm's RSS."""
    args = ["smtp-source", "-s", str(sessions), "-m", str(total), "-l", str(size),
            "-f", SENDER, "-t", RCPT, "-M", "client.bench.test", f"127.0.0.1:{peers.port}"]
    samples = []
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while p.poll() is None and time.monotonic() - t0 < timeout:
        samples.append((time.monotonic() - t0, rss_kib(peers.ipc.pid)))
        time.sleep(1.0)
    if p.poll() is None:
        p.kill()
        p.wait(5)
        return samples, f"timed out after {timeout}s", time.monotonic() - t0
    err = None if p.returncode == 0 else (p.stderr.read().strip().splitlines()[-1:] or ["failed"])
    return samples, err, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--long", action="store_true", help="also the 100,000-message memory run")
    ap.add_argument("--quick", action="store_true", help="fewer messages per cell (a smoke run)")
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--only", action="append", default=[], metavar="SESSIONSxBYTES",
                    help="run only these cells, e.g. --only 50x4096 (repeatable)")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="ipconfirm-bench.")
    os.chmod(work, 0o755)
    log(f"work folder: {work}")
    peers = None
    rows, notes = [], []
    try:
        peers = Peers(work, a.binary)
        cell_timeout = 180
        for size in SIZES:
            for sessions in SESSIONS:
                if a.only and f"{sessions}x{size}" not in a.only:
                    continue
                base = {1: 300, 10: 1000, 50: 2000}[sessions]
                if size == 65536:
                    base //= 2
                if a.quick:
                    base //= 10
                log(f"-- {sessions} sessions, {size} bytes: bare smtp-sink")
                # The bare sink's rate varies by a quarter from one run to the next on a shared
                # machine: the median of three runs.
                sink_runs = [smtp_source(peers.bare_port, sessions, size, base * 3, cell_timeout)
                             for _ in range(3)]
                sink_err = next((e for _, e in sink_runs if e), None)
                rates = [r for r, _ in sink_runs if r]
                sink_rate = statistics.median(rates) if rates else None
                log(f"   {sink_rate and round(sink_rate)} msg/s {sink_err or ''}")
                log(f"-- {sessions} sessions, {size} bytes: ipconfirm")
                seen = set(os.listdir(peers.sink_dir))
                tag = f"{sessions}x{size}"
                cpu0 = cpu_seconds(peers.ipc.pid)
                rate, err, probe = asyncio.run(
                    run_with_probe(peers, peers.port, sessions, size, base, cell_timeout, tag))
                drained = drain(peers, 120)
                cpu1 = cpu_seconds(peers.ipc.pid)
                cpu_us = None
                if cpu0 is not None and cpu1 is not None:
                    cpu_us = (cpu1 - cpu0) * 1e6 / (base + len(probe.dot_to_250))
                arrivals = {}
                wanted = set(probe.sent)
                for _ in range(20):  # the sink may still be writing the last files
                    arrivals.update(sink_arrivals(peers.sink_dir, seen, wanted))
                    if len(arrivals) >= len(wanted):
                        break
                    time.sleep(0.25)
                to_sink = [arrivals[k] - probe.sent[k][0] for k in arrivals]
                log(f"   {rate and round(rate)} msg/s {err or ''}; probe {len(probe.dot_to_250)}"
                    f" msgs, {probe.errors} errors; drained {drained}")
                rows.append(dict(sessions=sessions, size=size, sink=sink_rate, ipc=rate,
                                 err=err or sink_err, p50=pct(probe.dot_to_250, 50),
                                 p99=pct(probe.dot_to_250, 99), n=len(probe.dot_to_250),
                                 s50=pct(to_sink, 50), s99=pct(to_sink, 99),
                                 lost=len(wanted) - len(arrivals), drained=drained,
                                 cpu_us=cpu_us))
        peak_load = rss_kib(peers.ipc.pid, "VmHWM")
        if a.idle > 0:
            log(f"-- {a.idle} idle connections")
        per_idle, greeted, rb, ra = None, 0, None, None
        if a.idle > 0:
            per_idle, greeted, rb, ra = asyncio.run(idle_connections(peers, a.idle))
        long_result = None
        if a.long:
            log("-- 100,000 messages, 50 sessions, 4 KiB (memory)")
            samples, lerr, ldt = memory_run(peers, 100000, 50, 4096, 3 * 3600)
            ldrained = drain(peers, 600)
            long_result = (samples, lerr, ldt, ldrained)
        peak = rss_kib(peers.ipc.pid, "VmHWM")
    finally:
        if peers:
            peers.stop_all(keep=a.keep)

    # The table.
    print()
    print("| sessions | size | smtp-sink msg/s | ipconfirm msg/s | ratio | dot→250 p50 / p99 ms "
          "| reply in sink p50 / p99 ms | ipconfirm CPU µs/msg | queue drained |")
    print("|---:|---:|---:|---:|---:|---|---|---:|---|")
    for r in rows:
        ratio = f"{r['ipc'] / r['sink']:.2f}" if r["ipc"] and r["sink"] else "-"
        drained = "no (120 s)" if r["drained"] is None else f"yes, {r['drained']:.1f} s"
        if r["lost"]:
            drained += f", {r['lost']} probe replies missing"
        size = f"{r['size'] // 1024} KiB"
        print(f"| {r['sessions']} | {size} | {r['sink'] and round(r['sink'])} | "
              f"{r['ipc'] and round(r['ipc'])} | {ratio} | {ms(r['p50'])} / {ms(r['p99'])} "
              f"(n={r['n']}) | {ms(r['s50'])} / {ms(r['s99'])} | "
              f"{'-' if r['cpu_us'] is None else round(r['cpu_us'])} | {drained} |")
    for r in rows:
        if r["err"]:
            print(f"note: {r['sessions']} sessions, {r['size']} bytes: {r['err']}")
    print()
    print(f"peak RSS after the load cells: {peak_load} KiB; at the end: {peak} KiB")
    if per_idle is not None:
        print(f"idle connections: {greeted} greeted; RSS {rb} -> {ra} KiB = "
              f"{per_idle / 1024:.1f} KiB per idle connection")
    if long_result:
        samples, lerr, ldt, ldrained = long_result
        vals = [v for _, v in samples if v]
        if vals:
            n = len(vals)
            tenth = vals[n // 10]
            print(f"100,000 messages in {ldt:.0f} s ({100000 / ldt:.0f} msg/s): RSS at 10% "
                  f"{tenth} KiB, 50% {vals[n // 2]} KiB, end {vals[-1]} KiB, max {max(vals)} KiB"
                  f"{'; ' + str(lerr) if lerr else ''}; queue drained: "
                  f"{'no' if ldrained is None else f'yes, {ldrained:.0f} s'}")
    if a.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
