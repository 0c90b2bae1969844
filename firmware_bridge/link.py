"""The host end of the lock link: a small state machine over any pyserial port.

States: ``unpaired`` (no key) -> ``paired`` (key loaded, lock not yet greeted) -> ``ready`` (HELLO answered).
Every request gets a fresh counter (persisted before sending); the answer must be authentic, carry a lock
counter above every one accepted before (persisted before use) and reference the request's counter. A lost
answer is handled by resending the *same bytes* (the lock recognises an exact retransmission and repeats its
cached answer without acting twice), with exponential backoff; after the retries, LinkTimeoutError -- which
never means "unlocked". Time comes from a passed-in monotonic clock and sleep function.

Recovery: any I/O error on the port (a USB-UART that re-enumerates, a cable pulled) closes it and raises
PortError for that request; the next request (or :meth:`Link.check`, which the daemon calls while idle) re-opens
the same path, at most once per backoff step (0.5 s doubling to 30 s), and greets the lock again. The request
that met the error is never retried on the new port: it is reported failed (fail closed).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from firmware_bridge import frame as F
from firmware_bridge import messages as M
from firmware_bridge.counters import FileCounters, MemoryCounters
from firmware_bridge.errors import (
    BridgeError,
    LinkTimeoutError,
    NackError,
    PairingError,
    PayloadError,
    PortError,
    StateError,
)
from firmware_bridge.firmware import lockproto as P
from firmware_bridge.pairing import COUNTER_FILE, KEY_FILE, read_key_file
from firmware_bridge.recovery import PortRecovery

log = logging.getLogger("biolock.lock")

UNPAIRED, PAIRED, READY = "unpaired", "paired", "ready"


class Link(PortRecovery):
    """Talks to one lock controller; not thread-safe (one request at a time)."""

    def __init__(
        self,
        port: Any,
        key: bytes | None,
        counters: MemoryCounters,
        *,
        timeout_s: float = 1.0,
        retries: int = 3,
        backoff_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        reopen: Callable[[], Any] | None = None,
        reopen_backoff_s: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self.port = port
        self.key = key
        self.counters = counters
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.clock = clock
        self.sleep = sleep
        self.reader = F.FrameReader()
        self.state = UNPAIRED if key is None else PAIRED
        self.stats: Counter[str] = Counter()
        self.info: M.HelloInfo | None = None
        self.reopen = reopen  # opens the same path again; None: a port that cannot be re-opened
        self.reopen_backoff_s = reopen_backoff_s
        self.down_reason: str | None = None if port is not None else "not open"
        self._reopen_at = 0.0  # first re-open is tried at once, then after each backoff step
        self._reopen_delay = reopen_backoff_s[0]

    # --- opening ----------------------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, state_dir: Path, *, key_file: Path | None = None, baud: int = 115200,
             must_open: bool = True, **kwargs: Any) -> Link:
        """Open ``url`` (device path or pyserial URL) with the key and counters from ``state_dir``.

        ``must_open=False`` (the daemon): a port that is absent now is not an error; the link starts down and
        is re-opened with backoff like after an I/O error.
        """
        state_dir = Path(state_dir)
        key_path = Path(key_file) if key_file is not None else state_dir / KEY_FILE
        key = read_key_file(key_path) if key_path.exists() else None

        def opener() -> Any:
            import serial

            try:
                return serial.serial_for_url(url, baudrate=baud, timeout=0.02, write_timeout=2.0)
            except (serial.SerialException, ValueError, OSError) as exc:
                raise PortError(f"cannot open lock port {url}: {exc}") from None

        try:
            port = opener()
        except PortError as exc:
            if must_open:
                raise
            log.warning("%s; will retry", exc)
            port = None
        link = cls(port, key, FileCounters(state_dir / COUNTER_FILE), reopen=opener, **kwargs)
        if port is None:
            link.down_reason = "not open yet"
        link.key_path = key_path
        link.url = url
        return link

    key_path: Path | None = None
    url: str | None = None

    def close(self) -> None:
        port, self.port = self.port, None
        self.down_reason = "closed"
        if port is None:
            return
        try:
            port.close()
        except Exception as exc:  # closing must not mask the error that made us close
            log.debug("closing lock port: %s", exc)

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the exchange -----------------------------------------------------------------------------------
    def _write(self, wire: bytes) -> None:
        port = self._ensure_port()
        try:
            port.write(b"\x00" + wire)  # a leading delimiter ends any half frame noise left in the lock
            port.flush()
        except Exception as exc:
            raise self._port_failed("cannot write to the lock port", exc) from None

    def _read_some(self, remaining: float) -> bytes:
        port = self._ensure_port()
        try:
            port.timeout = min(max(remaining, 0.001), 0.05)
            waiting = port.in_waiting
            return port.read(min(max(waiting, 1), 512))
        except Exception as exc:
            raise self._port_failed("cannot read from the lock port", exc) from None

    def _await(self, ref: int, key: bytes, answers: Collection[int], deadline: float) -> F.Frame | None:
        """The lock's authentic answer to request ``ref``, or None at the deadline. Rejections are counted."""
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                return None
            data = self._read_some(remaining)
            for item in self.reader.feed(data) if data else ():
                if isinstance(item, Exception):
                    self.stats[type(item).__name__] += 1
                    continue
                try:
                    fr = F.unpack(item, key, expect_from_lock=True)
                    self.counters.accept_rx(fr.counter)
                    got = M.ref_of(fr.payload)
                except BridgeError as exc:
                    self.stats[type(exc).__name__] += 1
                    continue
                if got != ref:
                    self.stats["stale_answer"] += 1
                    continue
                if fr.type == M.NACK:
                    nack = M.parse_nack(fr.payload)
                    raise NackError(f"lock refused: {nack.meaning}", nack.code, nack.detail)
                if fr.type not in answers:
                    self.stats["unexpected_type"] += 1
                    continue
                return fr

    def exchange(self, msg_type: int, payload: bytes, answers: Collection[int], key: bytes | None = None, *,
                 until: float | None = None) -> F.Frame:
        """Send one request and return its answer; retransmits the same bytes on silence.

        ``until`` (link clock): do not give up before then, however many tries that takes -- UNLOCK passes the
        moment its challenge expires on the lock, so "no answer" is only reported once the frame can no longer
        open anything.
        """
        key = self.key if key is None else key
        if key is None:
            raise StateError("the lock is not paired; run `biolock lock pair` first")
        self._ensure_port()  # a down port fails here, before a counter is spent
        counter = self.counters.next_tx()
        self.last_counter = counter
        wire = F.encode(key, msg_type, counter, payload)
        attempt = 0
        while True:
            if attempt:
                self.stats["retransmits"] += 1
                self.sleep(min(self.backoff_s * (2 ** (attempt - 1)), self.timeout_s))
            self._write(wire)
            answer = self._await(counter, key, answers, self.clock() + self.timeout_s)
            if answer is not None:
                return answer
            attempt += 1
            if attempt > self.retries and (until is None or self.clock() >= until):
                break
        self.stats["timeouts"] += 1
        late = "" if until is None else "; its challenge has expired, so it can no longer open the lock"
        raise LinkTimeoutError(
            f"no valid answer from the lock to {M.NAMES.get(msg_type, hex(msg_type))} after "
            f"{attempt} tries of {self.timeout_s:g} s{late}"
        )

    last_counter: int = 0

    # --- operations ---------------------------------------------------------------------------------------
    def pair(self, key_path: Path | None = None) -> str:
        """Agree a new key with a lock in pairing mode (X25519, see pairing.py) and store it; returns the firmware
        version. ``pair_code`` then holds the six digits a lock with a display would show."""
        from firmware_bridge.pairing import pair_lock, pairing_code

        if key_path is None and self.key_path is None:
            raise PairingError("no key file given: pass key_path or open the link with Link.open(state_dir)")
        self._ensure_port()
        key, firmware = pair_lock(self, Path(key_path or self.key_path))
        self.key = key
        self.state = PAIRED
        self.pair_code = pairing_code(key)
        return firmware

    pair_code: str | None = None

    def hello(self) -> M.HelloInfo:
        """Greet the lock (paired -> ready). A lock that saw higher counters tells us so and we jump past them."""
        try:
            fr = self.exchange(M.HELLO, b"", {M.HELLO_ACK})
        except NackError as exc:
            if exc.code != P.E_REPLAY:
                raise
            log.warning("lock has seen host counters up to %d; resynchronising", exc.detail)
            self.counters.bump_tx(exc.detail)
            fr = self.exchange(M.HELLO, b"", {M.HELLO_ACK})
        self.info = M.parse_hello_ack(fr.payload)
        self.state = READY
        return self.info

    def _ready(self) -> None:
        if self.state == UNPAIRED:
            raise StateError("the lock is not paired; run `biolock lock pair` first")
        if self.state == PAIRED:
            self.hello()

    def ping(self) -> float:
        """HEARTBEAT round trip in seconds (on the link's clock)."""
        self._ready()
        start = self.clock()
        self.exchange(M.HEARTBEAT, b"", {M.ACK})
        return self.clock() - start

    def status(self) -> M.LockStatus:
        self._ready()
        return M.parse_status(self.exchange(M.STATUS_REQ, b"", {M.STATUS}).payload)

    # the lock's clock may run this much slower than ours before its challenge outlives our wait (crystals: ppm)
    EXPIRY_MARGIN = 1.05

    def unlock(self, duration_ms: int, reason: str = "") -> int:
        """Challenge, then UNLOCK with the lock's nonce; returns the granted ms once ACKed.

        ``reason`` (who, why) stays on the host for its logs: protocol version 2 sends only nonce and duration.
        A NACK for a bad nonce proves that UNLOCK frame did nothing, so a fresh challenge is tried (up to
        ``retries`` times). Silence or any other refusal raises: the outcome is then "not unlocked" for the
        caller even though a lost ACK could hide a real opening -- never the other way round. Silence is only
        reported once the challenge's TTL (counted from when it arrived here) is over, so an UNLOCK held back on
        the wire cannot open the door after the caller was told it did not. ``unlock_refs``: the counters of
        the UNLOCK frames this call sent (the emulator logs the same, to match openings to requests).
        """
        self._ready()
        self.unlock_refs: list[int] = []
        for attempt in range(self.retries + 1):
            challenge = M.parse_challenge(self.exchange(M.CHALLENGE_REQ, b"", {M.CHALLENGE}).payload)
            expires = self.clock() + challenge.ttl_ms / 1000 * self.EXPIRY_MARGIN + 0.05
            self.unlock_refs.append(self.counters.tx + 1)
            try:
                fr = self.exchange(M.UNLOCK, M.unlock_payload(challenge.nonce, duration_ms), {M.ACK}, until=expires)
            except NackError as exc:
                if exc.code == P.E_BAD_NONCE and attempt < self.retries:
                    self.stats["fresh_challenge"] += 1
                    continue
                raise
            granted = M.parse_ack(fr.payload)
            if granted != duration_ms:
                raise PayloadError(f"lock granted {granted} ms instead of the {duration_ms} ms asked for")
            return granted
        raise LinkTimeoutError("no unlock after fresh challenges")  # pragma: no cover - loop always returns/raises

    def deny(self, reason: str = "") -> None:
        """Tell the lock about a refusal (it may blink); ``reason`` stays on the host."""
        self._ready()
        self.exchange(M.DENY, M.deny_payload(), {M.ACK})
