"""One output contract (issue 21): under `biolock --json` every stderr line is a JSON object (also LiteRT's native
"XNNPACK delegate" notice and click's usage errors), results go to stdout, errors are `error: ...` with the
documented exit code, every command's help has an example, and progress off a terminal has no carriage return."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import cv2
import numpy as np
from click.testing import CliRunner

from device.cli import main
from device.nativelog import as_json_line

BIOLOCK = [sys.executable, "-c", "from device.cli import main; main()"]


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "BIOLOCK_STATE_DIR": str(tmp_path / "state"), **env}
    full_env.pop("BIOLOCK_CONFIG", None)
    return subprocess.run([*BIOLOCK, *args], capture_output=True, text=True, timeout=120, env=full_env,
                          cwd=Path(__file__).resolve().parents[1])


def _all_json(stderr: str) -> list[dict]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # raises on the first line that is not JSON
    assert all(isinstance(p, dict) and "msg" in p and "level" in p for p in parsed), parsed
    return parsed


def test_every_stderr_line_is_json_with_a_model_loaded_and_on_errors(tmp_path):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((288, 256), 255, np.uint8))
    res = _run(["--json", "enroll", "alice", "--image", str(blank), "--image", str(blank)], tmp_path)
    assert res.returncode == 2
    logs = _all_json(res.stderr)
    assert any(p["msg"].startswith("error: enrolment of alice") for p in logs)
    assert "XNNPACK" not in res.stderr  # LiteRT's native notice is captured (DEBUG), not printed
    assert json.loads(res.stdout)["ok"] is False  # the result itself is JSON on stdout (the global --json)
    usage = _run(["--json", "enroll"], tmp_path)
    assert usage.returncode == 2 and _all_json(usage.stderr)[0]["level"] == "error"
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())


def test_global_json_makes_results_json(tmp_path):
    res = _run(["--json", "status"], tmp_path)
    assert json.loads(res.stdout)["modality"] == "fingerprint"
    _all_json(res.stderr)


def test_one_error_style_for_usage_errors():
    res = CliRunner().invoke(main, ["enroll", "--bogus"], prog_name="biolock")
    assert res.exit_code == 2
    assert res.output.startswith("error: no such option '--bogus'") and "Usage:" not in res.output
    assert "biolock enroll --help" in res.output


def test_wrapped_lines_are_json_and_carriage_returns_are_dropped():
    assert json.loads(as_json_line("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"))["level"] == "info"
    assert json.loads(as_json_line("error: no store"))["level"] == "error"
    assert json.loads(as_json_line("a 10%\rb 20%\rc 30%"))["msg"] == "c 30%"
    already = json.dumps({"level": "info", "msg": "x"})
    assert as_json_line(already) == already


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    missing = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        out = runner.invoke(main, [*path, "--help"]).output
        if "Example" not in out:
            missing.append(" ".join(path) or "biolock")
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(main, [])
    assert not missing, f"help without an example: {missing}"


PROGRESS = (
    "from device.logsetup import configure_logging\n"
    "import sys\n"
    "configure_logging(as_json='--json' in sys.argv)\n"
    "from device import progress\n"
    "progress.set_quiet('--quiet' in sys.argv)\n"
    "for _ in progress.tqdm(range(200), desc='synth fingerprint r307', unit='id'): pass\n"
)


def test_progress_off_a_terminal_is_plain_lines_without_carriage_returns(tmp_path):
    plain = subprocess.run([sys.executable, "-c", PROGRESS], capture_output=True, text=True, timeout=60)
    assert "\r" not in plain.stderr
    lines = plain.stderr.splitlines()
    assert 5 <= len(lines) <= 12 and lines[-1].endswith("s") and "200/200 id (100 %)" in lines[-1], lines
    as_json = subprocess.run([sys.executable, "-c", PROGRESS, "--json"], capture_output=True, text=True, timeout=60)
    assert [p["n"] for p in _all_json(as_json.stderr)][-1] == 200
    quiet = subprocess.run([sys.executable, "-c", PROGRESS, "--quiet"], capture_output=True, text=True, timeout=60)
    assert quiet.stderr == ""
