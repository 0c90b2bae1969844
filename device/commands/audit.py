"""``biolock audit``: read the audit log (decisions and admin changes, no biometric data)."""

from __future__ import annotations

import datetime as dt
import json
import time

import click


@click.group("audit")
def command() -> None:
    """Read the audit log.

    \b
    Example:
      biolock audit tail -n 50
    """


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float) -> float:
    """``1h``, ``30m``, ``2d``, ``90s`` ago, or an ISO date/time (UTC unless it says otherwise) -> epoch seconds."""
    text = text.strip()
    if text[:-1].replace(".", "", 1).isdigit() and text[-1:] in _UNITS:
        return now - float(text[:-1]) * _UNITS[text[-1]]
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: use 1h, 30m, 2d, 90s or an ISO time such as 2026-01-31T08:00",
                                 param_hint="'--since'") from None
    return (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).timestamp()


@command.command("tail")
@click.option("-n", "count", type=click.IntRange(1, 100_000), default=20, show_default=True,
              help="How many of the latest records.")
@click.option("--since", default=None, help="Only records newer than this: 1h, 30m, 2d or an ISO time.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new records as they are written (Ctrl-C stops).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def tail(app, count: int, since: str | None, follow: bool, as_json: bool) -> None:
    """Show the latest audit records, oldest first.

    \b
    Example:
      biolock audit tail -n 5 --json
      biolock audit tail --since 1h
      biolock audit tail -f
    """
    from device.store.cli_support import open_store

    start = parse_since(since, time.time()) if since else None
    with open_store(app) as store:
        records = store.audit_tail(100_000 if start is not None else count)
        if start is not None:
            records = [r for r in records if r.time >= start][-count:]
        last = records[-1].id if records else max((r.id for r in store.audit_tail(1)), default=0)
        for r in records:
            _show(r, as_json)
        try:
            while follow:
                time.sleep(1.0)
                for r in [r for r in store.audit_tail(1000) if r.id > last]:
                    _show(r, as_json)
                    last = r.id
        except KeyboardInterrupt:  # the way to stop -f, like tail -f: not an error
            return


def _show(r, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    when = dt.datetime.fromtimestamp(r.time, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    latency = f" {r.latency_ms:.1f}ms" if r.latency_ms is not None else ""
    bucket = f" score {r.score_bucket}" if r.score_bucket else ""
    click.echo(f"{when} {r.event:<12} {r.user or '-':<16} {r.decision:<8}{bucket}{latency} {r.detail}".rstrip())
