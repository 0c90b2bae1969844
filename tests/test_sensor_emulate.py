"""`biolock sensor emulate` (issue 21): an emulated R307 on a pty that the real driver reads fingers from."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from device.cli import main


def test_the_real_driver_captures_the_emulated_touches(tmp_path):
    link = tmp_path / "ttyR307"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from device.cli import main; main()", "--state-dir", str(tmp_path / "s"), "sensor",
         "emulate", "--link", str(link), "--people", "1", "--impostors", "0", "--touches", "2", "--every", "0.2",
         "--fault", "no_finger:1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
        env={k: v for k, v in os.environ.items() if k != "BIOLOCK_CONFIG"})
    try:
        for _ in range(300):  # wait for the pty link to appear (not a timing assertion: a bounded wait)
            if link.exists():
                break
            time.sleep(0.05)
        from device.sensors.r30x import R30xSensor

        with R30xSensor(str(link), timeout_s=5.0, poll_interval_s=0.02) as sensor:
            shapes = []
            for _ in range(2):
                shapes.append(sensor.capture(timeout_s=30).image.shape)
                sensor.wait_until_clear(timeout_s=5)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert shapes == [(288, 256), (288, 256)]
    assert "touch 1: alice (genuine)" in out and "touch 2: alice (genuine)" in out, out + err
    assert "2 images uploaded" in out


def test_bad_fault_names_are_refused():
    res = CliRunner().invoke(main, ["sensor", "emulate", "--fault", "smoke"], prog_name="biolock")
    assert res.exit_code == 2 and res.output.startswith("error: invalid value for '--fault'"), res.output
