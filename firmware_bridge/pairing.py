"""The shared 32-byte key: agreed once by X25519, kept in ``<state_dir>/lock.key`` (mode 0600).

Pairing (protocol version 2): the host sends its X25519 public key in PAIR; the lock answers PAIR_ACK with its own
public key, tagged with the key both derive (HMAC-SHA256 of the shared secret over both public keys), which proves
the lock holds the same key. Someone who records the pairing learns two public keys and nothing else. Someone who
*rewrites* frames during the pairing window (button held at power-up, or first boot) could pair with each side
instead; the six-digit pairing code differs then, so a lock with a display can be compared, and a site that fears
that can write the key onto the board by hand instead (``lock_key.bin``, 32 raw bytes, with ``mpremote``).

Why O_CREAT|O_EXCL: pairing must never silently overwrite a key the lock already trusts, and the file must
never exist, even for an instant, with looser permissions. The key is shown to the installer once, as hex and
as a QR-friendly string (upper-case alphanumerics and '-', QR's compact alphabet), for provisioning a lock by
hand (``mpremote``) or for the records. Errors name the file, never its contents.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from firmware_bridge import frame as F
from firmware_bridge import messages as M
from firmware_bridge.errors import BridgeError, KeyFileError, LinkTimeoutError, PairingError
from firmware_bridge.firmware import lockproto as P
from firmware_bridge.frame import KEY_LEN

PAIR_WAIT_S = 3.0  # per try at least: the lock computes two X25519 multiplications before it answers

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
    if text.lstrip().startswith("{"):
        return _unseal(text, path)
    try:
        return parse_key_text(text)
    except KeyFileError as exc:
        raise KeyFileError(f"lock key file {path}: {exc}") from None


def _unseal(text: str, path: Path) -> bytes:
    """A lock key sealed by ``biolock lock seal-key``: the file names a systemd credential instead of holding the key.

    Why here: every reader of the lock key goes through ``read_key_file``; the sealing code lives with the store's
    (device.store.sealed), imported only when a sealed file is met, so the bridge stays importable on its own.
    """
    import json

    try:
        doc = json.loads(text)
    except ValueError:
        raise KeyFileError(f"lock key file {path} is neither hex nor a sealed-key marker") from None
    try:
        from device.store.sealed import unseal_secret
    except ImportError as exc:  # pragma: no cover - the bridge installed without the device package
        raise KeyFileError(f"lock key file {path} is sealed, but the unsealing code is missing: {exc}") from None
    from device.errors import KeyError_

    try:
        key = unseal_secret(doc, str(path))
    except KeyError_ as exc:
        raise KeyFileError(str(exc)) from None
    if len(key) != KEY_LEN:
        raise KeyFileError(f"lock key file {path}: the sealed credential holds {len(key)} bytes, not {KEY_LEN}")
    return key


def derive_key(shared: bytes, host_pub: bytes, lock_pub: bytes) -> bytes:
    """Same as the firmware's ``lockproto.pair_key``, with stdlib hmac."""
    return hmac.new(shared, P.PAIR_LABEL + host_pub + lock_pub, hashlib.sha256).digest()


def pairing_code(key: bytes) -> str:
    """Same six digits as the firmware's ``lockproto.pair_code``."""
    return f"{int.from_bytes(hmac.new(key, P.CODE_LABEL, hashlib.sha256).digest()[:4], 'big') % 1_000_000:06d}"


def pair_lock(link: Any, key_path: Path) -> tuple[bytes, str]:
    """Agree a key with a lock in pairing mode over ``link``; store it in ``key_path``. Returns (key, firmware).

    The key file is created (0600, exclusive) under a temporary name first -- before the lock commits to a key --
    and renamed into place only after the lock's PAIR_ACK proved it holds the same key.
    """
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    final = Path(key_path)
    if final.exists():
        raise PairingError(f"a lock key already exists at {final}; remove it first to pair again")
    tmp = final.with_name(final.name + ".new")
    tmp.unlink(missing_ok=True)
    write_key_file(tmp, bytes(KEY_LEN))  # can we create it? placeholder, replaced below
    try:
        secret = X25519PrivateKey.generate()
        host_pub = secret.public_key().public_bytes_raw()
        link.counters.reset()
        counter = link.counters.next_tx()
        wire = F.encode(host_pub, M.PAIR, counter, host_pub)  # tag keyed with the public key: noise check only
        got = None
        for attempt in range(link.retries + 1):
            if attempt:
                link.stats["retransmits"] += 1
                link.sleep(link.backoff_s * (2 ** (attempt - 1)))
            link._write(wire)
            got = _await_pair_ack(link, counter, secret, host_pub, link.clock() + max(link.timeout_s, PAIR_WAIT_S))
            if got is not None:
                break
        if got is None:
            raise LinkTimeoutError(f"no valid answer from the lock to PAIR after {link.retries + 1} tries: "
                                   "is it in pairing mode (first power-up, or pair button held at power-up)?")
        tmp.unlink()
        write_key_file(tmp, got[0])
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)
    return got


def _await_pair_ack(link: Any, ref: int, secret: Any, host_pub: bytes, deadline: float) -> tuple[bytes, str] | None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    while link.clock() < deadline:
        data = link._read_some(deadline - link.clock())
        for item in link.reader.feed(data) if data else ():
            if isinstance(item, Exception):
                link.stats[type(item).__name__] += 1
                continue
            try:
                parsed = P.parse(item)
                if isinstance(parsed, str) or M.ref_of(parsed[2]) != ref:
                    link.stats["stale_answer"] += 1
                    continue
                if parsed[0] == M.NACK:  # keyed with our own public key: a hint, not proof of anything
                    nack = M.parse_nack(F.unpack(item, host_pub, expect_from_lock=True).payload)
                    raise PairingError(f"the lock refused pairing: {nack.meaning}")
                if parsed[0] != M.PAIR_ACK:
                    link.stats["unexpected_type"] += 1
                    continue
                lock_pub, firmware = M.parse_pair_ack(parsed[2])
                shared = secret.exchange(X25519PublicKey.from_public_bytes(lock_pub))
                key = derive_key(shared, host_pub, lock_pub)
                fr = F.unpack(item, key, expect_from_lock=True)  # the lock holds the same key
                link.counters.accept_rx(fr.counter)
                return key, firmware
            except BridgeError as exc:
                if isinstance(exc, PairingError):
                    raise
                link.stats[type(exc).__name__] += 1
            except ValueError:  # a public key that is a low-order point: no shared secret
                link.stats["bad_public_key"] += 1
    return None
