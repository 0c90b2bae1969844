#!/usr/bin/env python3
"""Does every device-path dependency have an aarch64 wheel for the boards' Pythons? The README table, generated.

    python deploy/arm64/wheel_table.py                 # Markdown table on stdout; exit 1 if a wheel is missing
    python deploy/arm64/wheel_table.py --json out.json # also the raw results

For each requirement of the core and the ``device``, ``pi``, ``jetson`` and ``minutiae`` extras (pyproject.toml,
markers evaluated for Linux aarch64 and each Python) it asks pip for a wheel only, with the real manylinux tags
of each board's C library (``pip download --only-binary=:all: --no-deps --platform manylinux2014_aarch64
--platform manylinux_2_17_aarch64 ... --platform manylinux_2_<glibc>_aarch64 --python-version 3.X``; the
manylinux2014 tag alone finds nothing for wheels tagged only manylinux_2_28, e.g. ai-edge-litert). It then opens
the wheel and reads the newest ``GLIBC_2.N`` symbol version its native libraries need, because a wheel can be
tagged for an older glibc than it really needs (nbis-python: tagged 2_28, needs 2.38) and then installs fine but
fails on import. One pip call per package and Python: a few index look-ups for the project's own dependencies.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXTRAS = ("device", "pi", "jetson", "minutiae")
# Extras the device runs without (it decides on the embedding alone): their gaps are listed but do not fail the table.
OPTIONAL = frozenset({"minutiae"})
# (Python, board OS, its glibc): the Python each supported board OS ships
BOARDS = (("3.10", "Ubuntu 22.04 / JetPack 6", 35), ("3.11", "Debian 12 / Pi OS Bookworm", 36),
          ("3.13", "Debian 13 / Pi OS Trixie", 41))


class TableError(Exception):
    """A one-line problem (unreadable pyproject, pip missing)."""


@dataclass(frozen=True)
class Lookup:
    """What pip found for one requirement and Python: a wheel (name, version, tag, glibc needed) or nothing."""

    found: bool
    version: str = ""
    tag: str = ""
    glibc_needed: int | None = None  # N of the newest GLIBC_2.N its native libraries reference; None: pure Python
    error: str = ""


@dataclass(frozen=True)
class Row:
    requirement: str
    extras: tuple[str, ...]
    cells: dict[str, Lookup | None]  # python version -> result; None: the marker excludes it there


def platform_tags(glibc_minor: int) -> list[str]:
    """Every manylinux tag a board with glibc 2.<glibc_minor> accepts, newest first (as pip would on the board)."""
    return [f"manylinux_2_{n}_aarch64" for n in range(glibc_minor, 16, -1)] + ["manylinux2014_aarch64"]


def requirements(pyproject: Path, extras: tuple[str, ...] = EXTRAS) -> list[tuple[str, tuple[str, ...]]]:
    """(requirement string, the extras naming it) for the core and the given extras, in order, deduplicated."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TableError(f"cannot read {pyproject}: {exc}") from None
    project = data.get("project", {})
    out: dict[str, list[str]] = {}
    for req in project.get("dependencies", []):
        out.setdefault(req, []).append("core")
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise TableError(f"pyproject.toml has no extra {extra!r}")
        for req in optional[extra]:
            out.setdefault(req, []).append(extra)
    merged: dict[str, tuple[str, list[str]]] = {}
    for req, names in out.items():  # the same package named twice with the same spec: one row
        merged.setdefault(req, (req, []))[1].extend(n for n in names if n not in merged[req][1])
    return [(req, tuple(names)) for req, names in merged.values()]


