#!/usr/bin/env python3
"""The pure parts of ``make arm64-check`` (deploy/arm64/check.sh): targets, host settings, pip reports, test results.

Why a Python helper beside a shell script: parsing pip's install report, JUnit XML, apt sources and pip
configuration in shell would be fragile, and these parts must be testable without root, qemu or network
(tests/test_arm64_check.py). Standard library only: it runs with the host's ``python3`` before any venv exists.

Subcommands (each prints to stdout; errors are one line on stderr and exit status 2):
  target NAME              shell assignments for a target (suite, python, mirror, keyring, packages)
  pipconf --ca PATH        a pip.conf for the emulated root, carrying the host's pip settings
  env                      the host's proxy / PIP_* variables to pass into the root, one NAME=VALUE a line
  wheels REPORT.json       the distributions a ``pip install --report`` installed, one line each, with wheel tags
  missing PIP_LOG          which requirement had no wheel for the target (exit 1 when one is found)
  junit RESULTS.xml        pass / fail / error / skip counts of a pytest run
  select-tests REPO        the test files that import nothing from the ``train`` extra (the device-side tests)
  summary RUN_DIR          the final report from steps.tsv and the files above; exit 1 on any failure
"""

from __future__ import annotations

import argparse
import ast
import configparser
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


class HelperError(Exception):
    """A one-line, user-facing problem (bad input, unreadable file)."""


@dataclass(frozen=True)
class Target:
    """One emulated board: the distribution the root is built from and the Python it ships."""

    name: str
    suite: str
    python: str
    board: str
    mirror: str
    keyring: str | None  # None: the host's debootstrap default (Debian's keyring)
    host_packages: tuple[str, ...]  # extra host packages debootstrap needs for this suite
    qemu_cpu: str  # the board's core for qemu-user (QEMU_CPU); qemu's default "max" is no board at all


DEBIAN_MIRROR = "http://deb.debian.org/debian"
TARGETS: dict[str, Target] = {
    "bookworm": Target("bookworm", "bookworm", "3.11", "Raspberry Pi OS Bookworm (Debian 12)", DEBIAN_MIRROR, None, (),
                       "cortex-a72"),  # Raspberry Pi 4
    "trixie": Target("trixie", "trixie", "3.13", "Raspberry Pi OS Trixie (Debian 13)", DEBIAN_MIRROR, None, (),
                     "cortex-a76"),  # Raspberry Pi 5
    "jammy": Target("jammy", "jammy", "3.10", "Jetson Linux 36 / JetPack 6 (Ubuntu 22.04)",
                    "http://ports.ubuntu.com/ubuntu-ports", "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
                    ("ubuntu-keyring",), "cortex-a76"),  # Orin's Cortex-A78AE is ARMv8.2 like the A76
}
# Why QEMU_CPU matters (measured here, qemu 7.2): under the default "max" CPU, LiteRT's XNNPACK int8 kernels give
# wrong embeddings (another code path than a real Pi's); with cortex-a72 / cortex-a76 they match x86 bit for bit.
# In the emulated root: Python with venv, CA certificates, systemd (systemd-analyze verify), udev (udevadm), passwd.
ROOT_PACKAGES = ("python3", "python3-venv", "ca-certificates", "systemd", "udev", "passwd")

# Top-level modules that only the `train` extra (or the host's dev tools) provides: a test file whose imports
# reach one of these at module level cannot run on the board.
TRAIN_ONLY = frozenset({"tensorflow", "keras", "sklearn", "scipy", "matplotlib", "tf2onnx", "onnx", "tf_keras"})
# Repository packages: their imports are followed to see what a test pulls in.
REPO_PACKAGES = ("device", "training", "firmware_bridge", "models", "tests")
# The host-only package: training, evaluation, synthetic data. A test that imports it tests the host, not the board.
HOST_ONLY = "training"
# Tests of host tooling (this check itself: it needs git, root and the host's Python), never run on the board.
HOST_TESTS = {"tests/test_arm64_check.py": "the emulated check's own tests (host tooling)"}
# Device-side tests that need a train-extra package at run time only (a lazy import the import scan cannot see):
# deselected on the board and listed in the report, so the gap stays visible.
# (none today: the site calibration test asks for its DET plot only where matplotlib is installed)
RUNTIME_TRAIN_ONLY: dict[str, str] = {}


def debian_mirror_from_host(sources: list[Path]) -> str | None:
    """The host's own Debian archive (apt sources, deb822 or one-line), so a proxy or mirror the host uses is reused."""
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for uri in re.findall(r"^\s*URIs:\s*(\S+)", text, re.M) + re.findall(r"^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)",
                                                                              text, re.M):
            if uri.rstrip("/").endswith("/debian") and uri.startswith(("http://", "https://")):
                return uri.rstrip("/")
    return None


