"""``biolock sensor info|capture|test|emulate``: set a sensor up and check it before running the daemon."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import click

_OVERRIDES = [
    click.option("--type", "type_", type=click.Choice(["r30x", "camera", "replay"]), default=None,
                 help="Override sensor.type."),
    click.option("--port", default=None, help="Override sensor.port (r30x serial device or pyserial URL)."),
    click.option("--module", type=click.Choice(["r307", "as608", "r503"]), default=None,
                 help="Override sensor.module."),
    click.option("--baud", type=int, default=None, help="Override sensor.baud."),
    click.option("--source", default=None, help="Override sensor.source (camera index, /dev/videoN, pipeline, file)."),
    click.option("--path", type=click.Path(path_type=Path), default=None, help="Override sensor.path (replay)."),
    click.option("--vein", is_flag=True, help="Fusion mode: the [sensor_vein] section instead of [sensor]."),
]


def sensor_options(func: Any) -> Any:
    for option in reversed(_OVERRIDES):
        func = option(func)
    return func


def sensor_config(app: Any, type_: str | None, port: str | None, module: str | None, baud: int | None,
                  source: str | None, path: Path | None, vein: bool = False) -> Any:
    """The configured [sensor] (``vein``: [sensor_vein]) section with the command-line overrides applied
    (validated like the file)."""
    from device.config import SensorConfig
    from device.strictconfig import from_table

    section = app.config.sensor
    if vein:
        if app.config.sensor_vein is None:
            raise click.UsageError("--vein needs a [sensor_vein] section in the config (fusion mode)")
        section = app.config.sensor_vein
    base = dataclasses.asdict(section)
    table = {k: (str(v) if isinstance(v, Path) else v) for k, v in base.items() if v is not None}
    given = {"type": type_, "port": port, "module": module, "baud": baud, "source": source,
             "path": str(path) if path else None}
    table.update({k: v for k, v in given.items() if v is not None})
    return from_table(SensorConfig, table, "sensor_vein" if vein else "sensor")


@click.group("sensor")
def command() -> None:
    """Set up and check the fingerprint module or vein camera.

    \b
    Examples:
      biolock sensor info --type r30x --port /dev/ttyS0
      biolock sensor capture --out finger.png
      biolock sensor test --count 3
      biolock sensor test --probe-baud --port /dev/ttyAMA10
      biolock sensor test --vein          # fusion mode: the [sensor_vein] camera
      biolock sensor emulate --people 3   # an emulated R307 on /tmp/biolock-r307
    """


@command.command("info")
@sensor_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def info(app: Any, as_json: bool, **overrides: Any) -> None:
    """Open the sensor and print what it reports (module parameters, baud, packet size, image size).

    \b
    Example:
      biolock sensor info --type r30x --port /dev/ttyS0 --module r503
    """
    from device.sensors import build_sensor

    with build_sensor(sensor_config(app, **overrides)) as sensor:
        details = sensor.info()
    if as_json:
        click.echo(json.dumps(details, sort_keys=True, default=str))
    else:
        for key, value in details.items():
            click.echo(f"{key:16} {value}")


@command.command("capture")
@sensor_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the captured image (PNG).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, 600), default=None,
              help="Seconds to wait for a finger (default: sensor.finger_timeout_s).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def capture(app: Any, out: Path, timeout_s: float | None, as_json: bool, **overrides: Any) -> None:
    """Capture one image and write it as a PNG (to check placement, focus and exposure).

    \b
    Example:
      biolock sensor capture --out finger.png --timeout 20
    """
    import cv2

    from device.errors import ImageError
    from device.sensors import build_sensor

    cfg = sensor_config(app, **overrides)
    with build_sensor(cfg) as sensor:
        click.echo("place your finger on the sensor", err=True)
        frame = sensor.capture(timeout_s or cfg.finger_timeout_s)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), frame.image):
        raise ImageError(f"cannot write {out} (use a .png name in a writable folder)")
    height, width = frame.image.shape
    click.echo(json.dumps({"path": str(out), "width": width, "height": height, "sensor": frame.sensor_id})
               if as_json else f"wrote {out}: {width}x{height} from {frame.sensor_id}")


@command.command("test")
@sensor_options
@click.option("--count", type=click.IntRange(0, 100), default=1, show_default=True,
              help="Captures to take (0: only open and read the parameters).")
@click.option("--probe-baud", is_flag=True, help="R30x: find the baud rate the module answers at.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, 600), default=None,
              help="Seconds to wait for each finger (default: sensor.finger_timeout_s).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def test(app: Any, count: int, probe_baud: bool, timeout_s: float | None, as_json: bool, **overrides: Any) -> None:
    """Open the sensor, take captures and report timing and image quality for each.

    \b
    Example:
      biolock sensor test --count 3
    """
    from device.errors import SensorError
    from device.preprocess import preprocess
    from device.sensors import build_sensor

    cfg = sensor_config(app, **overrides)
    found: int | None = None
    if probe_baud:
        if cfg.type != "r30x":
            raise click.UsageError("--probe-baud is for sensor.type = 'r30x'")
        from device.sensors.r30x import probe_baud as find_baud

        found = find_baud(cfg.port, cfg.module, cfg.password)
        if found is None:
            raise SensorError(f"no answer from {cfg.port} at any baud rate 9600..115200: check power and TX/RX")
        if not as_json:
            click.echo(f"the module on {cfg.port} answers at {found} baud" +
                       ("" if found == cfg.baud else f" (configured: {cfg.baud}; set sensor.baud = {found})"))
    modality = "vein" if cfg.type == "camera" or overrides.get("vein") else "fingerprint"
    say = (lambda _line: None) if as_json else click.echo
    captures: list[dict[str, Any]] = []
    with build_sensor(cfg) as sensor:
        say(f"opened {sensor.sensor_id}")
        for n in range(1, count + 1):
            click.echo(f"[{n}/{count}] place your finger", err=True)
            start = time.perf_counter()
            frame = sensor.capture(timeout_s or cfg.finger_timeout_s)
            took = (time.perf_counter() - start) * 1000
            quality = preprocess(frame.image, modality).quality
            verdict = "ok" if quality.ok else f"poor: {quality.reason}"
            height, width = frame.image.shape
            captures.append({"width": width, "height": height, "ms": round(took, 1),
                             "quality": round(float(quality.score), 3), "ok": bool(quality.ok),
                             "reason": None if quality.ok else quality.reason})
            say(f"capture {n}: {width}x{height} in {took:.0f} ms, quality {quality.score:.2f} ({verdict})")
            sensor.wait_until_clear(timeout_s or cfg.finger_timeout_s)
        sensor_id = sensor.sensor_id
    if as_json:
        click.echo(json.dumps({"sensor": sensor_id, "baud_found": found,
                               "captures": captures, "passed": True}))
        return
    click.echo("sensor test passed")


@command.command("configure")
@sensor_options
@click.option("--set-baud", type=click.Choice([str(n * 9600) for n in range(1, 13)]), default=None,
              help="R30x: switch the module to this baud rate (remember to set sensor.baud to it).")
@click.option("--set-packet-size", type=click.Choice(["32", "64", "128", "256"]), default=None,
              help="R30x: data packet size of image uploads.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def configure(app: Any, set_baud: str | None, set_packet_size: str | None, as_json: bool,
              **overrides: Any) -> None:
    """Change an R30x module's stored settings (baud rate, upload packet size).

    A faster baud rate shortens every image upload (R307 at 57600: about 7 s; at 115200: about 4 s).

    \b
    Example:
      biolock sensor configure --set-baud 115200 --set-packet-size 256
    """
    from device.sensors import build_sensor
    from device.sensors.r30x import R30xSensor

    cfg = sensor_config(app, **overrides)
    if cfg.type != "r30x":
        raise click.UsageError("configure is for sensor.type = 'r30x'")
    with build_sensor(cfg) as sensor:
        assert isinstance(sensor, R30xSensor)
        say = (lambda _line: None) if as_json else click.echo
        if set_packet_size:
            sensor.set_packet_size(int(set_packet_size))
            say(f"packet size set to {set_packet_size} bytes")
        if set_baud:
            sensor.set_baud(int(set_baud))
            say(f"baud rate set to {set_baud}: now set sensor.baud = {set_baud} in the config")
        params = sensor.read_sys_params()
    if as_json:
        click.echo(json.dumps({"baud": params.baud, "packet_size": params.packet_size,
                               "set_baud": int(set_baud) if set_baud else None,
                               "set_packet_size": int(set_packet_size) if set_packet_size else None}))
        return
    click.echo(f"module answers at {params.baud} baud, packet size {params.packet_size}")


# `biolock sensor emulate` lives in its own module (it is longer than the set-up commands above).
from device.commands._sensor_emulate import emulate as _emulate  # noqa: E402

command.add_command(_emulate)
