"""The store key: a 32-byte random key in ``<state_dir>/store.key`` (0600), optionally wrapped by a passphrase.

Why a random key even with a passphrase: the templates are sealed with a random data key; a passphrase only
wraps that key (Argon2id, else scrypt, then AES-256-GCM), so changing or adding a passphrase never needs the
passphrase itself to be strong key material, and a wrong passphrase is a clear error (the wrap does not open).

File formats: exactly 32 raw bytes, or a small JSON document ``{"format": "biolock-key/1", "kdf": {...},
"salt": hex, "wrapped": hex}``. The passphrase comes from the caller, else ``$BIOLOCK_PASSPHRASE``, else a
systemd credential file ``$CREDENTIALS_DIRECTORY/biolock-passphrase``.

Key rotation writes the next key to ``store.key.new`` first (see ``rotation``), so an interrupted rotation can
always be finished or rolled back on the next open.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from device.errors import KeyError_
from device.store.crypto import KEY_SIZE, SealError, associated_data, check_key, open_sealed, seal

KEY_FILE = "store.key"
PENDING_KEY_FILE = "store.key.new"
PASSPHRASE_ENV = "BIOLOCK_PASSPHRASE"
CREDENTIAL_NAME = "biolock-passphrase"
KEY_FORMAT = "biolock-key/1"
MAX_KEY_FILE = 64 * 1024  # a wrapped key file is about 300 bytes

# Argon2id per RFC 9106's second recommendation (64 MiB, 3 passes); tests lower these through the module attribute.
ARGON2_PARAMS = {"name": "argon2id", "memory_kib": 65536, "iterations": 3, "lanes": 4}
SCRYPT_PARAMS = {"name": "scrypt", "n": 2**15, "r": 8, "p": 1}
_LIMITS = {"memory_kib": (8, 1 << 21), "iterations": (1, 64), "lanes": (1, 16), "n": (2, 1 << 20), "r": (1, 32),
           "p": (1, 16)}


def generate_key() -> bytes:
    """A fresh random 32-byte store key."""
    return os.urandom(KEY_SIZE)


def default_kdf() -> dict:
    """Argon2id where this OpenSSL has it, else scrypt (both come with ``cryptography``)."""
    try:
        derive_key("probe", b"\0" * 16, {**ARGON2_PARAMS, "memory_kib": 8, "iterations": 1, "lanes": 1})
    except (UnsupportedAlgorithm, ImportError, KeyError_):  # KeyError_: derive_key's "no Argon2id" message
        return dict(SCRYPT_PARAMS)
    return dict(ARGON2_PARAMS)


_REQUIRED = {"argon2id": ("memory_kib", "iterations", "lanes"), "scrypt": ("n", "r", "p")}


def _checked_params(params: dict) -> dict:
    """Refuse KDF parameters other than what this product writes (issue 17 item 7).

    Why so tight: key files and backups carry their own parameters, read *before* the passphrase can be checked;
    a crafted file asking for 2 GiB and minutes of work would be a denial of service. Nothing biolock writes ever
    exceeds ``ARGON2_PARAMS`` / ``SCRYPT_PARAMS``, so those are the upper bounds (lower values stay readable)."""
    if not isinstance(params, dict) or params.get("name") not in _REQUIRED:
        raise KeyError_(f"unknown key derivation {params.get('name') if isinstance(params, dict) else params!r}")
    product = ARGON2_PARAMS if params["name"] == "argon2id" else SCRYPT_PARAMS
    extra = sorted(set(params) - {"name", *_REQUIRED[params["name"]]})
    if extra:
        raise KeyError_(f"unexpected key derivation parameter {extra[0]!r}")
    for name in _REQUIRED[params["name"]]:
        low = _LIMITS[name][0]
        high = max(int(product[name]), low)
        value = params.get(name)
        if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
            raise KeyError_(f"key derivation parameter {name}={value!r} is outside {low}..{high} (what biolock "
                            "writes); the file was not made by this biolock or was altered")
    if params["name"] == "scrypt" and params["n"] & (params["n"] - 1):
        raise KeyError_(f"key derivation parameter n={params['n']} is not a power of two")
    return params


def derive_key(passphrase: str, salt: bytes, params: dict) -> bytes:
    """A 32-byte key from a passphrase with the given (validated) Argon2id or scrypt parameters."""
    if not passphrase:
        raise KeyError_("the passphrase is empty")
    params = _checked_params(params)
    secret = passphrase.encode("utf-8")
    if params["name"] == "scrypt":
        return Scrypt(salt=salt, length=KEY_SIZE, n=params["n"], r=params["r"], p=params["p"]).derive(secret)
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    try:
        kdf = Argon2id(salt=salt, length=KEY_SIZE, iterations=params["iterations"], lanes=params["lanes"],
                       memory_cost=params["memory_kib"])
        return kdf.derive(secret)
    except UnsupportedAlgorithm:
        raise KeyError_("this system's OpenSSL has no Argon2id, which this file was written with; use a newer "
                        "OpenSSL (3.2+) / cryptography wheel") from None


def wrap_key(key: bytes, passphrase: str, kdf: dict | None = None) -> bytes:
    """Key file content holding ``key`` sealed under a passphrase-derived key."""
    params = dict(kdf or default_kdf())
    salt = os.urandom(16)
    wrapped = seal(derive_key(passphrase, salt, params), check_key(key), associated_data(KEY_FORMAT))
    doc = {"format": KEY_FORMAT, "kdf": params, "salt": salt.hex(), "wrapped": wrapped.hex()}
    return (json.dumps(doc, indent=1) + "\n").encode()


def is_sealed_file(path: Path) -> bool:
    """Whether ``path`` is a sealed-key marker (see ``sealed``)."""
    from device.store.sealed import is_sealed

    try:
        return is_sealed(path.read_bytes()[:MAX_KEY_FILE])
    except OSError:
        return False


def needs_passphrase(content: bytes) -> bool:
    """Whether key file content is passphrase-wrapped (anything but 32 raw bytes or a sealed-key marker)."""
    from device.store.sealed import is_sealed

    return len(content) != KEY_SIZE and not is_sealed(content)


def unwrap_key(content: bytes, passphrase: str | None, source: str = KEY_FILE) -> bytes:
    """The store key from key file content; raises KeyError_ naming ``source`` for anything wrong."""
    from device.store import sealed

    if sealed.is_sealed(content):  # the key is in a systemd credential (TPM2 / host secret), not in this file
        return sealed.load(content, source)
    if not needs_passphrase(content):
        return bytes(content)
    try:
        doc = json.loads(content.decode("utf-8"))
        if doc.get("format") != KEY_FORMAT:
            raise ValueError("format")
        salt, wrapped, params = bytes.fromhex(doc["salt"]), bytes.fromhex(doc["wrapped"]), doc["kdf"]
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise KeyError_(f"{source} is neither a 32-byte key nor a {KEY_FORMAT} file (damaged?)") from None
    if passphrase is None:
        raise KeyError_(f"{source} is protected by a passphrase: set ${PASSPHRASE_ENV} or enter it when asked")
    try:
        return check_key(open_sealed(derive_key(passphrase, salt, params), wrapped, associated_data(KEY_FORMAT)))
    except SealError:
        raise KeyError_(f"wrong passphrase for {source}") from None


def passphrase_from_env() -> str | None:
    """``$BIOLOCK_PASSPHRASE``, else the systemd credential ``biolock-passphrase``, else None."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / CREDENTIAL_NAME).is_file():
        return (Path(creds) / CREDENTIAL_NAME).read_text().rstrip("\n") or None
    return None


