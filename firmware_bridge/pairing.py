"""The shared 32-byte key: made once, shown once, kept in ``<state_dir>/lock.key`` (mode 0600).

Why O_CREAT|O_EXCL: pairing must never silently overwrite a key the lock already trusts, and the file must
never exist, even for an instant, with looser permissions. The key is shown to the installer once, as hex and
as a QR-friendly string (upper-case alphanumerics and '-', QR's compact alphabet), for provisioning a lock by
hand (``mpremote``) or for the records. Errors name the file, never its contents.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from firmware_bridge.errors import KeyFileError, PairingError
from firmware_bridge.frame import KEY_LEN

KEY_FILE = "lock.key"
COUNTER_FILE = "lock.counters"
QR_PREFIX = "BIOLOCK-KEY1-"


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_LEN)


def key_to_hex(key: bytes) -> str:
    return key.hex()


def key_to_qr_text(key: bytes) -> str:
    """``BIOLOCK-KEY1-<64 upper-case hex>``: fits QR alphanumeric mode (a version 3 code)."""
    return QR_PREFIX + key.hex().upper()


def parse_key_text(text: str) -> bytes:
    """Accept plain hex or the QR string; KeyFileError (without echoing the text) otherwise."""
    value = text.strip()
    if value.upper().startswith(QR_PREFIX):
        value = value[len(QR_PREFIX):]
    try:
        key = bytes.fromhex(value)
    except ValueError:
        raise KeyFileError("key is not hexadecimal") from None
    if len(key) != KEY_LEN:
        raise KeyFileError(f"key must be {KEY_LEN} bytes ({KEY_LEN * 2} hex digits), got {len(key)} bytes")
    return key


def write_key_file(path: Path, key: bytes) -> None:
    """Create ``path`` with mode 0600 holding the key as hex; refuses to replace an existing file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise PairingError(f"a lock key already exists at {path}; remove it first to pair again") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror}") from None
    try:
        os.write(fd, (key.hex() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_key_file(path: Path) -> bytes:
    """The key in ``path``; KeyFileError if it is missing, readable by others, or malformed."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"no lock key at {path}; run `biolock lock pair` first") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"lock key file {path} is accessible by other users; chmod 600 it")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read lock key file {path}") from exc
    try:
        return parse_key_text(text)
    except KeyFileError as exc:
        raise KeyFileError(f"lock key file {path}: {exc}") from None
