"""Started as root, ipconfirm binds its listeners (port 25 here) and then runs as [service] user.

The server is started as root with user = "nobody": /proc shows every user and group id
changed, only CAP_NET_BIND_SERVICE left (permitted, effective and bounding) and no_new_privs
set; it still answers on port 25, queues the message and writes the reply, and every file it
made belongs to nobody. `ipconfirm queue` run by root acts as nobody too, so the running
server can take its request. Started as root without a user, or with a user that does not
exist, it refuses to start and says why; started as another user than the configured one, it
refuses too, and started as the configured user (what systemd's User= does) it runs.
Needs root (skipped otherwise).
"""

import os
import pwd
import random
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


class Privileges(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root")
        try:
            cls.nobody = pwd.getpwnam("nobody")
        except KeyError:
            raise unittest.SkipTest("no user 'nobody'")
        h.require("dnsmasq", "swaks")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.2"])

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.work.cleanup()

    def setUp(self):
        self.svc = None

    def tearDown(self):
        if self.svc:
            self.svc.stop()

    def server(self, name, listen, service):
        svc = h.Ipconfirm(self.work, h.config_toml(listen, self.dns.server()) + service, name)
        # The server's own folder (spool, outbox) belongs to the user it becomes.
        os.chown(svc.dir, self.nobody.pw_uid, self.nobody.pw_gid)
        self.svc = svc
        return svc

    def test_drops_to_nobody_after_binding_port_25(self):
        # A loopback address of its own, so that port 25 is free whatever else runs here.
        addr = f"127.{random.randrange(100, 200)}.{random.randrange(1, 250)}.{random.randrange(2, 250)}"
        svc = self.server("drop", [f"{addr}:25"], '[service]\nuser = "nobody"\n').start()
        log = svc.read_log()
        self.assertIn(f"listen address={addr}:25", log)
        self.assertRegex(log, rf"privileges user=nobody uid={self.nobody.pw_uid} ")

        st = proc_status(svc.proc.pid)
        uid, gid = self.nobody.pw_uid, self.nobody.pw_gid
        self.assertEqual(st["Uid"].split(), [str(uid)] * 4)
        self.assertEqual(st["Gid"].split(), [str(gid)] * 4)
        self.assertEqual(sorted(int(g) for g in st["Groups"].split()),
                         sorted(set(os.getgrouplist("nobody", gid))))
        net_bind = 1 << 10  # CAP_NET_BIND_SERVICE
        self.assertEqual(int(st["CapEff"], 16), net_bind)
        self.assertEqual(int(st["CapPrm"], 16), net_bind)
        self.assertEqual(int(st["CapBnd"], 16), net_bind)
        self.assertEqual(int(st["CapInh"], 16), 0)
        self.assertEqual(int(st["CapAmb"], 16), 0)
        self.assertEqual(st["NoNewPrivs"].strip(), "1")

        # Still serves: the message is queued (250) and the reply written, by nobody.
        code, out = h.swaks("--server", f"{addr}:25", "--from", "a@sender.test",
                            "--to", "ipconfirm@example.test", "--local-interface", "127.0.0.2")
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"<-  250 2\.0\.0 Ok: queued as \S+; your IP is 127\.0\.0\.2")
        new = os.path.join(svc.dir, "outbox", "new")
        files = h.wait_for(lambda: os.path.isdir(new) and os.listdir(new), 15, "the reply")
        for root, dirs, names in os.walk(svc.dir):
            for n in dirs + names:
                p = os.path.join(root, n)
                if n in ("ipconfirm.toml", "serve.log"):
                    continue  # written by this test
                self.assertEqual(os.lstat(p).st_uid, uid, f"{p} does not belong to nobody")
        self.assertEqual(os.stat(os.path.join(new, files[0])).st_uid, uid)

        # `queue` run by root becomes nobody too: the server can read and remove its request.
        r = svc.run("queue", "--config", svc.config, "flush")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("flush requested", r.stdout)
        self.assertEqual(svc.stop(), 0)

    def test_root_without_user_refuses(self):
        port = h.free_port()
        svc = self.server("refuse", [f"127.0.0.1:{port}"], '[service]\nuser = ""\n')
        svc.start(expect_ok=False)
        self.assertEqual(svc.proc.wait(15), 2)
        log = svc.read_log()
        self.assertIn("started as root, but [service] user is not set", log)
        self.assertNotIn("listen address", log)
        self.assertFalse(h.port_open(port))

    def test_unknown_user_refuses(self):
        svc = self.server("ghost", [f"127.0.0.1:{h.free_port()}"],
                          '[service]\nuser = "no-such-user-ipc"\n')
        svc.start(expect_ok=False)
        self.assertEqual(svc.proc.wait(15), 2)
        self.assertIn("[service] user 'no-such-user-ipc': no such user", svc.read_log())

    def test_started_as_another_user(self):
        uid, gid = self.nobody.pw_uid, self.nobody.pw_gid

        def as_nobody():
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)

        # Configured for root, started as nobody: it cannot switch, so it refuses.
        svc = self.server("other", [f"127.0.0.1:{h.free_port()}"], '[service]\nuser = "root"\n')
        p = subprocess.run([h.binary(), "serve", "--config", svc.config], cwd=svc.dir,
                           preexec_fn=as_nobody, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, r"\[service\] user is 'root' \(uid 0, gid 0\), but we run as "
                                   rf"uid {uid}, gid {gid}")
        # Configured for nobody and started as nobody (systemd's User=): it runs.
        port = h.free_port()
        svc = self.server("same", [f"127.0.0.1:{port}"], '[service]\nuser = "nobody"\n')
        with open(svc.log_path, "ab") as log:
            proc = subprocess.Popen([h.binary(), "serve", "--config", svc.config], cwd=svc.dir,
                                    preexec_fn=as_nobody, stdout=log, stderr=subprocess.STDOUT)
            try:
                h.wait_for(lambda: " started " in svc.read_log() or proc.poll() is not None, 15,
                           "ipconfirm to start")
                self.assertIsNone(proc.poll(), svc.read_log())
                self.assertTrue(h.port_open(port))
                self.assertNotIn("privileges", svc.read_log())
            finally:
                proc.terminate()
                self.assertEqual(proc.wait(15), 0)


if __name__ == "__main__":
    h.main()