def read_key_file(path: Path, passphrase: str | None = None) -> bytes:
    """Read and unwrap a key file, refusing one that others can read."""
    from device.saferead import read_regular

    try:
        st = path.stat()
        content = read_regular(path, MAX_KEY_FILE, KeyError_, "key file")
    except FileNotFoundError:
        raise KeyError_(f"no key file at {path}: run `biolock keys init` for a new store, or restore the key "
                        "that belongs to this store") from None
    except OSError as exc:
        raise KeyError_(f"cannot read key file {path}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyError_(f"key file {path} is accessible by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
                        f"run `chmod 600 {path}`")
    return unwrap_key(content, passphrase if passphrase is not None else passphrase_from_env(), str(path))


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_exclusive(path: Path, content: bytes) -> None:
    """Create ``path`` with mode 0600, failing if it exists (O_CREAT|O_EXCL), and make it durable."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyError_(f"{path} already exists; refusing to overwrite a key") from None
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


def write_atomic(path: Path, content: bytes) -> None:
    """Replace ``path`` atomically with a 0600 file: complete new content or the old file, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    write_exclusive(tmp, content)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def key_file_content(key: bytes, passphrase: str | None = None, kdf: dict | None = None) -> bytes:
    """What a key file for ``key`` holds: the raw key, or the key wrapped by ``passphrase``."""
    return check_key(key) if passphrase is None else wrap_key(key, passphrase, kdf)


def ensure_state_dir(state_dir: Path) -> Path:
    """Create the state directory (0700) if needed."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return state_dir


def init_key(state_dir: Path, passphrase: str | None = None, key: bytes | None = None) -> bytes:
    """Create ``store.key`` (never overwriting one) and return the key."""
    key = check_key(key) if key is not None else generate_key()
    write_exclusive(ensure_state_dir(state_dir) / KEY_FILE, key_file_content(key, passphrase))
    return key


def load_key(state_dir: Path, passphrase: str | None = None) -> bytes:
    """The store key from ``<state_dir>/store.key`` (passphrase from the argument or the environment)."""
    return read_key_file(Path(state_dir) / KEY_FILE, passphrase)
