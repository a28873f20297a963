#!/usr/bin/env python3
"""What message data costs ipconfirm, measured on loopback: figures, not a test.

  bench/resources.py [--bin PATH] [--senders 40] [--size-mb 10]

1. `senders` clients in DATA, each having sent `size-mb` MB of body and not the final dot (slow
   senders): the server's RSS growth, read from /proc once its sockets' receive queues are
   empty (it has read everything).
2. One session that sent a message over max_message_size and got 552, then idles: RSS growth.
3. A NOOP on another session sent as soon as the server has read the final dot of a 10 MB
   message for postmaster@ (that is, while the message is being written into the Maildir):
   its round trip, median and maximum of 10 tries, and whether its reply came before the
   250 of the big message.

Needs dnsmasq; installs nothing. The binary defaults to build/ipconfirm.
"""

import argparse
import os
import select
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness as h  # noqa: E402
from smtp_raw import Client, rss_kib  # noqa: E402

LINE = b"x" * 998 + b"\r\n"


def receive_queues(port, client_port=None):
    """Bytes not yet read by the server on `port` (from `client_port` only, when given)."""
    total = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and (
                    client_port is None or int(fields[2].split(":")[1], 16) == client_port):
                total += int(fields[4].split(":")[1], 16)
    return total


def in_data(port, rcpt, source="127.0.0.2"):
    c = Client(port, source=source, timeout=60)
    c.text()
    c.cmd("EHLO mail.sender.test")
    c.cmd("MAIL FROM:<a@sender.test>")
    c.cmd(f"RCPT TO:<{rcpt}>")
    assert c.cmd("DATA").startswith("354")
    c.send(b"Subject: big\r\n\r\n")
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build", "ipconfirm"))
    ap.add_argument("--senders", type=int, default=40)
    ap.add_argument("--size-mb", type=int, default=10)
    a = ap.parse_args()
    os.environ["IPCONFIRM_BIN"] = os.path.abspath(a.bin)
    if not h.find_tool("dnsmasq"):
        print("dnsmasq is not installed", file=sys.stderr)
        return 2
    work = h.Workdir()
    dns = h.Dnsmasq(work, ["host-record=mail.sender.test,127.0.0.2"])
    port = h.free_port()
    pm = os.path.join(work.path, "postmaster")
    svc = h.Ipconfirm(work, h.config_toml(
        [f"127.0.0.1:{port}"], dns.server(), maildir="./outbox",
        extra=f'[postmaster]\nmaildir = "{pm}"\n').replace(
            "command_timeout = 10\n", "command_timeout = 120\nmax_connections_per_ip = 500\n"),
        name="resources").start()
    try:
        pid = svc.proc.pid
        with Client(port) as warm:
            warm.text()
            warm.cmd("QUIT")
        body = LINE * (a.size_mb * 1000 * 1000 // len(LINE))

        base = rss_kib(pid)
        clients = [in_data(port, "ipconfirm@example.test") for _ in range(a.senders)]
        for c in clients:
            c.send(body)
        h.wait_for(lambda: receive_queues(port) == 0, 120, "the server to read everything")
        grown = rss_kib(pid) - base
        print(f"{a.senders} senders in DATA with {a.size_mb} MB each: RSS {base} -> "
              f"{base + grown} KiB (+{grown / 1024:.1f} MiB)")
        for c in clients:
            c.close()
        time.sleep(1)

        base = rss_kib(pid)
        c = in_data(port, "ipconfirm@example.test", source="127.0.0.3")
        c.send(LINE * (11 * 1024 * 1024 // len(LINE)) + b".\r\n")
        reply = c.text(timeout=60)
        time.sleep(0.5)
        grown = rss_kib(pid) - base
        print(f"one idle session after '{reply[:9]}': RSS {base} -> {base + grown} KiB "
              f"(+{grown / 1024:.1f} MiB)")
        c.close()

        other = Client(port, source="127.0.0.4", timeout=60)
        other.text()
        other.cmd("EHLO mail.sender.test")
        rtts, before_250 = [], 0
        for i in range(10):
            big = in_data(port, "postmaster@example.test", source=f"127.0.1.{i + 1}")
            big.send(LINE * 10000)
            big.send(b".\r\n")
            mine = big.sock.getsockname()[1]
            while receive_queues(port, mine) != 0:  # no sleep: the dot is read in moments
                pass
            t = time.monotonic()
            other.send(b"NOOP\r\n")
            other.text()
            rtts.append((time.monotonic() - t) * 1000)
            waiting, _, _ = select.select([big.sock], [], [], 0)
            before_250 += 0 if (waiting or big.buf) else 1
            big.text(timeout=60)
            big.close()
        print(f"NOOP during a 10 MB postmaster delivery: median {statistics.median(rtts):.2f} ms,"
              f" max {max(rtts):.2f} ms; answered before the big 250: {before_250}/10")
        other.close()
    finally:
        svc.stop()
        dns.stop()
        work.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
