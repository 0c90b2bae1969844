"""``biolock keys``: create the store key and rotate it."""

from __future__ import annotations

import json
from pathlib import Path

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
    from device.saferead import read_regular
    from device.store.cli_support import open_store
    from device.store.keys import KEY_FILE, MAX_KEY_FILE, needs_passphrase

    path = app.state_dir / KEY_FILE
    if not path.exists():
        raise KeyError_(f"no key file at {path}: run `biolock keys init`")
    content = read_regular(path, MAX_KEY_FILE, KeyError_, "key file")
    from device.store.sealed import is_sealed, tpm2_state

    protection = "none (raw key, file mode 0600: a copy of the SD card decrypts every template)"
    if is_sealed(content):
        try:
            doc = _json.loads(content)
            protection = f"sealed by systemd-creds ({doc['with_key']}) in {doc['credential']}"
        except (ValueError, KeyError, TypeError):
            protection = "sealed by systemd-creds (damaged marker)"
    elif needs_passphrase(content):
        try:
            protection = f"passphrase ({_json.loads(content)['kdf']['name']})"
        except (ValueError, KeyError, TypeError):
            protection = "passphrase (unreadable parameters)"
    with open_store(app) as store:
        key_id, store_path = store.key_id, store.path
    tpm2, tpm2_said = tpm2_state()
    if as_json:
        click.echo(_json.dumps({"key_file": str(path), "protection": protection, "key_id": key_id,
                                "store": str(store_path), "tpm2": tpm2, "tpm2_detail": tpm2_said}))
        return
    click.echo(f"key file:   {path}")
    click.echo(f"protection: {protection}")
    click.echo(f"key id:     {key_id} (opens {store_path})")
    click.echo(f"tpm2:       {'usable' if tpm2 else 'not available'} ({tpm2_said})")


def seal_options(default_credential: str):
    """The options of every command that seals a secret with systemd-creds (store key, lock key)."""
    def wrap(fn):
        fn = click.option("--force", is_flag=True, help="Overwrite an existing credential file.")(fn)
        fn = click.option("--with-key", "with_key", type=click.Choice(["auto", "tpm2", "host", "host+tpm2"]),
                          default="auto", show_default=True,
                          help="systemd-creds key: tpm2 binds it to this board's TPM2.")(fn)
        return click.option("--credential", type=click.Path(dir_okay=False, path_type=Path),
                            default=Path(default_credential), show_default=True,
                            help="Where to write the encrypted credential.")(fn)
    return wrap


@command.command("seal")
@seal_options("/etc/biolock/store-key.cred")
@click.pass_obj
def seal(app, credential: Path, with_key: str, force: bool) -> None:
    """Move the store key into a systemd credential (TPM2 where present); store.key then holds no key.

    The service must then load it: LoadCredentialEncrypted=biolock-store-key:CREDENTIAL. Admin commands run as
    root decrypt it with systemd-creds. See docs/store.md for what each mode protects.

    \b
    Example:
      sudo biolock --state-dir /var/lib/biolock keys seal --with-key tpm2
    """
    from device.errors import KeyError_
    from device.store.cli_support import open_store
    from device.store.keys import KEY_FILE, is_sealed_file, write_atomic
    from device.store.sealed import CREDENTIAL, seal_key

    key_path = app.state_dir / KEY_FILE
    if key_path.exists() and is_sealed_file(key_path):
        raise KeyError_(f"{key_path} is already sealed; `biolock keys unseal` first to seal it differently")
    if credential.exists() and not force:
        raise KeyError_(f"{credential} already exists; choose another path or pass --force")
    with open_store(app) as store:  # proves the key opens the store before anything changes
        key = store._key
        marker = seal_key(key, credential, with_key)
        write_atomic(key_path, marker)  # the raw or passphrase-wrapped key is replaced only after the check
    click.echo(f"sealed the store key into {credential}; {key_path} now only names it. Add to the unit:\n"
               f"  LoadCredentialEncrypted={CREDENTIAL}:{credential}")


@command.command("unseal")
@click.option("--passphrase", "use_passphrase", is_flag=True, help=_PASSPHRASE_HELP)
@click.pass_obj
def unseal(app, use_passphrase: bool) -> None:
    """Write the sealed store key back into store.key (raw, or with --passphrase), e.g. before `keys rotate`.

    \b
    Example:
      sudo biolock keys unseal --passphrase
    """
    from device.errors import KeyError_
    from device.store.cli_support import open_store
    from device.store.keys import KEY_FILE, is_sealed_file, key_file_content, write_atomic

    key_path = app.state_dir / KEY_FILE
    if not is_sealed_file(key_path):
        raise KeyError_(f"{key_path} is not sealed")
    phrase = _new_passphrase() if use_passphrase else None
    with open_store(app) as store:
        write_atomic(key_path, key_file_content(store._key, phrase))
    click.echo(f"{key_path} holds the key again ({'passphrase' if phrase else 'raw, mode 0600'}); the credential "
               "file is no longer needed")
