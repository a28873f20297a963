"""sd_notify: what a Type=notify unit hears from ipconfirm, through a socket the test creates.

With NOTIFY_SOCKET pointing at a Unix datagram socket, the server sends READY=1 once it
listens (the port accepts when READY arrives) and the spool is open; with WATCHDOG_USEC set it
pings WATCHDOG=1 from its event loop; on SIGTERM it sends STOPPING=1 before it exits. With a
NOTIFY_SOCKET where nobody listens it serves all the same and logs the failure once. Without
NOTIFY_SOCKET (every other test) it sends nothing.
"""

import os
import signal
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402


class Notify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, [])

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.work.cleanup()

    def setUp(self):
        self.svc = None
        self.sock = None

    def tearDown(self):
        if self.svc:
            self.svc.stop()
        if self.sock:
            self.sock.close()

    def listen(self, name):
        path = os.path.join(self.work.path, "sock-" + name)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(15)
        return path

    def messages(self, until, limit=50):
        """Datagrams until one contains `until` (bounded in count; each wait at most 15 s)."""
        got = []
        for _ in range(limit):
            got.append(self.sock.recv(4096).decode())
            if until in got[-1]:
                return got
        self.fail(f"no {until} in {got}")

    def server(self, name, env):
        self.port = h.free_port()
        self.svc = h.Ipconfirm(self.work, h.config_toml([f"127.0.0.1:{self.port}"],
                                                        self.dns.server()), name)
        self.svc.env = dict(os.environ, **env)
        self.svc.env.pop("WATCHDOG_PID", None)
        return self.svc

    def test_ready_watchdog_stopping(self):
        path = self.listen("notify")
        svc = self.server("notify", {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "300000"})
        svc.start(expect_ok=False)
        ready = self.messages("READY=1")
        self.assertIn("READY=1\nSTATUS=serving", ready[-1])
        self.assertTrue(h.port_open(self.port), "READY=1 came before the listener accepts")
        h.wait_for(lambda: " started " in svc.read_log(), 10, "the started line")
        # The watchdog: half of WATCHDOG_USEC apart; wait for a few of them.
        pings = 0
        for _ in range(3):
            if self.messages("WATCHDOG=1")[-1] == "WATCHDOG=1":
                pings += 1
        self.assertEqual(pings, 3)
        svc.proc.send_signal(signal.SIGTERM)
        self.messages("STOPPING=1")
        self.assertEqual(svc.proc.wait(15), 0)
        self.assertNotIn("systemd-notify-failed", svc.read_log())

    def test_no_watchdog_without_watchdog_usec(self):
        path = self.listen("notify-plain")
        svc = self.server("plain", {"NOTIFY_SOCKET": path})
        svc.env.pop("WATCHDOG_USEC", None)
        svc.start(expect_ok=False)
        self.assertEqual(self.messages("READY=1")[-1], "READY=1\nSTATUS=serving")
        svc.proc.send_signal(signal.SIGTERM)
        # Nothing between READY and STOPPING: no watchdog pings were asked for.
        self.assertEqual(self.messages("STOPPING=1"), ["STOPPING=1"])
        self.assertEqual(svc.proc.wait(15), 0)

    def test_unreachable_socket_is_logged_and_ignored(self):
        missing = os.path.join(self.work.path, "nobody-listens-here")
        svc = self.server("unreachable", {"NOTIFY_SOCKET": missing, "WATCHDOG_USEC": "100000"})
        svc.start()
        h.wait_for(lambda: "systemd-notify-failed" in svc.read_log(), 10, "the failure's log line")
        code, out = h.swaks("--server", f"127.0.0.1:{self.port}", "--from", "a@sender.test",
                            "--to", "ipconfirm@example.test")
        self.assertEqual(code, 0, out)
        self.assertEqual(svc.stop(), 0)
        self.assertEqual(svc.read_log().count("systemd-notify-failed"), 1)


if __name__ == "__main__":
    h.main()
