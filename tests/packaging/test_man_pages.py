"""The man pages: built from their scdoc sources, they render without a warning, and
ipconfirm.toml(5) names every key of the commented example config, under its own section.

Environment: IPCONFIRM_BUILD (the build folder, with man/man8 and man/man5), IPCONFIRM_SOURCE.
Skipped (77) when the build has no man pages (scdoc missing) or man is not installed.
"""

import os
import re
import shutil
import subprocess
import sys

SKIP = 77


def render(path):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    p = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                       env=env, timeout=60)
    return p.returncode, p.stdout, p.stderr


def example_keys(path):
    """{section: [keys]} of the example config, commented-out keys included ("" = top level)."""
    keys, section = {"": []}, ""
    for line in open(path, encoding="utf-8"):
        m = re.match(r"^\[([a-z_]+)\]\s*$", line)
        if m:
            section = m.group(1)
            keys.setdefault(section, [])
            continue
        m = re.match(r"^(?:# )?([a-z_]+) = ", line)
        if m and m.group(1) not in keys[section]:
            keys[section].append(m.group(1))
    return keys


def main():
    build, source = os.environ["IPCONFIRM_BUILD"], os.environ["IPCONFIRM_SOURCE"]
    pages = [os.path.join(build, "man", "man8", "ipconfirm.8"),
             os.path.join(build, "man", "man5", "ipconfirm.toml.5")]
    if not all(os.path.exists(p) for p in pages):
        print("SKIP: the man pages were not built (scdoc is not installed)")
        return SKIP
    if not shutil.which("man"):
        print("SKIP: man is not installed")
        return SKIP
    failures = []
    texts = {}
    for page in pages:
        code, out, err = render(page)
        if code != 0 or err.strip():
            failures.append(f"{page}: exit {code}, warnings:\n{err}")
        if len(out) < 2000:
            failures.append(f"{page}: rendered only {len(out)} characters")
        texts[os.path.basename(page)] = out

    # Every key of the example, in the section of its table: "[smtp]" starts a section of
    # ipconfirm.toml(5) at the left margin, the top-level keys are under "TOP LEVEL".
    toml5 = texts["ipconfirm.toml.5"]
    headings = [(m.start(), m.group(1)) for m in re.finditer(r"^(\S.*)$", toml5, re.M)]
    def section_text(title):
        for i, (start, name) in enumerate(headings):
            if name.strip() == title:
                end = headings[i + 1][0] if i + 1 < len(headings) else len(toml5)
                return toml5[start:end]
        return None
    keys = example_keys(os.path.join(source, "config", "ipconfirm.toml"))
    checked = 0
    for section, names in keys.items():
        title = "TOP LEVEL" if section == "" else f"[{section}]"
        text = section_text(title)
        if text is None:
            failures.append(f"ipconfirm.toml(5) has no section {title}")
            continue
        for name in names:
            checked += 1
            if not re.search(rf"(^|\s){re.escape(name)} = ", text, re.M):
                failures.append(f"ipconfirm.toml(5) does not describe {title} {name}")
    if checked < 40:
        failures.append(f"only {checked} keys found in the example config")

    # ipconfirm(8) names every verb and the files and exit codes.
    eight = texts["ipconfirm.8"]
    for word in ("serve", "check", "queue list", "queue flush", "queue delete", "show",
                 "EXIT STATUS", "SIGNALS", "FILES", "PRIVILEGES", "/etc/ipconfirm/ipconfirm.toml"):
        if word not in eight:
            failures.append(f"ipconfirm(8) does not mention {word!r}")

    for f in failures:
        print("FAIL:", f)
    print(f"{len(pages)} pages rendered, {checked} config keys checked")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
