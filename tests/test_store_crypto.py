"""Sealing single records: round trips, tamper detection and binding, property-based."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.errors import KeyError_, StoreError
from device.store.crypto import (
    NONCE_SIZE,
    SealError,
    associated_data,
    decode_embedding,
    encode_embedding,
    key_check_value,
    key_id,
    open_sealed,
    same_key_check,
    seal,
)

keys_ = st.binary(min_size=32, max_size=32)


@settings(max_examples=60, deadline=None)
@given(key=keys_, plaintext=st.binary(max_size=600), aad=st.binary(max_size=80))
def test_seal_open_round_trip(key, plaintext, aad):
    blob = seal(key, plaintext, aad)
    assert len(blob) == NONCE_SIZE + len(plaintext) + 16
    assert open_sealed(key, blob, aad) == plaintext


@settings(max_examples=80, deadline=None)
@given(key=keys_, plaintext=st.binary(min_size=1, max_size=300), aad=st.binary(max_size=40), data=st.data())
def test_any_flipped_bit_is_detected(key, plaintext, aad, data):
    blob = bytearray(seal(key, plaintext, aad))
    position = data.draw(st.integers(0, len(blob) - 1))
    bit = data.draw(st.integers(0, 7))
    blob[position] ^= 1 << bit
    with pytest.raises(SealError):
        open_sealed(key, bytes(blob), aad)


@settings(max_examples=40, deadline=None)
@given(key=keys_, other=keys_, plaintext=st.binary(max_size=100), aad=st.binary(max_size=40),
       other_aad=st.binary(max_size=40))
def test_other_key_or_other_binding_fails(key, other, plaintext, aad, other_aad):
    blob = seal(key, plaintext, aad)
    if other != key:
        with pytest.raises(SealError):
            open_sealed(other, blob, aad)
    if other_aad != aad:
        with pytest.raises(SealError):
            open_sealed(key, blob, other_aad)


@settings(max_examples=40, deadline=None)
@given(key=keys_, plaintext=st.binary(max_size=100), data=st.data())
def test_truncated_blob_fails(key, plaintext, data):
    """Every example truncates (the old version skipped cuts beyond the blob: ~40 % asserted nothing)."""
    blob = seal(key, plaintext, b"ad")
    cut = data.draw(st.integers(0, len(blob) - 1), label="cut")
    with pytest.raises(SealError):
        open_sealed(key, blob[:cut], b"ad")


def test_fresh_nonce_every_time():
    key = bytes(range(32))
    blobs = {seal(key, b"same template", b"ad") for _ in range(50)}
    assert len(blobs) == 50
    assert len({b[:NONCE_SIZE] for b in blobs}) == 50


@settings(max_examples=80, deadline=None)
@given(a=st.lists(st.text(max_size=6), max_size=4), b=st.lists(st.text(max_size=6), max_size=4))
def test_associated_data_is_unambiguous(a, b):
    assert (associated_data(*a) == associated_data(*b)) == (a == b)


def test_bad_keys_are_typed_errors():
    for bad in (b"", b"x" * 31, b"x" * 33, "k" * 32):
        with pytest.raises(KeyError_):
            seal(bad, b"p", b"a")


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=256))
def test_embedding_round_trip(values):
    vector = np.array(values, dtype=np.float32)
    if not np.any(vector):
        with pytest.raises(StoreError):
            encode_embedding(vector)
        return
    np.testing.assert_array_equal(decode_embedding(encode_embedding(vector)), vector)


@pytest.mark.parametrize("bad", [np.array([1.0, np.nan]), np.array([np.inf, 1.0]), np.zeros(8), np.ones((2, 4)),
                                 np.array([]), np.array(["a", "b"])])
def test_bad_embeddings_are_refused(bad):
    with pytest.raises(StoreError):
        encode_embedding(bad)


def test_decode_rejects_malformed_plaintext():
    good = encode_embedding(np.ones(4, np.float32))
    for bad in (b"", b"XXXX" + good[4:], good[:-1], good + b"\0"):
        with pytest.raises(StoreError):
            decode_embedding(bad)


def test_key_check_value_identifies_key_without_revealing_it():
    """Issue 17 item 10: the old ``key not in kcv`` could never fail (32 bytes never fit in 16). Now: no 4-byte
    window of the key appears in the value or the id, and one flipped key bit changes about half the value's bits
    (a keyed hash, not an encoding: a KCV that were ``key[:16]`` or ``key XOR c`` fails here)."""
    import hashlib

    key = hashlib.sha256(b"kcv test key").digest()
    other = bytes([key[0] ^ 1]) + key[1:]
    kcv = key_check_value(key)
    assert len(kcv) == 16 and same_key_check(kcv, key) and not same_key_check(kcv, other)
    assert len(key_id(key)) == 8 and key_id(key) != key_id(other)
    assert not any(key[i:i + 4] in kcv for i in range(len(key) - 3))
    assert not any(key.hex()[i:i + 8] in key_id(key) for i in range(len(key.hex()) - 7))
    changed = int.from_bytes(kcv, "big") ^ int.from_bytes(key_check_value(other), "big")
    assert 32 <= bin(changed).count("1") <= 96  # avalanche: ~64 of 128 bits
