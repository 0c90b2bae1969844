# biolock lock controller: the state machine that owns the relay. MicroPython subset (see lockproto.py).
#
# Rules it keeps (see ../PROTOCOL.md): only frames with a valid tag and a counter above the highest accepted
# one are acted on, and that counter is written to flash BEFORE acting; UNLOCK must carry the nonce of the
# one outstanding challenge, which is single-use and expires; the relay drops when its time is up, whatever
# the link does; an exact retransmission of the last accepted frame gets the cached answer and no action.
# Pairing is an X25519 key agreement (x25519.py): the key never crosses the wire. A PAIR while paired costs no
# flash write, counts toward the tamper flag and is answered at most once a second. A used-up send counter
# makes the lock refuse to act (it could not confirm) instead of crashing.

from lockproto import (
    ACK,
    CHALLENGE,
    CHALLENGE_REQ,
    COUNTER_MAX,
    D_DIRECTION,
    D_EXHAUSTED,
    D_PAIRING_CLOSED,
    D_TAG,
    D_UNPAIRED,
    DENY,
    E_BAD_DURATION,
    E_BAD_NONCE,
    E_BAD_PAYLOAD,
    E_PAIRING_CLOSED,
    E_REPLAY,
    E_UNKNOWN_TYPE,
    FROM_LOCK,
    HEARTBEAT,
    HELLO,
    HELLO_ACK,
    KEY_LEN,
    MAX_PAYLOAD,
    NACK,
    NONCE_LEN,
    PAIR,
    PAIR_ACK,
    STATUS,
    STATUS_REQ,
    UNLOCK,
    Deframer,
    Mac,
    be,
    ct_equal,
    encode,
    pair_code,
    pair_key,
    parse,
    u16,
    u32,
    u64,
    verify,
)
from x25519 import BASE, x25519

FW_VERSION = (2, 0, 0)
MAX_DURATION_MS = 60000
# shorter than the host's default retry window (4 x 1 s + backoff); the host also keeps listening until a
# challenge's TTL is over before it reports an UNLOCK as failed, so a delayed UNLOCK cannot open the door later
CHALLENGE_TTL_MS = 2000
PAIR_NACK_INTERVAL_MS = 1000  # at most one "pairing closed" answer per second
TX_RESERVE = 16  # send counters reserved in flash per write (flash wear)
TAMPER_THRESHOLD = 16  # unauthenticated or malformed frames since boot before STATUS reports tamper

F_RELAY = 1
F_DOOR_OPEN = 2
F_TAMPER = 4
F_DOOR_SENSOR = 8
F_PAIRED = 16


