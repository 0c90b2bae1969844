"""``biolock keys``: create the store key and rotate it."""

from __future__ import annotations

import json

import click

_PASSPHRASE_HELP = ("Protect the key file with a passphrase (read from $BIOLOCK_NEW_PASSPHRASE, else asked for). "
                    "The daemon then needs $BIOLOCK_PASSPHRASE or the systemd credential biolock-passphrase.")


@click.group("keys")
def command() -> None:
    """Create and rotate the key that encrypts the templates.

    \b
    Example:
      biolock keys init
      biolock keys rotate --passphrase
    """


def _new_passphrase() -> str:
    """A new key passphrase: the same minimum length as a backup passphrase, everywhere."""
    from device.errors import KeyError_
    from device.store.backup import MIN_PASSPHRASE
    from device.store.cli_support import ask_passphrase

    phrase = ask_passphrase("New passphrase", "BIOLOCK_NEW_PASSPHRASE", confirm=True)
    if len(phrase) < MIN_PASSPHRASE:
        raise KeyError_(f"a passphrase needs at least {MIN_PASSPHRASE} characters")
    return phrase


@command.command("init")
@click.option("--passphrase", "use_passphrase", is_flag=True, help=_PASSPHRASE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def init(app, use_passphrase: bool, as_json: bool) -> None:
    """Create a new random store key (store.key, mode 0600) and an empty store; never overwrites a key.

    \b
    Example:
      biolock --state-dir /var/lib/biolock keys init
    """
    from device.errors import KeyError_
    from device.store.keys import KEY_FILE
    from device.store.templatestore import TemplateStore

    state_dir = app.state_dir
    if (state_dir / KEY_FILE).exists():
        raise KeyError_(f"{state_dir / KEY_FILE} already exists; use `biolock keys rotate` to change it")
    if (state_dir / "store.db").exists():
        raise KeyError_(f"a store already exists in {state_dir} but its key file is missing: restore the key "
                        "(a new key cannot open the existing templates)")
    phrase = _new_passphrase() if use_passphrase else None
    with TemplateStore.open(state_dir, passphrase=phrase, lockout_config=app.config.lockout) as store:
        if as_json:
            click.echo(json.dumps({"key_file": str(state_dir / KEY_FILE), "key_id": store.key_id,
                                   "store": str(store.path), "passphrase": phrase is not None}))
        else:
            click.echo(f"created {state_dir / KEY_FILE} (key id {store.key_id}) and {store.path}")


@command.command("rotate")
@click.option("--passphrase", "use_passphrase", is_flag=True, help=_PASSPHRASE_HELP)
@click.option("--no-passphrase", "drop_passphrase", is_flag=True, help="Write the new key file without one.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def rotate(app, use_passphrase: bool, drop_passphrase: bool, as_json: bool) -> None:
    """Re-encrypt every template with a new random key in one transaction, then replace store.key.

    Without --passphrase/--no-passphrase the new key file is protected like the current one. An interrupted
    rotation is finished or undone automatically on the next open. Make a new backup afterwards if you keep
    copies of the key file.

    \b
    Example:
      biolock keys rotate
    """
    from device.errors import KeyError_
    from device.store.cli_support import open_store
    from device.store.keys import generate_key
    from device.store.templatestore import SAME

    if use_passphrase and drop_passphrase:
        raise KeyError_("choose one of --passphrase and --no-passphrase")
    phrase: object = SAME
    if use_passphrase:
        phrase = _new_passphrase()
    elif drop_passphrase:
        phrase = None
    with open_store(app) as store:
        old = store.key_id
        count = store.rotate_key(generate_key(), passphrase=phrase)
        if as_json:
            click.echo(json.dumps({"old_key_id": old, "key_id": store.key_id, "templates": count}))
        else:
            click.echo(f"rotated key {old} -> {store.key_id}: {count} templates re-encrypted")


@command.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def status(app, as_json: bool) -> None:
    """Show where the key is, how it is protected, and whether it opens the store.

    \b
    Example:
      biolock keys status
    """
    import json as _json

    from device.errors import KeyError_
    from device.store.cli_support import open_store
    from device.store.keys import KEY_FILE, needs_passphrase

    path = app.state_dir / KEY_FILE
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise KeyError_(f"no key file at {path}: run `biolock keys init`") from None
    protection = "none (raw key, file mode 0600)"
    if needs_passphrase(content):
        try:
            protection = f"passphrase ({_json.loads(content)['kdf']['name']})"
        except (ValueError, KeyError, TypeError):
            protection = "passphrase (unreadable parameters)"
    with open_store(app) as store:
        key_id, store_path = store.key_id, store.path
    if as_json:
        click.echo(_json.dumps({"key_file": str(path), "protection": protection, "key_id": key_id,
                                "store": str(store_path)}))
        return
    click.echo(f"key file:   {path}")
    click.echo(f"protection: {protection}")
    click.echo(f"key id:     {key_id} (opens {store_path})")