def host_apt_sources() -> list[Path]:
    base = Path("/etc/apt")
    found = [base / "sources.list"] if (base / "sources.list").is_file() else []
    if (base / "sources.list.d").is_dir():
        found += sorted(p for p in (base / "sources.list.d").iterdir() if p.suffix in (".list", ".sources"))
    return found


def target_shell(name: str, sources: list[Path] | None = None) -> str:
    """Shell assignments for check.sh (values quoted)."""
    if name not in TARGETS:
        raise HelperError(f"unknown target {name!r}: choose one of {', '.join(TARGETS)}")
    t = TARGETS[name]
    mirror = t.mirror
    if mirror == DEBIAN_MIRROR:
        mirror = debian_mirror_from_host(host_apt_sources() if sources is None else sources) or mirror
    values = {"SUITE": t.suite, "PYVER": t.python, "BOARD": t.board, "MIRROR": mirror, "KEYRING": t.keyring or "",
              "HOST_EXTRA_PKGS": " ".join(t.host_packages), "ROOT_PKGS": ",".join(ROOT_PACKAGES),
              "QEMU_CPU_DEFAULT": t.qemu_cpu}
    return "".join(f"{k}={_sh_quote(v)}\n" for k, v in values.items())


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


# --- host settings carried into the root -----------------------------------------------------------------------------
PASS_ENV = re.compile(r"^(PIP_[A-Z_]+|http_proxy|https_proxy|no_proxy|HTTP_PROXY|HTTPS_PROXY|NO_PROXY)$")
# pip settings that point at files on the host only (the root cannot see them) or are replaced by the carried CA.
LOCAL_ONLY_KEYS = {"cert", "client-cert", "find-links", "constraint", "requirement", "build", "src", "log", "cache-dir",
                   "target", "prefix", "root", "config-settings"}


def _is_remote_index(value: str) -> bool:
    return all(v.startswith(("http://", "https://")) for v in value.split())


def pip_conf(files: list[Path], ca_path: str) -> str:
    """A pip.conf for the root: the host's index / proxy / timeout settings, its CA bundle, nothing host-local.

    Why: pip inside a bare root fails with CERTIFICATE_VERIFY_FAILED on a host whose traffic goes through its
    own CA, and a ``find-links`` or ``file://`` index of the host does not exist in the root.
    """
    merged: dict[str, dict[str, str]] = {}
    for path in files:
        cp = configparser.RawConfigParser()
        try:
            cp.read(path, encoding="utf-8")
        except (configparser.Error, OSError) as exc:
            raise HelperError(f"cannot read pip configuration {path}: {exc}") from None
        for section in cp.sections():
            for key, value in cp.items(section):
                if key in LOCAL_ONLY_KEYS:
                    continue
                if key in ("index-url", "extra-index-url"):
                    remote = " ".join(v for v in value.split() if v.startswith(("http://", "https://")))
                    if not remote:
                        continue
                    value = remote
                merged.setdefault(section, {})[key] = value
    merged.setdefault("global", {})["cert"] = ca_path
    out = configparser.RawConfigParser()
    for section, items in merged.items():
        out[section] = items
    lines = ["# written by deploy/arm64/check.sh from the host's pip configuration\n"]
    for section in out.sections():
        lines.append(f"[{section}]\n")
        lines += [f"{k} = {v}\n" for k, v in out[section].items()]
    return "".join(lines)


def host_pip_files() -> list[Path]:
    """The host's pip configuration files in pip's own order (global, then user)."""
    xdg = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    cands = [Path(d) / "pip" / "pip.conf" for d in xdg] + [Path("/etc/pip.conf"),
                                                           Path.home() / ".pip" / "pip.conf",
                                                           Path.home() / ".config" / "pip" / "pip.conf"]
    if os.environ.get("PIP_CONFIG_FILE"):
        cands.append(Path(os.environ["PIP_CONFIG_FILE"]))
    return [p for p in cands if p.is_file()]


def pass_env(environ: dict[str, str]) -> list[str]:
    """NAME=VALUE for the host variables that matter inside the root (proxies, remote pip indexes, timeouts)."""
    out = []
    for key in sorted(environ):
        if not PASS_ENV.match(key):
            continue
        name = key[4:].lower().replace("_", "-") if key.startswith("PIP_") else ""
        if name in LOCAL_ONLY_KEYS:
            continue
        value = environ[key]
        if name in ("index-url", "extra-index-url") and not _is_remote_index(value):
            continue
        if "\n" in value:
            continue
        out.append(f"{key}={value}")
    return out


# --- what pip installed ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    wheel: str  # the wheel's file name, or "" when pip built from a source tree
    tag: str  # python-abi-platform of the wheel ("" for a source tree)