class FlashStore:
    """Key and counters in the board's filesystem (littlefs on the Pico); atomic by write-then-rename."""

    KEY = "lock_key.bin"
    COUNTERS = "lock_ctr.bin"

    def __init__(self, root, os_mod):
        self.root = root
        self.os = os_mod

    def _path(self, name):
        return self.root + "/" + name if self.root else name

    def _read(self, name):
        try:
            with open(self._path(name), "rb") as fh:
                return fh.read()
        except OSError:
            return None

    def _write(self, name, data):
        tmp = self._path(name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
        self.os.rename(tmp, self._path(name))

    def load_key(self):
        data = self._read(self.KEY)
        return data if data is not None and len(data) == KEY_LEN else None

    def save_key(self, key):
        self._write(self.KEY, key)

    def erase(self):
        for name in (self.KEY, self.COUNTERS):
            try:
                self.os.remove(self._path(name))
            except OSError:
                pass

    def load_counters(self):
        data = self._read(self.COUNTERS)
        if data is None or len(data) != 16:
            return 0, 0
        return be(data[:8]), be(data[8:])

    def save_counters(self, rx, tx):
        self._write(self.COUNTERS, u64(rx) + u64(tx))


class LockController:
    """Reads frames from the UART, answers them, drives the relay. Call poll() in a loop."""

    def __init__(self, uart, relay, store, clock_ms, rng, door=None, led=None, pairing=False, on_unlock=None):
        self.uart = uart
        self.relay = relay
        self.store = store
        self.clock_ms = clock_ms
        self.rng = rng
        self.door = door
        self.led = led
        self.on_unlock = on_unlock
        if pairing:  # the pair button was held at boot: forget the old key
            store.erase()
        key = store.load_key()
        self.mac = Mac(key) if key is not None else None
        self.pairing_open = key is None
        # flash holds the highest accepted host counter and the END of the block of send counters reserved
        # so far; after a restart sending resumes above that block, so no counter is ever sent twice
        self.rx_ctr, self.tx_reserved = store.load_counters()
        self.tx_ctr = self.tx_reserved
        self.deframer = Deframer()
        self.relay_until = None
        self.nonce = None
        self.nonce_until = 0
        self.last_tag = None
        self.last_reply = None
        self.bad_frames = 0
        self.unlocks = 0
        self.denies = 0
        self.retransmits = 0
        self.drops = {}
        self.pair_code = None  # six digits after a pairing, for a lock with a display (the host prints them)
        self.pair_nack_at = None  # when the last "pairing closed" answer went out
        self.feed_watchdog = None  # main.run sets it to the watchdog's feed (X25519 takes a while on a Pico)
        self._set_relay(False)

    # --- hardware -------------------------------------------------------------------------------------
    def _set_relay(self, on):
        self.relay.value(1 if on else 0)
        if self.led is not None:
            self.led.value(1 if on else 0)

    def tick(self):
        """Drop the relay once its time is up (called every loop, link or no link)."""
        if self.relay_until is not None and self.clock_ms() >= self.relay_until:
            self.relay_until = None
            self._set_relay(False)

    def relay_on(self):
        return self.relay_until is not None

    def poll(self):
        self.tick()
        data = self.uart.read()
        if data:
            for item in self.deframer.feed(data):
                if isinstance(item, str):
                    self._drop(item)
                else:
                    self.handle(item)
        self.tick()

    # --- frames ---------------------------------------------------------------------------------------
    def _drop(self, reason):
        self.bad_frames += 1
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def _send(self, mac, msg_type, payload):
        if self.tx_ctr >= COUNTER_MAX:
            return None  # counter exhausted: re-pair; never wrap
        if self.tx_ctr >= self.tx_reserved:  # one flash write per TX_RESERVE answers, not one per answer
            self.tx_reserved = min(self.tx_ctr + TX_RESERVE, COUNTER_MAX)
            self.store.save_counters(self.rx_ctr, self.tx_reserved)
        self.tx_ctr += 1
        wire = b"\x00" + encode(mac, msg_type, self.tx_ctr, payload)  # leading 0x00 flushes line noise
        self.uart.write(wire)
        return wire

    def _nack(self, ref, code, detail):
        return self._send(self.mac, NACK, u64(ref) + bytes([code]) + u64(detail))

    def handle(self, raw):
        parsed = parse(raw)
        if isinstance(parsed, str):
            self._drop(parsed)
            return
        msg_type, counter, payload = parsed[0], parsed[1], parsed[2]
        if msg_type & FROM_LOCK:
            self._drop(D_DIRECTION)
            return
        if msg_type == PAIR:
            self._pair(parsed)
            return
        if self.mac is None:
            self._drop(D_UNPAIRED)
            return
        if not verify(self.mac, parsed):
            self._drop(D_TAG)
            return
        if counter <= self.rx_ctr:
            if counter == self.rx_ctr and self.last_tag is not None and ct_equal(parsed[4], self.last_tag):
                self.retransmits += 1  # our answer was lost: repeat it, do nothing again
                if self.last_reply is not None:
                    self.uart.write(self.last_reply)
            else:
                self._nack(counter, E_REPLAY, self.rx_ctr)
            return
        if self.tx_ctr >= COUNTER_MAX:  # could not answer: act on nothing (re-pair with the pair button)
            self._drop(D_EXHAUSTED)
            return
        self.rx_ctr = counter
        self.store.save_counters(self.rx_ctr, self.tx_reserved)  # persisted before acting
        self.last_tag = parsed[4]
        self.last_reply = self._dispatch(msg_type, counter, payload)

    def _dispatch(self, msg_type, ref, payload):
        if msg_type == HELLO:
            return self._send(self.mac, HELLO_ACK, u64(ref) + bytes(FW_VERSION) + bytes([MAX_PAYLOAD])
                              + u32(MAX_DURATION_MS))
        if msg_type == HEARTBEAT:
            return self._send(self.mac, ACK, u64(ref) + u32(0))
        if msg_type == STATUS_REQ:
            return self._send(self.mac, STATUS, u64(ref) + self._status())
        if msg_type == CHALLENGE_REQ:
            self.nonce = bytes(self.rng(NONCE_LEN))
            self.nonce_until = self.clock_ms() + CHALLENGE_TTL_MS
            return self._send(self.mac, CHALLENGE, u64(ref) + self.nonce + u16(CHALLENGE_TTL_MS))
        if msg_type == UNLOCK:
            return self._unlock(ref, payload)
        if msg_type == DENY:
            if len(payload) != 0:  # nothing about who or why travels on the wire
                return self._nack(ref, E_BAD_PAYLOAD, 0)
            self.denies += 1
            return self._send(self.mac, ACK, u64(ref) + u32(0))
        return self._nack(ref, E_UNKNOWN_TYPE, msg_type)

    def _status(self):
        flags = F_PAIRED
        if self.relay_on():
            flags |= F_RELAY
        if self.bad_frames >= TAMPER_THRESHOLD:
            flags |= F_TAMPER
        if self.door is not None:
            flags |= F_DOOR_SENSOR
            if self.door.value():
                flags |= F_DOOR_OPEN
        remaining = 0
        if self.relay_until is not None:
            remaining = max(0, self.relay_until - self.clock_ms())
        return (bytes([flags]) + bytes(FW_VERSION) + u32(remaining) + u32(min(self.bad_frames, 0xFFFFFFFF))
                + u32(self.unlocks))

    def _unlock(self, ref, payload):
        nonce, self.nonce = self.nonce, None  # single use, whatever happens next
        if len(payload) != NONCE_LEN + 4:  # nonce, duration: no user name or reason on the wire
            return self._nack(ref, E_BAD_PAYLOAD, 0)
        if nonce is None or self.clock_ms() >= self.nonce_until or not ct_equal(payload[:NONCE_LEN], nonce):
            return self._nack(ref, E_BAD_NONCE, 0)
        duration = be(payload[NONCE_LEN:NONCE_LEN + 4])
        if not 1 <= duration <= MAX_DURATION_MS:
            return self._nack(ref, E_BAD_DURATION, MAX_DURATION_MS)
        self.relay_until = self.clock_ms() + duration
        self._set_relay(True)
        self.unlocks += 1
        if self.on_unlock is not None:
            self.on_unlock(duration, ref)
        return self._send(self.mac, ACK, u64(ref) + u32(duration))

    def _pair(self, parsed):
        """PAIR carries the host's X25519 public key; its tag (keyed with that public key) only guards against
        line noise. The lock answers PAIR_ACK with its own public key, tagged with the derived key: proof to the
        host that both sides hold the same key, which never crossed the wire."""
        host_pub = parsed[2]
        if len(host_pub) != KEY_LEN or not verify(Mac(host_pub), parsed):
            self._drop(D_TAG)
            return
        counter = parsed[1]
        if self.mac is not None and counter == self.rx_ctr and self.last_tag is not None \
                and ct_equal(parsed[4], self.last_tag):
            self.retransmits += 1
            if self.last_reply is not None:
                self.uart.write(self.last_reply)
            return
        if not self.pairing_open:
            self._drop(D_PAIRING_CLOSED)  # no flash write, counts toward the tamper flag
            now = self.clock_ms()
            if self.pair_nack_at is None or now - self.pair_nack_at >= PAIR_NACK_INTERVAL_MS:
                self.pair_nack_at = now  # counter 1 under the sender's own (public) key: no counter of ours spent
                self.uart.write(b"\x00" + encode(Mac(host_pub), NACK, 1,
                                                 u64(counter) + bytes([E_PAIRING_CLOSED]) + u64(0)))
            return
        secret = bytes(self.rng(KEY_LEN))
        lock_pub = x25519(secret, BASE, self.feed_watchdog)
        shared = x25519(secret, host_pub, self.feed_watchdog)
        if shared == bytes(KEY_LEN):  # a low-order point: no secret would be shared
            self._drop(D_TAG)
            return
        key = pair_key(shared, host_pub, lock_pub)
        self.store.save_key(key)
        self.mac = Mac(key)
        self.pair_code = pair_code(key)
        self.pairing_open = False
        self.rx_ctr, self.tx_ctr, self.tx_reserved = counter, 0, 0
        self.store.save_counters(self.rx_ctr, self.tx_reserved)
        self.last_tag = parsed[4]
        self.last_reply = self._send(self.mac, PAIR_ACK, u64(counter) + lock_pub + bytes(FW_VERSION))

    def open_pairing(self):
        """The pair button: accept one PAIR frame even though a key is stored."""
        self.pairing_open = True
