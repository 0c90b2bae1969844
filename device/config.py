"""biolock's configuration: one TOML file, typed and validated at start.

The file is found from ``--config``, else ``BIOLOCK_CONFIG``, else nothing: every value has a default, so a
fresh board runs with no file at all. Unknown keys, wrong types and out-of-range values stop the start with the
dotted key's name and the allowed values (see ``strictconfig``).

Example ``biolock.toml``::

    [device]
    modality = "fingerprint"

    [sensor]
    type = "r30x"
    port = "/dev/ttyS0"

    [matching]
    security = "secure"

Fusion mode (``device.modality = "fusion"``) reads two sensors and two models: ``[sensor]`` and
``inference.model`` are the fingerprint's, ``[sensor_vein]`` and ``inference.vein_model`` the vein camera's,
and ``matching.fusion_card`` names the fusion card (see docs/daemon.md, "Fusion mode on the device")::

    [device]
    modality = "fusion"

    [sensor]
    type = "r30x"
    port = "/dev/ttyS0"

    [sensor_vein]
    type = "camera"
    source = "0"

    [matching]
    fusion_card = "/etc/biolock/fusion_card.json"
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from device.errors import ConfigError
from device.strictconfig import from_table, ranged, read_toml

CONFIG_ENV = "BIOLOCK_CONFIG"
STATE_DIR_ENV = "BIOLOCK_STATE_DIR"

Modality = Literal["fingerprint", "vein"]


@dataclass(frozen=True)
class DeviceConfig:
    modality: Literal["fingerprint", "vein", "fusion"] = "fingerprint"
    state_dir: Path | None = None  # None: systemd's STATE_DIRECTORY, else a per-user data directory


@dataclass(frozen=True)
class SensorConfig:
    type: Literal["replay", "r30x", "camera"] = "replay"
    # r30x (R307 / AS608 / R503 over UART)
    port: str = "/dev/ttyS0"  # any pyserial URL or device path
    module: Literal["r307", "as608", "r503"] = "r307"
    baud: int = ranged(57600, min=9600, max=115200)
    address: int = ranged(0xFFFFFFFF, min=0, max=0xFFFFFFFF)
    password: int = ranged(0, min=0, max=0xFFFFFFFF)
    timeout_s: float = ranged(2.0, min=0.05, max=60.0)
    finger_timeout_s: float = ranged(10.0, min=0.1, max=600.0)
    # camera: V4L2 index ("0"), device path, GStreamer pipeline or video file
    source: str = "0"
    exposure: float | None = None
    burst: int = ranged(5, min=1, max=60)
    # replay: a folder or manifest.csv of images presented in order
    path: Path | None = None
    loop: bool = False  # replay: start again after the last image


@dataclass(frozen=True)
class InferenceConfig:
    type: Literal["litert", "edgetpu", "onnx"] = "litert"
    model: Path | None = None  # model card JSON; None: the shipped default for the modality (fusion: the fingerprint's)
    vein_model: Path | None = None  # fusion mode only: the vein model card; None: the shipped vein model
    num_threads: int = ranged(1, min=1, max=64)


@dataclass(frozen=True)
class MatchingConfig:
    security: Literal["secure", "balanced", "convenient"] = "balanced"
    mode: Literal["identify", "verify"] = "identify"
    fusion_card: Path | None = None
    fusion_fallback: bool = False  # fusion mode: accept on one modality when the other is missing (audited)
    # fingerprints: the minutiae matcher that decides (device.minutiae); auto = biolock's own (the shipped card), or
    # with an R503 the small-sensor mode; partial = small-sensor mode on any sensor (device.small_sensor, issue 18)
    minutiae: Literal["auto", "biolock", "nbis", "off", "partial"] = "auto"
    minutiae_card: Path | None = None  # default: <model card>_minutiae.json beside the model card
    # issue 16: run at a level the deciding card's calibration does not support (warned on every start)
    allow_unsupported_level: bool = False
    # issue 16: when the minutiae decision cannot be built, decide on the embedding alone (warned on every start)
    minutiae_fallback: bool = False


@dataclass(frozen=True)
class EnrolConfig:
    captures: int = ranged(5, min=1, max=20)
    max_attempts: int = ranged(15, min=1, max=100)
    placements: int = ranged(10, min=1, max=20)  # small-sensor mode: linked touches per finger (issue 18)


@dataclass(frozen=True)
class LockoutConfig:
    max_failures: int = ranged(5, min=1, max=100)
    seconds: float = ranged(30.0, min=0.0, max=86400.0)
    growth: float = ranged(2.0, min=1.0, max=10.0)  # each repeated lockout lasts this much longer
    max_seconds: float = ranged(900.0, min=0.0, max=86400.0)  # no lockout lasts longer (issue 17: no 182-day lockouts)
    # identify mode: unknown touches count under one shared subject; a short, capped back-off slows strangers
    # without locking enrolled users out for long (their own lockouts come from verify failures only)
    identify_failures: int = ranged(5, min=1, max=100)
    identify_seconds: float = ranged(5.0, min=0.0, max=300.0)
    identify_max_seconds: float = ranged(30.0, min=0.0, max=300.0)


@dataclass(frozen=True)
class SerialUnlockConfig:
    enabled: bool = False
    port: str = "/dev/ttyAMA0"
    baud: int = ranged(115200, min=9600, max=1_000_000)
    timeout_s: float = ranged(1.0, min=0.05, max=30.0)
    retries: int = ranged(3, min=0, max=20)
    key_file: Path | None = None  # None: <state_dir>/lock.key, written by `biolock lock pair`


@dataclass(frozen=True)
class GpioUnlockConfig:
    backend: Literal["none", "gpiozero", "gpiod"] = "none"
    chip: str = "gpiochip0"  # gpiod: chip path, name or label
    relay_pin: int = ranged(17, min=0, max=1023)
    active_low: bool = False
    status_led_pin: int | None = None
    door_sensor_pin: int | None = None
    exit_button_pin: int | None = None
    pulse_ms: int | None = ranged(None, min=50, max=60_000)  # None: unlock.duration_ms
    status_led_active_low: bool = False
    door_open_level: Literal["high", "low"] = "high"  # reed switch to ground with pull-up: open door reads high
    inputs_pull_up: bool = True  # door sensor and exit button use the internal pull-up (switch to ground)


@dataclass(frozen=True)
class UnlockConfig:
    duration_ms: int = ranged(3000, min=100, max=60_000)
    serial: SerialUnlockConfig = field(default_factory=SerialUnlockConfig)
    gpio: GpioUnlockConfig = field(default_factory=GpioUnlockConfig)
    none: bool = False  # `biolock run` refuses to start with no lock configured unless this says so on purpose


@dataclass(frozen=True)
class LoggingConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    json: bool = False


@dataclass(frozen=True)
class Config:
    device: DeviceConfig = field(default_factory=DeviceConfig)
    sensor: SensorConfig = field(default_factory=SensorConfig)
    sensor_vein: SensorConfig | None = None  # fusion mode only: the vein sensor ([sensor] is then the fingerprint's)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    enrol: EnrolConfig = field(default_factory=EnrolConfig)
    lockout: LockoutConfig = field(default_factory=LockoutConfig)
    unlock: UnlockConfig = field(default_factory=UnlockConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


def config_path(explicit: Path | None) -> Path | None:
    """The config file to read: ``--config``, else ``$BIOLOCK_CONFIG``, else none (defaults)."""
    if explicit is not None:
        return explicit
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else None


def load_config(path: Path | None = None) -> Config:
    """Load and validate the configuration; ``None`` gives the defaults."""
    if path is None:
        return Config()
    config = from_table(Config, read_toml(path))
    check_modality_sections(config, path)
    return config


def check_modality_sections(config: Config, where: Path | str = "config") -> None:
    """Fusion mode needs its card; fusion-only settings outside fusion mode are a mistake (a second sensor nobody
    reads): refuse both at load, naming the file."""
    if config.device.modality == "fusion":
        if config.matching.fusion_card is None:
            raise ConfigError(f"{where}: device.modality = 'fusion' needs matching.fusion_card = the fusion card "
                              "JSON (`biolock train fusion-report --out DIR` writes DIR/fusion_card.json)")
        return
    stray = [name for name, value in (("[sensor_vein]", config.sensor_vein),
                                      ("inference.vein_model", config.inference.vein_model)) if value is not None]
    if stray:
        raise ConfigError(f"{where}: {' and '.join(stray)} only apply to device.modality = 'fusion' "
                          f"(it is {config.device.modality!r}); remove them or switch to fusion")


def resolve_state_dir(explicit: Path | None, config: Config) -> Path:
    """The state directory: ``--state-dir``, ``$BIOLOCK_STATE_DIR``, the config, systemd's, or per-user."""
    if explicit is not None:
        return explicit
    env = os.environ.get(STATE_DIR_ENV)
    if env:
        return Path(env)
    if config.device.state_dir is not None:
        return config.device.state_dir
    systemd = os.environ.get("STATE_DIRECTORY")  # set by systemd from StateDirectory=
    if systemd:
        return Path(systemd.split(":")[0])
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "biolock"
