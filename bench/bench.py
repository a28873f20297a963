"""The ipconfirm benchmark: one run, one table. Started by bench/run (read it first).

On loopback only, it starts
  - dnsmasq, authoritative for the bench zones: A and PTR records for every client address,
    an (empty) DNS blocklist zone, and the sender domain's SPF, DKIM and DMARC records, so
    each message costs ipconfirm real PTR, A, DNSBL, SPF, DKIM-key and DMARC lookups;
  - smtp-sink as the smarthost that receives ipconfirm's replies, writing each to its own file;
  - a second, bare smtp-sink that does nothing but accept: the limit of this machine;
  - a private Postfix (accept, queue durably, discard), the peer a postmaster would otherwise
    put there: its config and queue in the work folder, on a port of its own, stopped at the
    end;
  - ipconfirm (release build) with a config written for the bench;
then for each (sessions, size) drives Postfix's smtp-source against the bare sink, Postfix
and ipconfirm in turn, while a probe session of our own (asyncio, below) sends messages
alongside and timestamps the final dot, the 250 and, from the sink's file times, the arrival
of the reply.

The messages are DKIM-signed (rsa-sha256, 2048 bits) once, up front, by bench/messages.py
(Debian's Python with python3-dkim), from an address whose domain's SPF record authorises
127.0.0.0/8 and that has a DMARC record; the same file goes to all three (`smtp-source -F`,
which dot-stuffs and turns each LF into CRLF).

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
SIZES = (1024, 4096, 65536, 1048576)
HEADLINE = (50, 4096)  # the cell of the targets (issue 17)
PROBE_BASE = "127.0.0.2"  # the probe's client address; PTR/A records below
IDLE_ADDRS = [f"127.0.1.{i}" for i in range(1, 51)]  # 50 addresses x 200 idle connections
SENDER_DOMAIN = "sender.bench.test"
SENDER = "load@" + SENDER_DOMAIN
SELECTOR = "bench"
RCPT = "ipconfirm@example.test"
HERE = os.path.dirname(os.path.abspath(__file__))
DEBIAN_PYTHON = "/usr/bin/python3"  # python3-dkim is Debian's


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
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


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def cpu_seconds(pid):
    """User + system CPU time a process has used so far (from /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def cpu_split(pid):
    """(user, system) CPU seconds a process has used so far, or (None, None)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tck, int(fields[12]) / tck
    except (OSError, IndexError, ValueError):
        return None, None


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def dnsmasq_txt(name, value):
    """A dnsmasq txt-record line; a value over 255 bytes is split into 255-byte strings."""
    parts = [value[i:i + 255] for i in range(0, len(value), 255)]
    return f"txt-record={name}," + ",".join(f'"{p}"' for p in parts)


class Postfix:
    """A private Postfix 3.7 on loopback: accepts for example.test, queues durably (its cleanup
    fsyncs each queue file before the 250) and discards. Its config, queue and log live in
    `work`; nothing outside is read or changed. No client name lookups (they would go to the
    system's resolver, which the bench does not control): Postfix does less per message than
    it would in production, so the comparison leans in its favour."""

    SERVICES = """\
{listen} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""

    def __init__(self, work, port):
        self.dir = os.path.join(work, "postfix")
        self.conf = os.path.join(self.dir, "conf")
        self.queue = os.path.join(self.dir, "queue")
        data = os.path.join(self.dir, "data")
        for d in (self.conf, self.queue, data):
            os.makedirs(d)
        shutil.chown(data, "postfix")
        self.port = port
        self.log = os.path.join(self.dir, "maillog")
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(f"""compatibility_level = 3.6
queue_directory = {self.queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.test
transport_maps = inline:{{ example.test=discard: }}
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
default_process_limit = 200
maillog_file = {self.log}
maillog_file_prefixes = {self.dir}
biff = no
""")
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(self.SERVICES.format(listen=f"127.0.0.1:{port}"))
        try:
            p = subprocess.run(["postfix", "-c", self.conf, "start"], capture_output=True,
                               text=True, timeout=60)
            started = p.returncode == 0 and wait_port(port, None, 20)
        except BaseException:  # interrupted while it starts: it may be running already
            self.stop()
            raise
        if not started:
            self.stop()
            raise RuntimeError("Postfix did not start: " + (p.stderr or p.stdout).strip()[-500:]
                               + f" (see {self.log})")

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def queued(self):
        n = 0
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(self.queue, sub)):
                n += len(files)
        return n

    def stop(self):
        subprocess.run(["postfix", "-c", self.conf, "stop"], capture_output=True, timeout=60)


class Peers:
    def __init__(self, work, binary, messages, postfix=True):
        self.work = work
        self.procs = []
        self.cleanup = []  # folders outside `work` to remove at the end
        self.postfix = None
        try:
            self.start(binary, messages, postfix)
        except BaseException:
            self.stop_all()  # whatever started before the failure
            raise

    def start(self, binary, messages, postfix):
        work = self.work
        # DNS.
        self.dns_port = free_port(socket.SOCK_DGRAM)
        with open(os.path.join(messages, "dkim.txt")) as f:
            dkim_txt = f.read().strip()
        lines = [
            "no-resolv", "no-hosts", "no-poll", "bind-interfaces", "listen-address=127.0.0.1",
            "local=/test/", "local=/127.in-addr.arpa/", "local=/ip6.arpa/",
            "host-record=client.bench.test,127.0.0.1",
            f"host-record=probe.bench.test,{PROBE_BASE}",
            "dns-forward-max=1000",
            dnsmasq_txt(SENDER_DOMAIN, "v=spf1 ip4:127.0.0.0/8 -all"),
            dnsmasq_txt(f"_dmarc.{SENDER_DOMAIN}", "v=DMARC1; p=reject"),
            dnsmasq_txt(f"{SELECTOR}._domainkey.{SENDER_DOMAIN}", dkim_txt),
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
        if postfix:
            self.postfix = Postfix(work, free_port())
        self.spool = os.path.join(work, "spool")  # on the work folder's disk: fsync is real
        self.port = free_port()
        self.ipc = self.start_ipconfirm(binary, self.port, self.spool, "ipconfirm")

    def config(self, port, spool):
        text = f"""hostname = "mx.example.test"
domains = ["example.test"]
[smtp]
listen = ["127.0.0.1:{port}"]
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
dir = "{spool}"
max_entries = 200000
[reply]
# The load comes from one address: the backscatter limits would suppress most replies.
max_per_recipient_per_hour = 0
max_per_ip_per_hour = 0
max_per_network_per_hour = 0
max_per_domain_per_hour = 0
max_per_site_per_hour = 0
max_total_per_minute = 0
"""
        if os.geteuid() == 0:  # serve refuses root without [service] user
            text += '[service]\nuser = "root"\n'
        return text

    def start_ipconfirm(self, binary, port, spool, name, wrapper=()):
        cfg = os.path.join(self.work, name + ".toml")
        with open(cfg, "w") as f:
            f.write(self.config(port, spool))
        proc = self.spawn(name, [*wrapper, binary, "serve", "--config", cfg], cwd=self.work)
        if not wait_port(port, proc, 120 if wrapper else 10):
            raise RuntimeError(f"ipconfirm did not start: see {self.work}/{name}.log")
        return proc

    def spawn(self, name, args, cwd=None):
        logf = open(os.path.join(self.work, name + ".log"), "w")
        p = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, cwd=cwd)
        self.procs.append(p)
        return p

    def queued(self, spool=None):
        return spool_entries(spool or self.spool)

    def stop_all(self, keep=False):
        if self.postfix:
            self.postfix.stop()
        for p in reversed(self.procs):
            stop(p)
        if not keep:
            for d in self.cleanup:
                shutil.rmtree(d, ignore_errors=True)


# --- the probe: one SMTP session of our own that timestamps the dot and the 250 -------------


class Probe:
    """Sends the prepared message again and again until stopped, each with its own envelope
    sender (the reply's recipient); records, for each, the time from the final dot to the 250
    and the time the 250 arrived (to match the reply in the sink)."""

    def __init__(self, port, message, tag):
        self.port, self.message, self.tag = port, message, tag
        self.dot_to_250 = []  # seconds
        self.sent = {}  # recipient of the reply (our MAIL FROM) -> (wall, monotonic) time of the dot
        self.errors = 0
        self.stopping = False

    async def run(self, max_messages=100000, max_seconds=600):
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
                sender = f"probe-{self.tag}-{n}@{SENDER_DOMAIN}"
                w.write(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n".encode())
                codes = [await reply(), await reply(), await reply()]
                if not codes[2].startswith(b"354"):
                    self.errors += 1
                    w.write(b"RSET\r\n")
                    await reply()
                    continue
                w.write(self.message)
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


class Load:
    """One smtp-source run: messages per second, the generator's own CPU time, an error."""

    def __init__(self, rate=None, err=None, gen_cpu=None, count=0):
        self.rate, self.err, self.gen_cpu, self.count = rate, err, gen_cpu, count


def smtp_source(port, sessions, size, count, timeout, message=None):
    """Runs smtp-source, sending the prepared file `message` (or, without one, smtp-source's
    own generated message of `size` bytes); returns a Load."""
    args = ["smtp-source", "-s", str(sessions), "-m", str(count)]
    args += ["-F", message] if message else ["-l", str(size)]
    args += ["-f", SENDER, "-t", RCPT, "-M", "client.bench.test", f"127.0.0.1:{port}"]
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    status, usage = None, None
    while time.monotonic() - t0 < timeout:
        pid, st, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            status, usage = st, ru
            break
        time.sleep(0.005)
    dt = time.monotonic() - t0
    if status is None:
        p.kill()
        p.wait(5)
        return Load(None, f"timed out after {timeout}s", None, count)
    p.returncode = os.waitstatus_to_exitcode(status)
    gen_cpu = usage.ru_utime + usage.ru_stime
    err = None
    if p.returncode != 0:
        err = (p.stderr.read().decode(errors="replace").strip().splitlines()[-1:] or ["failed"])
    return Load(count / dt, err, gen_cpu, count)


async def with_probe(port, message, tag, timeout, load):
    """Runs `load` (a function) in a thread while the probe sends `message` beside it."""
    probe = Probe(port, message, tag)
    task = asyncio.create_task(probe.run(max_seconds=timeout))
    result = await asyncio.get_running_loop().run_in_executor(None, load)
    probe.stopping = True
    try:
        await asyncio.wait_for(task, 40)
    except asyncio.TimeoutError:
        task.cancel()
        probe.errors += 1
    return result, probe


def segment_live_ids(path):
    """The ids of the entries of one spool segment not marked done (responder/queue/
    spool_segment.hpp): reads each record's header and the start of each entry, and skips the
    rest, so that polling a spool of some megabytes stays cheap."""
    live = set()
    with open(path, "rb") as f:
        if f.readline() != b"ipconfirm-segment 1\n":
            return live
        while True:
            head = f.readline()
            parts = head.split()
            if not head.endswith(b"\n") or len(parts) != 3 or parts[0] not in (b"E", b"D"):
                return live  # the end, or a record being written
            length = int(parts[1])
            start = f.tell()
            if parts[0] == b"D":
                live.discard(f.read(length).decode())
            else:
                # "ipconfirm-spool 1\nid <n>\n<id>\n..."
                lines = f.read(min(length, 200)).split(b"\n")
                if len(lines) > 2 and lines[1].startswith(b"id "):
                    live.add(lines[2].decode())
            f.seek(start + length + 1)


def spool_entries(spool):
    """Replies still queued in ipconfirm's spool: its segments' live entries and the files of
    queue/ (entries moved out of a segment for a retry, or an older spool's); -1 if unreadable."""
    try:
        ids = set(os.listdir(os.path.join(spool, "queue")))
        seg_dir = os.path.join(spool, "segments")
        for name in os.listdir(seg_dir) if os.path.isdir(seg_dir) else []:
            try:
                ids |= segment_live_ids(os.path.join(seg_dir, name))
            except FileNotFoundError:
                pass  # removed with its last entry meanwhile
        return len(ids)
    except OSError:
        return -1


def wait_until(predicate, timeout):
    """Waits until predicate() is true; returns seconds taken or None on timeout."""
    t0 = time.monotonic()
    end = t0 + timeout
    while time.monotonic() < end:
        if predicate():
            return time.monotonic() - t0
        time.sleep(0.1)
    return None


def ms(v):
    return "-" if v is None else f"{v * 1000:.1f}"


def num(v, fmt="{:.0f}"):
    return "-" if v is None else fmt.format(v)


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


# --- stages ---------------------------------------------------------------------------------


def message_count(sessions, size, quick):
    n = {1: 1000, 10: 4000, 50: 10000}[sessions]
    if size >= 1 << 20:
        n //= 20
    elif size >= 65536:
        n //= 2
    return max(10, n // 10) if quick else n


def run_cell(peers, messages, sessions, size, rounds, quick, timeout=300):
    """The bare sink, Postfix and ipconfirm in turn, `rounds` times (interleaved, so that a
    change of the machine's load falls on all three); medians of the rates."""
    count = message_count(sessions, size, quick)
    lf = os.path.join(messages, f"msg-{size}.lf")
    with open(os.path.join(messages, f"msg-{size}.crlf"), "rb") as f:
        probe_message = f.read()
    tag = f"{sessions}x{size}"
    row = dict(sessions=sessions, size=size, count=count, errs=[], sink=[], gen_us=[],
               postfix=[], pf_lat=[], ipc=[], cpu_us=[], lat=[], to_sink=[], lost=0,
               drained=[], load=load_average())
    # The bare sink's rate varies by a quarter from one run to the next: at least three runs.
    sink_runs = max(1, 3 // rounds) if rounds < 3 else 1
    for rnd in range(rounds):
        log(f"-- {sessions} sessions x {size} bytes, round {rnd + 1}/{rounds} "
            f"(load {load_average()})")
        for _ in range(sink_runs):
            ld = smtp_source(peers.bare_port, sessions, size, count, timeout, lf)
            row["sink"].append(ld.rate)
            if ld.gen_cpu is not None:
                row["gen_us"].append(ld.gen_cpu * 1e6 / count)
            if ld.err:
                row["errs"].append(f"sink: {ld.err}")
        log(f"   bare sink {num(row['sink'][-1])} msg/s")
        if peers.postfix:
            pf = peers.postfix
            ld, probe = asyncio.run(with_probe(
                pf.port, probe_message, f"pf{tag}r{rnd}", timeout,
                lambda: smtp_source(pf.port, sessions, size, count, timeout, lf)))
            row["postfix"].append(ld.rate)
            row["pf_lat"] += probe.dot_to_250
            if ld.err:
                row["errs"].append(f"postfix: {ld.err}")
            # Its discards are asynchronous: let the queue empty before the next run.
            wait_until(lambda: pf.queued() == 0, 120)
            log(f"   Postfix {num(ld.rate)} msg/s")
        seen = set(os.listdir(peers.sink_dir))
        cpu0 = cpu_seconds(peers.ipc.pid)
        ld, probe = asyncio.run(with_probe(
            peers.port, probe_message, f"{tag}r{rnd}", timeout,
            lambda: smtp_source(peers.port, sessions, size, count, timeout, lf)))
        drained = wait_until(lambda: peers.queued() == 0, 120)
        cpu1 = cpu_seconds(peers.ipc.pid)
        row["ipc"].append(ld.rate)
        row["drained"].append(drained)
        if ld.err:
            row["errs"].append(f"ipconfirm: {ld.err}")
        if cpu0 is not None and cpu1 is not None:
            row["cpu_us"].append((cpu1 - cpu0) * 1e6 / (count + len(probe.dot_to_250)))
        row["lat"] += probe.dot_to_250
        arrivals = {}
        wanted = set(probe.sent)
        for _ in range(20):  # the sink may still be writing the last files
            arrivals.update(sink_arrivals(peers.sink_dir, seen, wanted))
            if len(arrivals) >= len(wanted):
                break
            time.sleep(0.25)
        row["to_sink"] += [arrivals[k] - probe.sent[k][0] for k in arrivals]
        row["lost"] += len(wanted) - len(arrivals)
        log(f"   ipconfirm {num(ld.rate)} msg/s; probe {len(probe.dot_to_250)} msgs, "
            f"{probe.errors} errors; drained {drained}")
    return row


def generator_check(peers, messages, quick):
    """smtp-source with the prepared file (-F) against its own generated message (-l), both
    at the bare sink, 50 sessions x 4 KiB, alternating: whether sending a file costs the
    generator more, and how much CPU the generator uses per message."""
    count = 1000 if quick else 5000
    lf = os.path.join(messages, "msg-4096.lf")
    res = {"file": [], "generated": []}
    for _ in range(3):
        for kind, msg in (("file", lf), ("generated", None)):
            ld = smtp_source(peers.bare_port, 50, 4096, count, 120, msg)
            res[kind].append((ld.rate, None if ld.gen_cpu is None else ld.gen_cpu * 1e6 / count))
    out = {}
    for kind, runs in res.items():
        out[kind] = (median([r for r, _ in runs]), median([g for _, g in runs]))
    return out


def callgrind_stage(peers, binary, messages, sizes, quick, runs=1):
    """ipconfirm under valgrind's callgrind (a second instance, its own spool): a warm-up,
    then the counters zeroed, a fixed load of 10 sessions, the queue drained, a dump; `runs`
    times in the one process. Returns {size: (instructions per message, top functions, error,
    stages, instructions per message of each run)}. Instructions do not depend on the
    machine's load, so this is the figure to compare between two versions of the code, and,
    run after run in one process, whether a message costs more the longer the server runs."""
    results = {}
    for size in sizes:
        name = f"callgrind-{size}"
        spool = os.path.join(peers.work, name + "-spool")
        out = os.path.join(peers.work, name + ".out")
        port = free_port()
        proc = peers.start_ipconfirm(binary, port, spool, name, wrapper=(
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
            "--dump-line=no", "--separate-threads=no"))
        lf = os.path.join(messages, f"msg-{size}.lf")
        count = 30 if size >= 1 << 20 else 300
        if quick:
            count //= 3
        err = None
        try:
            smtp_source(port, 10, size, 20, 600, lf)  # warm-up: first-use costs, caches
            wait_until(lambda: peers.queued(spool) == 0, 120)
            for _ in range(runs):
                subprocess.run(["callgrind_control", "--zero", str(proc.pid)],
                               capture_output=True, timeout=120)
                ld = smtp_source(port, 10, size, count, 1800, lf)
                err = err or ld.err
                wait_until(lambda: peers.queued(spool) == 0, 300)
                time.sleep(1)  # the last deliveries' unlinks
                subprocess.run(["callgrind_control", "--dump", str(proc.pid)],
                               capture_output=True, timeout=120)
        finally:
            stop(proc, 60)
        dumps = sorted((f for f in os.listdir(peers.work) if f.startswith(name + ".out")),
                       key=lambda f: os.path.getmtime(os.path.join(peers.work, f)))
        totals, top, stages = [], [], []
        for d in dumps:
            path = os.path.join(peers.work, d)
            with open(path) as f:
                text = f.read()
            mt = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
            if not mt:
                continue
            # The dumps requested after each load (the zeroed counters), not the final one at
            # exit nor the empty one that zeroing writes.
            trig = re.search(r"^desc: Trigger: (.*)$", text, re.M)
            if trig and "Program termination" in trig.group(1):
                continue
            if int(mt.group(1)) < 1000 * count:
                continue
            totals.append(int(mt.group(1)))
            if len(totals) > 1:
                continue  # the profile of the first run only
            ann = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100",
                                  path], capture_output=True, text=True, timeout=300).stdout
            for line in ann.splitlines():
                m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(\S.*)$", line)
                # The frames that were on the stacks when the counters were zeroed are charged
                # everything below them: they are no function's own cost.
                if m and "PROGRAM TOTALS" not in line and not THREAD_FRAMES.search(line):
                    top.append((float(m.group(2)), shorten(m.group(3))))
                if len(top) >= 15:
                    break
            inc = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                                  path], capture_output=True, text=True, timeout=300).stdout
            for label, pattern in STAGES:
                for line in inc.splitlines():
                    m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(\S.*)$", line)
                    if m and re.search(pattern, m.group(3)):
                        stages.append((label, float(m.group(2))))
                        break
        per_run = [t / count for t in totals]
        per = None if not per_run or err else per_run[0]
        results[size] = (per, top, err, stages, per_run)
        log(f"   callgrind {size} bytes: {', '.join(num(x) for x in per_run)} instructions per "
            "message")
        shutil.rmtree(spool, ignore_errors=True)
    return results


