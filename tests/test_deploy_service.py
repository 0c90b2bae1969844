"""Issue 17 item 9: what deploy/ installs -- the unit's start timeout, groups and working directory, the state
directory made before the first start, and a config whose [unlock] choice is explicit and passes the strict loader.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from helpers import DEPLOY, unit_settings

from device.config import load_config
from device.errors import ConfigError


def test_unit_starts_in_bounded_time_in_a_writable_cwd_without_a_required_gpio_group():
    s = unit_settings()
    timeout = s["TimeoutStartSec"][0]
    assert timeout != "infinity" and re.fullmatch(r"\d+s", timeout) and int(timeout[:-1]) <= 300
    assert s["WorkingDirectory"] == ["/var/lib/biolock"] and s["StateDirectory"] == ["biolock"]
    assert "gpio" not in " ".join(s.get("SupplementaryGroups", []))  # a missing group would fail the start (216/GROUP)


def installer(*args: str) -> str:
    out = subprocess.run(["sh", str(DEPLOY / "install.sh"), "--dry-run", *args], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_installer_makes_the_state_directory_and_groups_before_the_enrol_hint():
    out = installer("--unlock=none")
    state = out.index("+ install -d -m 0700 -o biolock -g biolock /var/lib/biolock")
    assert state < out.index("next: enrol people") and "--state-dir /var/lib/biolock enroll" in out
    for group in ("dialout", "video", "gpio"):
        assert f"usermod -a -G {group} biolock" in out  # created first where missing (groupadd --system)
    assert "no lock chosen" not in out


def test_installer_without_a_lock_choice_says_the_daemon_will_refuse():
    out = installer()
    assert "no lock chosen" in out
    bad = subprocess.run(["sh", str(DEPLOY / "install.sh"), "--dry-run", "--unlock=maybe"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "--unlock=serial" in bad.stderr


def unlock_section(choice: str) -> str:
    """The installer's own ``unlock_section`` shell function, run as it is in install.sh."""
    text = (DEPLOY / "install.sh").read_text()
    body = re.search(r"^unlock_section\(\) \{\n.*?^\}\n", text, re.S | re.M)
    assert body, "install.sh lost its unlock_section function"
    out = subprocess.run(["sh", "-c", body.group(0) + "unlock_section"],
                         env={"UNLOCK": choice, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("choice", ["none", "serial", "gpiozero", "gpiod", ""])
def test_written_config_parses_strictly_and_says_what_opens(tmp_path, choice):
    cfg = tmp_path / "biolock.toml"
    cfg.write_text('[sensor]\ntype = "r30x"\nport = "/dev/ttyS0"\n\n' + unlock_section(choice))
    unlock = load_config(cfg).unlock
    opens = {"none": (False, "none", True), "serial": (True, "none", False), "gpiozero": (False, "gpiozero", False),
             "gpiod": (False, "gpiod", False), "": (False, "none", False)}[choice]
    assert (unlock.serial.enabled, unlock.gpio.backend, unlock.none) == opens
    if choice == "serial":
        assert unlock.serial.port == "/dev/biolock-lock"


def test_unknown_unlock_key_is_still_refused(tmp_path):
    cfg = tmp_path / "biolock.toml"
    cfg.write_text("[unlock]\nnone = true\nnothing = true\n")
    with pytest.raises(ConfigError, match="nothing"):
        load_config(cfg)
