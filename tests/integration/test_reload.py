"""Reload on SIGHUP: the config file, the TLS files, the templates and the DNS settings are read
again while the server runs.

- A session open during the reload keeps its old limit (max_recipients) and its old templates;
  a new session gets the new ones.
- Listeners are added and removed (SMTP and HTTP); a session on a removed listener finishes.
- A config that does not load (a wrong type, an unknown key, a missing template folder, an
  address already in use, a key that does not match its certificate) leaves the running
  settings in place and logs `reload-failed` with the reason, for the config its file:line.
- A certificate swap: new handshakes (openssl s_client) see the new certificate, a session that
  connected before the reload still gets the old one.
- New DNS servers and a new delivery target take effect; queue.dir waits for a restart
  (`reload-kept`).
"""

import email
import email.policy
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from smtp_raw import Client  # noqa: E402

SOURCE = os.environ.get("IPCONFIRM_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))


def toml(listen, dns, maildir="./outbox", max_recipients=10, templates="", tls=None, http=(),
         queue_dir="./spool", extra_smtp=""):
    lines = [
        'hostname = "mx.example.test"',
        'domains = ["example.test", "example.net"]',
        "[smtp]",
        "listen = [" + ", ".join(f'"{a}"' for a in listen) + "]",
        f"max_recipients = {max_recipients}",
        "command_timeout = 20",
    ]
    if tls:
        lines += [f'tls_cert = "{tls[0]}"', f'tls_key = "{tls[1]}"']
    lines += [extra_smtp,
              "[dns]", f'servers = ["{dns}"]', "timeout_ms = 500", "tries = 2",
              "[delivery]", 'mode = "maildir"', f'maildir = "{maildir}"',
              "[queue]", f'dir = "{queue_dir}"',
              "[reply]", f'templates = "{templates}"',
              "[http]", "listen = [" + ", ".join(f'"{a}"' for a in http) + "]"]
    return "\n".join(lines) + "\n"


class Server(h.Ipconfirm):
    def write(self, text):
        with open(self.config, "w") as f:
            f.write(text)

    def reload(self):
        """SIGHUP, then wait for its outcome; returns the log line ("reloaded ..." or
        "reload-failed ...")."""
        def outcomes():
            return re.findall(r"^.* (reloaded|reload-failed) .*$", self.read_log(), re.M)
        before = len(outcomes())
        self.proc.send_signal(signal.SIGHUP)
        h.wait_for(lambda: len(outcomes()) > before, 15, "the reload to finish")
        return re.findall(r"^.* (?:reloaded|reload-failed) .*$", self.read_log(), re.M)[before]


def reply_from(maildir, sender):
    """The reply mail whose envelope recipient is `sender`, from a Maildir, or None."""
    d = os.path.join(maildir, "new")
    if not os.path.isdir(d):
        return None
    for name in os.listdir(d):
        with open(os.path.join(d, name), "rb") as f:
            raw = f.read()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if msg["To"] and sender in msg["To"]:
            return msg
    return None


def session_until_mail(port, sender, source=None):
    c = Client(port, source=source)
    assert c.text().startswith("220")
    assert c.cmd("EHLO mail.sender.test").startswith("250")
    assert c.cmd(f"MAIL FROM:<{sender}>").startswith("250")
    return c


def finish_message(c, subject="reload test"):
    assert c.cmd("DATA").startswith("354")
    text = c.cmd(f"Subject: {subject}\r\nFrom: <x@sender.test>\r\n\r\nhello\r\n.")
    c.cmd("QUIT")
    c.close()
    return text


def make_cert(work, name):
    key = os.path.join(work.path, f"{name}.key")
    cert = os.path.join(work.path, f"{name}.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={name}.example.test", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def starttls_subject(port):
    """The certificate subject `openssl s_client -starttls smtp` sees on a new connection."""
    p = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                        f"127.0.0.1:{port}", "-servername", "mx.example.test"],
                       input=b"QUIT\r\n", capture_output=True, timeout=30)
    m = re.search(rb"subject=\s*CN\s*=\s*([\w.]+)", p.stdout)
    assert m, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    return m.group(1).decode()


