"""A scripted DNS server on loopback, for the hostile answers dnsmasq will not give.

It answers UDP and TCP on one port of 127.0.0.1 from a Python function, so a test can return
3,600 PTR names in one 64 KB answer, a huge A record set for every name under a zone, or
nothing at all. Answers over 512 bytes go over UDP truncated (TC), as a real server does, and
in full over TCP. Every query is recorded with the name exactly as it was sent (its letter case),
its type, the client's source port and the transport.

    def answer(name, qtype):          # name: str as sent, qtype: int
        return [ptr("h1.evil.test")]  # records, [] for NODATA, None for NXDOMAIN, SILENT,
                                      # SERVFAIL
    server = ScriptedDns(answer)
    ... "servers = [server.server()]" ...
    server.stop()
"""

import socket
import struct
import threading

A, NS, CNAME, PTR, MX, TXT, AAAA = 1, 2, 5, 12, 15, 16, 28
SILENT = object()  # answer nothing at all
SERVFAIL = object()  # answer SERVFAIL (RCODE 2), no records


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


class Rr:
    """One answer record owned by the question name. `rdata` may hold the marker b"\\xc0\\x0c"
    (a pointer to the question name, for compression)."""

    def __init__(self, rtype, rdata, ttl=300):
        self.rtype, self.rdata, self.ttl = rtype, rdata, ttl

    def wire(self):
        return (b"\xc0\x0c" + struct.pack(">HHIH", self.rtype, 1, self.ttl, len(self.rdata)) +
                self.rdata)


def a(address, ttl=300):
    return Rr(A, socket.inet_pton(socket.AF_INET, address), ttl)


def aaaa(address, ttl=300):
    return Rr(AAAA, socket.inet_pton(socket.AF_INET6, address), ttl)


def ptr(name, ttl=300):
    return Rr(PTR, encode_name(name), ttl)


def mx(preference, host, ttl=300):
    return Rr(MX, struct.pack(">H", preference) + encode_name(host), ttl)


class Query:
    def __init__(self, name, qtype, port, transport):
        self.name, self.qtype, self.port, self.transport = name, qtype, port, transport

    def __repr__(self):
        return f"Query({self.name!r}, {self.qtype}, port={self.port}, {self.transport})"


class ScriptedDns:
    def __init__(self, answer, host="127.0.0.1"):
        self.answer = answer
        self.queries = []
        self.bodies = {}
        self.lock = threading.Lock()
        self.stopping = False
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # One port for both transports, below the ephemeral range.
        import random
        for _ in range(200):
            port = random.randrange(20000, 32000)
            try:
                self.udp.bind((host, port))
                self.tcp.bind((host, port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
                self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        else:
            raise RuntimeError("no free port for the scripted DNS server")
        self.host, self.port = host, port
        self.tcp.listen(64)
        self.udp.settimeout(0.2)
        self.tcp.settimeout(0.2)
        self.threads = [threading.Thread(target=self.serve_udp, daemon=True),
                        threading.Thread(target=self.serve_tcp, daemon=True)]
        for t in self.threads:
            t.start()

    def server(self):
        return f"{self.host}:{self.port}"

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(2)
        self.udp.close()
        self.tcp.close()

    def recorded(self):
        with self.lock:
            return list(self.queries)

    # --- the protocol ------------------------------------------------------------------------

    def respond(self, query, port, transport):
        if len(query) < 12:
            return None
        qid, flags, qdcount = struct.unpack(">HHH", query[:6])
        if qdcount != 1 or flags & 0x8000:
            return None
        i, labels = 12, []
        while i < len(query) and query[i] != 0:
            n = query[i]
            labels.append(query[i + 1:i + 1 + n].decode("latin-1"))
            i += 1 + n
        question_end = i + 5
        if question_end > len(query):
            return None
        qtype = struct.unpack(">H", query[i + 1:i + 3])[0]
        name = ".".join(labels)
        with self.lock:
            self.queries.append(Query(name, qtype, port, transport))
        records = self.answer(name, qtype)
        if records is SILENT:
            return None
        if records is SERVFAIL:
            return struct.pack(">HHHHHH", qid, 0x8002 | (flags & 0x0100), 1, 0, 0, 0) + \
                query[12:question_end]
        rcode = 3 if records is None else 0
        records = records or []
        # A test returns the same big list for many names: encode it once.
        cached = self.bodies.get(id(records))
        if cached is None or cached[0] is not records:
            cached = (records, b"".join(r.wire() for r in records))
            self.bodies[id(records)] = cached
        body = cached[1]
        header = struct.pack(">HHHHHH", qid, 0x8400 | (flags & 0x0100) | rcode, 1, len(records),
                             0, 0)
        message = header + query[12:question_end] + body
        if transport == "udp" and len(message) > 512:
            header = struct.pack(">HHHHHH", qid, 0x8600 | (flags & 0x0100) | rcode, 1, 0, 0, 0)
            message = header + query[12:question_end]
        return message

    def serve_udp(self):
        while not self.stopping:
            try:
                data, peer = self.udp.recvfrom(4096)
            except OSError:
                continue
            reply = self.respond(data, peer[1], "udp")
            if reply is not None:
                self.udp.sendto(reply, peer)

    def serve_tcp(self):
        while not self.stopping:
            try:
                conn, peer = self.tcp.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve_tcp_client, args=(conn, peer), daemon=True).start()

    def serve_tcp_client(self, conn, peer):
        conn.settimeout(5)
        try:
            while not self.stopping:
                head = conn.recv(2, socket.MSG_WAITALL)
                if len(head) < 2:
                    break
                (length,) = struct.unpack(">H", head)
                data = conn.recv(length, socket.MSG_WAITALL)
                reply = self.respond(data, peer[1], "tcp")
                if reply is not None:
                    conn.sendall(struct.pack(">H", len(reply)) + reply)
        except OSError:
            pass
        finally:
            conn.close()