# Stages of a message, by the share of instructions spent in them and below (inclusive).
STAGES = (
    ("report (build_report)", r"ipconfirm::responder::build_report\("),
    ("render (render_report)", r"ipconfirm::responder::render_report\("),
    ("reply mail (build_reply_mail)", r"ipconfirm::responder::build_reply_mail\("),
    ("spool write (Spool::write_batch)", r"ipconfirm::responder::Spool::write_batch\("),
    ("delivery to the smarthost (smtp client)", r"ipconfirm::smtp::.*transaction\("),
    ("DKIM body hashes (DkimBodyHashers)", r"ipconfirm::responder::DkimBodyHashers::"),
    ("DKIM verification (DkimCheck::verify)", r"ipconfirm::responder::DkimCheck::verify\("),
    ("DKIM key loading (DkimPublicKey::load)", r"DkimPublicKey::load\("),
    ("SPF (check_spf)", r"ipconfirm::responder::check_spf\("),
    ("DMARC (check_dmarc)", r"ipconfirm::responder::check_dmarc\("),
)

THREAD_FRAMES = re.compile(r"clone\.S:clone|:start_thread|posix_thread|libc_start|\(below main\)|"
                           r"io_context::run|::serve\(|\?\?\?:main |ld-linux")


def shorten(fn):
    """A callgrind function name without its standard-library noise, at most 120 characters."""
    fn = fn.replace("std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >",
                    "std::string")
    fn = re.sub(r"nlohmann::json_abi_v[\d_]+::basic_json<[^ ]*?> >", "json", fn)
    fn = re.sub(r"std::basic_string_view<char, std::char_traits<char> >", "std::string_view", fn)
    return fn[:120]


