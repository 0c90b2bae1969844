"""``biolock store``: encrypted backup export/import and an integrity check."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group("store")
def command() -> None:
    """Back up, restore and check the template store.

    \b
    Example:
      biolock store export /media/usb/biolock.backup
      biolock store check
    """


@command.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def export(app, path: Path, force: bool, as_json: bool) -> None:
    """Write an encrypted backup of all users and templates to PATH.

    The backup is sealed with a key derived from a passphrase ($BIOLOCK_BACKUP_PASSPHRASE, else asked for),
    not with the store key, so it can be restored on a new device.

    \b
    Example:
      biolock store export /media/usb/biolock.backup
    """
    from device.store.cli_support import BACKUP_PASSPHRASE_ENV, ask_passphrase, open_store

    with open_store(app) as store:
        phrase = ask_passphrase("Backup passphrase", BACKUP_PASSPHRASE_ENV, confirm=True)
        count = store.export_backup(path, phrase, overwrite=force)
    click.echo(json.dumps({"exported": count, "path": str(path)}) if as_json else
               f"exported {count} templates to {path}")


@command.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Overwrite users that already exist (default: refuse).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def import_(app, path: Path, replace: bool, as_json: bool) -> None:
    """Restore users from an encrypted backup, all in one transaction (creating the store if needed).

    A failed import (wrong passphrase, damaged file, existing users without --replace) changes nothing: the
    state directory is left as it was, with no new store or key.

    \b
    Example:
      BIOLOCK_BACKUP_PASSPHRASE=... biolock store import /media/usb/biolock.backup
    """
    from device.statedir import unchanged_on_failure
    from device.store.cli_support import BACKUP_PASSPHRASE_ENV, ask_passphrase, open_store

    phrase = ask_passphrase("Backup passphrase", BACKUP_PASSPHRASE_ENV)
    with unchanged_on_failure(app.state_dir), open_store(app, create=True) as store:
        count = store.import_backup(path, phrase, replace=replace)
    click.echo(json.dumps({"imported": count, "path": str(path)}) if as_json else
               f"imported {count} templates from {path}")


@command.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def check(app, as_json: bool) -> None:
    """Verify every record (SQLite integrity, key, each template); report damage, change nothing.

    Exits 0 when the store is sound, 2 when damage was found.

    \b
    Example:
      biolock store check --json
    """
    from device.errors import StoreError
    from device.store.cli_support import open_store

    with open_store(app) as store:
        report = store.check()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(f"{report.path}: schema {report.schema_version}, {report.users} users, {report.enrolments} "
                   f"enrolments, {report.opened}/{report.templates} templates open")
        for line in report.notes:
            click.echo(f"note: {line}")
        for line in report.problems:
            click.echo(f"problem: {line}")
    if not report.ok:
        raise StoreError(f"store check found {len(report.problems)} problem(s); nothing was changed")
    if not as_json:
        click.echo("ok")


@command.command("accept-restore")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def accept_restore(app, yes: bool) -> None:
    """Accept store.db as it is after an intended restore of an older copy (audited).

    biolock refuses a store.db older than the generation this device recorded in store.gen (a rollback brings
    deleted users back and erases lockouts). After restoring an older store.db on purpose, run this once.

    \b
    Example:
      biolock store accept-restore --yes
    """
    from device.store.cli_support import key_passphrase
    from device.store.templatestore import TemplateStore

    if not yes:
        click.confirm("Accept this store.db as current (deleted users and cleared lockouts in it come back)?",
                      abort=True)
    state_dir = app.state_dir
    with TemplateStore.open(state_dir, create=False, lockout_config=app.config.lockout, accept_restore=True,
                            passphrase=key_passphrase(state_dir)) as store:
        report = store.check()
    click.echo(f"accepted {report.path} as current ({report.users} users); run `biolock store check`")


@command.command("bench")
@click.option("--templates", type=click.IntRange(5, 1_000_000), default=10_000, show_default=True,
              help="How many random templates to store.")
@click.option("--dim", type=click.IntRange(1, 4096), default=128, show_default=True, help="Embedding size.")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def bench(templates: int, dim: int, as_json: bool) -> None:
    """Time the store (enrol, gallery load, reads, check, rotate, backup) in a temporary directory.

    Never touches the real store. Numbers depend on the machine and its load.

    \b
    Example:
      biolock store bench --templates 10000
    """
    from device.store.bench import run_bench

    results = run_bench(templates, dim, progress=lambda msg: click.echo(msg, err=True))
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    click.echo(f"{results['templates']} templates x {dim} values, {results['per_user']} per user")
    for name, value in results.items():
        if isinstance(value, dict):
            click.echo(f"  {name:<20} median {value['median_ms']:9.3f} ms   p95 {value['p95_ms']:9.3f} ms   "
                       f"cpu {value['cpu_ms']:9.3f} ms")
    click.echo(f"  key derivation: {results['kdf_name']}")
    click.echo(f"  sealed template {results['sealed_template_bytes']} B, database "
               f"{results['db_bytes_per_template']:.0f} B per template")
