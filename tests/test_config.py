from pathlib import Path

import pytest

from device.config import Config, load_config, resolve_state_dir
from device.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "biolock.toml"
    path.write_text(text)
    return path


def test_defaults_without_file():
    cfg = load_config(None)
    assert cfg == Config()
    assert cfg.matching.security == "balanced"
    assert cfg.inference.num_threads == 1


def test_values_are_read_and_typed(tmp_path):
    cfg = load_config(
        write(
            tmp_path,
            '[sensor]\ntype = "r30x"\nport = "/dev/ttyS0"\nbaud = 115200\n'
            '[matching]\nsecurity = "secure"\n[unlock.gpio]\nbackend = "gpiozero"\nrelay_pin = 4\n',
        )
    )
    assert cfg.sensor.type == "r30x" and cfg.sensor.baud == 115200
    assert cfg.matching.security == "secure"
    assert cfg.unlock.gpio.backend == "gpiozero" and cfg.unlock.gpio.relay_pin == 4


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('[matching]\nsecuirty = "secure"\n', "matching.secuirty"),
        ("[nonsense]\n", "nonsense"),
        ('[matching]\nsecurity = "lax"\n', "'secure', 'balanced', 'convenient'"),
        ('[sensor]\nbaud = "fast"\n', "sensor.baud must be an integer"),
        ("[sensor]\nbaud = 1\n", "sensor.baud = 1 is out of range; allowed: 9600 to 115200"),
        ("[inference]\nnum_threads = 0\n", "inference.num_threads"),
        ("[unlock.gpio]\nactive_low = 1\n", "unlock.gpio.active_low must be true or false"),
        ("[sensor\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert fragment in str(err.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")


def test_state_dir_precedence(tmp_path, monkeypatch):
    cfg = load_config(write(tmp_path, f'[device]\nstate_dir = "{tmp_path / "cfg"}"\n'))
    assert resolve_state_dir(tmp_path / "opt", cfg) == tmp_path / "opt"
    monkeypatch.setenv("BIOLOCK_STATE_DIR", str(tmp_path / "env"))
    assert resolve_state_dir(None, cfg) == tmp_path / "env"
    monkeypatch.delenv("BIOLOCK_STATE_DIR")
    assert resolve_state_dir(None, cfg) == tmp_path / "cfg"
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/biolock")
    assert resolve_state_dir(None, Config()) == Path("/var/lib/biolock")