def applies(requirement: str, python: str) -> bool:
    """Whether the requirement's marker holds on Linux aarch64 with this Python."""
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    if req.marker is None:
        return True
    env = {"python_version": python, "python_full_version": f"{python}.0", "platform_machine": "aarch64",
           "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    return req.marker.evaluate(env)


GLIBC_RE = re.compile(rb"GLIBC_2\.(\d+)")


def glibc_needed(wheel: Path) -> int | None:
    """The newest GLIBC_2.N symbol version any shared library in the wheel references (None: no native code)."""
    newest = None
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if not (name.endswith(".so") or ".so." in name.rsplit("/", 1)[-1]):
                continue
            for m in GLIBC_RE.finditer(zf.read(info)):
                n = int(m.group(1))
                newest = n if newest is None or n > newest else newest
    return newest


def wheel_tag(filename: str) -> str:
    """The platform part of a wheel file name, shortened to its oldest manylinux tag ('any' for pure Python)."""
    platform = filename[:-4].split("-")[-1]
    tags = platform.split(".")
    many = [t for t in tags if t.startswith("manylinux")]
    return many[0].replace("_aarch64", "") if many else platform


def pip_lookup(requirement: str, python: str, glibc_minor: int, pip: list[str] | None = None) -> Lookup:
    """Ask pip for an aarch64 wheel of one requirement (marker stripped) for one Python."""
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    spec = f"{req.name}{req.specifier}"
    cmd = list(pip or [sys.executable, "-m", "pip"])
    with tempfile.TemporaryDirectory() as tmp:
        args = cmd + ["download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version", python,
                      "--implementation", "cp", "-d", tmp, "--no-cache-dir"]
        for tag in platform_tags(glibc_minor):
            args += ["--platform", tag]
        proc = subprocess.run(args + [spec], capture_output=True, text=True, timeout=600)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no wheel"])[-1]
            return Lookup(False, error=last[:160])
        w = wheels[0]
        return Lookup(True, w.name.split("-")[1], wheel_tag(w.name), glibc_needed(w))


def build_rows(reqs: list[tuple[str, tuple[str, ...]]],
               lookup: Callable[[str, str, int], Lookup]) -> list[Row]:
    rows = []
    for req, extras in reqs:
        cells: dict[str, Lookup | None] = {}
        for python, _os, glibc in BOARDS:
            cells[python] = lookup(req, python, glibc) if applies(req, python) else None
        rows.append(Row(req, extras, cells))
    return rows


def cell_text(result: Lookup | None, glibc_minor: int) -> str:
    if result is None:
        return "not needed (marker)"
    if not result.found:
        return "**NO wheel**"
    text = f"{result.version} ({result.tag})"
    if result.glibc_needed is not None and result.glibc_needed > glibc_minor:
        return f"**{text}: needs glibc 2.{result.glibc_needed}, board has 2.{glibc_minor}**"
    return text


def problems(rows: list[Row]) -> list[str]:
    """Requirement / Python pairs without a usable wheel (missing, or needing a newer glibc than the board's)."""
    out = []
    for row in rows:
        for python, _os, glibc in BOARDS:
            r = row.cells.get(python)
            if r is None:
                continue
            if not r.found:
                out.append(f"{row.requirement} on Python {python}: no aarch64 wheel")
            elif r.glibc_needed is not None and r.glibc_needed > glibc:
                out.append(f"{row.requirement} on Python {python}: wheel needs glibc 2.{r.glibc_needed} > 2.{glibc}")
    return out


def render(rows: list[Row]) -> str:
    """The Markdown table (one row per requirement, one column per board Python)."""
    head = "| requirement | extra | " + " | ".join(f"Python {p} ({os_}, glibc 2.{g})" for p, os_, g in BOARDS) + " |"
    lines = [head, "|" + "---|" * (2 + len(BOARDS))]
    for row in rows:
        req = row.requirement.replace("|", "\\|")
        cells = [cell_text(row.cells.get(p), g) for p, _os, g in BOARDS]
        lines.append(f"| `{req}` | {', '.join(row.extras)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pyproject", type=Path, default=REPO / "pyproject.toml")
    p.add_argument("--extras", default=",".join(EXTRAS), help="comma-separated extras (default %(default)s)")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    args = p.parse_args(argv)
    try:
        reqs = requirements(args.pyproject, tuple(e for e in args.extras.split(",") if e))
        rows = build_rows(reqs, pip_lookup)
    except TableError as exc:
        print(f"wheel_table: {exc}", file=sys.stderr)
        return 2
    print(render(rows))
    bad = problems(rows)
    optional = {r.requirement for r in rows if set(r.extras) <= OPTIONAL}
    hard = [line for line in bad if not any(line.startswith(f"{req} on") for req in optional)]
    for line in bad:
        print(f"- {line}{'' if line in hard else ' (optional extra: the device runs without it)'}")
    if args.json:
        args.json.write_text(json.dumps([{"requirement": r.requirement, "extras": r.extras,
                                          "cells": {k: asdict(v) if v else None for k, v in r.cells.items()}}
                                         for r in rows], indent=1))
    return 1 if hard else 0


if __name__ == "__main__":
    sys.exit(main())
