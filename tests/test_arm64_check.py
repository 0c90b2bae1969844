"""The pure parts of the emulated board check (deploy/arm64): no root, qemu or network needed.

What they guard: the report never calls a run with missing results a pass; a dependency without an aarch64 wheel,
or one whose wheel needs a newer glibc than the board's, shows in the README table; the host's pip settings reach
the root without its host-only paths; the device-side test selection leaves out exactly what needs the `train`
extra; the udev rules and check.sh's argument handling fail with a clear message.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARM64 = REPO / "deploy" / "arm64"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"arm64_{name}", ARM64 / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


helper = _load("helper")
udev = _load("udev_lint")
table = _load("wheel_table")
macs = _load("model_macs")


# --- targets and host settings -----------------------------------------------------------------------------------
def test_targets_name_the_boards_python(tmp_path):
    out = helper.target_shell("bookworm", sources=[])
    assert "PYVER='3.11'" in out and "SUITE='bookworm'" in out and "MIRROR='http://deb.debian.org/debian'" in out
    assert "QEMU_CPU_DEFAULT='cortex-a72'" in out  # a Pi 4's core, not qemu's "max" (wrong XNNPACK results there)
    assert "PYVER='3.13'" in helper.target_shell("trixie", sources=[])
    jammy = helper.target_shell("jammy", sources=[])
    assert "PYVER='3.10'" in jammy and "ubuntu-ports" in jammy and "HOST_EXTRA_PKGS='ubuntu-keyring'" in jammy
    with pytest.raises(helper.HelperError, match="unknown target 'buster': choose one of bookworm, trixie, jammy"):
        helper.target_shell("buster", sources=[])


def test_debian_mirror_comes_from_the_hosts_apt_sources(tmp_path):
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n\n"
                      "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n")
    assert helper.debian_mirror_from_host([deb822]) == "http://mirror.example/debian"
    one_line = tmp_path / "sources.list"
    one_line.write_text("# comment\ndeb [arch=amd64] https://m2.example/debian bookworm main\n")
    assert helper.debian_mirror_from_host([one_line]) == "https://m2.example/debian"
    assert "MIRROR='http://mirror.example/debian'" in helper.target_shell("trixie", sources=[deb822])
    # Ubuntu ports are never replaced by the host's Debian mirror
    assert "ubuntu-ports" in helper.target_shell("jammy", sources=[deb822])


def test_pip_conf_keeps_remote_settings_and_replaces_host_paths(tmp_path):
    a = tmp_path / "a.conf"
    a.write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\nconstraint = /etc/xdg/pip/c.txt\n"
                 "timeout = 60\n")
    b = tmp_path / "b.conf"
    b.write_text("[global]\nfind-links = /opt/wheels\n"
                 "extra-index-url = file:///opt/pypi/simple https://index.example/simple\n"
                 "[install]\ntrusted-host = index.example\n")
    text = helper.pip_conf([a, b], "/etc/biolock-arm64/host-ca.pem")
    assert "cert = /etc/biolock-arm64/host-ca.pem" in text
    assert "timeout = 60" in text and "trusted-host = index.example" in text
    assert "extra-index-url = https://index.example/simple" in text
    assert "/opt/wheels" not in text and "file://" not in text and "constraint" not in text
    bad = tmp_path / "bad.conf"
    bad.write_text("no section header\n")
    with pytest.raises(helper.HelperError, match="cannot read pip configuration"):
        helper.pip_conf([bad], "/x")


def test_passed_environment_is_proxies_and_remote_pip_settings_only():
    env = {"PIP_DEFAULT_TIMEOUT": "180", "PIP_FIND_LINKS": "/opt/wheels", "PIP_CERT": "/etc/host.pem",
           "PIP_INDEX_URL": "https://idx.example/simple", "PIP_EXTRA_INDEX_URL": "file:///opt/pypi",
           "https_proxy": "http://proxy:3128", "HOME": "/root", "SSL_CERT_FILE": "/etc/x.pem"}
    assert helper.pass_env(env) == ["PIP_DEFAULT_TIMEOUT=180", "PIP_INDEX_URL=https://idx.example/simple",
                                    "https_proxy=http://proxy:3128"]


# --- pip's report and errors -----------------------------------------------------------------------------------------
def _report(*items):
    return {"version": "1", "install": [
        {"metadata": {"name": n, "version": v}, "download_info": {"url": u}} for n, v, u in items]}


def test_pip_report_lists_wheels_with_their_tags():
    rep = _report(("numpy", "2.2.6", "https://files.example/numpy-2.2.6-cp311-cp311-manylinux_2_17_aarch64."
                                       "manylinux2014_aarch64.whl#sha256=ab"),
                  ("biolock", "0.1.0", "file:///opt/biolock-check/dist/biolock-0.1.0-py3-none-any.whl"),
                  ("click", "8.1.8", "https://files.example/click-8.1.8-py3-none-any.whl"))
    got = helper.parse_pip_report(rep)
    assert [(i.name, i.tag) for i in got] == [
        ("biolock", "py3-none-any"), ("click", "py3-none-any"),
        ("numpy", "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64")]
    src = helper.parse_pip_report(_report(("x", "1", "https://files.example/x-1.tar.gz")))
    assert src[0].wheel == "" and src[0].tag == ""
    with pytest.raises(helper.HelperError, match="not a pip installation report"):
        helper.parse_pip_report({"version": "0"})


def test_missing_wheel_is_named_from_pips_error():
    log = ("ERROR: Could not find a version that satisfies the requirement lgpio>=0.2.2.0 (from biolock[pi]) "
           "(from versions: 0.0.0.2)\nERROR: No matching distribution found for lgpio>=0.2.2.0\n")
    assert helper.missing_wheel(log) == "lgpio>=0.2.2.0"
    assert helper.missing_wheel("Successfully installed numpy-2.2.6") is None


# --- test selection and results ---------------------------------------------------------------------------------------
def test_select_tests_follows_module_level_imports_only(tmp_path):
    for pkg in ("tests", "device", "training"):
        (tmp_path / pkg).mkdir()
    (tmp_path / "device" / "__init__.py").write_text("")
    (tmp_path / "device" / "heavy.py").write_text("import tensorflow as tf\n")
    (tmp_path / "device" / "lazy.py").write_text("def f():\n    import scipy\n")
    (tmp_path / "training" / "__init__.py").write_text("")
    (tmp_path / "training" / "synth.py").write_text("import numpy\n")
    (tmp_path / "tests" / "helpers_fixture.py").write_text("import numpy\nfrom device.heavy import x\n")
    (tmp_path / "tests" / "test_a.py").write_text("from device.lazy import f\n")
    (tmp_path / "tests" / "test_b.py").write_text("from helpers_fixture import y\n")
    (tmp_path / "tests" / "test_c.py").write_text("def test():\n    from sklearn.metrics import roc_curve\n")
    (tmp_path / "tests" / "test_d.py").write_text("import pytest\npytest.importorskip('tensorflow')\n")
    (tmp_path / "tests" / "test_e.py").write_text("from training.synth import render\n")
    keep, left = helper.select_tests(tmp_path)
    assert keep == ["tests/test_a.py", "tests/test_d.py"]
    assert left == {"tests/test_b.py": {"tensorflow"}, "tests/test_c.py": {"sklearn"}, "tests/test_e.py": {"training"}}


def test_select_tests_on_this_repository_keeps_the_device_tests():
    keep, left = helper.select_tests(REPO)
    assert "tests/test_inference.py" in keep and "tests/test_store.py" in keep and "tests/test_daemon.py" in keep
    assert "tests/test_arm64_check.py" in left  # host tooling: never run on the board
    assert all(needs <= helper.TRAIN_ONLY | {"training", "host"} for needs in left.values())
    assert "tests/test_fit.py" in left and "tests/test_synth_fingerprint.py" in left


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1"
 skipped="1" tests="4" time="83.5"><testcase classname="tests.test_a" name="test_ok" time="1"/>
<testcase classname="tests.test_a" name="test_ok2" time="1"/>
<testcase classname="tests.test_b" name="test_bad" time="1"><failure message="assert 0">x</failure></testcase>
<testcase classname="tests.test_c" name="test_skip" time="0"><skipped message="no tf"/></testcase>
</testsuite></testsuites>"""


