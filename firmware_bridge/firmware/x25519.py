# X25519 (RFC 7748) in plain integer arithmetic, for pairing on the lock: MicroPython has no curve library, but
# its integers are arbitrary precision (mpz on the RP2040 port), which is all the Montgomery ladder needs.
#
# Written in the MicroPython subset (no f-strings, annotations or 3-argument pow). Checked against RFC 7748's
# vectors and against the host's `cryptography` X25519 in the tests. Not constant time (MicroPython's integers
# are not): acceptable for pairing, where each lock key pair is random, used once, and never seen again.
# ``tick`` is called every 16 ladder steps so the board's watchdog can be fed during the computation.

P = (1 << 255) - 19
A24 = 121665
BASE = (9).to_bytes(32, "little")


def _scalar(k):
    b = bytearray(k)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return int.from_bytes(bytes(b), "little")


def _u(u):
    b = bytearray(u)
    b[31] &= 127
    return int.from_bytes(bytes(b), "little") % P


def _inverse(z, tick=None):
    result = 1
    base = z % P
    e = P - 2
    n = 0
    while e:
        if e & 1:
            result = result * base % P
        base = base * base % P
        e >>= 1
        n += 1
        if tick is not None and n % 64 == 0:
            tick()
    return result


def x25519(k, u, tick=None):
    """The X25519 function: 32-byte scalar ``k`` times 32-byte u-coordinate ``u``, as 32 bytes."""
    if len(k) != 32 or len(u) != 32:
        raise ValueError("x25519 takes 32-byte inputs")
    scalar = _scalar(k)
    x1 = _u(u)
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in range(254, -1, -1):
        bit = (scalar >> t) & 1
        if swap ^ bit:
            x2, x3 = x3, x2
            z2, z3 = z3, z2
        swap = bit
        a = (x2 + z2) % P
        aa = a * a % P
        b = (x2 - z2) % P
        bb = b * b % P
        e = (aa - bb) % P
        c = (x3 + z3) % P
        d = (x3 - z3) % P
        da = d * a % P
        cb = c * b % P
        s = (da + cb) % P
        x3 = s * s % P
        s = (da - cb) % P
        z3 = x1 * (s * s % P) % P
        x2 = aa * bb % P
        z2 = e * ((aa + A24 * e) % P) % P
        if tick is not None and t % 16 == 0:
            tick()
    if swap:
        x2, x3 = x3, x2
        z2, z3 = z3, z2
    return (x2 * _inverse(z2, tick) % P).to_bytes(32, "little")
