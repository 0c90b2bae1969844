"""Issue 17 item 6: lock link privacy and timing (protocol version 2).

Each test reproduces one of the problems found on version 1 and shows the safe outcome: pairing no longer puts
the key on the wire (X25519, both implementations against RFC 7748 and PROTOCOL.md), no user name or reason in
UNLOCK/DENY, PAIR while paired costs no flash write and raises the tamper flag, a held-back UNLOCK cannot open
the door after the host reported it failed, and a used-up send counter no longer crashes the firmware.
The firmware runs on the shim with a hand-moved clock; the host side over a pty with a passed-in clock.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import frame as F
from firmware_bridge import messages as M
from firmware_bridge.counters import MemoryCounters
from firmware_bridge.emulator import Emulator
from firmware_bridge.errors import LinkTimeoutError
from firmware_bridge.firmware import lockproto as P
from firmware_bridge.firmware.x25519 import BASE, x25519
from firmware_bridge.link import Link
from firmware_bridge.pairing import derive_key, pairing_code
from firmware_bridge.shim.flash import FlashOs
from firmware_bridge.shim.loader import load_firmware_main
from firmware_bridge.shim.machine import Board
from firmware_bridge.vectors import parse_pairing

PAIRING = {k: v for k, v in parse_pairing().items()}
H = {k: bytes.fromhex(v) for k, v in PAIRING.items() if k != "code"}


# --- X25519 and the pairing vectors ------------------------------------------------------------------------------
def test_firmware_x25519_reproduces_the_protocol_md_vectors():
    assert x25519(H["host_private"], BASE) == H["host_public"]
    assert x25519(H["lock_private"], BASE) == H["lock_public"]
    assert x25519(H["lock_private"], H["host_public"]) == H["shared"] == x25519(H["host_private"], H["lock_public"])


@settings(max_examples=25, deadline=None)
@given(secret=st.binary(min_size=32, max_size=32), peer=st.binary(min_size=32, max_size=32))
def test_firmware_x25519_equals_the_hosts_cryptography(secret, peer):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    mine = X25519PrivateKey.from_private_bytes(secret)
    assert x25519(secret, BASE) == mine.public_key().public_bytes_raw()
    try:
        expected = mine.exchange(X25519PublicKey.from_public_bytes(peer))
    except ValueError:  # a low-order point: the result is all zeros, which the firmware refuses to pair with
        expected = bytes(32)
    assert x25519(secret, peer) == expected


def test_both_sides_derive_the_vector_key_code_and_frames():
    key = H["key"]
    assert derive_key(H["shared"], H["host_public"], H["lock_public"]) == key
    assert P.pair_key(H["shared"], H["host_public"], H["lock_public"]) == key
    assert pairing_code(key) == PAIRING["code"] == f"{P.pair_code(key):06d}"
    ack = (1).to_bytes(8, "big") + H["lock_public"] + bytes([2, 0, 0])
    assert F.encode(H["host_public"], M.PAIR, 1, H["host_public"]) == H["pair_wire"]
    assert P.encode(P.Mac(H["host_public"]), M.PAIR, 1, H["host_public"]) == H["pair_wire"]
    assert F.encode(key, M.PAIR_ACK, 1, ack) == H["pair_ack_wire"] == P.encode(P.Mac(key), M.PAIR_ACK, 1, ack)


# --- the firmware on the shim --------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Board1:
    """One emulated board, synchronous; ``wire_log`` is everything both sides put on the line."""

    def __init__(self, flash: Path, clock: Clock, *, counters: bytes | None = None, key: bytes | None = None):
        self.clock = clock
        self.board = Board(clock=clock)
        self.os = FlashOs(flash)
        if key is not None:  # provisioned by hand (lock_key.bin), e.g. to start from given counters
            flash.mkdir(parents=True, exist_ok=True)
            (flash / "lock_key.bin").write_bytes(key)
            if counters is not None:
                (flash / "lock_ctr.bin").write_bytes(counters)
        self.fw = load_firmware_main(self.board.machine, self.board.time, self.os)
        self.out: list[bytes] = []
        self.board.tx_hook = lambda _u, data: self.out.append(data)
        self.board.drive(self.fw.PAIR_PIN, 1)
        self.ctl = self.fw.build(str(flash))
        self.uart = self.board.uarts[self.fw.UART_ID]
        self.opened: list[tuple[int, int]] = []
        self.ctl.on_unlock = lambda ms, ref: self.opened.append((ms, ref))
        self.wire_log = bytearray()

    def feed(self, wire: bytes) -> list[bytes]:
        self.out.clear()
        self.wire_log += wire
        self.uart.inject(wire)
        self.ctl.poll()
        for data in self.out:
            self.wire_log += data
        return list(self.out)


def host_pair(lock: Board1) -> tuple[bytes, MemoryCounters]:
    """What Link.pair does, step by step: returns the agreed key and the host's counters."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    secret = X25519PrivateKey.generate()
    pub = secret.public_key().public_bytes_raw()
    (answer,) = lock.feed(b"\x00" + F.encode(pub, M.PAIR, 1, pub))
    raw = F.cobs.decode(answer.strip(b"\x00"))
    lock_pub, firmware = M.parse_pair_ack(P.parse(raw)[2])
    key = derive_key(secret.exchange(X25519PublicKey.from_public_bytes(lock_pub)), pub, lock_pub)
    fr = F.unpack(raw, key, expect_from_lock=True)  # the lock proves it holds the same key
    counters = MemoryCounters()
    counters.tx, counters.rx = 1, fr.counter
    assert firmware == "2.0.0"
    return key, counters