def http_get(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


class Reload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq", "swaks", "openssl")
        cls.work = h.Workdir()
        try:
            cls.dns = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.1",
                                           "host-record=one.sender.test,127.0.0.2"])
            cls.dns2 = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.1",
                                            "host-record=two.sender.test,127.0.0.2"])
        except Exception:
            cls.work.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.dns2.stop()
        cls.work.cleanup()

    def serve(self, text):
        name = self.id().rsplit(".", 1)[-1]
        svc = Server(self.work, text, name=name).start()
        self.addCleanup(lambda: self.assertEqual(svc.stop(), 0, "exit status on SIGTERM"))
        return svc

    def templates(self, subject):
        d = os.path.join(self.work.path, self.id().rsplit(".", 1)[-1] + "-templates")
        os.makedirs(d, exist_ok=True)
        for f in ("report.txt.mustache", "report.html.mustache"):
            shutil.copy(os.path.join(SOURCE, "templates", f), d)
        with open(os.path.join(d, "subject.mustache"), "w") as f:
            f.write(subject + " {{connection.ip}}\n")
        return d

    def test_open_session_keeps_its_limit_and_template_new_sessions_get_the_new(self):
        port = h.free_port()
        tpl = self.templates("OLD")
        svc = self.serve(toml([f"127.0.0.1:{port}"], self.dns.server(), max_recipients=1,
                              templates=tpl))
        old = session_until_mail(port, "old@sender.test")
        with open(os.path.join(tpl, "subject.mustache"), "w") as f:
            f.write("NEW {{connection.ip}}\n")
        svc.write(toml([f"127.0.0.1:{port}"], self.dns.server(), max_recipients=2,
                       templates=tpl))
        self.assertIn("reloaded", svc.reload())

        # The session opened before the reload: one recipient, as before.
        self.assertTrue(old.cmd("RCPT TO:<ipconfirm@example.test>").startswith("250"))
        self.assertTrue(old.cmd("RCPT TO:<ipconfirm@example.net>").startswith("452 4.5.3"))
        self.assertRegex(finish_message(old), r"^250 2\.0\.0 Ok: queued")
        # A new session: two.
        new = session_until_mail(port, "new@sender.test")
        self.assertTrue(new.cmd("RCPT TO:<ipconfirm@example.test>").startswith("250"))
        self.assertTrue(new.cmd("RCPT TO:<ipconfirm@example.net>").startswith("250"))
        self.assertRegex(finish_message(new), r"^250 2\.0\.0 Ok: queued")

        outbox = os.path.join(svc.dir, "outbox")
        old_reply = h.wait_for(lambda: reply_from(outbox, "old@sender.test"), 20, "old reply")
        new_reply = h.wait_for(lambda: reply_from(outbox, "new@sender.test"), 20, "new reply")
        self.assertEqual(old_reply["Subject"], "OLD 127.0.0.1")
        self.assertEqual(new_reply["Subject"], "NEW 127.0.0.1")

    def test_listeners_are_added_and_removed(self):
        a, b, web = h.free_port(), h.free_port(), h.free_port()
        svc = self.serve(toml([f"127.0.0.1:{a}"], self.dns.server()))
        self.assertFalse(h.port_open(web))
        on_a = session_until_mail(a, "a@sender.test")
        svc.write(toml([f"127.0.0.1:{b}"], self.dns.server(), http=[f"127.0.0.1:{web}"]))
        self.assertIn("reloaded", svc.reload())
        log = svc.read_log()
        self.assertIn(f"unlisten address=127.0.0.1:{a}", log)
        self.assertIn(f"listen address=127.0.0.1:{b}", log)
        self.assertIn(f"http-listen address=127.0.0.1:{web}", log)

        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", a), timeout=5).close()
        rc, out = h.swaks("--server", f"127.0.0.1:{b}", "--from", "b@sender.test",
                          "--to", "ipconfirm@example.test")
        self.assertEqual(rc, 0, out)
        self.assertEqual(http_get(web, "/healthz")[0], 200)
        # The session on the removed listener finishes.
        self.assertTrue(on_a.cmd("RCPT TO:<ipconfirm@example.test>").startswith("250"))
        self.assertRegex(finish_message(on_a), r"^250 2\.0\.0 Ok: queued")

        # And back: the HTTP listener goes away again.
        svc.write(toml([f"127.0.0.1:{a}", f"127.0.0.1:{b}"], self.dns.server()))
        self.assertIn("reloaded", svc.reload())
        self.assertFalse(h.port_open(web))
        self.assertTrue(h.port_open(a))
        self.assertTrue(h.port_open(b))

    def test_a_config_that_does_not_load_keeps_the_running_one(self):
        port, web = h.free_port(), h.free_port()
        good = toml([f"127.0.0.1:{port}"], self.dns.server(), max_recipients=1,
                    http=[f"127.0.0.1:{web}"])
        svc = self.serve(good)

        # A wrong type: the error names the file and the line.
        bad = good.replace("max_recipients = 1", 'max_recipients = "many"')
        line = bad.splitlines().index('max_recipients = "many"') + 1
        svc.write(bad)
        failed = svc.reload()
        self.assertIn("reload-failed", failed)
        self.assertIn(f"ipconfirm.toml:{line}: key 'smtp.max_recipients': must be an integer",
                      failed)
        self.assertIn('detail="the running settings stay"', failed)
        status, metrics = http_get(web, "/metrics")
        self.assertIn("ipconfirm_config_last_reload_successful 0", metrics)
        self.assertIn('ipconfirm_config_reloads_total{result="failed"} 1', metrics)

        # Others: an unknown key, a template folder that is not there, an address in use.
        svc.write(good.replace("[dns]", "max_recipeints = 3\n[dns]"))
        self.assertRegex(svc.reload(), r"reload-failed .*key 'smtp.max_recipeints': unknown key")
        svc.write(good.replace('templates = ""', 'templates = "/nonexistent-templates"'))
        self.assertRegex(svc.reload(), r"reload-failed error=\"templates: .*nonexistent")
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            busy = taken.getsockname()[1]
            other_web = h.free_port()
            svc.write(toml([f"127.0.0.1:{port}", f"127.0.0.1:{busy}"], self.dns.server(),
                           max_recipients=5, http=[f"127.0.0.1:{other_web}"]))
            self.assertRegex(svc.reload(),
                             rf"reload-failed error=\"cannot listen on 127.0.0.1:{busy}: ")
        self.assertFalse(h.port_open(other_web), "nothing of a failed reload stays bound")

        # All the while the first settings served: one recipient per message.
        c = session_until_mail(port, "still@sender.test")
        self.assertTrue(c.cmd("RCPT TO:<ipconfirm@example.test>").startswith("250"))
        self.assertTrue(c.cmd("RCPT TO:<ipconfirm@example.net>").startswith("452"))
        self.assertRegex(finish_message(c), r"^250 ")
        self.assertEqual(http_get(web, "/healthz")[0], 200)

        # Fixed: the reload goes through.
        svc.write(good.replace("max_recipients = 1", "max_recipients = 2"))
        self.assertIn("reloaded", svc.reload())
        self.assertIn("ipconfirm_config_last_reload_successful 1", http_get(web, "/metrics")[1])

    def test_certificate_swap(self):
        one = make_cert(self.work, "one")
        two = make_cert(self.work, "two")
        live = (os.path.join(self.work.path, "live.crt"), os.path.join(self.work.path,
                                                                      "live.key"))
        shutil.copy(one[0], live[0])
        shutil.copy(one[1], live[1])
        port = h.free_port()
        svc = self.serve(toml([f"127.0.0.1:{port}"], self.dns.server(), tls=live))
        self.assertEqual(starttls_subject(port), "one.example.test")
        early = smtplib.SMTP("127.0.0.1", port, timeout=20)
        early.ehlo("mail.sender.test")

        # The renewed certificate keeps its path.
        shutil.copy(two[0], live[0])
        shutil.copy(two[1], live[1])
        line = svc.reload()
        self.assertIn("reloaded", line)
        self.assertIn("tls=reloaded", line)
        self.assertEqual(starttls_subject(port), "two.example.test")

        # The session from before the reload finishes with the certificate it started with.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        early.starttls(context=ctx)
        with open(one[0]) as f:
            self.assertEqual(early.sock.getpeercert(binary_form=True),
                             ssl.PEM_cert_to_DER_cert(f.read()))
        early.quit()

        # A key that does not match the certificate: refused, the new certificate stays.
        shutil.copy(one[1], live[1])
        self.assertRegex(svc.reload(), r"reload-failed error=\"TLS key \S*live\.key: ")
        self.assertEqual(starttls_subject(port), "two.example.test")

    def test_dns_and_delivery_change_queue_dir_waits_for_a_restart(self):
        port = h.free_port()
        svc = self.serve(toml([f"127.0.0.1:{port}"], self.dns.server(), maildir="./outbox1"))
        rc, out = h.swaks("--server", f"127.0.0.1:{port}", "--local-interface", "127.0.0.2",
                          "--from", "d1@sender.test", "--to", "ipconfirm@example.test")
        self.assertEqual(rc, 0, out)
        self.assertIn("PTR one.sender.test", out)

        svc.write(toml([f"127.0.0.1:{port}"], self.dns2.server(), maildir="./outbox2",
                       queue_dir="./spool-elsewhere"))
        line = svc.reload()
        self.assertIn("dns=new", line)
        self.assertIn("delivery=new", line)
        self.assertRegex(svc.read_log(),
                         r"reload-kept key=queue\.dir running=\./spool ignored=\./spool-elsewhere")

        rc, out = h.swaks("--server", f"127.0.0.1:{port}", "--local-interface", "127.0.0.2",
                          "--from", "d2@sender.test", "--to", "ipconfirm@example.test")
        self.assertEqual(rc, 0, out)
        self.assertIn("PTR two.sender.test", out)
        h.wait_for(lambda: reply_from(os.path.join(svc.dir, "outbox2"), "d2@sender.test"), 20,
                   "the reply in the new Maildir")
        self.assertIsNotNone(reply_from(os.path.join(svc.dir, "outbox1"), "d1@sender.test"))
        self.assertIsNone(reply_from(os.path.join(svc.dir, "outbox1"), "d2@sender.test"))
        self.assertFalse(os.path.exists(os.path.join(svc.dir, "spool-elsewhere")))


if __name__ == "__main__":
    h.main()
