"""Attack the protocol with generated frames and count what happens (``biolock lock fuzz``).

Two targets, both the real code: the firmware's LockController (on the shim, in process, no pty: fast) and
the host's receive path (FrameReader -> frame.unpack -> counters.accept_rx). Honest traffic runs alongside to
keep challenges and counters live, so every mutated frame is a mutation of a frame that *would* have opened
the lock. Success means: zero relay activations caused by attack frames, zero crashes (exceptions other than
the typed ones), and every rejection has a name (a drop reason, a NACK code, or a BridgeError class).
"""

from __future__ import annotations

import os
import random
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from firmware_bridge import frame as F
from firmware_bridge import messages as M
from firmware_bridge.counters import MemoryCounters
from firmware_bridge.errors import BridgeError
from firmware_bridge.shim.flash import FlashOs
from firmware_bridge.shim.loader import load_firmware_main
from firmware_bridge.shim.machine import Board

LOCK_KINDS = ("random", "bitflip", "replay", "reorder", "truncate", "oversize", "wrong_key", "bad_version",
              "rollback_replay", "reflect", "pair_flood")
HOST_KINDS = ("random", "bitflip", "replay", "truncate", "oversize", "wrong_key", "reflect")


class InProcessLock:
    """The real firmware on a shim board, driven synchronously: feed bytes, poll, collect its answers."""

    def __init__(self, flash_dir: Path, key: bytes | None = None) -> None:
        self.board = Board()
        self.flash = FlashOs(flash_dir)
        self.fw = load_firmware_main(self.board.machine, self.board.time, self.flash)
        self.sent: list[bytes] = []
        self.board.tx_hook = lambda _uart, data: self.sent.append(data)
        self.board.drive(self.fw.PAIR_PIN, 1)
        if key is not None:  # provisioned by hand (lock_key.bin): the fuzz needs to know the key
            Path(flash_dir).mkdir(parents=True, exist_ok=True)
            (Path(flash_dir) / "lock_key.bin").write_bytes(key)
        self.ctl = self.fw.build(str(flash_dir))
        self.uart = self.board.uarts[self.fw.UART_ID]
        self.uart.rxbuf = 1 << 20
        if key is not None:
            self.host = MemoryCounters()
            self.key = key

    def feed(self, wire: bytes) -> list[bytes]:
        self.sent.clear()
        for start in range(0, len(wire), 4096):
            self.uart.inject(wire[start:start + 4096])
            self.ctl.poll()
        return list(self.sent)

    def request(self, msg_type: int, payload: bytes) -> F.Frame:
        """An honest request from the host (counter from the host's counters) and the lock's parsed answer."""
        wire = self.honest(msg_type, payload)
        (reply,) = self.feed(wire)
        fr = F.unpack(F.cobs.decode(reply.strip(b"\x00")), self.key, expect_from_lock=True)
        self.host.accept_rx(fr.counter)
        return fr

    def honest(self, msg_type: int, payload: bytes) -> bytes:
        return b"\x00" + F.encode(self.key, msg_type, self.host.next_tx(), payload)

    def challenge(self) -> bytes:
        return M.parse_challenge(self.request(M.CHALLENGE_REQ, b"").payload).nonce


@dataclass
class FuzzReport:
    frames: int = 0
    lock_frames: int = 0
    host_frames: int = 0
    unlocks: int = 0
    host_accepted: int = 0
    crashes: int = 0
    untyped: int = 0
    by_kind: Counter = field(default_factory=Counter)
    lock_outcomes: Counter = field(default_factory=Counter)
    host_outcomes: Counter = field(default_factory=Counter)
    crash_examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.unlocks == 0 and self.host_accepted == 0 and self.crashes == 0 and self.untyped == 0