def series(peers, messages, runs, count, timeout=600):
    """`runs` consecutive runs of 50 sessions x 4 KiB in the one ipconfirm process, each
    followed by a bare-sink run for comparison; RSS, user and system CPU, the log's growth and
    the spool folder sampled."""
    lf = os.path.join(messages, "msg-4096.lf")
    out = []
    pid = peers.ipc.pid
    log_path = os.path.join(peers.work, "ipconfirm.log")
    for i in range(runs):
        u0, s0 = cpu_split(pid)
        log0 = os.path.getsize(log_path)
        ld = smtp_source(peers.port, 50, 4096, count, timeout, lf)
        drained = wait_until(lambda: peers.queued() == 0, 300)
        u1, s1 = cpu_split(pid)
        log1 = os.path.getsize(log_path)
        sink = smtp_source(peers.bare_port, 50, 4096, count, timeout, lf)
        try:
            queue_dir_bytes = os.stat(os.path.join(peers.spool, "queue")).st_size
        except OSError:
            queue_dir_bytes = None
        ok = None not in (u0, s0, u1, s1)
        user_us = (u1 - u0) * 1e6 / count if ok else None
        sys_us = (s1 - s0) * 1e6 / count if ok else None
        cpu_us = user_us + sys_us if ok else None
        out.append(dict(rate=ld.rate, sink=sink.rate, err=ld.err, rss=rss_kib(pid),
                        cpu_us=cpu_us, user_us=user_us, sys_us=sys_us, drained=drained,
                        queue_dir=queue_dir_bytes, log_bytes=(log1 - log0) / count,
                        load=load_average()))
        log(f"   run {i + 1}/{runs}: ipconfirm {num(ld.rate)} msg/s, bare sink {num(sink.rate)}"
            f" msg/s, RSS {rss_kib(pid)} KiB, CPU {num(user_us)} user + {num(sys_us)} system "
            f"us/msg, queue/ directory {queue_dir_bytes} bytes (load {load_average()})")
    return out


