"""``biolock lockout``: list and clear failed-attempt lockouts (who is locked, for how long, and why).

Why a command: a door that locked its owner out must be recoverable by the admin without SQL, and every reset is
itself audited (``lockout.reset``), so clearing an attacker's lockout leaves a trace. ``*identify*`` is the shared
back-off for unknown touches in identify mode; every other subject is a user name (verify failures).
"""

from __future__ import annotations

import datetime as dt
import json
import time

import click


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if ts > 0 else "-"


@click.group("lockout")
def command() -> None:
    """List or clear lockouts after failed attempts.

    \b
    Example:
      biolock lockout list
      biolock lockout reset alice
      biolock lockout reset --all
    """


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def list_lockouts(app, as_json: bool) -> None:
    """Subjects with failed attempts: failures since the last lockout, lockouts in a row, seconds left.

    \b
    Example:
      biolock lockout list --json
    """
    from device.store.cli_support import open_store

    with open_store(app) as store:
        found = store.lockouts(time.monotonic())
    rows = [{"subject": name, "failures": s.failures, "lockouts": s.lockouts, "remaining_s": round(left, 1),
             "last_duration_s": s.duration, "until": _when(s.wall_until) if left > 0 else None}
            for name, s, left in found]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no failed attempts recorded")
        return
    click.echo(f"{'subject':<24} {'failures':>8} {'lockouts':>8} {'locked for':>11}  until (about)")
    for r in rows:
        left = f"{r['remaining_s']:.0f} s" if r["remaining_s"] > 0 else "free"
        click.echo(f"{r['subject']:<24} {r['failures']:>8} {r['lockouts']:>8} {left:>11}  {r['until'] or '-'}")


@command.command("reset")
@click.argument("user", required=False)
@click.option("--all", "everyone", is_flag=True, help="Clear every subject (users and the identify back-off).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def reset(app, user: str | None, everyone: bool, as_json: bool) -> None:
    """Clear USER's failures and lockout (or every subject with --all); audited as lockout.reset.

    \b
    Example:
      biolock lockout reset alice
    """
    from device.errors import StoreError
    from device.store.cli_support import open_store

    if user is not None and everyone:
        raise click.UsageError("give a USER or --all, not both")
    if user is None and not everyone:
        raise click.UsageError("give a USER (see `biolock lockout list`) or --all")
    with open_store(app) as store:
        count = store.reset_lockout(None if everyone else user)
    if not everyone and count == 0:
        raise StoreError(f"no failed attempts recorded for {user!r} (see `biolock lockout list`)")
    if as_json:
        click.echo(json.dumps({"cleared": count, "user": None if everyone else user}))
        return
    click.echo(f"cleared {count} lockout record{'s' if count != 1 else ''}")
