"""``biolock lock``: pair with the lock controller, talk to it, and measure the link (fuzz, soak)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from device.commands.keys import seal_options

LOCK_CREDENTIAL = "biolock-lock-key"  # the systemd credential name of a sealed lock key


def _port_options(fn: Any) -> Any:
    fn = click.option("--port", default=None, help="Serial port or pyserial URL (default: unlock.serial.port).")(fn)
    fn = click.option("--baud", type=int, default=None, help="Baud rate (default: unlock.serial.baud).")(fn)
    fn = click.option("--timeout", "timeout_s", type=float, default=None,
                      help="Seconds to wait for each answer (default: unlock.serial.timeout_s).")(fn)
    return fn


def _open_link(app: Any, port: str | None, baud: int | None, timeout_s: float | None) -> Any:
    from firmware_bridge.link import Link

    cfg = app.config.unlock.serial
    return Link.open(port or cfg.port, app.state_dir, key_file=cfg.key_file, baud=baud or cfg.baud,
                     timeout_s=timeout_s or cfg.timeout_s, retries=cfg.retries)


@click.group("lock")
def command() -> None:
    """Pair with the lock controller on the serial link, check it, open it, and stress-test the protocol.

    \b
    Example:
      biolock lock emulate --flash /tmp/lockflash &   # an emulated lock on a pty, if you have no board
      biolock lock pair --port /dev/pts/5
      biolock lock status --port /dev/pts/5
    """


@command.command("pair")
@_port_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def pair_cmd(app: Any, port: str | None, baud: int | None, timeout_s: float | None, as_json: bool) -> None:
    """Agree a new key with a lock in pairing mode (X25519) and store it in <state_dir>/lock.key (0600).

    The lock accepts pairing only when it has no key (first power-up) or its pair button was held at
    power-up. The key never crosses the wire and is not printed; the six-digit pairing code is (a lock with
    a display shows the same digits). See firmware_bridge/PROTOCOL.md, "Pairing".

    \b
    Example:
      biolock lock pair --port /dev/ttyAMA0
    """
    from firmware_bridge.pairing import KEY_FILE

    cfg = app.config.unlock.serial
    key_path = Path(cfg.key_file) if cfg.key_file is not None else app.state_dir / KEY_FILE
    with _open_link(app, port, baud, timeout_s) as link:
        firmware = link.pair(key_path)
        info = link.hello()
    if as_json:
        click.echo(json.dumps({"firmware": firmware, "max_duration_ms": info.max_duration_ms, "key_file": str(key_path),
                               "pairing_code": link.pair_code}))
        return
    click.echo(f"paired with lock firmware {firmware} (max unlock {info.max_duration_ms} ms)")
    click.echo(f"key agreed by X25519 and stored in {key_path} (mode 0600); pairing code {link.pair_code}")


@command.command("seal-key")
@seal_options("/etc/biolock/lock-key.cred")
@click.pass_obj
def seal_key_cmd(app: Any, credential: Path, with_key: str, force: bool) -> None:
    """Move the lock key into a systemd credential (TPM2 where present); lock.key then holds no key.

    Like `biolock keys seal` for the store key: a copy of the SD card no longer yields the key that opens the
    lock. The service must then load it: LoadCredentialEncrypted=biolock-lock-key:CREDENTIAL.

    \b
    Example:
      sudo biolock --state-dir /var/lib/biolock lock seal-key --with-key tpm2
    """
    from device.errors import KeyError_
    from device.store.keys import write_atomic
    from device.store.sealed import seal_secret
    from firmware_bridge.pairing import KEY_FILE, read_key_file

    cfg = app.config.unlock.serial
    key_path = Path(cfg.key_file) if cfg.key_file is not None else app.state_dir / KEY_FILE
    if key_path.is_file() and key_path.read_bytes().lstrip().startswith(b"{"):
        raise KeyError_(f"{key_path} is already sealed")
    if credential.exists() and not force:
        raise KeyError_(f"{credential} already exists; choose another path or pass --force")
    key = read_key_file(key_path)  # proves there is a valid key before anything changes
    marker = seal_secret(key, credential, with_key, name=LOCK_CREDENTIAL)
    write_atomic(key_path, (json.dumps(marker, indent=1) + "\n").encode())
    click.echo(f"sealed the lock key into {credential}; {key_path} now only names it. Add to the unit:\n"
               f"  LoadCredentialEncrypted={LOCK_CREDENTIAL}:{credential}")


@command.command("ping")
@_port_options
@click.option("--count", type=click.IntRange(1, 100000), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def ping_cmd(app: Any, port: str | None, baud: int | None, timeout_s: float | None, count: int,
             as_json: bool) -> None:
    """Send HEARTBEATs and print each round trip.

    \b
    Example:
      biolock lock ping --count 10
    """
    with _open_link(app, port, baud, timeout_s) as link:
        info = link.hello()
        click.echo(f"lock firmware {info.firmware}")
        times = [link.ping() * 1000 for _ in range(count)]
    if as_json:
        click.echo(json.dumps({"firmware": info.firmware, "rtt_ms": [round(t, 3) for t in times],
                               "median_ms": round(sorted(times)[len(times) // 2], 3)}))
        return
    for i, ms in enumerate(times, 1):
        click.echo(f"heartbeat {i}: {ms:.2f} ms")
    click.echo(f"{count} answered; median {sorted(times)[len(times) // 2]:.2f} ms")


@command.command("status")
@_port_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def status_cmd(app: Any, port: str | None, baud: int | None, timeout_s: float | None, as_json: bool) -> None:
    """Ask the lock for relay, door sensor, tamper flag, firmware version and counts.

    \b
    Example:
      biolock lock status --json
    """
    from dataclasses import asdict

    with _open_link(app, port, baud, timeout_s) as link:
        st = link.status()
    if as_json:
        click.echo(json.dumps(asdict(st)))
        return
    door = "no sensor" if st.door_open is None else ("open" if st.door_open else "closed")
    click.echo(f"firmware {st.firmware}; relay {'ON' if st.relay_on else 'off'}"
               f" ({st.relay_remaining_ms} ms left); door {door}; tamper {'YES' if st.tamper else 'no'}")
    click.echo(f"unlocks since boot {st.unlocks}; rejected frames since boot {st.bad_frames}")


@command.command("test-unlock")
@_port_options
@click.option("--duration-ms", type=click.IntRange(1, 60000), default=None,
              help="How long to open (default: unlock.duration_ms).")
@click.option("--reason", default="test-unlock", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def test_unlock_cmd(app: Any, port: str | None, baud: int | None, timeout_s: float | None,
                    duration_ms: int | None, reason: str, as_json: bool) -> None:
    """Open the lock once through the full challenge -> UNLOCK -> ACK exchange.

    \b
    Example:
      biolock lock test-unlock --duration-ms 2000
    """
    duration = duration_ms or app.config.unlock.duration_ms
    with _open_link(app, port, baud, timeout_s) as link:
        start = time.monotonic()
        granted = link.unlock(duration, reason)
        elapsed = (time.monotonic() - start) * 1000
    click.echo(json.dumps({"granted_ms": granted, "confirmed_ms": round(elapsed, 1)}) if as_json else
               f"unlocked for {granted} ms (confirmed by the lock in {elapsed:.1f} ms)")


@command.command("emulate")
@click.option("--flash", "flash_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder standing for the board's flash (key and counters survive restarts here).")
@click.option("--seconds", type=float, default=None, help="Stop after this long (default: until Ctrl-C).")
@click.option("--pair-button", is_flag=True, help="Boot with the pair button held (forget the stored key).")
@click.option("--drop", type=click.FloatRange(0, 1), default=0.0, help="Probability of dropping a frame.")
@click.option("--corrupt", type=click.FloatRange(0, 1), default=0.0, help="Probability of flipping a bit.")
def emulate_cmd(flash_dir: Path, seconds: float | None, pair_button: bool, drop: float, corrupt: float) -> None:
    """Run the reference firmware on an emulated board behind a pty, and print the pty's path.

    \b
    Example:
      biolock lock emulate --flash /tmp/lockflash --seconds 600
    """
    from firmware_bridge.emulator import Emulator, Faults

    emu = Emulator(flash_dir, Faults(drop=drop, corrupt=corrupt), pair_button_held=pair_button)
    port = emu.start()
    click.echo(f"emulated lock on {port}  (flash: {flash_dir})", err=False)
    try:
        deadline = None if seconds is None else time.monotonic() + seconds
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    click.echo(f"stopped; relay activations {emu.relay_activations}, frames rejected {emu.controller.bad_frames}")


def _print_counter(title: str, counts: dict) -> None:
    click.echo(title)
    for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        click.echo(f"  {name:<32} {n:>9}")


@command.command("fuzz")
@click.option("--frames", type=click.IntRange(1, 10_000_000), default=100_000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def fuzz_cmd(frames: int, seed: int, as_json: bool) -> None:
    """Attack the real firmware logic and the host's receive path with generated frames; count outcomes.

    Random bytes, bit flips of frames that would open the lock, replays, reorders, truncations, oversize
    lengths, wrong keys, bad versions, reflected frames and replays after a counter rollback. Passes when
    no attack frame opens the lock or is accepted by the host, nothing crashes, and every rejection is typed.

    \b
    Example:
      biolock lock fuzz --frames 100000
    """
    from device.progress import tqdm
    from firmware_bridge.fuzz import Fuzzer

    fuzzer = Fuzzer(seed=seed)
    start = time.monotonic()
    try:
        with tqdm(total=frames, unit="frame", disable=None, leave=False) as bar:
            report = fuzzer.run(frames, progress=bar.update)
    finally:
        fuzzer.close()
    elapsed = time.monotonic() - start
    summary = {
        "frames": report.frames, "to_lock": report.lock_frames, "to_host": report.host_frames,
        "unlocks": report.unlocks, "host_accepted": report.host_accepted, "crashes": report.crashes,
        "untyped": report.untyped, "seconds": round(elapsed, 2), "ok": report.ok,
        "by_kind": dict(report.by_kind), "lock_outcomes": dict(report.lock_outcomes),
        "host_outcomes": dict(report.host_outcomes), "problems": report.crash_examples,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=1))
    else:
        click.echo(f"{report.frames} frames ({report.lock_frames} to the lock, {report.host_frames} to the host) "
                   f"in {elapsed:.1f} s")
        click.echo(f"unlocks caused: {report.unlocks}; accepted by host: {report.host_accepted}; "
                   f"crashes: {report.crashes}; untyped rejections: {report.untyped}")
        _print_counter("frames by attack:", report.by_kind)
        _print_counter("lock outcomes:", report.lock_outcomes)
        _print_counter("host outcomes:", report.host_outcomes)
        for problem in report.crash_examples:
            click.echo(f"  problem: {problem}")
        click.echo("PASS" if report.ok else "FAIL")
    if not report.ok:
        raise SystemExit(1)


@command.command("soak")
@click.option("--cycles", type=click.IntRange(1, 10_000_000), default=10_000, show_default=True)
@click.option("--drop", type=click.FloatRange(0, 1), default=0.02, show_default=True)
@click.option("--corrupt", type=click.FloatRange(0, 1), default=0.02, show_default=True)
@click.option("--reorder", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--delay", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--reboot", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--duration-ms", type=click.IntRange(1, 60000), default=1, show_default=True,
              help="Relay pulse per cycle (short, so cycles do not wait for the relay).")
@click.option("--timeout", "timeout_s", type=float, default=0.15, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def soak_cmd(cycles: int, drop: float, corrupt: float, reorder: float, delay: float, reboot: float,
             duration_ms: int, timeout_s: float, seed: int, as_json: bool) -> None:
    """Honest unlock cycles over a pty to the emulated lock with injected faults; check none is duplicated.

    \b
    Example:
      biolock lock soak --cycles 10000 --drop 0.02 --corrupt 0.02
    """
    from device.progress import tqdm
    from firmware_bridge.emulator import Faults
    from firmware_bridge.soak import run_soak

    faults = Faults(drop=drop, corrupt=corrupt, reorder=reorder, delay=delay, reboot=reboot, seed=seed)
    with tqdm(total=cycles, unit="cycle", disable=None, leave=False) as bar:
        r = run_soak(cycles, faults, duration_ms=duration_ms, timeout_s=timeout_s, progress=bar.update)
    lat = sorted(r.latencies_ms)
    summary = {
        "cycles": r.cycles, "succeeded": r.succeeded, "failed": r.failed, "crashes": r.crashes,
        "opened_total": r.opened_total, "duplicated": r.duplicated,
        "reported_but_not_opened": r.reported_but_not_opened, "failed_but_opened": r.failed_but_opened,
        "failures": dict(r.failures), "link": dict(r.link_stats), "faults_injected": r.faults,
        "lock_flash_writes": r.flash_writes, "seconds": round(r.elapsed_s, 1),
        "median_ms": round(lat[len(lat) // 2], 2) if lat else None,
        "p99_ms": round(lat[int(len(lat) * 0.99)], 2) if lat else None, "ok": r.ok,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=1))
    else:
        click.echo(f"{r.cycles} cycles in {r.elapsed_s:.1f} s: {r.succeeded} confirmed, {r.failed} reported failed, "
                   f"{r.crashes} crashes")
        click.echo(f"lock opened {r.opened_total} times; duplicated: {r.duplicated}; reported open but not opened: "
                   f"{r.reported_but_not_opened}; reported failed but opened: {r.failed_but_opened}")
        click.echo(f"unlock latency median {summary['median_ms']} ms, p99 {summary['p99_ms']} ms")
        _print_counter("faults injected:", r.faults)
        _print_counter("host link counters:", dict(r.link_stats))
        _print_counter("failures:", dict(r.failures))
        click.echo("PASS" if r.ok else "FAIL")
    if not r.ok:
        raise SystemExit(1)