def test_junit_counts():
    c = helper.parse_junit(JUNIT)
    assert (c.passed, c.failed, c.errors, c.skipped, c.total) == (2, 1, 0, 1, 4)
    assert c.failures == ("tests.test_b::test_bad",) and c.seconds == 83.5
    with pytest.raises(helper.HelperError, match="unreadable JUnit XML"):
        helper.parse_junit("<testsuites")


# --- the report -------------------------------------------------------------------------------------------------------
def _run_dir(tmp_path, steps, junit=None, report=None):
    (tmp_path / "steps.tsv").write_text("".join(f"{n}\t{s}\t{t}\t{d}\n" for n, s, t, d in steps))
    if junit is not None:
        (tmp_path / "junit.xml").write_text(junit)
    if report is not None:
        (tmp_path / "pip-report.json").write_text(json.dumps(report))
    return tmp_path


def test_summary_passes_only_when_everything_did(tmp_path):
    ok_junit = JUNIT.replace('<failure message="assert 0">x</failure>', "")
    rep = _report(("numpy", "2.2.6", "https://f.example/numpy-2.2.6-cp311-cp311-manylinux_2_17_aarch64.whl"))
    text, ok = helper.summary(_run_dir(tmp_path, [("wheels", "ok", 300, "w"), ("tests", "ok", 610, "t")],
                                       ok_junit, rep))
    assert ok and "result: PASS" in text and "tests: 3 passed, 0 failed, 0 errors, 1 skipped" in text
    assert "numpy 2.2.6  cp311-cp311-manylinux_2_17_aarch64" in text and "total: 15:10" in text


