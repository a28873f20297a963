"""Would Gmail, Yahoo and Microsoft accept this mail? The requirements verdict through the
served path, as a new user sees it.

Real peers only: dnsmasq serves forward-confirmed reverse DNS for 127.0.0.2, the SPF record
that allows it, a 2048-bit DKIM key (as 255-byte strings) and a DMARC record with p=reject;
Debian's python3-dkim (dkimpy, run by /usr/bin/python3) signs the message; swaks sends it from
127.0.0.2 over STARTTLS (a certificate made with openssl at test time); the reply goes to
smtp-sink. A fully authenticated message gets `accept` from all three providers for small and
bulk senders; the same message unsigned still passes for small senders (SPF passes) but the bulk
verdicts name the missing DKIM rule, in the JSON, the short table of the text and HTML reply,
and the hints.
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from test_auth import DEBIAN_PYTHON, MESSAGE, SIGN, debian_python, txt_strings  # noqa: E402

PROVIDERS = ("gmail", "yahoo", "microsoft")


class Requirements(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        (cls.openssl,) = h.require("openssl", "swaks", "dnsmasq", "smtp-sink")[:1]
        probe = subprocess.run([DEBIAN_PYTHON, "-c", "import dkim"], capture_output=True,
                               text=True)
        if probe.returncode != 0:
            print("SKIP: Debian's python3-dkim is missing: " + probe.stderr, flush=True)
            sys.exit(h.SKIP)
        cls.work = h.Workdir()
        try:
            cls.key = os.path.join(cls.work.path, "dkim.pem")
            subprocess.run([cls.openssl, "genrsa", "-out", cls.key, "2048"], check=True,
                           capture_output=True, timeout=60)
            der = subprocess.run([cls.openssl, "rsa", "-in", cls.key, "-pubout", "-outform",
                                  "DER"], check=True, capture_output=True, timeout=60).stdout
            import base64
            cls.record = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
            tls_key = os.path.join(cls.work.path, "tls-key.pem")
            tls_cert = os.path.join(cls.work.path, "tls-cert.pem")
            subprocess.run([cls.openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-days", "1", "-subj", "/CN=mx.example.test", "-keyout", tls_key,
                            "-out", tls_cert], check=True, capture_output=True, timeout=60)
            cls.dns = h.Dnsmasq(cls.work, [
                "host-record=mail.signed.test,127.0.0.2",  # A and PTR: forward-confirmed
                'txt-record=signed.test,"v=spf1 ip4:127.0.0.2 -all"',
                "txt-record=rq._domainkey.signed.test," + txt_strings(cls.record),
                'txt-record=_dmarc.signed.test,"v=DMARC1; p=reject"',
            ])
            cls.sink = h.SmtpSink(cls.work)
            cls.port = h.free_port()
            toml = h.config_toml([f"127.0.0.1:{cls.port}"], cls.dns.server(),
                                 smarthost=cls.sink.endpoint())
            toml = toml.replace("command_timeout = 10\n",
                                "command_timeout = 10\n"
                                f'tls_cert = "{tls_cert}"\ntls_key = "{tls_key}"\n')
            cls.svc = h.Ipconfirm(cls.work, toml)
            cls.svc.start()
        except BaseException:
            cls.cleanup()
            raise

    @classmethod
    def cleanup(cls):
        for name in ("svc", "sink", "dns"):
            if getattr(cls, name, None) is not None:
                getattr(cls, name).stop()
        cls.work.cleanup()

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.svc = None
        cls.cleanup()
        assert rc == 0, f"ipconfirm exited {rc} on SIGTERM"

    def message(self, tag, signed):
        text = MESSAGE.format(domain="signed.test", tag=tag)
        if signed:
            spec = {"message": text,
                    "signatures": [{"key": self.key, "selector": "rq", "domain": "signed.test",
                                    "c": "relaxed/relaxed"}],
                    "records": {"rq._domainkey.signed.test": self.record}}
            out = json.loads(debian_python(SIGN, json.dumps(spec)))
            self.assertTrue(out["dkimpy_verifies"], "dkimpy does not verify its own signature")
            text = out["message"]
        path = os.path.join(self.work.path, tag + ".eml")
        with open(path, "w", newline="") as f:
            f.write(text)
        return path

    def send(self, sender, path):
        rc, out = h.swaks("--server", f"127.0.0.1:{self.port}", "--tls", "--local-interface",
                          "127.0.0.2", "--helo", "mail.signed.test", "--from", sender,
                          "--to", "ipconfirm@example.test", "--data", "@" + path)
        self.assertEqual(rc, 0, out)
        self.assertIn("forward-confirmed", out)
        sent = h.wait_for(lambda: [m for env, m in self.sink.messages()
                                   if any(sender in r for r in env["rcpt"])], 20,
                          f"the reply to {sender}")
        return sent[0]

    def test_fully_authenticated_over_starttls_is_accepted_by_all_three(self):
        msg = self.send("good@signed.test", self.message("good", signed=True))
        r = h.report_json(msg)
        self.assertRegex(r["connection"]["tls"]["version"], r"^TLSv1\.[23]$")
        self.assertEqual(r["rdns"]["status"], "pass")
        auth = r["auth"]
        self.assertEqual((auth["spf"]["result"], auth["dkim"][0]["result"],
                          auth["dmarc"]["result"]), ("pass", "pass", "pass"))
        self.assertEqual(r["verdicts"], {p: {"all": "accept", "bulk": "accept"}
                                         for p in PROVIDERS})
        statuses = {(x["provider"], x["rule"]): x["status"] for x in r["requirements"]}
        self.assertNotIn("fail", statuses.values(), statuses)
        for p in PROVIDERS:
            for rule in ("spf", "dkim", "dmarc-record", "dmarc-alignment", "rfc5322-format"):
                self.assertEqual(statuses[(p, rule)], "pass", (p, rule))
            self.assertEqual(statuses[(p, "complaint-rate")], "unknown")  # no single message
        for p, rule in (("gmail", "spf-or-dkim"), ("yahoo", "spf-or-dkim"), ("gmail", "fcrdns"),
                        ("yahoo", "fcrdns"), ("microsoft", "reverse-dns"), ("gmail", "tls")):
            self.assertEqual(statuses[(p, rule)], "pass", (p, rule))
        for x in r["requirements"]:
            self.assertTrue(set(x) >= {"provider", "rule", "applies_to", "status", "evidence",
                                       "source"}, x)
        codes = {x["code"] for x in r["hints"]}
        self.assertFalse(codes & {"provider-reject", "provider-at-risk", "format-error",
                                  "no-one-click-unsubscribe"}, codes)
        text = " ".join(h.text_part(msg).split())
        self.assertIn("Gmail: would accept, from small and bulk senders", text)
        self.assertIn("Microsoft Outlook.com: would accept, from small and bulk senders", text)
        self.assertIn("Would Gmail, Yahoo and Microsoft accept it?", text)
        html = [p.get_content() for p in msg.walk() if p.get_content_type() == "text/html"][0]
        self.assertIn("Would Gmail, Yahoo and Microsoft accept it?", html)
        self.assertIn("would accept, from small and bulk senders", html)

    def test_without_dkim_the_bulk_verdicts_name_the_missing_rule(self):
        msg = self.send("nodkim@signed.test", self.message("nodkim", signed=False))
        r = h.report_json(msg)
        self.assertEqual(r["auth"]["spf"]["result"], "pass")
        self.assertEqual(r["auth"]["dkim"], [])
        for p in PROVIDERS:
            self.assertEqual(r["verdicts"][p]["all"], "accept", r["verdicts"])
            self.assertNotEqual(r["verdicts"][p]["bulk"], "accept", r["verdicts"])
            failing = {x["rule"] for x in r["verdicts_failing"][p]["bulk"]}
            self.assertIn("dkim", failing, r["verdicts_failing"][p])
            self.assertEqual(r["verdicts_failing"][p]["all"], [])
        statuses = {(x["provider"], x["rule"]): x["status"] for x in r["requirements"]}
        self.assertEqual(statuses[("gmail", "dkim")], "fail")
        self.assertEqual(statuses[("gmail", "spf-or-dkim")], "pass")
        rows = {row["provider"]: row for row in r["requirements_summary"]}
        self.assertIn("DKIM", rows["gmail"]["text"])
        self.assertTrue(rows["gmail"]["text"].startswith("would accept as a small sender; bulk:"),
                        rows["gmail"]["text"])
        codes = {x["code"] for x in r["hints"]}
        self.assertIn("dkim-none", codes)
        self.assertTrue(codes & {"provider-reject", "provider-at-risk"}, codes)
        text = " ".join(h.text_part(msg).split())
        self.assertIn("Gmail: " + rows["gmail"]["text"], text)


if __name__ == "__main__":
    h.main()