def _flip(rng: random.Random, wire: bytes) -> bytes:
    """1 to 3 distinct bits flipped (distinct: two flips of one bit would give back the honest frame)."""
    data = bytearray(wire)
    for bit in rng.sample(range(len(data) * 8), rng.randint(1, 3)):
        data[bit // 8] ^= 1 << (bit % 8)
    return bytes(data)


def _raw_wire(raw: bytes) -> bytes:
    return F.cobs.encode(raw) + b"\x00"


class Fuzzer:
    def __init__(self, seed: int = 1, workdir: Path | None = None) -> None:
        self.rng = random.Random(seed)
        base = Path("/dev/shm") if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK) else None
        self._tmp = tempfile.TemporaryDirectory(prefix="biolock-fuzz-", dir=workdir or base)
        self.key = bytes(self.rng.randrange(256) for _ in range(32))
        self.wrong = bytes(self.rng.randrange(256) for _ in range(32))
        self.lock = InProcessLock(Path(self._tmp.name) / "flash", self.key)
        self.recorded_host: list[bytes] = []  # honest host->lock frames seen on the wire (replay material)
        self.recorded_lock: list[bytes] = []  # honest lock->host frames
        self.host_rx = MemoryCounters()
        self.report = FuzzReport()
        self._record_honest_session(40)

    def close(self) -> None:
        self._tmp.cleanup()

    def _record_honest_session(self, n: int) -> None:
        """Honest traffic an eavesdropper recorded, with real unlocks (not counted against the fuzz)."""
        for _ in range(n):
            for msg_type, payload in ((M.CHALLENGE_REQ, b""), (M.HEARTBEAT, b""), (M.STATUS_REQ, b"")):
                wire = self.lock.honest(msg_type, payload)
                self.recorded_host.append(wire)
                answers = self.lock.feed(wire)
                self.recorded_lock.extend(answers)
                if msg_type == M.CHALLENGE_REQ:
                    fr = F.unpack(F.cobs.decode(answers[0].strip(b"\x00")), self.key, expect_from_lock=True)
                    nonce = M.parse_challenge(fr.payload).nonce
                    wire = self.lock.honest(M.UNLOCK, M.unlock_payload(nonce, 5))
                    self.recorded_host.append(wire)
                    self.recorded_lock.extend(self.lock.feed(wire))
        self.lock.host.rx = 0  # the host-side target below starts fresh
        self.baseline_unlocks = self.lock.ctl.unlocks

    # --- attacks on the lock ---------------------------------------------------------------------------
    def _fresh_unlock(self) -> bytes:
        """An honest UNLOCK that would open the lock right now (valid nonce, next counter). Never sent intact."""
        nonce = self.lock.challenge()
        return self.lock.honest(M.UNLOCK, M.unlock_payload(nonce, 5))

    def lock_attack(self, kind: str) -> list[bytes]:
        rng = self.rng
        if kind == "random":
            n = rng.randint(1, 130)
            body = bytes(rng.randrange(256) for _ in range(n))
            return [body + b"\x00" if rng.random() < 0.5 else _raw_wire(body)]
        if kind == "bitflip":
            return [_flip(rng, self._fresh_unlock())]
        if kind == "replay":
            return [rng.choice(self.recorded_host)]
        if kind == "reorder":
            held = self._fresh_unlock()
            self.lock.feed(self.lock.honest(M.HEARTBEAT, b""))  # a later honest frame overtakes it
            return [held]
        if kind == "truncate":
            wire = self._fresh_unlock()
            return [wire[:rng.randrange(1, len(wire) - 1)] + b"\x00"]
        if kind == "oversize":
            if rng.random() < 0.5:
                return [bytes(rng.randrange(1, 256) for _ in range(rng.randint(F.MAX_ENCODED + 1, 3000))) + b"\x00"]
            length = rng.randint(F.MAX_PAYLOAD + 1, 0xFFFF)
            body = bytes([F.VERSION, M.UNLOCK]) + (self.lock.host.tx + 1).to_bytes(8, "big") + length.to_bytes(2, "big")
            return [_raw_wire(body + bytes(rng.randint(0, 80)) + bytes(16))]
        if kind == "wrong_key":
            nonce = self.lock.challenge()
            payload = M.unlock_payload(nonce, 5)
            return [F.encode(self.wrong, M.UNLOCK, self.lock.host.tx + 1, payload)]
        if kind == "bad_version":
            raw = bytearray(F.pack(self.key, M.UNLOCK, self.lock.host.tx + 1, bytes(20)))
            raw[0] = rng.choice([0, 1, 3, 0x7F, 0xFF])  # 1: the old protocol, whose PAIR sent the key in clear
            return [_raw_wire(bytes(raw))]
        if kind == "rollback_replay":
            # the lock's counter store rolled back (flash restored from an old image): only the nonce stands
            self.lock.challenge()
            self.lock.ctl.rx_ctr = 0
            self.lock.ctl.last_tag = None
            return [w for w in self.recorded_host if w in self._recorded_unlocks()][:3]
        if kind == "reflect":
            return [rng.choice(self.recorded_lock)]
        if kind == "pair_flood":  # someone tries to re-pair a paired lock (well-formed PAIR, any public key)
            pub = bytes(rng.randrange(256) for _ in range(32))
            return [F.encode(pub, M.PAIR, rng.randint(1, 1 << 32), pub)]
        raise ValueError(kind)

    def _recorded_unlocks(self) -> set[bytes]:
        if not hasattr(self, "_unlock_wires"):
            self._unlock_wires = {w for w in self.recorded_host
                                  if F.cobs.decode(w.strip(b"\x00"))[1] == M.UNLOCK}
        return self._unlock_wires

    def _lock_outcome(self, before_drops: dict, answers: list[bytes]) -> list[str]:
        ctl = self.lock.ctl
        outcomes = [f"drop:{k}" for k, v in ctl.drops.items() for _ in range(v - before_drops.get(k, 0))]
        for wire in answers:
            try:
                fr = F.unpack(F.cobs.decode(wire.strip(b"\x00")), self.key, expect_from_lock=True)
            except BridgeError:
                outcomes.append("answer-unreadable")
                continue
            if fr.type == M.NACK:
                outcomes.append(f"nack:{M.parse_nack(fr.payload).code}")
            else:
                outcomes.append(f"answered:{M.NAMES.get(fr.type, fr.type)}")
        return outcomes

    def run_lock(self, kind: str) -> None:
        ctl = self.lock.ctl
        wires = self.lock_attack(kind)
        for wire in wires:
            before_unlocks = ctl.unlocks
            before_edges = self.lock.board.rising_edges(self.lock.fw.RELAY_PIN)
            before_drops = dict(ctl.drops)
            before_retx = ctl.retransmits
            try:
                answers = self.lock.feed(wire + b"\x00")  # a delimiter after: judge this frame now
            except Exception as exc:  # a crash of the firmware logic
                self.report.crashes += 1
                if len(self.report.crash_examples) < 5:
                    self.report.crash_examples.append(f"lock {kind}: {type(exc).__name__}: {exc}")
                continue
            self.report.frames += 1
            self.report.lock_frames += 1
            self.report.by_kind[f"lock:{kind}"] += 1
            edges = self.lock.board.rising_edges(self.lock.fw.RELAY_PIN) - before_edges
            self.report.unlocks += max(ctl.unlocks - before_unlocks, edges)
            outcomes = self._lock_outcome(before_drops, answers)
            if ctl.retransmits != before_retx:
                outcomes = ["retransmit-cached-answer"]
            if not outcomes and not wire.strip(b"\x00"):
                outcomes = ["ignored:empty"]  # nothing but delimiters
            if not outcomes:
                self.report.untyped += 1
                if len(self.report.crash_examples) < 5:
                    self.report.crash_examples.append(f"lock {kind}: no outcome for {len(wire)} bytes")
            for outcome in outcomes:
                self.report.lock_outcomes[outcome] += 1
            # answers the attack provoked go to the honest host, which must not be confused by them
            for answer in answers:
                self.recorded_lock.append(answer)
        # keep the lock's state honest for the next round: a valid challenge/answer exchange resyncs counters
        if ctl.rx_ctr < self.lock.host.tx:
            ctl.rx_ctr = self.lock.host.tx

    # --- attacks on the host's receive path -------------------------------------------------------------
    def host_attack(self, kind: str) -> list[bytes]:
        rng = self.rng
        fresh_counter = self.host_rx.rx + 1
        honest = F.encode(self.key, M.ACK, fresh_counter, (7).to_bytes(8, "big") + bytes(4))
        if kind == "random":
            body = bytes(rng.randrange(256) for _ in range(rng.randint(1, 130)))
            return [body + b"\x00" if rng.random() < 0.5 else _raw_wire(body)]
        if kind == "bitflip":
            return [_flip(rng, honest)]
        if kind == "replay":
            return [F.encode(self.key, M.ACK, rng.randint(1, max(1, self.host_rx.rx)), bytes(12))]
        if kind == "truncate":
            return [honest[:rng.randrange(1, len(honest) - 1)] + b"\x00"]
        if kind == "oversize":
            return [bytes(rng.randrange(1, 256) for _ in range(rng.randint(F.MAX_ENCODED + 1, 3000))) + b"\x00"]
        if kind == "wrong_key":
            return [F.encode(self.wrong, M.ACK, fresh_counter, bytes(12))]
        if kind == "reflect":
            return [rng.choice(self.recorded_host)]
        raise ValueError(kind)

    def run_host(self, kind: str) -> None:
        reader = F.FrameReader()
        for wire in self.host_attack(kind):
            self.report.frames += 1
            self.report.host_frames += 1
            self.report.by_kind[f"host:{kind}"] += 1
            outcomes: list[str] = []
            try:
                for item in reader.feed(wire + b"\x00"):
                    if isinstance(item, Exception):
                        outcomes.append(type(item).__name__)
                        continue
                    try:
                        fr = F.unpack(item, self.key, expect_from_lock=True)
                        self.host_rx.accept_rx(fr.counter)
                        self.report.host_accepted += 1
                        outcomes.append("ACCEPTED")
                    except BridgeError as exc:
                        outcomes.append(type(exc).__name__)
            except Exception as exc:
                self.report.crashes += 1
                if len(self.report.crash_examples) < 5:
                    self.report.crash_examples.append(f"host {kind}: {type(exc).__name__}: {exc}")
                continue
            if not outcomes and not wire.strip(b"\x00"):
                outcomes = ["ignored:empty"]
            if not outcomes:
                self.report.untyped += 1
                if len(self.report.crash_examples) < 5:
                    self.report.crash_examples.append(f"host {kind}: no outcome for {len(wire)} bytes")
            for outcome in outcomes:
                self.report.host_outcomes[outcome] += 1
        # the honest lock sends on: its next real frame moves the host's counter forward
        self.host_rx.accept_rx(self.host_rx.rx + 1)

    def run(self, frames: int, progress: Callable[[int], None] | None = None, host_share: float = 0.2) -> FuzzReport:
        while self.report.frames < frames:
            before = self.report.frames
            if self.rng.random() < host_share:
                self.run_host(self.rng.choice(HOST_KINDS))
            else:
                self.run_lock(self.rng.choice(LOCK_KINDS))
            if progress is not None:
                progress(self.report.frames - before)
        return self.report
