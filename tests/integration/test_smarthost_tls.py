"""The smarthost's certificate is verified before any credential is sent.

A scripted relay on 127.0.0.1 (queue_helpers.TlsAuthSmarthost: STARTTLS, then AUTH PLAIN and
LOGIN inside TLS, mail only after AUTH) plays the smarthost, or the man in the middle:

- with a self-signed certificate it never sees an AUTH command, whether smarthost_tls is
  "required" or "opportunistic"; the reply is deferred and the log says why (tls=unverified);
- with a certificate from a test CA for the right name (smarthost = "relay.test:PORT", the
  name resolved through dnsmasq, smarthost_tls_ca_file = the CA) it gets AUTH and the reply,
  and the log says tls=verified tls_name=relay.test tls_ca=file; the same with the IP form and
  smarthost_tls_name;
- with a certificate from that CA for another name: no AUTH;
- with smarthost_tls_fingerprint matching its certificate (or its public key), a self-signed
  relay gets AUTH (tls_ca=pin); with a wrong fingerprint it does not;
- without credentials, opportunistic TLS still talks to an unverified relay (this one then
  wants AUTH: 530), and the log says what the session was.
"""

import hashlib
import os
import re
import ssl
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
import queue_helpers as q  # noqa: E402

USER, PASSWORD = "ipconfirm", "s3cret"


def openssl(*args):
    (exe,) = h.require("openssl")
    return subprocess.run([exe, *args], check=True, capture_output=True).stdout


class Pki:
    """A test CA, and certificates it signs for a name."""

    def __init__(self, work):
        self.dir = work.sub("pki")
        self.ca_key = os.path.join(self.dir, "ca.key")
        self.ca = os.path.join(self.dir, "ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-days", "1", "-subj", "/CN=ipconfirm test CA", "-keyout", self.ca_key,
                "-out", self.ca, "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, name):
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        cert = os.path.join(self.dir, f"{name}.pem")
        ext = os.path.join(self.dir, f"{name}.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n"
                    "extendedKeyUsage=serverAuth\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-subj", f"/CN={name}", "-keyout", key, "-out", csr)
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                "-CAcreateserial", "-days", "1", "-out", cert, "-extfile", ext)
        return cert, key


