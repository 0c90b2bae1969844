"""``biolock run``: the unlock daemon (what the systemd service starts)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click


@click.command("run")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model card JSON (default: inference.model from the config, else the shipped model; "
                   "in fusion mode the fingerprint model).")
@click.option("--user", default=None,
              help="Verify mode: the one enrolled user this device opens for (default: identify anyone enrolled).")
@click.option("--soak", type=click.IntRange(1, 10_000_000), default=None,
              help="Stop after N attempts and print the process memory (RSS) drift as JSON.")
@click.option("--poll", "poll_s", type=click.FloatRange(0.05, 60), default=1.0, show_default=True,
              help="Seconds per wait for a finger (the loop checks stop and pings the watchdog between waits).")
@click.option("--max-degraded", "max_degraded_s", type=click.FloatRange(10, 86400), default=300.0, show_default=True,
              help="Exit (status 4, for systemd to restart) after the lock link has been unhealthy this many seconds.")
@click.pass_obj
def command(app, model: Path | None, user: str | None, soak: int | None, poll_s: float,
            max_degraded_s: float) -> None:
    """Run the unlock daemon: wait for a finger, decide, signal the lock, audit; until SIGTERM.

    Sends READY=1 to systemd once the model and store are loaded (the sensor's state follows in STATUS=), and
    WATCHDOG=1 from the loop when the unit sets WatchdogSec. SIGTERM finishes the attempt in progress and exits 0.
    A sensor that disappears is re-opened with backoff; so is the lock's port; a lock link unhealthy for
    --max-degraded seconds exits 4 (systemd restarts the service). Nothing unlocks on any fault. Refuses to
    start with no lock configured ([unlock.serial] or [unlock.gpio]) unless the config says unlock.none = true.

    In fusion mode (device.modality = "fusion") each attempt captures the fingerprint ([sensor]) and then
    the vein ([sensor_vein], within its finger_timeout_s) and unlocks only on an accepted fused decision;
    a missing modality rejects unless matching.fusion_fallback is on (then it is audited).

    \b
    Examples:
      biolock --config /etc/biolock.toml run
      biolock run --user alice             # a personal device: 1:1 against alice only
      biolock run --soak 10000             # with a looping replay sensor: memory drift
    """
    import threading

    from device.app import Daemon, RssProbe, install_signal_handlers
    from device.errors import ConfigError
    from device.pipeline import Authenticator
    from device.sdnotify import SdNotifier
    from device.sensors import build_sensor
    from device.unlock import build_unlocker

    config = app.config
    if config.matching.mode == "verify" and user is None:
        raise ConfigError("matching.mode = 'verify' needs the user the device opens for: biolock run --user NAME")
    fusion = config.device.modality == "fusion"
    notifier = SdNotifier()
    notifier.status("loading the model")
    if fusion:
        from device.fusion_capture import fusion_sensor_factory
        from device.fusion_pipeline import FusionAuthenticator

        sensors = fusion_sensor_factory(config)  # no [sensor_vein]: ConfigError before any model is loaded
        auth = FusionAuthenticator.from_config(config, app.state_dir, card_paths={"fingerprint": model})
        if user is None:
            def decide(frame):
                return auth.identify(frame.images, frame.missing)
        else:
            def decide(frame):
                return auth.verify(user, frame.images, frame.missing)
    else:
        auth = Authenticator.from_config(config, app.state_dir, card_path=model)
        logging.getLogger("biolock.daemon").info("deciding with %s at threshold %.4f (%s)", auth.matcher_name,
                                                 auth.threshold, config.matching.security)
        decide = auth.identify if user is None else (lambda image: auth.verify(user, image))

        def sensors():
            return build_sensor(config.sensor)
    if auth.decision_info is not None:  # issue 16: the FMR the card supports at this level, every start (fusion too)
        logging.getLogger("biolock.daemon").info("security: %s", auth.decision_info.summary())
    try:
        if not config.unlock.serial.enabled and config.unlock.gpio.backend == "none" and not config.unlock.none:
            raise ConfigError("no lock is configured: set [unlock.serial] enabled = true or [unlock.gpio] backend, "
                              "or [unlock] none = true to run without opening anything")
        unlocker = build_unlocker(config.unlock, app.state_dir)
    except BaseException:
        auth.close()
        raise
    probe = RssProbe(every=max(1, soak // 10)) if soak else None
    stop = threading.Event()
    daemon = Daemon(sensors, decide, unlocker, duration_ms=config.unlock.duration_ms,
                    notifier=notifier, stop=stop, poll_s=poll_s, max_attempts=soak, audit=auth.store.audit,
                    on_attempt=probe, keep_history=False, decide_frame=fusion, max_degraded_s=max_degraded_s)
    from device.control import CONTROL_SOCKET, ControlServer

    try:
        daemon.control = ControlServer(app.state_dir / CONTROL_SOCKET)  # `biolock enroll` borrows the sensor here
    except BaseException:
        unlocker.close()
        auth.close()
        raise
    restore = install_signal_handlers(stop)
    try:
        stats = daemon.run()
    finally:
        restore()
        daemon.control.close()
        unlocker.close()
        auth.close()
        notifier.close()
    summary = {k: v for k, v in vars(stats).items() if k != "history"}
    if probe is not None:
        summary["memory"] = probe.report()
    click.echo(json.dumps(summary, sort_keys=True))
    if stats.degraded:
        from device.errors import UnlockError

        raise UnlockError(stats.degraded)
