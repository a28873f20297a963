#!/usr/bin/python3
"""Builds the Received corpus (tests/data/corpus/) from mail test fixtures shipped in Debian 12
packages: bounce parsers, spam filters and mail indexers.

    tests/corpus/collect.py --fetch WORKDIR      # download and unpack the packages below
    tests/corpus/collect.py --build WORKDIR      # write tests/data/corpus/messages + manifest

Each message keeps its header as it was (bytes, folding and order unchanged, an mbox "From "
line dropped); its body is cut. A bounce's embedded original (message/rfc822 or
text/rfc822-headers part) is a message of its own when it carries Received headers. Messages
without a Received header are left out, and so is every message whose Received chain (the
values with white space collapsed) equals one already kept. manifest.json records for each
file its source package, version, path inside the package, the part it came from, the
SHA-256 of the source file and the licence.
"""

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "corpus")

# (id, Debian package, version, kind, top folder once unpacked, globs, licence, upstream)
SOURCES = [
    ("flufl-bounce", "python3-flufl.bounce", "4.0-3", "deb", "flufl",
     ["usr/lib/python3/dist-packages/flufl/bounce/tests/data/*"], "LGPL-3",
     "https://gitlab.com/warsaw/flufl.bounce"),
    ("bounceparser", "libmail-deliverystatus-bounceparser-perl", "1.543+repacked-1", "source",
     "Mail-DeliveryStatus-BounceParser-1.543", ["t/corpus/*"], "Artistic or GPL-1+",
     "https://metacpan.org/release/Mail-DeliveryStatus-BounceParser"),
    ("notmuch", "notmuch", "0.37-1", "source", "notmuch-0.37", ["test/corpora/**/*"],
     "GPL-3+", "https://notmuchmail.org/"),
    ("bogofilter", "bogofilter", "1.2.5-1", "source", "bogofilter-1.2.5",
     ["src/tests/inputs/*"], "GPL-2+", "https://bogofilter.sourceforge.io/"),
    ("rspamd", "rspamd", "3.4-1", "source", "rspamd-3.4",
     ["test/functional/messages/*"], "Apache-2.0", "https://github.com/rspamd/rspamd"),
    ("mairix", "mairix", "0.24-2", "source", "mairix-0.24", ["test/messages/**/*"], "GPL-2",
     "https://github.com/vandry/mairix"),
]

HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
RECEIVED = re.compile(rb"^Received:", re.I)


def fetch(work):
    """Downloads each package with apt (source packages through a private deb-src list, so the
    machine's own apt configuration is left alone) and unpacks it under WORK/unpacked."""
    os.makedirs(os.path.join(work, "lists", "partial"), exist_ok=True)
    parts = os.path.join(work, "sourceparts")
    os.makedirs(parts, exist_ok=True)
    with open("/etc/apt/sources.list.d/debian.sources") as f:
        text = f.read().replace("Types: deb\n", "Types: deb-src\n")
    with open(os.path.join(parts, "debian-src.sources"), "w") as f:
        f.write(text)
    apt = ["-o", "Dir::Etc::SourceList=/dev/null", "-o", f"Dir::Etc::SourceParts={parts}",
           "-o", f"Dir::State::Lists={os.path.join(work, 'lists')}"]
    subprocess.run(["apt-get", *apt, "update", "-qq"], check=True)
    dl = os.path.join(work, "downloads")
    unpacked = os.path.join(work, "unpacked")
    os.makedirs(dl, exist_ok=True)
    os.makedirs(unpacked, exist_ok=True)
    for sid, pkg, version, kind, top, _, _, _ in SOURCES:
        if kind == "deb":
            subprocess.run(["apt-get", "download", "-qq", f"{pkg}={version}"], cwd=dl, check=True)
            deb = glob.glob(os.path.join(dl, f"{pkg}_*.deb"))[0]
            subprocess.run(["dpkg-deb", "-x", deb, os.path.join(unpacked, top)], check=True)
        else:
            # Only the upstream tarball is needed; the Debian part may be missing from a mirror.
            subprocess.run(["apt-get", *apt, "source", "--download-only", "-qq",
                            f"{pkg}={version}"], cwd=dl)
            orig = glob.glob(os.path.join(dl, f"{pkg}_*.orig.tar.*"))
            if not orig:
                sys.exit(f"{pkg}: no upstream tarball downloaded")
            with tarfile.open(orig[0]) as t:
                t.extractall(unpacked)