def ask(lock: Board1, key: bytes, counters: MemoryCounters, msg_type: int, payload: bytes = b"") -> F.Frame:
    (answer,) = lock.feed(b"\x00" + F.encode(key, msg_type, counters.next_tx(), payload))
    fr = F.unpack(F.cobs.decode(answer.strip(b"\x00")), key, expect_from_lock=True)
    counters.accept_rx(fr.counter)
    return fr


def test_a_recorded_pairing_does_not_contain_the_key_and_the_key_works(tmp_path):
    lock = Board1(tmp_path / "flash", Clock())
    key, counters = host_pair(lock)
    assert (tmp_path / "flash" / "lock_key.bin").read_bytes() == key
    assert key not in bytes(lock.wire_log)  # version 1 sent it in PAIR: one sniffed pairing opened the lock
    nonce = M.parse_challenge(ask(lock, key, counters, M.CHALLENGE_REQ).payload).nonce
    assert M.parse_ack(ask(lock, key, counters, M.UNLOCK, M.unlock_payload(nonce, 500)).payload) == 500
    assert lock.opened == [(500, counters.tx)] and f"{lock.ctl.pair_code:06d}" == pairing_code(key)


def test_pair_while_paired_costs_no_flash_raises_tamper_and_is_answered_once_a_second(tmp_path):
    clock = Clock()
    lock = Board1(tmp_path / "flash", clock)
    key, counters = host_pair(lock)
    writes = lock.os.writes
    answers = 0
    for i in range(200):  # 200 PAIRs in 0.2 s, each with another public key
        pub = bytes([i % 251 + 1]) * 32
        answers += len(lock.feed(b"\x00" + F.encode(pub, M.PAIR, 1 + i, pub)))
        clock.t += 0.001
    assert lock.os.writes == writes  # version 1: one flash write per 16 such frames
    assert answers == 1  # rate-limited: one "pairing closed" per second
    clock.t += 1.0
    (nack,) = lock.feed(b"\x00" + F.encode(bytes(range(32)), M.PAIR, 7, bytes(range(32))))
    fr = F.unpack(F.cobs.decode(nack.strip(b"\x00")), bytes(range(32)), expect_from_lock=True)
    assert M.parse_nack(fr.payload).code == P.E_PAIRING_CLOSED and fr.counter == 1  # no counter of the lock spent
    assert lock.ctl.drops[P.D_PAIRING_CLOSED] == 201
    assert M.parse_status(ask(lock, key, counters, M.STATUS_REQ).payload).tamper  # version 1: never
    assert (tmp_path / "flash" / "lock_key.bin").read_bytes() == key


def test_a_held_back_unlock_released_after_the_challenge_ttl_opens_nothing(tmp_path):
    clock = Clock()
    lock = Board1(tmp_path / "flash", clock)
    key, counters = host_pair(lock)
    challenge = M.parse_challenge(ask(lock, key, counters, M.CHALLENGE_REQ).payload)
    assert challenge.ttl_ms == 2000  # shorter than the host's default 4 x 1 s of tries
    held = b"\x00" + F.encode(key, M.UNLOCK, counters.next_tx(), M.unlock_payload(challenge.nonce, 3000))
    clock.t += challenge.ttl_ms / 1000  # an attacker holds it until the TTL is over ...
    (answer,) = lock.feed(held)  # ... and releases it
    fr = F.unpack(F.cobs.decode(answer.strip(b"\x00")), key, expect_from_lock=True)
    assert M.parse_nack(fr.payload).code == P.E_BAD_NONCE and lock.opened == []
    assert lock.board.level(lock.fw.RELAY_PIN) == 0


