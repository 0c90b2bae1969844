"""What the store's admin commands share: passphrases from env or prompt, opening the store, current models.

Why here and not in each command: ``users``, ``keys``, ``store`` and ``audit`` must ask for a passphrase the same
way (environment first, so scripts and systemd work; a hidden prompt only on a terminal) and must open the store
with the configured lockout rules.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from device.errors import BiolockError, KeyError_
from device.store import keys
from device.store.templatestore import TemplateStore

BACKUP_PASSPHRASE_ENV = "BIOLOCK_BACKUP_PASSPHRASE"


def ask_passphrase(what: str, env: str, *, confirm: bool = False) -> str:
    """A passphrase from ``$env``, else a hidden prompt on a terminal, else a KeyError_ saying what to set."""
    value = os.environ.get(env)
    if value:
        return value
    if not sys.stdin.isatty():
        raise KeyError_(f"{what} needed: set ${env} (no terminal to ask on)")
    return click.prompt(what, hide_input=True, confirmation_prompt=confirm)


def key_passphrase(state_dir: Path) -> str | None:
    """The passphrase for ``store.key`` when it is wrapped (env, systemd credential or prompt), else None."""
    try:
        content = (state_dir / keys.KEY_FILE).read_bytes()
    except OSError:
        return None
    if not keys.needs_passphrase(content):
        return None
    return keys.passphrase_from_env() or ask_passphrase("Store key passphrase", keys.PASSPHRASE_ENV)


def open_store(app, *, create: bool = False) -> TemplateStore:
    """Open the store of the CLI's state directory with the configured lockout rules."""
    state_dir = app.state_dir
    return TemplateStore.open(state_dir, create=create, lockout_config=app.config.lockout,
                              passphrase=key_passphrase(state_dir))


def current_models(app) -> dict[str, str]:
    """modality -> model id of the model the device would use now (skips modalities without a usable card)."""
    try:
        from device.inference.card import load_card
        from models import default_card
    except ImportError:
        return {}
    found: dict[str, str] = {}
    configured = app.config.inference.model
    for modality in ("fingerprint", "vein"):
        try:
            if configured is not None and app.config.device.modality == modality:
                card_path = Path(configured)
            else:
                card_path = default_card(modality)
            found[modality] = load_card(card_path, verify=False).model_id
        except BiolockError:
            continue
    return found
