"""The store key sealed by ``systemd-creds`` (TPM2 where the board has one), so ``store.key`` holds no key.

Why: with a raw ``store.key`` beside ``store.db`` a copy of the SD card decrypts every template (issue 17 item
5). ``biolock keys seal`` encrypts the key into a systemd credential (``systemd-creds encrypt``: TPM2-bound with
``--with-key=tpm2``, or the host secret ``/var/lib/systemd/credential.secret``) and replaces ``store.key`` with a
small marker naming the credential. The service gets the key from systemd with
``LoadCredentialEncrypted=biolock-store-key:/etc/biolock/store-key.cred`` (in ``$CREDENTIALS_DIRECTORY``, in
memory, never on the card); an admin command run as root decrypts it with ``systemd-creds decrypt``.

Marker: ``{"format": "biolock-key/1", "sealed": "systemd-creds", "credential": PATH, "with_key": ..., "kcv": hex}``.
"""

from __future__ import annotations

import hmac
import json
import os
import shutil
import subprocess
from pathlib import Path

from device.errors import KeyError_
from device.store.crypto import KEY_SIZE, check_key, key_check_value

CREDENTIAL = "biolock-store-key"
SEALED = "systemd-creds"
WITH_KEYS = ("auto", "tpm2", "host", "host+tpm2")
_TIMEOUT_S = 60


def is_sealed(content: bytes) -> bool:
    """Whether key file content is a sealed-key marker (not a key, not a passphrase-wrapped key)."""
    if len(content) == KEY_SIZE or not content.lstrip().startswith(b"{"):
        return False
    try:
        return json.loads(content.decode("utf-8")).get("sealed") == SEALED
    except (ValueError, AttributeError):
        return False


def tool() -> str:
    """The systemd-creds executable, or a KeyError_ that explains what is missing."""
    found = shutil.which("systemd-creds")
    if not found:
        raise KeyError_("systemd-creds is not installed (systemd 250 or newer provides it); protect the key with a "
                        "passphrase instead (`biolock keys rotate --passphrase`)")
    return found


def tpm2_state() -> tuple[bool, str]:
    """(usable, what ``systemd-creds has-tpm2`` said) -- a Raspberry Pi has no TPM2 unless one is added."""
    try:
        done = subprocess.run([tool(), "has-tpm2"], capture_output=True, text=True, timeout=_TIMEOUT_S)
    except (KeyError_, OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    words = " ".join(done.stdout.split())
    return done.returncode == 0, words or f"exit {done.returncode}"


def _run(args: list[str], data: bytes, what: str) -> bytes:
    try:
        done = subprocess.run([tool(), *args], input=data, capture_output=True, timeout=_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise KeyError_(f"systemd-creds {what} timed out after {_TIMEOUT_S} s") from None
    except OSError as exc:
        raise KeyError_(f"cannot run systemd-creds: {exc.strerror}") from None
    if done.returncode != 0:
        said = " ".join(done.stderr.decode("utf-8", "replace").split())[:200]
        raise KeyError_(f"systemd-creds {what} failed: {said or f'exit {done.returncode}'}")
    return done.stdout


def seal_secret(secret: bytes, credential: Path, with_key: str, name: str = CREDENTIAL) -> dict:
    """Encrypt ``secret`` into ``credential`` as systemd credential ``name`` (atomically, 0600, checked to decrypt);
    returns the marker fields to keep in place of the secret. Also for other secrets (e.g. the lock link key as
    ``biolock-lock-key``: its reader then calls :func:`unseal_secret` on the marker)."""
    if with_key not in WITH_KEYS:
        raise KeyError_(f"--with-key must be one of {', '.join(WITH_KEYS)}")
    if "tpm2" in with_key:
        usable, said = tpm2_state()
        if not usable:
            raise KeyError_(f"no usable TPM2 on this machine (systemd-creds has-tpm2: {said}); use --with-key host "
                            "(see docs/store.md: it does not protect a stolen SD card) or a passphrase")
    credential = Path(credential)
    tmp = credential.with_name(f".{credential.name}.tmp")
    blob = _run(["encrypt", f"--with-key={with_key}", f"--name={name}", "-", "-"], secret, "encrypt")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise KeyError_(f"cannot write {credential}: {exc.strerror} (does {credential.parent} exist?)") from None
    if _run(["decrypt", f"--name={name}", str(tmp), "-"], b"", "decrypt") != secret:
        tmp.unlink(missing_ok=True)
        raise KeyError_("the sealed credential did not decrypt to the secret; nothing was changed")
    os.replace(tmp, credential)
    return {"format": "biolock-key/1", "sealed": SEALED, "credential": str(credential), "name": name,
            "with_key": with_key}


def unseal_secret(doc: dict, source: str) -> bytes:
    """The secret a marker names: ``$CREDENTIALS_DIRECTORY/<name>`` (the service), else ``systemd-creds decrypt``."""
    try:
        credential, name = str(doc["credential"]), str(doc.get("name", CREDENTIAL))
    except (KeyError, TypeError, AttributeError):
        raise KeyError_(f"{source} is a damaged sealed-key marker") from None
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    given = Path(directory) / name if directory else None
    if given is not None and given.is_file():
        from device.saferead import read_regular

        return read_regular(given, 4096, KeyError_, "credential")
    if not Path(credential).is_file():
        raise KeyError_(f"{source}: the key is sealed in {credential}, which is missing; restore it (the key "
                        "cannot be recovered without it)")
    try:
        return _run(["decrypt", f"--name={name}", credential, "-"], b"", "decrypt")
    except KeyError_ as exc:
        raise KeyError_(f"{source}: the key is sealed in {credential} and could not be decrypted here ({exc}); "
                        f"run as root on this machine, or in the service with LoadCredentialEncrypted={name}:"
                        f"{credential}") from None


def seal_key(key: bytes, credential: Path, with_key: str) -> bytes:
    """Seal the store key into ``credential``; returns the marker to write over ``store.key``."""
    doc = seal_secret(check_key(key), credential, with_key)
    doc["kcv"] = key_check_value(key).hex()
    return (json.dumps(doc, indent=1) + "\n").encode()


def load(content: bytes, source: str) -> bytes:
    """The store key a marker names, checked against the marker's key check value."""
    try:
        doc = json.loads(content.decode("utf-8"))
        kcv = bytes.fromhex(doc["kcv"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise KeyError_(f"{source} is a damaged sealed-key marker") from None
    key = unseal_secret(doc, source)
    if len(key) != KEY_SIZE or not hmac.compare_digest(key_check_value(key), kcv):
        raise KeyError_(f"the credential for {source} does not hold this store's key (a credential of another "
                        "store or machine?)")
    return key
