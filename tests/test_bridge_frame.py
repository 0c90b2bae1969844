"""Frames: PROTOCOL.md vectors on both sides, HMAC agreement, typed rejections, bounded reader, payloads."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import frame as F
from firmware_bridge import messages as M
from firmware_bridge.errors import (
    AuthError,
    BridgeError,
    CobsError,
    FrameError,
    LengthError,
    OversizeError,
    PayloadError,
    UnknownTypeError,
    VersionError,
)
from firmware_bridge.firmware import lockproto as fw
from firmware_bridge.vectors import VECTOR_KEY, parse

FRAMES, _ = parse()
KEY = VECTOR_KEY


def test_protocol_md_lists_every_message_type():
    types = {v["type"] for v in FRAMES}
    assert set(fw.HOST_TYPES) <= types and set(fw.LOCK_TYPES) <= types


@pytest.mark.parametrize("vec", FRAMES, ids=[v["name"] for v in FRAMES])
def test_host_codec_reproduces_vector(vec):
    assert F.pack(KEY, vec["type"], vec["counter"], vec["payload"]) == vec["raw"]
    assert F.encode(KEY, vec["type"], vec["counter"], vec["payload"]) == vec["wire"]
    from_lock = bool(vec["type"] & 0x80)
    fr = F.unpack(F.cobs.decode(vec["wire"][:-1]), KEY, expect_from_lock=from_lock)
    assert (fr.type, fr.counter, fr.payload) == (vec["type"], vec["counter"], vec["payload"])


@pytest.mark.parametrize("vec", FRAMES, ids=[v["name"] for v in FRAMES])
def test_firmware_codec_reproduces_vector(vec):
    mac = fw.Mac(KEY)
    assert fw.pack(mac, vec["type"], vec["counter"], vec["payload"]) == vec["raw"]
    assert fw.encode(mac, vec["type"], vec["counter"], vec["payload"]) == vec["wire"]
    (raw,) = fw.Deframer().feed(vec["wire"])
    parsed = fw.parse(raw)
    assert parsed[:3] == (vec["type"], vec["counter"], vec["payload"])
    assert fw.verify(mac, parsed)
    assert not fw.verify(fw.Mac(bytes(32)), parsed)


@settings(max_examples=150, deadline=None)
@given(key=st.binary(min_size=0, max_size=100), msg=st.binary(max_size=300))
def test_firmware_hmac_equals_stdlib(key, msg):
    assert fw.Mac(key).digest(msg) == hmac.new(key, msg, hashlib.sha256).digest()


def test_constant_time_compare_semantics():
    assert fw.ct_equal(b"abc", b"abc")
    assert not fw.ct_equal(b"abc", b"abd")
    assert not fw.ct_equal(b"abc", b"ab")


def _raw(vec_name: str) -> bytes:
    return next(v["raw"] for v in FRAMES if v["name"] == vec_name)


def test_typed_rejections():
    raw = _raw("unlock")
    with pytest.raises(LengthError):
        F.unpack(raw[:20], KEY, expect_from_lock=False)
    bad_version = bytes([1]) + raw[1:]  # version 1 (key sent in clear when pairing) is no longer spoken
    with pytest.raises(VersionError):
        F.unpack(bad_version, KEY, expect_from_lock=False)
    long_len = raw[:10] + (65).to_bytes(2, "big") + raw[12:]
    with pytest.raises(LengthError):
        F.unpack(long_len, KEY, expect_from_lock=False)
    wrong_len = raw[:10] + (3).to_bytes(2, "big") + raw[12:]
    with pytest.raises(LengthError):
        F.unpack(wrong_len, KEY, expect_from_lock=False)
    with pytest.raises(OversizeError):
        F.unpack(raw + bytes(100), KEY, expect_from_lock=False)
    with pytest.raises(AuthError):
        F.unpack(raw, bytes(32), expect_from_lock=False)
    flipped = bytearray(raw)
    flipped[14] ^= 0x01
    with pytest.raises(AuthError):
        F.unpack(bytes(flipped), KEY, expect_from_lock=False)
    with pytest.raises(UnknownTypeError):  # a host frame reflected back to the host
        F.unpack(raw, KEY, expect_from_lock=True)
    unknown = F.pack(KEY, 0x07, 9, b"")
    with pytest.raises(UnknownTypeError):
        F.unpack(unknown, KEY, expect_from_lock=False)


def test_firmware_parse_rejections_have_names():
    raw = _raw("unlock")
    assert fw.parse(raw[:20]) == fw.D_SHORT
    assert fw.parse(bytes([9]) + raw[1:]) == fw.D_VERSION
    assert fw.parse(raw[:10] + (200).to_bytes(2, "big") + raw[12:]) == fw.D_LENGTH


def test_error_messages_never_echo_secret_bytes():
    raw = _raw("unlock")
    tag_hex = raw[-16:].hex()
    for bad_key in (bytes(32), bytes(range(1, 33))):
        with pytest.raises(BridgeError) as info:
            F.unpack(raw, bad_key, expect_from_lock=False)
        text = str(info.value).lower()
        assert tag_hex not in text and KEY.hex() not in text and bad_key.hex() not in text


def test_reader_splits_stream_delivered_one_byte_at_a_time():
    wires = b"".join(v["wire"] for v in FRAMES)
    reader = F.FrameReader()
    got = []
    for i in range(len(wires)):
        got += reader.feed(wires[i:i + 1])
    assert got == [v["raw"] for v in FRAMES]


def test_reader_never_buffers_more_than_one_frame_and_recovers():
    reader = F.FrameReader()
    flood = bytes([0x41]) * 10_000
    out = []
    for i in range(0, len(flood), 7):
        out += reader.feed(flood[i:i + 7])
        assert reader.pending <= F.MAX_ENCODED
    out += reader.feed(b"\x00" + FRAMES[0]["wire"])
    assert isinstance(out[0], OversizeError)
    assert out[1:] == [FRAMES[0]["raw"]]


def test_reader_reports_bad_cobs_and_ignores_empty_frames():
    out = F.FrameReader().feed(b"\x00\x00\x05\x11\x00" + FRAMES[1]["wire"])
    assert isinstance(out[0], CobsError) and out[1:] == [FRAMES[1]["raw"]]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_ever_give_typed_errors(data):
    for item in F.FrameReader().feed(data + b"\x00"):
        if isinstance(item, Exception):
            assert isinstance(item, FrameError)
            continue
        with pytest.raises(BridgeError):
            F.unpack(item, KEY, expect_from_lock=True)
    assert isinstance(fw.parse(data), (str, tuple))


def test_payload_parsers_check_sizes():
    vec = {v["name"]: v["payload"] for v in FRAMES}
    st_ = M.parse_status(vec["status"])
    assert st_.relay_on and st_.door_open is False and not st_.tamper and st_.paired  # flags 0x19
    assert (st_.firmware, st_.relay_remaining_ms, st_.unlocks) == ("2.0.0", 1250, 1)
    ch = M.parse_challenge(vec["challenge"])
    assert ch.nonce == bytes(range(0xA0, 0xB0)) and ch.ttl_ms == 2000
    assert M.parse_ack(vec["ack_unlock"]) == 3000
    nack = M.parse_nack(vec["nack_bad_nonce"])
    assert nack.code == fw.E_BAD_NONCE and "challenge" in nack.meaning
    assert M.parse_hello_ack(vec["hello_ack"]).max_duration_ms == 60000
    for parser, payload in ((M.parse_status, vec["status"][:-1]), (M.parse_ack, b""),
                            (M.parse_challenge, vec["challenge"] + b"x"), (M.ref_of, b"1234")):
        with pytest.raises(PayloadError):
            parser(payload)


def test_unlock_and_deny_carry_nothing_about_who_or_why():
    vec = {v["name"]: v for v in FRAMES}
    assert vec["unlock"]["payload"] == bytes(range(0xA0, 0xB0)) + (3000).to_bytes(4, "big")  # nonce, duration
    assert vec["deny"]["payload"] == b"" and M.deny_payload() == b""
    for name in ("unlock", "deny"):
        assert b"alice" not in vec[name]["wire"] and b"finger" not in vec[name]["wire"]
