#!/usr/bin/env python3
"""A syntax check of udev rules files, for roots whose udevadm has no ``verify`` (systemd < 254, e.g. bookworm).

Why our own: on Raspberry Pi OS Bookworm and Ubuntu 22.04 a typo in deploy/99-biolock.rules is only noticed as a
log line when udev loads it on the board, and the device then silently lacks its permissions. This checks what
udev's parser checks first: every token is KEY[{attr}] OP "value", the key exists, and the operator suits it.
Standard library only; exits 1 listing every problem (one line each).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MATCH_ONLY = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER", "DRIVERS", "TAGS",
              "TEST", "PROGRAM", "RESULT", "CONST", "SYSCTL"}
ASSIGN_ONLY = {"GOTO", "LABEL", "OPTIONS", "IMPORT", "RUN", "WAIT_FOR", "SYMLINK_PRIORITY"}
EITHER = {"NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ENV", "TAG", "ATTR", "ATTRS", "SYSCTL"}
WITH_ATTR = {"ATTR", "ATTRS", "ENV", "TEST", "SYSCTL", "IMPORT", "RUN", "SECLABEL", "CONST"}
TOKEN = re.compile(r'\s*([A-Z_]+)(?:\{([^}]*)\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,)?')


def lint_line(line: str) -> list[str]:
    """Problems in one rule line (empty: fine)."""
    problems, pos = [], 0
    if not line.strip() or line.lstrip().startswith("#"):
        return problems
    while pos < len(line):
        m = TOKEN.match(line, pos)
        if not m:
            return problems + [f"cannot parse from column {pos + 1}: {line[pos:pos + 30]!r}"]
        key, attr, op, _value, _sep = m.groups()
        known = MATCH_ONLY | ASSIGN_ONLY | EITHER
        if key not in known:
            problems.append(f"unknown key {key}")
        elif attr is not None and key not in WITH_ATTR:
            problems.append(f"{key} takes no {{attribute}}")
        elif attr is None and key in {"ATTR", "ATTRS", "ENV", "SYSCTL", "CONST"}:
            problems.append(f"{key} needs an {{attribute}}")
        elif op in ("==", "!=") and key in ASSIGN_ONLY:
            problems.append(f"{key} is an assignment, not a match ({op})")
        elif op not in ("==", "!=") and key in MATCH_ONLY:
            problems.append(f"{key} is a match, not an assignment ({op})")
        elif key == "MODE" and op not in ("==", "!=") and not re.fullmatch(r"0?[0-7]{3,4}", _value):
            problems.append(f"MODE {_value!r} is not an octal mode")
        pos = m.end()
        if _sep is None and line[pos:].strip():
            return problems + [f"missing comma before column {pos + 1}"]
    return problems


def lint(text: str) -> list[str]:
    """Problems of a whole rules file as 'line N: problem'; continuation lines (trailing backslash) are joined."""
    out, buf, start = [], "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = n
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1]
            continue
        buf += raw
        out += [f"line {start}: {p}" for p in lint_line(buf)]
        buf = ""
    if buf:
        out.append(f"line {start}: the file ends inside a continued line")
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: udev_lint.py RULES_FILE...", file=sys.stderr)
        return 2
    bad = 0
    for name in argv:
        try:
            problems = lint(Path(name).read_text(encoding="utf-8"))
        except OSError as exc:
            print(f"{name}: cannot read ({exc.strerror})", file=sys.stderr)
            return 2
        for p in problems:
            print(f"{name}: {p}")
        bad += len(problems)
        if not problems:
            rules = [x for x in Path(name).read_text().splitlines() if x.strip() and not x.startswith("#")]
            print(f"{name}: {len(rules)} rules, syntax clean")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
