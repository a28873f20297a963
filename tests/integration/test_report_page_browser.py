"""The report page and the HTML reply in a real browser: Debian's headless Chromium.

The page of a report of the hostile message of test_reply_injection.py, sent with a HELO name
that is markup, is loaded with JavaScript switched off, at a phone's width (390 px) and a desktop's (1280 px), driven over the
DevTools protocol through a pipe (--remote-debugging-pipe; Python's standard library only).
The test fails on any console message of level error or warning, any exception, and any
Content-Security-Policy violation; it checks that the style sheet applied (the CSP's hash
matched), that the verdict box comes first, that nothing is wider than a phone's screen, that
there is no script element, and that the hostile values are text on the page, not markup. Then
the reply mail's HTML part is loaded the same way, and the reply to an ordinary message once
more with every style taken away (as a mail client that drops styles shows it). A control page that breaks the CSP on purpose
proves that the check sees violations.

Screenshots (full page, PNG) are kept as test artifacts in <build>/test-artifacts/report-pages/:
page-390.png, page-1280.png, mail-390.png, mail-1280.png, mail-unstyled-390.png.
Skipped (77) when chromium is not installed.
"""

import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from test_reply_injection import HOSTILE  # noqa: E402

RECORDS = ["host-record=mail.sender.test,127.0.0.2"]
LINK = re.compile(r"; report (http://127\.0\.0\.1:\d+/r/[A-Za-z0-9_-]{22})$", re.M)
WIDTHS = (390, 1280)
# A HELO name that is markup (one word: the session takes it, and the report shows it).
HOSTILE_HELO = "<script>alert(1)</script><img/src=x/onerror=alert(2)>"


