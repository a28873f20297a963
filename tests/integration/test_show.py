"""`ipconfirm show`: the reply's report is one command away.

A message goes through the real server into a Maildir (and, in smarthost mode, into an
smtp-sink's dump); `show FILE` prints the reply's ipconfirm.json part exactly as the reply
carries it (Python's email package decodes the same part for comparison), `--format text`
its subject and text part, `--format html` its HTML part; several files give a stream of
JSON documents. A file that is no reply exits 1, a missing one 2.
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402


def decode_stream(text):
    """The JSON documents of a stream, in order (as jq reads them)."""
    dec, out, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        doc, i = dec.raw_decode(text, i)
        out.append(doc)
    return out


class Show(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq", "swaks", "smtp-sink")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, ["host-record=mail.sender.test,127.0.0.2"])
        cls.port = h.free_port()
        cls.svc = h.Ipconfirm(cls.work, h.config_toml([f"127.0.0.1:{cls.port}"],
                                                      cls.dns.server())).start()
        for sender in ("first@sender.test", "second@sender.test"):
            code, out = h.swaks("--server", f"127.0.0.1:{cls.port}", "--from", sender,
                                "--to", "ipconfirm@example.test", "--helo", "mail.sender.test",
                                "--local-interface", "127.0.0.2")
            assert code == 0, out
        new = os.path.join(cls.svc.dir, "outbox", "new")
        h.wait_for(lambda: os.path.isdir(new) and len(os.listdir(new)) == 2, 15, "two replies")
        cls.files = sorted(os.path.join(new, f) for f in os.listdir(new))

    @classmethod
    def tearDownClass(cls):
        cls.svc.stop()
        cls.dns.stop()
        cls.work.cleanup()

    def show(self, *args):
        return self.svc.run("show", *args)

    def message(self, path):
        import email
        import email.policy
        with open(path, "rb") as f:
            return email.message_from_binary_file(f, policy=email.policy.default)

    def test_json_of_one_reply(self):
        r = self.show(self.files[0])
        self.assertEqual(r.returncode, 0, r.stderr)
        report = json.loads(r.stdout)
        self.assertEqual(report, h.report_json(self.message(self.files[0])))
        self.assertEqual(report["connection"]["ip"], "127.0.0.2")
        self.assertEqual(report["helo"]["name"], "mail.sender.test")
        self.assertTrue(r.stdout.startswith("{\n  \""), "indented like `check` prints it")

    def test_several_replies_are_a_stream(self):
        r = self.show(*self.files)
        self.assertEqual(r.returncode, 0, r.stderr)
        docs = decode_stream(r.stdout)
        self.assertEqual(sorted(d["envelope"]["mail_from"] for d in docs),
                         ["first@sender.test", "second@sender.test"])

    def test_text_and_html(self):
        msg = self.message(self.files[0])
        r = self.show("--format", "text", self.files[0])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith(f"Subject: {msg['Subject']}\n\n"), r.stdout[:200])
        self.assertIn(h.text_part(msg).replace("\r\n", "\n").strip(), r.stdout)
        self.assertNotIn("\r", r.stdout)
        r = self.show("--format", "html", self.files[0])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("127.0.0.2", r.stdout)
        self.assertTrue(r.stdout.lstrip().lower().startswith("<!doctype html")
                        or "<html" in r.stdout.lower())
        r = self.show("--format", "text", *self.files)
        self.assertEqual(r.stdout.count("==> "), 2)

    def test_a_reply_from_a_smarthost_sink(self):
        sink = h.SmtpSink(self.work)
        port = h.free_port()
        svc = h.Ipconfirm(self.work, h.config_toml([f"127.0.0.1:{port}"], self.dns.server(),
                                                   smarthost=sink.endpoint()), "smarthost")
        svc.start()
        try:
            code, out = h.swaks("--server", f"127.0.0.1:{port}", "--from", "s@sender.test",
                                "--to", "ipconfirm@example.test")
            self.assertEqual(code, 0, out)
            files = h.wait_for(lambda: [f for f in sink.files() if os.path.getsize(f) > 500],
                               15, "the reply in the sink")
            h.wait_for(lambda: sink.messages(), 15, "a complete message")
            r = svc.run("show", files[0])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout)["envelope"]["mail_from"], "s@sender.test")
        finally:
            svc.stop()
            sink.stop()

    def test_not_a_reply(self):
        other = os.path.join(self.work.path, "plain.eml")
        with open(other, "w") as f:
            f.write("From: a@example.org\nSubject: hello\n\njust a message\n")
        r = self.show(other)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no ipconfirm.json part", r.stderr)
        r = self.show(self.svc.config)
        self.assertEqual(r.returncode, 1)
        r = self.show(os.path.join(self.work.path, "missing"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot read", r.stderr)
        # One bad file among good ones: the good ones are still shown.
        r = self.show(self.files[0], other)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(decode_stream(r.stdout)), 1)


if __name__ == "__main__":
    h.main()