def test_summary_fails_on_a_failed_step_a_failed_test_or_missing_results(tmp_path):
    (tmp_path / "a").mkdir()
    _, ok = helper.summary(_run_dir(tmp_path / "a", [("wheels", "FAIL", 3, "")]))
    assert not ok
    (tmp_path / "b").mkdir()
    text, ok = helper.summary(_run_dir(tmp_path / "b", [("tests", "ok", 1, "")], JUNIT))
    assert not ok and "FAILED tests.test_b::test_bad" in text
    (tmp_path / "c").mkdir()
    text, ok = helper.summary(_run_dir(tmp_path / "c", [("tests", "ok", 1, "")]))
    assert not ok and "no results" in text
    (tmp_path / "d").mkdir()
    text, ok = helper.summary(tmp_path / "d")  # nothing ran at all
    assert not ok and "result: FAIL" in text
    (tmp_path / "e").mkdir()
    built = _report(("x", "1", "https://f.example/x-1.tar.gz"))
    text, ok = helper.summary(_run_dir(tmp_path / "e", [("wheels", "ok", 1, "")], report=built))
    assert not ok and "all binary: NO" in text


def test_steps_file_must_be_well_formed():
    with pytest.raises(helper.HelperError, match="line 1 is malformed"):
        helper.parse_steps("wheels\tmaybe\t3\n")


