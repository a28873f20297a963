"""A raw SMTP client for the receiver's integration tests: exact bytes out, replies parsed.

Unlike swaks it sends what the test says, byte for byte (bare CR, NUL, pipelined batches, a
megabyte without CRLF), and reads replies one at a time with a bounded wait, so a test can check
that the server answered, stayed in step, or closed.
"""

import re
import socket
import time

REPLY_LINE = re.compile(rb"^(\d{3})([ -])(.*)$")


class Closed(Exception):
    """The server closed the connection before a whole reply arrived."""


class Client:
    def __init__(self, port, host="127.0.0.1", source=None, timeout=10.0):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.timeout = timeout

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no reply in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed(self.buf)
        self.buf += chunk

    def reply(self, timeout=None):
        """The next reply as (code, [texts]); raises Closed or socket.timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                self._fill(deadline)
            line, self.buf = self.buf.split(b"\r\n", 1)
            m = REPLY_LINE.match(line)
            if not m:
                raise AssertionError(f"not an SMTP reply line: {line!r}")
            lines.append(m.group(3).decode("utf-8", "replace"))
            if m.group(2) == b" ":
                return int(m.group(1)), lines

    def text(self, timeout=None):
        """The next reply as one string "CODE first-line ..." for assertIn/assertRegex."""
        code, lines = self.reply(timeout)
        return f"{code} " + " | ".join(lines)

    def cmd(self, line, timeout=None):
        self.send(line if isinstance(line, bytes) else line.encode() + b"\r\n")
        return self.text(timeout)

    def closed(self, timeout=None):
        """True when the server closes the connection (after any replies) within the time."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while True:
                self._fill(deadline)
        except Closed:
            return True
        except (socket.timeout, TimeoutError):
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")
