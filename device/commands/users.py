"""``biolock users``: list, delete and rename enrolled people (like fprintd-list / fprintd-delete)."""

from __future__ import annotations

import datetime as dt
import json

import click


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


@click.group("users")
def command() -> None:
    """List, delete and rename enrolled users.

    \b
    Example:
      biolock users list
      biolock users rename alice alice.smith
      biolock users delete bob --yes
    """


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def list_users(app, as_json: bool) -> None:
    """List enrolled users, their fingers, model and whether they must re-enrol.

    A user "needs re-enrolment" when their templates belong to another model than the one the device uses now;
    they are never matched until they enrol again.

    \b
    Example:
      biolock users list --json
    """
    from device.store.cli_support import current_models, open_store

    with open_store(app) as store:
        people = store.users(current_models(app))
    if as_json:
        click.echo(json.dumps([{
            "name": u.name, "fingers": u.fingers, "modality": u.modality, "model_id": u.model_id,
            "templates": u.templates, "created": u.created, "needs_reenrol": u.needs_reenrol,
        } for u in people], indent=2))
        return
    if not people:
        click.echo("no users enrolled")
        return
    click.echo(f"{'name':<20} {'fingers':<26} {'modality':<12} {'tpl':>4}  {'enrolled':<16} model")
    for u in people:
        flag = "  (needs re-enrolment)" if u.needs_reenrol else ""
        click.echo(f"{u.name:<20} {','.join(u.fingers):<26} {u.modality:<12} {u.templates:>4}  "
                   f"{_when(u.created):<16} {u.model_id}{flag}")


@command.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def delete_user(app, name: str, yes: bool) -> None:
    """Delete a user and all of their templates.

    \b
    Example:
      biolock users delete bob --yes
    """
    from device.store.cli_support import open_store

    with open_store(app) as store:
        if not store.has_user(name):
            from device.errors import StoreError

            raise StoreError(f"no user named {name!r}")
        if not yes:
            click.confirm(f"Delete {name} and all their templates?", abort=True)
        store.delete_user(name)
    click.echo(f"deleted {name}")


@command.command("rename")
@click.argument("old")
@click.argument("new")
@click.pass_obj
def rename_user(app, old: str, new: str) -> None:
    """Rename a user (templates are kept).

    \b
    Example:
      biolock users rename alice alice.smith
    """
    from device.store.cli_support import open_store

    with open_store(app) as store:
        store.rename_user(old, new)
    click.echo(f"renamed {old} to {new}")