def test_a_used_up_send_counter_stops_the_lock_acting_without_crashing(tmp_path):
    key = bytes(range(32))
    counters_file = (0).to_bytes(8, "big") + (P.COUNTER_MAX - 1).to_bytes(8, "big")  # rx 0, tx reserved MAX-1
    lock = Board1(tmp_path / "flash", Clock(), key=key, counters=counters_file)
    host = MemoryCounters()
    last = ask(lock, key, host, M.HEARTBEAT)  # the very last counter the lock may send
    assert last.counter == P.COUNTER_MAX
    challenge_req = b"\x00" + F.encode(key, M.CHALLENGE_REQ, host.next_tx(), b"")
    assert lock.feed(challenge_req) == [] and lock.feed(challenge_req) == []  # no answer possible: no action
    unlock = b"\x00" + F.encode(key, M.UNLOCK, host.next_tx(), M.unlock_payload(bytes(16), 100))
    assert lock.feed(unlock) == [] and lock.feed(unlock) == []  # version 1: uart.write(None) -> crash
    assert lock.ctl.drops[P.D_EXHAUSTED] == 4 and lock.opened == []
    lock.ctl.poll()  # still alive


# --- the host over a pty -------------------------------------------------------------------------------------------
class FastForwardClock:
    """Real monotonic time; while ``fast`` is set, every call also moves it ``step`` further ahead.

    Why not a clock that moves only per call: the link's deadlines are then counted in reads, not time, and a
    read returns at the first byte -- one byte of an answer, or the lock's repeated answer to a retransmission,
    used up a whole try of HELLO or CHALLENGE_REQ. Only the wait for the swallowed UNLOCK is sped up.
    """

    def __init__(self, step: float) -> None:
        self.offset, self.step, self.fast = 0.0, step, False
        self.now = time.monotonic()

    def __call__(self) -> float:
        if self.fast:
            self.offset += self.step
        self.now = time.monotonic() + self.offset
        return self.now


def test_host_reports_a_lost_unlock_only_once_its_challenge_has_expired(tmp_path):
    with Emulator(tmp_path / "flash") as emu:
        with Link.open(emu.port, tmp_path / "state", timeout_s=0.5) as link:
            link.pair()
        clock = FastForwardClock(0.05)
        seen: dict[str, float] = {}

        class Swallowing(Link):
            """The UNLOCK frames vanish on the wire (held back by someone); everything else goes through."""

            def exchange(self, msg_type, payload, answers, key=None, **kw):
                if msg_type == M.UNLOCK:
                    seen["challenge"] = clock.now
                    emu.unplugged = clock.fast = True
                return super().exchange(msg_type, payload, answers, key, **kw)

        # 2 tries of 0.5 s: the host's own tries end well before the lock's 2 s TTL does
        link = Swallowing.open(emu.port, tmp_path / "state", timeout_s=0.5, retries=1, clock=clock,
                               sleep=lambda s: None)
        with pytest.raises(LinkTimeoutError, match="challenge has expired") as info:
            link.unlock(100, "alice")
        link.close()
    waited = clock.now - seen["challenge"]
    assert waited >= 2.0, f"gave up {waited:.2f} s after the challenge; the lock honours it for 2 s"
    assert "alice" not in str(info.value) and emu.unlock_log == []


def test_no_user_name_or_reason_on_the_wire(tmp_path):
    sniffed = bytearray()
    with Emulator(tmp_path / "flash") as emu:
        for pipe in (emu.to_lock, emu.to_host):  # a wire tap, both directions
            pipe.send = lambda wire, send=pipe.send: (sniffed.extend(wire), send(wire))[1]
        with Link.open(emu.port, tmp_path / "state", timeout_s=0.5) as link:
            link.pair()
            link.unlock(100, "alice: match")
            link.deny("bob: no match")
            key = link.key
    assert emu.unlock_log and emu.controller.denies == 1
    for secret in (b"alice", b"bob: no", b"match", key):
        assert secret not in sniffed  # version 1: "alice: match" and the key itself were on the wire
