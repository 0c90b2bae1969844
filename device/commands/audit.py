"""``biolock audit``: read the audit log (decisions and admin changes, no biometric data)."""

from __future__ import annotations

import datetime as dt
import json

import click


@click.group("audit")
def command() -> None:
    """Read the audit log.

    \b
    Example:
      biolock audit tail -n 50
    """


@command.command("tail")
@click.option("-n", "count", type=click.IntRange(1, 100_000), default=20, show_default=True,
              help="How many of the latest records.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def tail(app, count: int, as_json: bool) -> None:
    """Show the latest audit records, oldest first.

    \b
    Example:
      biolock audit tail -n 5 --json
    """
    from device.store.cli_support import open_store

    with open_store(app) as store:
        records = store.audit_tail(count)
    for r in records:
        if as_json:
            click.echo(json.dumps(r.as_dict()))
            continue
        when = dt.datetime.fromtimestamp(r.time, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        latency = f" {r.latency_ms:.1f}ms" if r.latency_ms is not None else ""
        bucket = f" score {r.score_bucket}" if r.score_bucket else ""
        click.echo(f"{when} {r.event:<12} {r.user or '-':<16} {r.decision:<8}{bucket}{latency} {r.detail}".rstrip())
