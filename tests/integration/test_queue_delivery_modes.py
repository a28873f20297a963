"""Smarthost TLS and AUTH, and MX delivery, from the config to the wire.

Smarthost: with smarthost_tls = "required" a smarthost without STARTTLS gets nothing (the
reply is deferred); a smarthost with STARTTLS and AUTH, whose certificate is verified, gets the
reply inside TLS with the credentials from smarthost_auth_file, or from
smarthost_user/smarthost_password (test_smarthost_tls.py: what is verified, and how).

MX: dnsmasq serves MX records whose hosts point at an smtp-sink on 127.0.0.1 (mx_port is the
sink's port). With allow_private = true the reply goes to the MX host, in preference order
(the preferred MX does not answer), or to the A record of a domain without MX (RFC 5321 §5.1);
a null MX (RFC 7505) drops the reply at once. Without allow_private, loopback MX hosts are
never connected to.
"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
import queue_helpers as q  # noqa: E402

MX_RECORDS = q.RECORDS + [
    # mx.test: the preferred MX (5) has an address where nothing listens; the next one is the
    # sink on 127.0.0.1.
    "mx-host=mx.test,dead.mx.test,5",
    "mx-host=mx.test,mail.mx.test,10",
    "host-record=dead.mx.test,127.0.0.9",
    "host-record=mail.mx.test,127.0.0.1",
    # a-only.test: no MX, an A record (the implicit MX).
    "host-record=a-only.test,127.0.0.1",
    # nullmx.test: MX 0 "." (RFC 7505): preference 0, the root name.
    "dns-rr=nullmx.test,15,000000",
]


class DeliveryModes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq", "smtp-sink")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, MX_RECORDS)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.work.cleanup()

    def setUp(self):
        self.svc = None
        self.peers = []
        self.port = h.free_port()

    def tearDown(self):
        if self.svc:
            self.svc.stop()
        for p in self.peers:
            p.stop()

    def serve(self, smarthost, delivery="", mode=None):
        text = q.config(self.port, self.dns, smarthost, extra_delivery=delivery,
                        queue="retry_first = 1\nretry_max = 2\n")
        if mode:
            text = text.replace('mode = "smarthost"', f'mode = "{mode}"')
        self.svc = q.Server(self.work, text, name=self.id().rsplit(".", 1)[-1])
        return self.svc.start()

    def send(self, n, sender=None):
        code, text = q.send_one(self.port, n, sender=sender)
        self.assertEqual(code, 250, text)
        self.assertNotIn("no reply mail", text)
        return q.QUEUED.search(text).group(1)

    def wait_log(self, pattern, timeout=20):
        return h.wait_for(lambda: re.search(pattern, self.svc.read_log()), timeout, pattern)

    # --- smarthost ------------------------------------------------------------------------

    def test_required_tls_refuses_a_smarthost_without_starttls(self):
        sink = h.SmtpSink(self.work)
        self.peers.append(sink)
        self.serve(sink.endpoint(), 'smarthost_tls = "required"\n')
        qid = self.send(1)
        self.wait_log(rf"deferred queue_id={re.escape(qid)} .*attempts=2")
        self.assertEqual(q.delivered_ids(sink)[qid], 0)

    @staticmethod
    def trust(peer):
        """Credentials go only to a verified smarthost: trust the peer's self-signed
        certificate, and name the name it carries."""
        return f'smarthost_tls_ca_file = "{peer.cert}"\nsmarthost_tls_name = "smarthost.test"\n'

    def smarthost_with_auth(self, delivery, mechanisms="PLAIN LOGIN"):
        peer = q.TlsAuthSmarthost(self.work, "ipconfirm", "s3cret:with colon", mechanisms)
        self.peers.append(peer)
        self.serve(peer.endpoint(), delivery + self.trust(peer))
        qid = self.send(2)
        got = h.wait_for(lambda: [m for i, m in peer.queue_ids() if i == qid], 20,
                         "the reply at the TLS smarthost")
        self.assertTrue(got[0]["tls"])
        self.assertEqual(got[0]["auth"], ("ipconfirm", "s3cret:with colon"))
        self.wait_log(rf"delivered queue_id={re.escape(qid)} ")

    def test_required_tls_and_auth_from_a_file(self):
        path = os.path.join(self.work.path, "smarthost.auth")
        with open(path, "w") as f:
            f.write("ipconfirm:s3cret:with colon\n")
        os.chmod(path, 0o600)
        self.smarthost_with_auth(f'smarthost_tls = "required"\nsmarthost_auth_file = "{path}"\n')

    def test_auth_login_from_the_config(self):
        self.smarthost_with_auth('smarthost_user = "ipconfirm"\n'
                                 'smarthost_password = "s3cret:with colon"\n', mechanisms="LOGIN")

    def test_wrong_password_is_retried_not_dropped(self):
        peer = q.TlsAuthSmarthost(self.work, "ipconfirm", "right")
        self.peers.append(peer)
        self.serve(peer.endpoint(), 'smarthost_user = "ipconfirm"\nsmarthost_password = "wrong"\n' +
                   self.trust(peer))
        qid = self.send(3)
        # 535 means our credentials are wrong: the reply waits for the fix (as Postfix's
        # smtp_sasl_auth_soft_bounce), it is not dropped.
        self.wait_log(rf"deferred queue_id={re.escape(qid)} .*attempts=2.*535")
        self.assertNotIn("bounced", self.svc.read_log())
        self.assertEqual(peer.queue_ids(), [])

    def test_unreadable_auth_file_stops_the_start(self):
        text = q.config(self.port, self.dns, "127.0.0.1:1",
                        extra_delivery='smarthost_auth_file = "./no-such-file"\n')
        self.svc = q.Server(self.work, text, name="noauthfile")
        self.svc.start(expect_ok=False)
        self.assertNotEqual(self.svc.proc.wait(15), 0)
        self.assertIn("smarthost_auth_file", self.svc.read_log())

    # --- MX -------------------------------------------------------------------------------

    def mx_serve(self, allow_private=True):
        sink = h.SmtpSink(self.work)
        self.peers.append(sink)
        self.serve(sink.endpoint(), f"allow_private = {str(allow_private).lower()}\n"
                   f"mx_port = {sink.port}\n", mode="mx")
        return sink

    def test_mx_in_preference_order(self):
        sink = self.mx_serve()
        qid = self.send(10, sender="alice@mx.test")
        h.wait_for(lambda: q.delivered_ids(sink)[qid], 30, "the reply via the second MX")
        with open(self.dns.log.name) as f:
            queries = f.read().lower()  # names go out in random letter case (0x20)
        # The preferred MX was looked up (and found not answering) first.
        self.assertLess(queries.index("dead.mx.test"), queries.index("mail.mx.test from"))
        env = [e for e, m in sink.messages() if m.get("X-Ipconfirm-Queue-Id") == qid][0]
        self.assertEqual(env["rcpt"], ["<alice@mx.test>"])

    def test_mx_falls_back_to_the_a_record(self):
        sink = self.mx_serve()
        qid = self.send(11, sender="bob@a-only.test")
        h.wait_for(lambda: q.delivered_ids(sink)[qid], 30, "the reply via the A record")

    def test_null_mx_is_dropped_at_once(self):
        sink = self.mx_serve()
        qid = self.send(12, sender="carol@nullmx.test")
        self.wait_log(rf"bounced queue_id={re.escape(qid)} .*null MX")
        self.assertNotIn(f"deferred queue_id={qid}", self.svc.read_log())
        self.assertEqual(q.delivered_ids(sink)[qid], 0)

    def test_mx_never_connects_to_loopback_by_default(self):
        sink = self.mx_serve(allow_private=False)
        qid = self.send(13, sender="dave@mx.test")
        self.wait_log(rf"deferred queue_id={re.escape(qid)} .*attempts=2.*non-public")
        self.assertEqual(q.delivered_ids(sink)[qid], 0)
        self.assertEqual(sink.files(), [])


if __name__ == "__main__":
    h.main()