def cert_sha256(cert):
    with open(cert) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def spki_sha256(cert):
    pub = openssl("x509", "-in", cert, "-noout", "-pubkey")
    (exe,) = h.require("openssl")
    der = subprocess.run([exe, "pkey", "-pubin", "-outform", "DER"], input=pub, check=True,
                         capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


class SmarthostTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require("dnsmasq", "openssl")
        cls.work = h.Workdir()
        cls.dns = h.Dnsmasq(cls.work, q.RECORDS + ["host-record=relay.test,127.0.0.1"])
        cls.pki = Pki(cls.work)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.work.cleanup()

    def relay(self, cert=None, key=None):
        peer = q.TlsAuthSmarthost(self.work, USER, PASSWORD, cert=cert, key=key)
        self.addCleanup(peer.stop)
        return peer

    def serve(self, smarthost, delivery, credentials=True):
        port = h.free_port()
        if credentials:
            delivery += f'smarthost_user = "{USER}"\nsmarthost_password = "{PASSWORD}"\n'
        text = q.config(port, self.dns, smarthost, extra_delivery=delivery,
                        queue="retry_first = 600\n")
        svc = q.Server(self.work, text, name=self.id().rsplit(".", 1)[-1]).start()
        self.addCleanup(svc.stop)
        code, reply = q.send_one(port, 1)
        self.assertEqual(code, 250, reply)
        qid = q.QUEUED.search(reply).group(1)
        line = h.wait_for(lambda: re.search(rf"(delivered|deferred|bounced) queue_id={re.escape(qid)} .*",
                                            svc.read_log()), 30, "the attempt").group(0)
        return qid, line

    def assert_refused(self, peer, line):
        self.assertTrue(line.startswith("deferred"), line)
        self.assertIn("tls=unverified", line)
        self.assertEqual(peer.auth_attempts, [])
        self.assertEqual(peer.queue_ids(), [])

    def assert_delivered(self, peer, qid, line):
        self.assertTrue(line.startswith("delivered"), line)
        got = [m for i, m in peer.queue_ids() if i == qid]
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0]["tls"])
        self.assertEqual(got[0]["auth"], (USER, PASSWORD))

    # --- the attack of the issue: a man in the middle with a self-signed certificate ----------

    def test_self_signed_relay_gets_no_credentials_with_tls_required(self):
        peer = self.relay()
        _, line = self.serve(peer.endpoint(), 'smarthost_tls = "required"\n')
        self.assert_refused(peer, line)
        self.assertIn("tls_reason=", line)

    def test_self_signed_relay_gets_no_credentials_with_opportunistic_tls(self):
        peer = self.relay()
        _, line = self.serve(peer.endpoint(), 'smarthost_tls = "opportunistic"\n')
        self.assert_refused(peer, line)
        self.assertIn("not sending credentials", line)

    # --- a CA and a name ----------------------------------------------------------------------

    def test_ca_signed_certificate_for_the_name_gets_auth(self):
        peer = self.relay(*self.pki.issue("relay.test"))
        qid, line = self.serve(f"relay.test:{peer.port}",
                               f'smarthost_tls = "required"\n'
                               f'smarthost_tls_ca_file = "{self.pki.ca}"\n')
        self.assert_delivered(peer, qid, line)
        self.assertIn("tls=verified tls_name=relay.test tls_ca=file", line)

    def test_ip_form_with_smarthost_tls_name(self):
        peer = self.relay(*self.pki.issue("relay.test"))
        qid, line = self.serve(peer.endpoint(), f'smarthost_tls_name = "relay.test"\n'
                                                f'smarthost_tls_ca_file = "{self.pki.ca}"\n')
        self.assert_delivered(peer, qid, line)
        self.assertIn("tls=verified tls_name=relay.test tls_ca=file", line)

    def test_certificate_for_another_name_gets_no_credentials(self):
        peer = self.relay(*self.pki.issue("other.test"))
        _, line = self.serve(f"relay.test:{peer.port}",
                             f'smarthost_tls_ca_file = "{self.pki.ca}"\n')
        self.assert_refused(peer, line)
        self.assertIn("hostname mismatch", line)

    def test_the_system_store_does_not_know_the_test_ca(self):
        peer = self.relay(*self.pki.issue("relay.test"))
        _, line = self.serve(f"relay.test:{peer.port}", 'smarthost_tls = "required"\n')
        self.assert_refused(peer, line)

    # --- a pinned certificate -----------------------------------------------------------------

    def test_pinned_certificate_gets_auth(self):
        peer = self.relay()
        qid, line = self.serve(peer.endpoint(), f'smarthost_tls = "required"\n'
                                                f'smarthost_tls_fingerprint = '
                                                f'"{cert_sha256(peer.cert)}"\n')
        self.assert_delivered(peer, qid, line)
        self.assertIn("tls=verified", line)
        self.assertIn("tls_ca=pin", line)

    def test_pinned_public_key_gets_auth(self):
        peer = self.relay()
        qid, line = self.serve(peer.endpoint(),
                               f'smarthost_tls_fingerprint = "{spki_sha256(peer.cert)}"\n')
        self.assert_delivered(peer, qid, line)
        self.assertIn("tls_ca=pin", line)

    def test_wrong_pin_gets_no_credentials(self):
        peer = self.relay()
        _, line = self.serve(peer.endpoint(), 'smarthost_tls_fingerprint = "' + "ab" * 32 + '"\n')
        self.assert_refused(peer, line)
        self.assertIn("pinned SHA-256", line)

    # --- no credentials: opportunistic TLS goes on, and says what it was ----------------------

    def test_opportunistic_without_credentials_delivers_and_says_unverified(self):
        peer = q.TlsAuthSmarthost(self.work, USER, PASSWORD)
        self.addCleanup(peer.stop)
        # This relay takes mail only after AUTH; without credentials we get its 530, which
        # is permanent: the point is what the log says about the session.
        _, line = self.serve(peer.endpoint(), "", credentials=False)
        self.assertTrue(line.startswith("bounced"), line)
        self.assertIn("530", line)
        self.assertIn("tls=unverified", line)
        self.assertEqual(peer.auth_attempts, [])


if __name__ == "__main__":
    h.main()
