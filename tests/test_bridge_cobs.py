"""COBS: both our implementations (host and firmware) against PROTOCOL.md vectors and the `cobs` package."""

from __future__ import annotations

import pytest
from cobs import cobs as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import cobs as host
from firmware_bridge.errors import CobsError, FrameError
from firmware_bridge.firmware import lockproto as fw
from firmware_bridge.vectors import parse


def test_protocol_md_has_cobs_vectors_and_both_sides_reproduce_them():
    _, vectors = parse()
    assert len(vectors) >= 8
    for decoded, encoded in vectors:
        assert host.encode(decoded) == encoded
        assert fw.cobs_encode(decoded) == encoded
        assert host.decode(encoded) == decoded
        assert fw.cobs_decode(encoded) == decoded
        assert ref.encode(decoded) == encoded  # the vectors themselves agree with the reference package


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=700))
def test_encode_matches_reference_package_and_round_trips(data):
    enc = host.encode(data)
    assert enc == ref.encode(data)
    assert fw.cobs_encode(data) == enc
    assert 0 not in enc
    assert host.decode(enc) == data
    assert fw.cobs_decode(enc) == data


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_decode_agrees_with_reference_on_arbitrary_input(data):
    try:
        expected = ref.decode(data)
    except ref.DecodeError:
        expected = None
    try:
        got = host.decode(data)
    except CobsError:
        got = None
    assert got == expected
    assert fw.cobs_decode(data) == expected


@pytest.mark.parametrize("bad", [b"\x00", b"\x05\x11\x22", b"\x03\x11\x00", b"\x02\x11\x00\x01"])
def test_invalid_cobs_is_a_typed_error(bad):
    with pytest.raises(CobsError) as info:
        host.decode(bad)
    assert isinstance(info.value, FrameError)
    assert fw.cobs_decode(bad) is None
