"""``biolock users``: list, delete and rename enrolled people (like fprintd-list / fprintd-delete)."""

from __future__ import annotations

import datetime as dt
import json

import click

from device.fingers import finger_option


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
      biolock users delete bob --finger left-thumb --yes
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
            "enrolments": [{"finger": e.finger, "modality": e.modality, "model_id": e.model_id,
                            "templates": e.templates, "created": e.created} for e in u.enrolments],
        } for u in people], indent=2))
        return
    if not people:
        click.echo("no users enrolled")
        return
    click.echo(_table(people))


def _table(people) -> str:
    """One row per user and finger; "templates" is the count `enroll` printed (captures kept), per modality.

    Why per finger: a user-level sum mixed fingers and counted each capture twice when minutiae templates are
    stored beside the embeddings, so it never matched what enrolment reported.
    """
    rows = [("name", "finger", "templates", "enrolled", "model")]
    for u in people:
        fingers: dict[str, list] = {}
        for e in u.enrolments:
            fingers.setdefault(e.finger, []).append(e)
        for finger, group in sorted(fingers.items()):
            counts = ", ".join(f"{e.templates} {e.modality}" for e in group)
            models = ", ".join(sorted({e.model_id for e in group}))
            flag = " (needs re-enrolment)" if u.needs_reenrol else ""
            rows.append((u.name, finger, counts, _when(min(e.created for e in group)), models + flag))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
                     for r in rows)


@command.command("delete")
@click.argument("name")
@finger_option(default=None, help_text="Delete only this finger (like fprintd-delete -f); default: the whole user.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def delete_user(app, name: str, finger: str | None, yes: bool, as_json: bool) -> None:
    """Delete a user and all of their templates, or one finger of theirs with --finger.

    \b
    Example:
      biolock users delete bob --yes
      biolock users delete bob --finger right-index-finger --yes
    """
    from device.errors import StoreError
    from device.store.cli_support import open_store

    with open_store(app) as store:
        if not store.has_user(name):
            raise StoreError(f"no user named {name!r}")
        if finger is None:
            if not yes:
                click.confirm(f"Delete {name} and all their templates?", abort=True)
            store.delete_user(name)
        else:
            have = {e.finger for u in store.users() if u.name == name for e in u.enrolments}
            if finger not in have:
                raise StoreError(f"{name} has no {finger} enrolled (enrolled: {', '.join(sorted(have)) or 'none'})")
            if not yes:
                click.confirm(f"Delete {name}'s {finger} templates?", abort=True)
            store.delete_finger(name, finger)
    what = f"{name} ({finger})" if finger else name
    click.echo(json.dumps({"deleted": name, "finger": finger}) if as_json else f"deleted {what}")


@command.command("rename")
@click.argument("old")
@click.argument("new")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def rename_user(app, old: str, new: str, as_json: bool) -> None:
    """Rename a user (templates are kept); the new name follows the same rules as at enrolment.

    \b
    Example:
      biolock users rename alice alice.smith
    """
    from device.errors import StoreError
    from device.pipeline import check_user_name
    from device.store.cli_support import open_store

    check_user_name(new)  # 'unknown', '-' and '/' are refused here as at enrolment
    with open_store(app) as store:
        if not store.has_user(old):
            raise StoreError(f"no user named {old!r}")
        store.rename_user(old, new)
    click.echo(json.dumps({"renamed": old, "to": new}) if as_json else f"renamed {old} to {new}")
