"""The R30x packet layer: hex vectors, byte-at-a-time parsing, resynchronisation, checksums, 4-bit images."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.sensors import r30x_packets as rp

GEN_IMG = bytes.fromhex("EF01FFFFFFFF010003010005")
ACK_OK = bytes.fromhex("EF01FFFFFFFF07000300000A")


def test_gen_img_matches_the_datasheet_vector():
    assert rp.command(rp.GEN_IMG) == GEN_IMG


def test_ack_vector_parses_with_its_code():
    packet, used = rp.extract_packet(ACK_OK)
    assert used == len(ACK_OK)
    assert packet == rp.Packet(rp.PID_ACK, b"\x00")
    assert packet.code == rp.OK


def test_vfypwd_vector():
    # VfyPwd with password 0: 13 00000000, LEN 7, SUM 01+00+07+13 = 0x1B
    assert rp.command(rp.VFY_PWD, b"\x00\x00\x00\x00") == bytes.fromhex("EF01FFFFFFFF0100071300000000001B")


def test_one_byte_at_a_time_needs_the_whole_packet():
    buf = bytearray()
    for i, byte in enumerate(ACK_OK):
        buf.append(byte)
        packet, used = rp.extract_packet(buf)
        if i < len(ACK_OK) - 1:
            assert packet is None and used == 0, i
    assert packet is not None and packet.code == 0


def test_garbage_before_a_packet_is_skipped():
    noise = b"\x00\x13\xef\x55" + b"\xef\x01\xff\xff\xff\xff\x07\xff\xff"  # a header with an impossible length
    buf = bytearray(noise + ACK_OK)
    packet, used = rp.extract_packet(buf)
    assert packet is not None and packet.code == 0
    assert used == len(buf)


def test_garbage_alone_is_dropped_but_a_trailing_header_byte_is_kept():
    packet, used = rp.extract_packet(b"\x01\x02\x03\xef")
    assert packet is None and used == 3


def test_bad_checksum_raises_with_the_packet_length():
    bad = ACK_OK[:-1] + b"\x0b"
    with pytest.raises(rp.PacketChecksumError) as info:
        rp.extract_packet(bad + GEN_IMG)
    assert info.value.consumed == len(bad)
    packet, _ = rp.extract_packet((bad + GEN_IMG)[info.value.consumed :])
    assert packet.payload == b"\x01"


def test_build_rejects_oversize_and_bad_pid():
    with pytest.raises(ValueError):
        rp.build_packet(rp.PID_DATA, bytes(rp.MAX_PAYLOAD + 1))
    with pytest.raises(ValueError):
        rp.build_packet(0x05, b"")


@settings(max_examples=60, deadline=None)
@given(
    pid=st.sampled_from(sorted(rp.VALID_PIDS)),
    payload=st.binary(max_size=rp.MAX_PAYLOAD),
    address=st.integers(0, 0xFFFFFFFF),
    prefix=st.binary(max_size=20),
)
def test_round_trip_behind_any_prefix(pid, payload, address, prefix):
    wire = rp.build_packet(pid, payload, address)
    buf = bytearray(prefix + wire)
    found = None
    for _ in range(len(buf) + 1):  # a prefix may itself look like a packet: keep extracting
        try:
            packet, used = rp.extract_packet(buf)
        except rp.PacketChecksumError as exc:
            del buf[: exc.consumed]
            continue
        del buf[:used]
        if packet is None:
            break
        found = packet
        if not buf:
            break
    assert found == rp.Packet(pid, payload, address)


def test_4bit_unpacking_puts_the_first_pixel_in_the_high_nibble():
    image = rp.unpack_4bit(bytes([0xA5, 0x0F]), width=4, height=1)
    assert image.tolist() == [[0xA * 17, 0x5 * 17, 0, 255]]


def test_pack_unpack_round_trip_keeps_the_top_four_bits():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (288, 256), dtype=np.uint8)
    data = rp.pack_4bit(image)
    assert len(data) == 36864
    assert np.array_equal(rp.unpack_4bit(data, 256, 288), (image >> 4) * 17)


def test_decode_image_infers_depth_from_byte_count_and_rejects_others():
    assert rp.decode_image(bytes(192 * 192 // 2), 192, 192).shape == (192, 192)
    assert rp.decode_image(bytes(range(256)) * 144, 192, 192).shape == (192, 192)
    with pytest.raises(ValueError, match="expected|needs"):
        rp.decode_image(bytes(1000), 256, 288)


def test_sys_params_round_trip_and_range_checks():
    params = rp.SysParams(0, 0, 1000, 3, 0xFFFFFFFF, 128, 57600)
    encoded = params.encode()
    assert len(encoded) == 16 and encoded[-4:] == b"\x00\x02\x00\x06"
    assert rp.SysParams.parse(encoded) == params
    with pytest.raises(ValueError):
        rp.SysParams.parse(encoded[:-2] + b"\x00\x0d")
    with pytest.raises(ValueError):
        rp.SysParams.parse(encoded[:10])


def test_every_confirmation_code_has_a_text():
    assert rp.describe(rp.ERR_WRONG_PASSWORD) == "wrong password"
    assert "0x77" in rp.describe(0x77)
