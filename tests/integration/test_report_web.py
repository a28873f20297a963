"""The report on the web: the 250 line names a page, and one HTTP GET gives the report.

With [http] public_url set, swaks sees `report http://.../r/TOKEN` at the end of the 250 line
(everything before it as before); GET of that URL plus `.json` is the reply mail's
ipconfirm.json, `.txt` its text part, the URL itself the page. A reply not mailed (RFC 3834)
still gets its page. Unknown, malformed and expired tokens all get the same 404, byte for byte
but the Date; expired reports are deleted; past max_reports the oldest go; a client that asks
too fast gets 429. Every report response carries the privacy and safety header fields.
"""

import http.client
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from test_reply_injection import HOSTILE  # noqa: E402

RECORDS = ["host-record=mail.sender.test,127.0.0.2"]
LINE_250 = re.compile(
    r"^<-  250 2\.0\.0 Ok: (?:queued|accepted) as (\S+); your IP is (\S+) \((.*)\); "
    r"report (http://127\.0\.0\.1:\d+/r/([A-Za-z0-9_-]{22}))$", re.M)
# A HELO name that is markup: one word, so the session takes it.
HOSTILE_HELO = "<script>alert(1)</script><img/src=x/onerror=alert(2)>"
TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def fetch(port, path, method="GET", source=None):
    """(status, headers as a dict of lower-case names, body bytes, the raw header block)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        body = r.read()
        headers = {k.lower(): v for k, v in r.getheaders()}
        raw = [f"{k}: {v}" for k, v in r.getheaders() if k.lower() != "date"]
        return r.status, headers, body, [f"HTTP/1.1 {r.status} {r.reason}"] + raw
    finally:
        conn.close()


def server_config(smtp_port, http_port, dns, sink=None, extra=""):
    return h.config_toml([f"127.0.0.1:{smtp_port}"], dns.server(),
                         smarthost=sink.endpoint() if sink else None,
                         extra=f'[http]\nlisten = ["127.0.0.1:{http_port}"]\n'
                               f'public_url = "http://127.0.0.1:{http_port}/"\n' + extra)


def send(port, *args, source="127.0.0.2", sender="web@sender.test"):
    rc, out = h.swaks("--server", f"127.0.0.1:{port}", "--local-interface", source,
                      "--helo", "mail.sender.test", "--from", sender,
                      "--to", "ipconfirm@example.test", *args)
    return rc, out


def token_of(test, out):
    m = LINE_250.search(out)
    test.assertIsNotNone(m, out)
    return m


def unknown_token(seed):
    return "".join(TOKEN_CHARS[(seed * 7 + i * 13) % 64] for i in range(22))


class ReportWeb(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq", "swaks", "smtp-sink")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, RECORDS)
        cls.sink = h.SmtpSink(cls.work)
        cls.port, cls.http = h.free_port(), h.free_port()
        cls.svc = h.Ipconfirm(cls.work, server_config(
            cls.port, cls.http, cls.dns, cls.sink,
            "max_report_requests_per_ip_per_minute = 0\n")).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.sink.stop()
        cls.dns.stop()
        cls.work.cleanup()
        assert rc == 0, f"ipconfirm exited {rc}"

    def reply_to(self, recipient):
        def find():
            for env, msg in self.sink.messages():
                if any(recipient in r for r in env["rcpt"]):
                    return msg
            return None
        return h.wait_for(find, 20, f"the reply to {recipient}")

    def assert_report_headers(self, headers, page=False):
        self.assertEqual(headers.get("x-robots-tag"), "noindex, nofollow")
        self.assertEqual(headers.get("referrer-policy"), "no-referrer")
        self.assertEqual(headers.get("x-content-type-options"), "nosniff")
        self.assertEqual(headers.get("cache-control"), "no-store")
        self.assertEqual(headers.get("x-frame-options"), "DENY")
        csp = headers.get("content-security-policy", "")
        self.assertIn("default-src 'none'", csp)
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertNotIn("script-src", csp)
        if page:
            self.assertRegex(csp, r"style-src 'sha256-[A-Za-z0-9+/]{43}='$")

    def test_the_250_names_the_page_and_one_get_gives_the_json(self):
        rc, out = send(self.port, sender="first@sender.test")
        self.assertEqual(rc, 0, out)
        m = token_of(self, out)
        qid, ip, summary, url, token = m.groups()
        self.assertEqual(ip, "127.0.0.2")
        # The summary as before the link (the PTR, then the authentication words).
        self.assertTrue(summary.startswith("PTR mail.sender.test, forward-confirmed"), summary)
        path = url.split(str(self.http), 1)[1]
        self.assertEqual(path, "/r/" + token)

        status, headers, body, _ = fetch(self.http, path + ".json")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        self.assert_report_headers(headers)
        report = json.loads(body)
        self.assertEqual(report["connection"]["ip"], "127.0.0.2")
        self.assertEqual(report["envelope"]["mail_from"], "first@sender.test")
        self.assertEqual(report["report_url"], url)
        self.assertIn("+0000", report["report_expires"])
        # The same document as the reply mail's ipconfirm.json, which links to the page too.
        msg = self.reply_to("first@sender.test")
        self.assertEqual(h.report_json(msg), report)
        self.assertEqual(msg["X-Ipconfirm-Queue-Id"], qid)
        text = h.text_part(msg)
        self.assertIn(url, text)
        html = next(p for p in msg.walk() if p.get_content_type() == "text/html").get_content()
        self.assertIn(f'<a href="{url}"', html)

        status, headers, body, _ = fetch(self.http, path + ".txt")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/plain; charset=utf-8")
        self.assert_report_headers(headers)
        self.assertEqual(body.decode(), text.replace("\r\n", "\n"))

        status, headers, body, _ = fetch(self.http, path)
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assert_report_headers(headers, page=True)
        page = body.decode()
        self.assertIn("Your mail server connected from <code>127.0.0.2</code>", page)
        self.assertIn("<details>", page)
        self.assertNotIn("<script", page)
        # HEAD: the same header fields, no body.
        status, headers_head, body, _ = fetch(self.http, path, method="HEAD")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        self.assertEqual(headers_head["content-length"], headers["content-length"])

    def test_a_reply_not_mailed_still_gets_its_page(self):
        rc, out = send(self.port, "--add-header", "Auto-Submitted: auto-replied",
                       sender="robot@sender.test")
        self.assertEqual(rc, 0, out)
        m = token_of(self, out)
        self.assertIn("; no reply mail: auto-submitted", m.group(3))
        status, headers, body, _ = fetch(self.http, f"/r/{m.group(5)}.json")
        self.assertEqual(status, 200, body)
        report = json.loads(body)
        self.assertEqual(report["envelope"]["mail_from"], "robot@sender.test")
        status, _, body, _ = fetch(self.http, f"/r/{m.group(5)}")
        self.assertEqual(status, 200)
        self.assertIn(b"robot@sender.test", body)

    def test_unknown_and_malformed_are_one_404_and_nothing_is_listed(self):
        reference = fetch(self.http, "/r/" + unknown_token(1))
        self.assertEqual(reference[0], 404)
        self.assert_report_headers(reference[1])
        for path in ["/r/" + unknown_token(2), "/r/" + unknown_token(3) + ".json",
                     "/r/" + unknown_token(4) + ".txt", "/r/", "/r/x", "/r/../metrics",
                     "/r/" + unknown_token(5) + ".html", "/r/" + unknown_token(6) + "/",
                     "/r/?list=1", "/r/*", "/r/" + "A" * 2000]:
            got = fetch(self.http, path)
            self.assertEqual(got[0], 404, path)
            self.assertEqual(got[2], reference[2], path)
            self.assertEqual(got[3], reference[3], path)

    def test_hostile_values_are_escaped_in_the_page(self):
        # The hostile message of test_reply_injection.py, sent with a HELO name that is markup
        # (the session takes any single word as HELO, and the report shows it).
        eml = os.path.join(self.work.path, "hostile.eml")
        with open(eml, "wb") as f:
            f.write(HOSTILE.encode("latin-1"))  # the \x.. escapes are UTF-8 bytes
        rc, out = h.swaks("--server", f"127.0.0.1:{self.port}", "--local-interface", "127.0.0.2",
                          "--helo", HOSTILE_HELO, "--from", "eve@sender.test",
                          "--to", "ipconfirm@example.test", "--data", "@" + eml)
        self.assertEqual(rc, 0, out)
        token = token_of(self, out).group(5)
        status, _, body, _ = fetch(self.http, f"/r/{token}")
        self.assertEqual(status, 200)
        page = body.decode()
        self.assertNotIn("<script", page)
        self.assertNotIn("<img", page)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page)
        self.assertIn("&lt;img", page)
        self.assertNotIn("REFLECT-ME", page)
        # The JSON keeps the value as it was (it is JSON, served as application/json).
        status, headers, body, _ = fetch(self.http, f"/r/{token}.json")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["helo"]["name"], HOSTILE_HELO)
        self.assertIn("sandbox", headers["content-security-policy"])


class ReportExpiry(unittest.TestCase):
    """report_days as a fraction (0.0001 days = 8.64 s): the clock moves forward by itself."""

    def setUp(self):
        h.require("dnsmasq", "swaks")
        self.work = h.Workdir()
        self.dns = h.Dnsmasq(self.work, RECORDS)
        self.port, self.http = h.free_port(), h.free_port()
        self.svc = h.Ipconfirm(self.work, server_config(
            self.port, self.http, self.dns,
            extra="report_days = 0.0001\nmax_report_requests_per_ip_per_minute = 0\n")).start()

    def tearDown(self):
        rc = self.svc.stop()
        self.dns.stop()
        self.work.cleanup()
        self.assertEqual(rc, 0)

    def test_an_expired_report_is_404_like_an_unknown_one_and_deleted(self):
        rc, out = send(self.port)
        self.assertEqual(rc, 0, out)
        token = token_of(self, out).group(5)
        # Appended to a report segment (reports/ holds the one-file reports of older versions).
        reports = os.path.join(self.svc.dir, "spool", "report-segments")
        self.assertEqual(len(os.listdir(reports)), 1)
        self.assertEqual(os.listdir(os.path.join(self.svc.dir, "spool", "reports")), [])

        def gone():
            return fetch(self.http, f"/r/{token}.json")[0] == 404
        h.wait_for(gone, 60, "the report to expire")
        for suffix in ["", ".json", ".txt"]:
            expired = fetch(self.http, f"/r/{token}{suffix}")
            unknown = fetch(self.http, f"/r/{unknown_token(9)}{suffix}")
            self.assertEqual(expired[0], 404)
            self.assertEqual(expired[2], unknown[2])
            self.assertEqual(expired[3], unknown[3])  # every header field but Date
        # Its segment held only it: the segment goes, though it was the one being appended to.
        h.wait_for(lambda: not os.listdir(reports), 30, "the expired report's segment to go")
        rc, out = send(self.port)
        self.assertEqual(rc, 0, out)
        token = token_of(self, out).group(5)
        self.assertEqual(fetch(self.http, f"/r/{token}.json")[0], 200)
        self.assertEqual(len(os.listdir(reports)), 1)


class ReportBoundAndLimit(unittest.TestCase):
    def setUp(self):
        h.require("dnsmasq", "swaks")
        self.work = h.Workdir()
        self.dns = h.Dnsmasq(self.work, RECORDS)
        self.port, self.http = h.free_port(), h.free_port()
        self.svc = h.Ipconfirm(self.work, server_config(
            self.port, self.http, self.dns,
            extra="max_reports = 3\nmax_report_requests_per_ip_per_minute = 6\n")
            + "[reply]\nmax_per_recipient_per_hour = 0\nmax_per_ip_per_hour = 0\n"
              "max_per_network_per_hour = 0\n").start()

    def tearDown(self):
        rc = self.svc.stop()
        self.dns.stop()
        self.work.cleanup()
        self.assertEqual(rc, 0)

    def test_past_max_reports_the_oldest_go_and_fast_clients_get_429(self):
        tokens = []
        for n in range(5):
            rc, out = send(self.port, sender=f"b{n}@sender.test")
            self.assertEqual(rc, 0, out)
            tokens.append(token_of(self, out).group(5))
        statuses = [fetch(self.http, f"/r/{t}.json")[0] for t in tokens]
        self.assertEqual(statuses, [404, 404, 200, 200, 200])
        # All five in one report segment, which stays for the three left.
        reports = os.path.join(self.svc.dir, "spool", "report-segments")
        self.assertEqual(len(os.listdir(reports)), 1)

        # Six requests a minute per client: five are used, the next ones are refused (a token
        # comes back every 10 s, far more than the few milliseconds these take).
        limited = [fetch(self.http, f"/r/{tokens[4]}.json") for _ in range(4)]
        codes = [r[0] for r in limited]
        self.assertIn(429, codes, codes)
        refused = limited[codes.index(429)]
        self.assertGreaterEqual(int(refused[1]["retry-after"]), 1)
        self.assertEqual(refused[1]["referrer-policy"], "no-referrer")
        # Another client is not held back by the first one's limit.
        status, _, body, _ = fetch(self.http, f"/r/{tokens[4]}.json", source="127.0.0.3")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["envelope"]["mail_from"], "b4@sender.test")
        _, m = metrics(self.http)
        self.assertGreaterEqual(m['ipconfirm_rate_limit_hits_total{limit="report_requests"}'], 1)
        self.assertEqual(m["ipconfirm_reports_stored"], 3)


def metrics(port):
    status, _, body, _ = fetch(port, "/metrics", source="127.0.0.4")
    assert status == 200, status
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return body, values


if __name__ == "__main__":
    h.main()