def parse_pip_report(data: dict) -> list[Installed]:
    """The distributions of a ``pip install --report`` file (format version 1), sorted by name."""
    if not isinstance(data, dict) or str(data.get("version")) != "1" or not isinstance(data.get("install"), list):
        raise HelperError("not a pip installation report (version 1)")
    out = []
    for item in data["install"]:
        meta = item.get("metadata") or {}
        url = (item.get("download_info") or {}).get("url", "")
        fname = url.rsplit("/", 1)[-1].split("#", 1)[0]
        is_wheel = fname.endswith(".whl")
        tag = "-".join(fname[:-4].split("-")[-3:]) if is_wheel else ""
        out.append(Installed(str(meta.get("name", "?")), str(meta.get("version", "?")), fname if is_wheel else "",
                             tag))
    return sorted(out, key=lambda i: i.name.lower())


MISSING_RE = re.compile(r"No matching distribution found for ([A-Za-z0-9_.\-]+(?:\[[^\]]*\])?[^\s]*)")


def missing_wheel(log: str) -> str | None:
    """The requirement pip found no wheel for (``--only-binary=:all:``), or None."""
    m = MISSING_RE.search(log)
    return m.group(1) if m else None


# --- test selection and results --------------------------------------------------------------------------------------
def _module_imports(path: Path, top_level_only: bool) -> set[str]:
    """Absolute module names a file imports (all of them in a test file, module level only in the libraries)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError) as exc:
        raise HelperError(f"cannot parse {path}: {exc}") from None
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level and node.module and path.parent.name == "tests":
            names.add(f"tests.{node.module}")
    return names


def _repo_file(repo: Path, module: str) -> Path | None:
    parts = module.split(".")
    if len(parts) == 1 and (repo / "tests" / f"{module}.py").is_file():
        return repo / "tests" / f"{module}.py"  # a helper module beside the tests (tests/ is on sys.path)
    if parts[0] not in REPO_PACKAGES:
        return None
    base = repo.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def train_only_needs(repo: Path, test_file: Path) -> set[str]:
    """The host-only packages (``training``, the train extra) a test needs at import time or in its own code.

    Library modules count only their module-level imports (a lazy import inside a function is the library's way
    of keeping TensorFlow off the device path); a test's own imports count wherever they are, except under
    ``pytest.importorskip`` which already skips cleanly.
    """
    needs: set[str] = set()
    seen: set[Path] = set()
    todo: list[tuple[Path, bool]] = [(test_file, False)]
    while todo:
        path, top = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _module_imports(path, top_level_only=top):
            root = name.split(".")[0]
            if root in TRAIN_ONLY or root == HOST_ONLY:
                needs.add(root)
            # the package __init__ files along the way run too
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                f = _repo_file(repo, ".".join(parts[:i]))
                if f is not None:
                    todo.append((f, True))
    return needs


def select_tests(repo: Path) -> tuple[list[str], dict[str, set[str]]]:
    """(device-side test files, {left-out file: the host-only packages it needs}).

    Device-side: the test imports nothing from ``training/`` (the host's package) or the ``train`` extra, at module
    level through the repository's modules or anywhere in its own code.
    """
    keep, left = [], {}
    tests = repo / "tests"
    if not tests.is_dir():
        raise HelperError(f"no tests/ directory in {repo}")
    for f in sorted(tests.glob("test_*.py")):
        if f"tests/{f.name}" in HOST_TESTS:
            left[f"tests/{f.name}"] = {"host"}
            continue
        needs = train_only_needs(repo, f)
        if needs:
            left[f"tests/{f.name}"] = needs
        else:
            keep.append(f"tests/{f.name}")
    return keep, left


@dataclass(frozen=True)
class TestCounts:
    passed: int
    failed: int
    errors: int
    skipped: int
    seconds: float
    failures: tuple[str, ...]

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped


def parse_junit(text: str) -> TestCounts:
    """Counts from pytest's ``--junitxml`` (one or more testsuite elements)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise HelperError(f"unreadable JUnit XML: {exc}") from None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    if not suites:
        raise HelperError("JUnit XML without a testsuite")
    passed = failed = errors = skipped = 0
    secs = 0.0
    failures: list[str] = []
    for suite in suites:
        secs += float(suite.get("time", 0) or 0)
        for case in suite.iter("testcase"):
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            if case.find("failure") is not None:
                failed += 1
                failures.append(name)
            elif case.find("error") is not None:
                errors += 1
                failures.append(name)
            elif case.find("skipped") is not None:
                skipped += 1
            else:
                passed += 1
    return TestCounts(passed, failed, errors, skipped, secs, tuple(failures))


# --- the report ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    seconds: int
    detail: str


def parse_steps(text: str) -> list[Step]:
    steps = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 3 or parts[1] not in ("ok", "FAIL") or not parts[2].isdigit():
            raise HelperError(f"steps file line {n} is malformed: {line!r}")
        steps.append(Step(parts[0], parts[1] == "ok", int(parts[2]), parts[3] if len(parts) > 3 else ""))
    return steps


def summary(run: Path) -> tuple[str, bool]:
    """The report text and whether everything passed. A run with no steps, or without test results, fails."""
    steps_file = run / "steps.tsv"
    steps = parse_steps(steps_file.read_text()) if steps_file.is_file() else []
    lines = []
    meta = run / "meta.txt"
    if meta.is_file():
        lines += [meta.read_text().rstrip()]
    ok = bool(steps) and all(s.ok for s in steps)
    lines.append("steps:")
    for s in steps:
        lines.append(f"  {'ok  ' if s.ok else 'FAIL'} {s.name:<22} {_mmss(s.seconds):>6}  {s.detail}".rstrip())
    report = run / "pip-report.json"
    if report.is_file():
        try:
            wheels = parse_pip_report(json.loads(report.read_text()))
        except (HelperError, json.JSONDecodeError) as exc:
            lines.append(f"wheels: unreadable pip report ({exc})")
            ok = False
        else:
            built = [w for w in wheels if not w.wheel and w.name.lower() != "biolock"]
            lines.append(f"wheels ({len(wheels)} distributions, all binary: {'yes' if not built else 'NO'}):")
            lines += [f"  {w.name} {w.version}  {w.tag or 'source tree'}" for w in wheels]
            ok = ok and not built
    junit = run / "junit.xml"
    if junit.is_file():
        c = parse_junit(junit.read_text())
        lines.append(f"tests: {c.passed} passed, {c.failed} failed, {c.errors} errors, {c.skipped} skipped "
                     f"in {_mmss(int(c.seconds))}")
        lines += [f"  FAILED {f}" for f in c.failures[:20]]
        ok = ok and c.failed == 0 and c.errors == 0 and c.passed > 0
    elif any(s.name == "tests" for s in steps):
        lines.append("tests: no results (junit.xml missing)")
        ok = False
    else:
        lines.append("tests: not run (--no-tests)")
    left_out = run / "log" / "left-out.txt"
    if left_out.is_file():
        notes = left_out.read_text().splitlines()
        files = [n for n in notes if n.startswith("# left out ")]
        lines.append(f"  not run on the board: {len(files)} test files that import training/ or the train extra "
                     "(host tests)")
        lines += [f"  {n[2:]}" for n in notes if n.startswith("# deselected ")]
    total = sum(s.seconds for s in steps)
    lines.append(f"total: {_mmss(total)}  result: {'PASS' if ok else 'FAIL'}")
    return "\n".join(lines), ok


def _mmss(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="helper.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("target").add_argument("name")
    pc = sub.add_parser("pipconf")
    pc.add_argument("--ca", required=True)
    sub.add_parser("env")
    sub.add_parser("wheels").add_argument("report", type=Path)
    sub.add_parser("missing").add_argument("log", type=Path)
    sub.add_parser("junit").add_argument("xml", type=Path)
    sub.add_parser("select-tests").add_argument("repo", type=Path)
    sub.add_parser("summary").add_argument("run", type=Path)
    args = p.parse_args(argv)
    try:
        if args.cmd == "target":
            sys.stdout.write(target_shell(args.name))
        elif args.cmd == "pipconf":
            sys.stdout.write(pip_conf(host_pip_files(), args.ca))
        elif args.cmd == "env":
            sys.stdout.write("".join(f"{line}\n" for line in pass_env(dict(os.environ))))
        elif args.cmd == "wheels":
            for w in parse_pip_report(json.loads(_read(args.report))):
                print(f"{w.name} {w.version} {w.tag or 'source tree'}")
        elif args.cmd == "missing":
            req = missing_wheel(_read(args.log))
            if req:
                print(req)
                return 1
        elif args.cmd == "junit":
            c = parse_junit(_read(args.xml))
            print(f"{c.passed} passed, {c.failed} failed, {c.errors} errors, {c.skipped} skipped")
        elif args.cmd == "select-tests":
            keep, left = select_tests(args.repo)
            print("\n".join(keep + [f"--deselect={t}" for t in RUNTIME_TRAIN_ONLY]))
            for f, needs in left.items():
                why = HOST_TESTS.get(f) or f"needs {', '.join(sorted(needs))}"
                print(f"# left out {f}: {why}", file=sys.stderr)
            for t, why in RUNTIME_TRAIN_ONLY.items():
                print(f"# deselected {t}: {why}", file=sys.stderr)
        elif args.cmd == "summary":
            text, ok = summary(args.run)
            print(text)
            return 0 if ok else 1
    except (HelperError, json.JSONDecodeError) as exc:
        print(f"arm64-check: {exc}", file=sys.stderr)
        return 2
    return 0


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise HelperError(f"cannot read {path}: {exc.strerror}") from None


if __name__ == "__main__":
    sys.exit(main())