def artifacts_dir():
    d = os.path.join(os.path.dirname(os.path.abspath(h.binary())), "test-artifacts",
                     "report-pages")
    os.makedirs(d, exist_ok=True)
    return d


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe: commands are JSON
    messages ending in NUL on fd 3, answers and events come back the same way on fd 4."""

    def __init__(self, exe):
        self.profile = tempfile.mkdtemp(prefix="ipconfirm-chromium-")
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()

        def fds_3_and_4():
            a, b = os.dup(cmd_r), os.dup(res_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.log = open(os.path.join(self.profile, "chromium.log"), "w")
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--hide-scrollbars", "--mute-audio", "--user-data-dir=" + self.profile,
             "--remote-debugging-pipe", "about:blank"],
            preexec_fn=fds_3_and_4, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=subprocess.STDOUT)
        os.close(cmd_r)
        os.close(res_w)
        self.out, self.inp = cmd_w, res_r
        self.buf = b""
        self.next_id = 0
        self.events = []
        target = self.call("Target.createTarget", {"url": "about:blank"})
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Audits"):
            self.call(domain + ".enable", session=True)
        # No JavaScript at all: the page must work without it.
        self.call("Emulation.setScriptExecutionDisabled", {"value": True}, session=True)

    def close(self):
        try:
            os.close(self.out)
            os.close(self.inp)
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.inp], [], [], left)
            if ready:
                chunk = os.read(self.inp, 1 << 20)
                if not chunk:
                    raise EOFError("chromium closed its pipe")
                self.buf += chunk
        message, self.buf = self.buf.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=False, timeout=60):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self.out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, name, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == name:
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                      session=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def load(self, url, width):
        """Loads `url` in a window `width` px wide; returns the problems the page caused."""
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": 900, "deviceScaleFactor": 1,
                   "mobile": width < 600}, session=True)
        self.events = []
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_event("Page.loadEventFired")
        self.evaluate("0")  # a round trip: events of the load that came before it are in
        return self.problems()

    def problems(self):
        found = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                found.append(f"log {p['entry']['source']}: {p['entry']['text']}")
            elif method == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning",
                                                                         "assert"):
                found.append(f"console.{p['type']}: {p['args']}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {p['exceptionDetails']}")
            elif method == "Audits.issueAdded":
                found.append(f"issue {p['issue']['code']}: {json.dumps(p['issue']['details'])}")
        return found

    def screenshot(self, path, width):
        """The whole page at `width`, as PNG."""
        height = self.evaluate("Math.ceil(document.documentElement.scrollHeight)")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": int(height), "deviceScaleFactor": 1,
                   "mobile": width < 600}, session=True)
        data = self.call("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path


class BrowserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.chromium = h.find_tool("chromium")
        if not cls.chromium:
            print("SKIP: chromium is not installed", flush=True)
            sys.exit(h.SKIP)
        h.require("dnsmasq", "swaks")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, RECORDS)
        cls.port, cls.http = h.free_port(), h.free_port()
        cls.svc = h.Ipconfirm(cls.work, h.config_toml(
            [f"127.0.0.1:{cls.port}"], cls.dns.server(),
            extra=f'[http]\nlisten = ["127.0.0.1:{cls.http}"]\n'
                  f'public_url = "http://127.0.0.1:{cls.http}"\n')).start()
        eml = os.path.join(cls.work.path, "hostile.eml")
        with open(eml, "wb") as f:
            f.write(HOSTILE.encode("latin-1"))  # the \x.. escapes are UTF-8 bytes
        rc, out = h.swaks("--server", f"127.0.0.1:{cls.port}", "--local-interface", "127.0.0.2",
                          "--helo", HOSTILE_HELO, "--from", "eve@sender.test",
                          "--to", "ipconfirm@example.test", "--data", "@" + eml)
        m = LINK.search(out)
        if rc != 0 or not m:
            cls.tearDownClass()
            raise AssertionError(out)
        cls.url = m.group(1)
        outbox = os.path.join(cls.svc.dir, "outbox", "new")
        h.wait_for(lambda: os.path.isdir(outbox) and os.listdir(outbox), 20, "the reply mail")
        hostile_reply = os.listdir(outbox)[0]
        cls.mail_html = cls.show_html(os.path.join(outbox, hostile_reply))
        # An ordinary message too, whose reply is looked at with every style taken away: the
        # hostile one's 900-letter host name cannot wrap without styles.
        rc, out = h.swaks("--server", f"127.0.0.1:{cls.port}", "--local-interface", "127.0.0.2",
                          "--helo", "mail.sender.test", "--from", "plain@sender.test",
                          "--to", "ipconfirm@example.test")
        if rc != 0:
            cls.tearDownClass()
            raise AssertionError(out)
        h.wait_for(lambda: len(os.listdir(outbox)) == 2, 20, "the second reply mail")
        plain_reply = next(n for n in os.listdir(outbox) if n != hostile_reply)
        cls.plain_mail_html = cls.show_html(os.path.join(outbox, plain_reply))
        cls.artifacts = artifacts_dir()
        cls.browser = Browser(cls.chromium)

    @classmethod
    def show_html(cls, path):
        shown = cls.svc.run("show", "--format", "html", path)
        assert shown.returncode == 0, shown.stderr
        return shown.stdout

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "browser", None):
            cls.browser.close()
        rc = cls.svc.stop()
        cls.dns.stop()
        cls.work.cleanup()
        assert rc == 0, f"ipconfirm exited {rc}"

    def check_layout(self, width):
        b = self.browser
        # Nothing wider than the window: no sideways scrolling on a phone.
        self.assertLessEqual(b.evaluate("document.documentElement.scrollWidth"), width)
        self.assertEqual(b.evaluate("document.querySelectorAll('script').length"), 0)

    def test_a_control_page_that_breaks_the_csp_is_caught(self):
        control = ("data:text/html,<!DOCTYPE html><meta http-equiv=\"Content-Security-Policy\" "
                   "content=\"default-src 'none'\"><p style=\"color:red\">x</p>")
        problems = self.browser.load(control, 390)
        self.assertTrue(any("Content Security Policy" in p or "ContentSecurityPolicy" in p
                            for p in problems), problems)

    def test_the_page_at_phone_and_desktop_width(self):
        b = self.browser
        for width in WIDTHS:
            with self.subTest(width=width):
                problems = b.load(self.url, width)
                self.assertEqual(problems, [])
                self.check_layout(width)
                # The style element applied: the CSP's hash matched it.
                self.assertEqual(b.evaluate(
                    "getComputedStyle(document.querySelector('.verdict')).borderLeftWidth"),
                    "6px")
                # The verdict first, above every card.
                self.assertEqual(b.evaluate(
                    "document.querySelector('main section').className.split(' ')[0]"),
                    "verdict")
                self.assertTrue(b.evaluate(
                    "[...document.querySelectorAll('.card')].every(c => "
                    "c.getBoundingClientRect().top > "
                    "document.querySelector('.verdict').getBoundingClientRect().bottom)"))
                self.assertGreater(b.evaluate("document.querySelectorAll('.card').length"), 0)
                # The hostile HELO name is text on the page, never an element.
                text = b.evaluate("document.body.innerText")
                self.assertIn("<script>alert(1)</script>", text)
                self.assertNotIn("REFLECT-ME", text)
                self.assertEqual(b.evaluate("document.querySelectorAll('img, iframe, object, "
                                            "embed, form, a[href^=javascript]').length"), 0)
                # The JSON is folded below, closed.
                self.assertFalse(b.evaluate("document.querySelector('details').open"))
                b.screenshot(os.path.join(self.artifacts, f"page-{width}.png"), width)

    def test_the_reply_mail_html_with_and_without_styles(self):
        b = self.browser
        styled = os.path.join(self.artifacts, "mail.html")
        with open(styled, "w") as f:
            f.write(self.mail_html)
        # As a mail client that drops every style shows it: no style or colour attributes.
        unstyled = os.path.join(self.artifacts, "mail-unstyled.html")
        bare = re.sub(r'\s(style|bgcolor)="[^"]*"', "", self.plain_mail_html)
        self.assertNotIn("style=", bare)
        with open(unstyled, "w") as f:
            f.write(bare)
        for width in WIDTHS:
            with self.subTest(width=width):
                self.assertEqual(b.load("file://" + styled, width), [])
                self.check_layout(width)
                text = b.evaluate("document.body.innerText")
                self.assertIn("Your mail server connected from 127.0.0.2", text)
                self.assertIn("Open this report in your browser", text)
                self.assertIn("<script>alert(1)</script>", text)
                b.screenshot(os.path.join(self.artifacts, f"mail-{width}.png"), width)
        self.assertEqual(b.load("file://" + unstyled, 390), [])
        b.screenshot(os.path.join(self.artifacts, "mail-unstyled-390.png"), 390)
        # Without styles nothing may break a long value in a table cell (an SPF record, a
        # domain in the DNS log), and a table is as wide as its widest word: a few pixels of
        # sideways scrolling are tolerated here, a layout that falls apart is not.
        self.assertLessEqual(b.evaluate("document.documentElement.scrollWidth"), 390 * 1.05)
        self.assertEqual(b.evaluate("document.querySelectorAll('script').length"), 0)
        text = b.evaluate("document.body.innerText")
        # Still in reading order: the verdict, then what to do, then the details.
        order = [text.find(s) for s in ("Your mail server connected from", "In short:",
                                        "What to do", "Who can fix it:", "Details",
                                        "DNS blocklists", "Path of your message")]
        self.assertNotIn(-1, order, text)
        self.assertEqual(order, sorted(order), text)


if __name__ == "__main__":
    h.main()
