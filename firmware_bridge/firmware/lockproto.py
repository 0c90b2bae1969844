# biolock lock protocol, firmware side: COBS, HMAC-SHA256, frame codec.
#
# Written in the subset of Python that MicroPython (RP2040 port) runs: no dataclasses, no typing, no
# f-strings, no hmac module (MicroPython has none), hashlib or uhashlib. The same file runs unchanged under
# CPython in the tests and in the emulator. Byte layouts are in ../PROTOCOL.md; keep the two in step.

try:
    from hashlib import sha256
except ImportError:  # older MicroPython builds
    from uhashlib import sha256

VERSION = 2  # 2: X25519 pairing, no user name or reason on the wire (version 1 frames are dropped unread)
HEADER_LEN = 12  # version u8, type u8, counter u64 BE, length u16 BE
TAG_LEN = 16  # HMAC-SHA256 truncated to 128 bits
MAX_PAYLOAD = 64
MAX_FRAME = HEADER_LEN + MAX_PAYLOAD + TAG_LEN  # 92
MAX_ENCODED = MAX_FRAME + 1  # COBS adds one byte per 254 (frames are shorter), delimiter excluded
KEY_LEN = 32
NONCE_LEN = 16
COUNTER_MAX = (1 << 64) - 1

# message types; bit 7 set = sent by the lock
HELLO = 0x01
HEARTBEAT = 0x02
STATUS_REQ = 0x03
CHALLENGE_REQ = 0x04
UNLOCK = 0x05
DENY = 0x06
PAIR = 0x0F
HELLO_ACK = 0x81
STATUS = 0x83
CHALLENGE = 0x84
ACK = 0x8A
NACK = 0x8B
PAIR_ACK = 0x8F
HOST_TYPES = (HELLO, HEARTBEAT, STATUS_REQ, CHALLENGE_REQ, UNLOCK, DENY, PAIR)
LOCK_TYPES = (HELLO_ACK, STATUS, CHALLENGE, ACK, NACK, PAIR_ACK)
FROM_LOCK = 0x80

# NACK codes
E_REPLAY = 1  # counter not above the highest accepted; detail = highest accepted
E_BAD_NONCE = 2  # no challenge outstanding, expired, or a different nonce
E_BAD_PAYLOAD = 3
E_BAD_DURATION = 4  # detail = maximum allowed ms
E_UNKNOWN_TYPE = 5
E_PAIRING_CLOSED = 7  # already paired and pairing mode not entered

# reasons a frame is dropped without an answer (no key to answer with, or nothing trustworthy in it)
D_OVERSIZE = "oversize"
D_COBS = "cobs"
D_SHORT = "short"
D_VERSION = "version"
D_LENGTH = "length"
D_TAG = "tag"
D_DIRECTION = "direction"
D_UNPAIRED = "unpaired"
D_PAIRING_CLOSED = "pairing closed"  # a PAIR while paired: counted toward tamper, answered at most once a second
D_EXHAUSTED = "counter exhausted"  # the lock's send counter is used up: it acts on nothing until re-paired

PAIR_LABEL = b"biolock pair v2"
CODE_LABEL = b"biolock pair code"


def u64(value):
    return value.to_bytes(8, "big")


def u32(value):
    return value.to_bytes(4, "big")


def u16(value):
    return value.to_bytes(2, "big")


def be(data):
    return int.from_bytes(data, "big")


def cobs_encode(data):
    """COBS-encode ``data`` (no trailing delimiter)."""
    out = bytearray(b"\x00")
    code_at = 0
    code = 1
    last = len(data) - 1
    for i in range(len(data)):
        byte = data[i]
        if byte == 0:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
        else:
            out.append(byte)
            code += 1
            if code == 0xFF:
                out[code_at] = code
                if i == last:  # a full block at the very end needs no empty block after it
                    return bytes(out)
                code_at = len(out)
                out.append(0)
                code = 1
    out[code_at] = code
    return bytes(out)


def cobs_decode(data):
    """Decode one COBS block (delimiter already removed); None if it is not valid COBS."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        end = i + code
        if code == 0 or end > n:
            return None
        for j in range(i + 1, end):
            if data[j] == 0:
                return None
        out.extend(data[i + 1:end])
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


class Mac:
    """HMAC-SHA256 (RFC 2104) over hashlib.sha256, with the padded keys computed once."""

    def __init__(self, key):
        if len(key) > 64:
            key = sha256(key).digest()
        key = bytes(key) + b"\x00" * (64 - len(key))
        self._ipad = bytes([b ^ 0x36 for b in key])
        self._opad = bytes([b ^ 0x5C for b in key])

    def digest(self, msg):
        inner = sha256(self._ipad + msg).digest()
        return sha256(self._opad + inner).digest()

    def tag(self, msg):
        return self.digest(msg)[:TAG_LEN]


def pair_key(shared, host_pub, lock_pub):
    """The link key both sides derive from the X25519 shared secret, bound to both public keys."""
    return Mac(shared).digest(PAIR_LABEL + bytes(host_pub) + bytes(lock_pub))


def pair_code(key):
    """Six decimal digits from the new key: shown by `biolock lock pair` and by a lock that has a display."""
    return be(Mac(key).digest(CODE_LABEL)[:4]) % 1000000


def ct_equal(a, b):
    """Constant-time comparison (MicroPython has no hmac.compare_digest); lengths are public."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


def pack(mac, msg_type, counter, payload):
    """Raw frame bytes (header + payload + tag), not yet COBS-encoded."""
    if len(payload) > MAX_PAYLOAD or not 0 <= counter <= COUNTER_MAX:
        raise ValueError("payload or counter out of range")
    body = bytes([VERSION, msg_type]) + u64(counter) + u16(len(payload)) + bytes(payload)
    return body + mac.tag(body)


def encode(mac, msg_type, counter, payload):
    """Wire bytes: COBS(frame) followed by the 0x00 delimiter."""
    return cobs_encode(pack(mac, msg_type, counter, payload)) + b"\x00"


def parse(raw):
    """Split a raw frame without checking its tag: (type, counter, payload, body, tag) or a drop reason string."""
    if len(raw) < HEADER_LEN + TAG_LEN:
        return D_SHORT
    if raw[0] != VERSION:
        return D_VERSION
    length = be(raw[10:12])
    if length > MAX_PAYLOAD or len(raw) != HEADER_LEN + length + TAG_LEN:
        return D_LENGTH
    end = HEADER_LEN + length
    return raw[1], be(raw[2:10]), raw[HEADER_LEN:end], raw[:end], raw[end:]


def verify(mac, parsed):
    """True if the parsed frame's tag is right for this key (constant time)."""
    return ct_equal(mac.tag(parsed[3]), parsed[4])


class Deframer:
    """Collects bytes up to each 0x00 delimiter in a bounded buffer and returns decoded raw frames.

    Anything longer than MAX_ENCODED is discarded up to the next delimiter without being stored, so a peer
    can never make us allocate more than one maximum frame.
    """

    def __init__(self):
        self.buf = bytearray()
        self.discarding = False

    def feed(self, data):
        """Returns a list of raw frames and drop reasons (strings) for the bytes given."""
        results = []
        for byte in data:
            if byte == 0:
                if self.discarding:
                    results.append(D_OVERSIZE)
                elif self.buf:
                    raw = cobs_decode(bytes(self.buf))
                    results.append(D_COBS if raw is None else raw)
                self.buf = bytearray()
                self.discarding = False
            elif not self.discarding:
                if len(self.buf) >= MAX_ENCODED:
                    self.discarding = True
                    self.buf = bytearray()
                else:
                    self.buf.append(byte)
        return results
