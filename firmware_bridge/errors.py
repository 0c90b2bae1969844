"""The bridge's typed errors. Plain ``Exception`` subclasses so this file also runs on MicroPython.

Every rejection of a frame has its own class, so a fuzzer (and a log reader) can count *why* something was
refused. No message ever includes key material, tags or frame bytes: only lengths, codes and counters.
"""


class BridgeError(Exception):
    """Base of every lock-link failure; the CLI prints it as one line and exits with code 4."""

    exit_code = 4


class FrameError(BridgeError):
    """Bytes that are not a well-formed frame (COBS, length, size)."""


class CobsError(FrameError):
    """Not valid COBS (a zero inside a block, or a block running past the end)."""


class OversizeError(FrameError):
    """More bytes than the largest possible frame arrived before a delimiter; dropped without storing them."""


class LengthError(FrameError):
    """The frame is shorter than a header and tag, or its length field disagrees with its size."""


class VersionError(FrameError):
    """A protocol version this side does not speak."""


class UnknownTypeError(FrameError):
    """A message type this side does not know, or one that must not travel in this direction."""


class PayloadError(FrameError):
    """An authenticated frame whose payload does not have the layout its type requires."""


class AuthError(BridgeError):
    """The tag does not match: wrong key, corruption, or forgery."""


class ReplayError(BridgeError):
    """The counter is not above the highest one already accepted."""


class LinkTimeoutError(BridgeError):
    """No valid answer within the timeout after all retries. Never means 'unlocked'."""


class PairingError(BridgeError):
    """Pairing is impossible: no key, a key already stored, or the lock refused."""


class KeyFileError(PairingError):
    """The key file is missing, unreadable, has open permissions, or is not 32 bytes of hex."""


class NackError(BridgeError):
    """The lock answered with NACK and an error code."""

    def __init__(self, message, code=0, detail=0):
        super().__init__(message)
        self.code = code
        self.detail = detail


class PortError(BridgeError):
    """The serial port cannot be opened, read or written."""


class StateError(BridgeError):
    """An operation that the link's state does not allow (e.g. unlock before pairing)."""