def split_mbox(raw):
    """An mbox's messages; a file that is not an mbox is one message."""
    if not raw.startswith(b"From "):
        return [raw]
    return [m for m in re.split(rb"(?m)^From [^\n]*\n", raw) if m.strip()]


def header_of(raw):
    """The header block of a message (up to the first empty line), LF line ends."""
    raw = raw.replace(b"\r\n", b"\n")
    end = raw.find(b"\n\n")
    return raw if end < 0 else raw[:end + 1]


def embedded_headers(raw):
    """Header blocks inside the body that carry Received headers (a bounce's original)."""
    raw = raw.replace(b"\r\n", b"\n")
    end = raw.find(b"\n\n")
    if end < 0:
        return []
    lines = raw[end + 2:].split(b"\n")
    blocks, i = [], 0
    while i < len(lines):
        if not RECEIVED.match(lines[i]):
            i += 1
            continue
        # Walk back and forth over header and continuation lines around this Received.
        start = i
        while start > 0 and (HEADER_LINE.match(lines[start - 1]) or
                             lines[start - 1][:1] in (b" ", b"\t")) and lines[start - 1].strip():
            start -= 1
        while start < i and lines[start][:1] in (b" ", b"\t"):
            start += 1
        stop = i + 1
        while stop < len(lines) and lines[stop].strip() and (
                HEADER_LINE.match(lines[stop]) or lines[stop][:1] in (b" ", b"\t")):
            stop += 1
        blocks.append(b"\n".join(lines[start:stop]) + b"\n")
        i = stop
    return blocks


def received_values(header):
    values, cur = [], None
    for line in header.split(b"\n"):
        if line[:1] in (b" ", b"\t") and cur is not None:
            cur += b" " + line.strip()
            continue
        if cur is not None:
            values.append(cur)
            cur = None
        if RECEIVED.match(line):
            cur = line.split(b":", 1)[1].strip()
    if cur is not None:
        values.append(cur)
    return [b" ".join(v.split()) for v in values]


def build(work):
    unpacked = os.path.join(work, "unpacked")
    msgdir = os.path.join(OUT, "messages")
    shutil.rmtree(msgdir, ignore_errors=True)
    os.makedirs(msgdir)
    seen, manifest, per_source = set(), [], {}
    for sid, pkg, version, kind, top, globs, licence, upstream in SOURCES:
        root = os.path.join(unpacked, top)
        paths = sorted({p for g in globs for p in glob.glob(os.path.join(root, g), recursive=True)
                        if os.path.isfile(p)})
        if not paths:
            sys.exit(f"{sid}: nothing under {root}")
        for path in paths:
            with open(path, "rb") as f:
                raw = f.read()
            digest = hashlib.sha256(raw).hexdigest()
            rel = os.path.relpath(path, root)
            for n, message in enumerate(split_mbox(raw)):
                candidates = [("message" if n == 0 else f"message {n + 1} of the mbox",
                               header_of(message))]
                for k, block in enumerate(embedded_headers(message)):
                    candidates.append((f"embedded header {k + 1}" +
                                       ("" if n == 0 else f" of message {n + 1}"), block))
                for part, header in candidates:
                    values = received_values(header)
                    if not values or tuple(values) in seen:
                        continue
                    seen.add(tuple(values))
                    name = f"{len(manifest) + 1:04d}.eml"
                    with open(os.path.join(msgdir, name), "wb") as f:
                        f.write(header + b"\n[body cut]\n")
                    manifest.append({"file": name, "source": sid, "package": pkg,
                                     "version": version, "path": rel, "part": part,
                                     "sha256": digest, "licence": licence,
                                     "received": len(values)})
                    per_source[sid] = per_source.get(sid, 0) + 1
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({"sources": [{"id": s[0], "package": s[1], "version": s[2], "kind": s[3],
                                "paths": s[5], "licence": s[6], "upstream": s[7],
                                "messages": per_source.get(s[0], 0)} for s in SOURCES],
                   "messages": manifest}, f, indent=1)
        f.write("\n")
    for s in SOURCES:
        print(f"{s[0]}: {per_source.get(s[0], 0)} messages")
    print(f"total: {len(manifest)} messages, "
          f"{sum(m['received'] for m in manifest)} Received headers")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fetch", action="store_true", help="download and unpack the packages")
    ap.add_argument("--build", action="store_true", help="write the corpus from WORKDIR")
    ap.add_argument("workdir")
    a = ap.parse_args()
    if a.fetch:
        fetch(a.workdir)
    if a.build:
        build(a.workdir)


if __name__ == "__main__":
    main()