def test_helper_cli_exit_codes(tmp_path):
    run = [sys.executable, str(ARM64 / "helper.py")]
    bad = subprocess.run(run + ["target", "sid"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("arm64-check: unknown target 'sid'")
    log = tmp_path / "pip.log"
    log.write_text("ERROR: No matching distribution found for ai-edge-litert>=2.0\n")
    miss = subprocess.run(run + ["missing", str(log)], capture_output=True, text=True)
    assert miss.returncode == 1 and miss.stdout.strip() == "ai-edge-litert>=2.0"
    gone = subprocess.run(run + ["junit", str(tmp_path / "nope.xml")], capture_output=True, text=True)
    assert gone.returncode == 2 and "cannot read" in gone.stderr


# --- check.sh: bad input fails before anything is installed ----------------------------------------------------------
def test_check_sh_refuses_unknown_options_and_targets():
    sh = ["bash", str(ARM64 / "check.sh")]
    r = subprocess.run(sh + ["--frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown option --frobnicate" in r.stderr
    r = subprocess.run(sh + ["--target", "buster"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown target 'buster'" in r.stderr
    r = subprocess.run(sh + ["--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--target trixie" in r.stdout


def test_check_sh_without_root_says_how(tmp_path):
    import os

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")  # any user but root
    (fake / "id").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")
    r = subprocess.run(["bash", str(ARM64 / "check.sh")], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "needs root" in r.stderr and "sudo make arm64-check" in r.stderr


def test_check_sh_without_space_says_where(tmp_path):
    # a cache on a tiny tmpfs is not possible without root; a fake df on PATH reports 1 GiB free instead
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "df").write_text("#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted'\n"
                             "echo '/dev/x 100 99 1048576 99% /'\n")
    (fake / "df").chmod(0o755)
    (fake / "id").write_text("#!/bin/sh\necho 0\n")  # the space check comes after the root and git checks
    (fake / "id").chmod(0o755)
    (fake / "git").write_text("#!/bin/sh\necho 0123456789abcdef\n")
    (fake / "git").chmod(0o755)
    import os

    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}", BIOLOCK_ARM64_CACHE=str(tmp_path / "cache"))
    r = subprocess.run(["bash", str(ARM64 / "check.sh")], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "needs 4 GiB free" in r.stderr and "BIOLOCK_ARM64_CACHE" in r.stderr


# --- udev rules -------------------------------------------------------------------------------------------------------
def test_shipped_udev_rules_are_clean():
    assert udev.lint((REPO / "deploy" / "99-biolock.rules").read_text()) == []


@pytest.mark.parametrize(("line", "problem"), [
    ('SUBSYSTEM=="tty", GRUOP="dialout"', "unknown key GRUOP"),
    ('SUBSYSTEM="tty", GROUP="dialout"', "SUBSYSTEM is a match"),
    ('SUBSYSTEM=="tty", MODE="rw"', "not an octal mode"),
    ('SUBSYSTEM=="tty" GROUP="dialout"', "missing comma"),
    ('SUBSYSTEM=="tty", GROUP="dialout', "cannot parse"),
    ('ATTRS=="10c4", GROUP="dialout"', "ATTRS needs an {attribute}"),
    ('RUN=="/bin/true"', "RUN is an assignment"),
])
def test_udev_lint_catches_typos(line, problem):
    found = udev.lint(line + "\n")
    assert found and problem in found[0] and found[0].startswith("line 1:")


def test_udev_lint_joins_continued_lines():
    assert udev.lint('SUBSYSTEM=="tty", \\\n  GROUP="dialout"\n') == []
    assert "ends inside a continued line" in udev.lint('SUBSYSTEM=="tty", \\\n')[0]


# --- the wheel table --------------------------------------------------------------------------------------------------
PYPROJECT = """
[project]
name = "x"
dependencies = ["numpy>=1.24", "tomli>=2.0; python_version < '3.11'"]
[project.optional-dependencies]
device = ["ai-edge-litert>=2.0", "numpy>=1.24"]
pi = ["lgpio>=0.2.2.0; python_version < '3.13'", "gpiod>=2.0.2"]
jetson = ["gpiod>=2.0.2"]
minutiae = ["nbis-py==0.1.3; platform_machine == 'x86_64'", "nbis-python==0.1.21; platform_machine == 'aarch64'"]
"""


def test_wheel_table_from_a_fixture(tmp_path):
    pp = tmp_path / "pyproject.toml"
    pp.write_text(PYPROJECT)
    reqs = table.requirements(pp)
    assert [r for r, _ in reqs][:2] == ["numpy>=1.24", "tomli>=2.0; python_version < '3.11'"]
    assert dict(reqs)["numpy>=1.24"] == ("core", "device") and dict(reqs)["gpiod>=2.0.2"] == ("pi", "jetson")
    calls = []

    def fake(req, python, glibc):
        calls.append((req.split(";")[0], python))
        if req.startswith("ai-edge-litert") and python == "3.13":
            return table.Lookup(False, error="No matching distribution")
        if req.startswith("nbis-python"):
            return table.Lookup(True, "0.1.21", "manylinux_2_28", 38)
        return table.Lookup(True, "1.0", "manylinux_2_17", 17)

    rows = table.build_rows(reqs, fake)
    # markers: tomli only for 3.10, lgpio not for 3.13, nbis-py never on aarch64
    assert ("tomli>=2.0", "3.11") not in calls and ("lgpio>=0.2.2.0", "3.13") not in calls
    assert not any(r.startswith("nbis-py==") for r, _ in calls)
    md = table.render(rows)
    assert md.splitlines()[0].startswith("| requirement | extra | Python 3.10 (Ubuntu 22.04 / JetPack 6, glibc 2.35)")
    assert "| `ai-edge-litert>=2.0` | device | 1.0 (manylinux_2_17) | 1.0 (manylinux_2_17) | **NO wheel** |" in md
    assert "**0.1.21 (manylinux_2_28): needs glibc 2.38, board has 2.36**" in md
    assert "not needed (marker)" in md
    assert table.problems(rows) == [
        "ai-edge-litert>=2.0 on Python 3.13: no aarch64 wheel",
        "nbis-python==0.1.21; platform_machine == 'aarch64' on Python 3.10: wheel needs glibc 2.38 > 2.35",
        "nbis-python==0.1.21; platform_machine == 'aarch64' on Python 3.11: wheel needs glibc 2.38 > 2.36"]


def test_wheel_table_reads_glibc_needs_and_tags(tmp_path):
    whl = tmp_path / "x-1.0-py3-none-manylinux_2_28_aarch64.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("x/libx.so", b"\x7fELF...GLIBC_2.17\x00GLIBC_2.38\x00GLIBC_2.4\x00")
        zf.writestr("x/libcv.so.413", b"GLIBC_2.34")
        zf.writestr("x/__init__.py", b"GLIBC_2.99 in a comment does not count")
    assert table.glibc_needed(whl) == 38
    pure = tmp_path / "y-1.0-py3-none-any.whl"
    with zipfile.ZipFile(pure, "w") as zf:
        zf.writestr("y/__init__.py", b"")
    assert table.glibc_needed(pure) is None
    assert table.wheel_tag("gpiod-2.5.0-cp311-cp311-manylinux2014_aarch64.manylinux_2_17_aarch64.manylinux_2_28_"
                           "aarch64.whl") == "manylinux2014"
    assert table.wheel_tag("click-8.1.8-py3-none-any.whl") == "any"
    assert table.platform_tags(36)[:2] == ["manylinux_2_36_aarch64", "manylinux_2_35_aarch64"]
    assert table.platform_tags(36)[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]


def test_wheel_table_names_a_missing_extra(tmp_path):
    pp = tmp_path / "pyproject.toml"
    pp.write_text(PYPROJECT)
    with pytest.raises(table.TableError, match="no extra 'edge'"):
        table.requirements(pp, ("edge",))


def test_the_real_pyproject_has_the_board_extras():
    reqs = dict(table.requirements(REPO / "pyproject.toml"))
    names = {r.split(";")[0].split(">")[0].split("=")[0] for r in reqs}
    assert {"ai-edge-litert", "gpiod", "gpiozero", "lgpio", "nbis-python", "onnxruntime"} <= names
    assert not any(r.startswith(("tensorflow", "scipy", "scikit-learn")) for r in reqs)


# --- operation counts -------------------------------------------------------------------------------------------------
def test_op_macs_formulas():
    assert macs.op_macs("CONV_2D", (16, 3, 3, 8), (1, 48, 48, 16)) == 48 * 48 * 16 * 3 * 3 * 8
    assert macs.op_macs("DEPTHWISE_CONV_2D", (1, 3, 3, 32), (1, 24, 24, 32)) == 24 * 24 * 32 * 9
    assert macs.op_macs("FULLY_CONNECTED", (128, 576), (1, 128)) == 128 * 576
    assert macs.op_macs("ADD", None, (1, 4, 4, 8)) == 0


# --- x86 / aarch64 parity of the models' outputs -------------------------------------------------------------------
parity = _load("parity")


def test_parity_compare_tolerates_one_step_and_names_the_rest():
    host = {"fingerprint_int8.tflite": [[-4, 2, -19, 1]], "vein_int8.tflite": [[0, 0]]}
    same = {"fingerprint_int8.tflite": [[-4, 2, -19, 0]], "vein_int8.tflite": [[0, 1]]}
    assert parity.compare(host, same, 1.0) == []
    qemu_max = {"fingerprint_int8.tflite": [[-21, 4, 17, -3]], "vein_int8.tflite": [[0, 0]]}  # seen under "max"
    assert parity.compare(host, qemu_max, 1.0) == [
        "fingerprint_int8.tflite input 0: outputs differ by up to 36 (tolerance 1)"]
    assert "different models" in parity.compare(host, {"vein_int8.tflite": [[0, 0]]}, 1.0)[0]


# --- install.sh extras and the NBIS backend's two distributions ----------------------------------------------------
def test_install_sh_dry_run_takes_the_chosen_extras():
    r = subprocess.run(["sh", str(REPO / "deploy" / "install.sh"), "--dry-run", "--extras=device,pi"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "extras: device,pi" in r.stdout and f"pip install --quiet {REPO}[device,pi]" in r.stdout


class _FakeMinutiae2011:
    """nbis-python's shape: ISO 19794-2:2011 out, no 2005 writer."""

    def __init__(self, n):
        self.n = n

    def get(self):
        return list(range(self.n))

    def to_iso_19794_2_2011(self):
        return bytes([self.n])

    def compare(self, other):
        return 100 if other.n == self.n else 3


def test_nbis_backend_speaks_nbis_python(monkeypatch):
    import types

    import numpy as np

    import device.minutiae.nbis_backend as nb

    class Extractor:
        def extract_minutiae(self, png):
            return _FakeMinutiae2011(len(png) % 7 + 1)

        def load_iso_19794_2_2011(self, data):
            return _FakeMinutiae2011(data[0])

    fake = types.SimpleNamespace(Minutiae=_FakeMinutiae2011, NbisExtractorSettings=lambda **kw: kw,
                                 new_nbis_extractor=lambda settings: Extractor())
    monkeypatch.setitem(sys.modules, "nbis", fake)
    monkeypatch.setattr(nb, "installed_distribution", lambda: ("nbis-python", "0.1.21"))
    m = nb.NbisMatcher()
    assert m.template_id == "nbis-python@0.1.21/iso19794-2:2011"
    img = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
    t = m.extract(img)
    assert m.compare(t, t) == 100.0