# --- the report -----------------------------------------------------------------------------


def print_table(rows, callgrind):
    print()
    print("| sessions | size | msgs | smtp-sink msg/s | Postfix msg/s | ipconfirm msg/s "
          "| ipconfirm / sink | ipconfirm / Postfix | dot→250 p50 / p99 ms "
          "| Postfix dot→250 p50 / p99 ms | reply in sink p50 / p99 ms | ipconfirm CPU µs/msg "
          "| instructions/msg (callgrind) | queue drained | load |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|---:|---|---|")
    for r in rows:
        sink, pf, ipc = median(r["sink"]), median(r["postfix"]), median(r["ipc"])
        ratio_sink = f"{ipc / sink:.2f}" if ipc and sink else "-"
        ratio_pf = f"{ipc / pf:.2f}" if ipc and pf else "-"
        drained = ("no (120 s)" if any(d is None for d in r["drained"])
                   else f"yes, {max(r['drained']):.1f} s")
        if r["lost"]:
            drained += f", {r['lost']} probe replies missing"
        size = f"{r['size'] // 1024} KiB" if r["size"] < 1 << 20 else f"{r['size'] >> 20} MiB"
        cg = callgrind.get(r["size"], (None,))[0] if callgrind else None
        rounds = len(r["ipc"])
        print(f"| {r['sessions']} | {size} | {r['count']}{f' ×{rounds}' if rounds > 1 else ''} | "
              f"{num(sink)} | {num(pf)} | {num(ipc)} | {ratio_sink} | {ratio_pf} | "
              f"{ms(pct(r['lat'], 50))} / {ms(pct(r['lat'], 99))} (n={len(r['lat'])}) | "
              f"{ms(pct(r['pf_lat'], 50))} / {ms(pct(r['pf_lat'], 99))} | "
              f"{ms(pct(r['to_sink'], 50))} / {ms(pct(r['to_sink'], 99))} | "
              f"{num(median(r['cpu_us']))} | {num(cg)} | {drained} | {r['load']} |")
    for r in rows:
        for e in r["errs"]:
            print(f"note: {r['sessions']} sessions, {r['size']} bytes: {e}")
    rounds = [r for r in rows if len(r["ipc"]) > 1]
    for r in rounds:
        print(f"rounds of {r['sessions']} x {r['size']}: sink "
              f"{', '.join(num(x) for x in r['sink'])}; Postfix "
              f"{', '.join(num(x) for x in r['postfix'])}; ipconfirm "
              f"{', '.join(num(x) for x in r['ipc'])} msg/s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--long", action="store_true",
                    help="also 10 consecutive runs of 10,000 messages (100,000) in one process")
    ap.add_argument("--series", type=int, default=0, metavar="N",
                    help="N consecutive runs of 50 sessions x 4 KiB in one process")
    ap.add_argument("--series-count", type=int, default=10000, metavar="MESSAGES")
    ap.add_argument("--quick", action="store_true", help="fewer messages per cell (a smoke run)")
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=0,
                    help="interleaved rounds per cell (default: 3 for 50x4096, 1 elsewhere)")
    ap.add_argument("--no-postfix", action="store_true", help="leave out the Postfix column")
    ap.add_argument("--callgrind", action="store_true",
                    help="only the instructions per message (valgrind's callgrind)")
    ap.add_argument("--callgrind-runs", type=int, default=1, metavar="N",
                    help="callgrind: N measured runs in one process (does a message cost more "
                    "the longer the server runs?)")
    ap.add_argument("--no-callgrind", action="store_true",
                    help="leave out the callgrind stage of the default run")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--only", action="append", default=[], metavar="SESSIONSxBYTES",
                    help="run only these cells, e.g. --only 50x4096 (repeatable)")
    a = ap.parse_args()
    a.binary = os.path.abspath(a.binary)  # ipconfirm runs in the work folder

    work = tempfile.mkdtemp(prefix="ipconfirm-bench.")
    os.chmod(work, 0o755)
    log(f"work folder: {work}")
    messages = os.path.join(work, "messages")
    cells = [(s, z) for z in SIZES for s in SESSIONS
             if not a.only or f"{s}x{z}" in a.only]
    sizes = sorted({z for _, z in cells} | ({4096} if (a.long or a.series) else set()))
    if a.callgrind and not a.only:
        sizes = list(SIZES)
    p = subprocess.run([DEBIAN_PYTHON, os.path.join(HERE, "messages.py"), "--out", messages,
                        "--sizes", ",".join(map(str, sizes)), "--domain", SENDER_DOMAIN,
                        "--selector", SELECTOR, "--from", SENDER, "--to", RCPT],
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        log("bench: preparing the signed messages failed: " + p.stderr.strip())
        return 2
    peers = None
    rows, callgrind, gen, series_result = [], {}, None, None
    per_idle, greeted, rb, ra, peak_load, peak = None, 0, None, None, None, None
    print(f"load at the start: {load_average()}")
    try:
        peers = Peers(work, a.binary, messages, postfix=not (a.no_postfix or a.callgrind))
        if not a.callgrind:
            gen = generator_check(peers, messages, a.quick)
            for sessions, size in cells:
                rounds = a.rounds or (3 if (sessions, size) == HEADLINE else 1)
                rows.append(run_cell(peers, messages, sessions, size, rounds, a.quick))
            peak_load = rss_kib(peers.ipc.pid, "VmHWM")
            if a.idle > 0:
                log(f"-- {a.idle} idle connections")
                per_idle, greeted, rb, ra = asyncio.run(idle_connections(peers, a.idle))
            n = 10 if a.long else a.series
            if n:
                log(f"-- {n} consecutive runs of {a.series_count} messages, 50 sessions x 4 KiB")
                series_result = series(peers, messages, n, a.series_count)
            peak = rss_kib(peers.ipc.pid, "VmHWM")
        if (a.callgrind or not a.no_callgrind) and shutil.which("valgrind"):
            log("-- callgrind")
            callgrind = callgrind_stage(peers, a.binary, messages, sizes, a.quick,
                                        a.callgrind_runs)
        elif not a.no_callgrind:
            print("note: valgrind is not installed: no instruction counts")
    finally:
        if peers:
            peers.stop_all(keep=a.keep)

    if gen:
        f, g = gen["file"], gen["generated"]
        print(f"generator (smtp-source, 50 sessions x 4 KiB at the bare sink, median of 3): "
              f"prepared file (-F) {num(f[0])} msg/s, {num(f[1])} µs CPU/msg; generated (-l) "
              f"{num(g[0])} msg/s, {num(g[1])} µs CPU/msg")
    if rows:
        print_table(rows, callgrind)
    if callgrind:
        print()
        print("callgrind (10 sessions, after a warm-up; user space of all threads):")
        for size, (per, top, err, stages, per_run) in sorted(callgrind.items()):
            runs = (f" (runs in one process: {', '.join(num(x) for x in per_run)})"
                    if len(per_run) > 1 else "")
            print(f"  {size} bytes: {num(per)} instructions per message{runs}"
                  f"{'; ' + str(err) if err else ''}")
        for size, (per, top, err, stages, per_run) in sorted(callgrind.items()):
            if size == 4096 or len(callgrind) == 1:
                print(f"  stages, {size} bytes (instructions in them and below):")
                for label, share in stages:
                    print(f"    {share:5.1f}%  {label}")
                print(f"  top functions by own instructions, {size} bytes:")
                for share, fn in top:
                    print(f"    {share:5.1f}%  {fn}")
    print()
    if peak_load is not None:
        print(f"peak RSS after the load cells: {peak_load} KiB; at the end: {peak} KiB")
    if per_idle is not None:
        print(f"idle connections: {greeted} greeted; RSS {rb} -> {ra} KiB = "
              f"{per_idle / 1024:.1f} KiB per idle connection")
    if series_result:
        print(f"consecutive runs in one process ({a.series_count} messages each, 50 sessions x "
              "4 KiB; each followed by a bare-sink run):")
        print("| run | ipconfirm msg/s | bare sink msg/s | ratio | CPU µs/msg (user + system) "
              "| RSS KiB | log bytes/msg | queue/ directory bytes | load |")
        print("|---:|---:|---:|---:|---|---:|---:|---:|---|")
        for i, s in enumerate(series_result, 1):
            ratio = f"{s['rate'] / s['sink']:.2f}" if s["rate"] and s["sink"] else "-"
            print(f"| {i} | {num(s['rate'])} | {num(s['sink'])} | {ratio} | {num(s['cpu_us'])} "
                  f"({num(s['user_us'])} + {num(s['sys_us'])}) | {s['rss']} | "
                  f"{num(s['log_bytes'])} | {s['queue_dir']} | {s['load']} |")
    print(f"load at the end: {load_average()}")
    if a.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
