"""Length-prefixed msgpack frames: the sans-IO decoder and the encoders."""

from __future__ import annotations

import struct

import msgpack
import pytest

from coord.errors import FrameTooLargeError, MalformedFrameError, ProtocolError
from coord.framing import (
    MAX_DATA_SIZE,
    MAX_FRAME_SIZE,
    NEED_DATA,
    FrameDecoder,
    encode_frame,
    encode_frames,
)

MESSAGES = [
    [1, 4, {"path": "/a", "watch": True}],
    [-1, 2**40, 0, {"type": 1, "path": "/x"}],
    {"protocol_version": 1, "password": b"\x00\xff" * 8, "timeout_ms": 4000},
    None,
    [],
    "text \u00e9",
    b"",
    [1, 2, 0, [b"data", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]],
]


def _drain(decoder):
    out = []
    while (frame := decoder.next_frame()) is not NEED_DATA:
        out.append(frame)
    return out


def test_empty_decoder_needs_data():
    decoder = FrameDecoder()
    assert decoder.next_frame() is NEED_DATA
    assert repr(NEED_DATA) == "NEED_DATA"


@pytest.mark.parametrize("message", MESSAGES)
def test_single_frame_round_trip(message):
    data = encode_frame(message)
    (length,) = struct.unpack(">I", data[:4])
    assert length == len(data) - 4
    decoder = FrameDecoder()
    decoder.receive_data(data)
    assert decoder.next_frame() == message
    assert decoder.next_frame() is NEED_DATA
    assert decoder.buffered == 0


def test_batched_frames_round_trip_in_order():
    data = encode_frames(MESSAGES)
    assert data == b"".join(encode_frame(m) for m in MESSAGES)
    decoder = FrameDecoder()
    decoder.receive_data(data)
    assert _drain(decoder) == MESSAGES
    assert decoder.buffered == 0


def test_encode_frames_of_nothing_is_empty():
    assert encode_frames([]) == b""


def test_bytes_stay_bytes_and_strings_stay_strings():
    decoder = FrameDecoder()
    decoder.receive_data(encode_frame({"b": b"abc", "s": "abc"}))
    frame = decoder.next_frame()
    assert type(frame["b"]) is bytes
    assert type(frame["s"]) is str


def test_split_at_every_byte_boundary():
    data = encode_frames(MESSAGES)
    for cut in range(len(data) + 1):
        decoder = FrameDecoder()
        decoder.receive_data(data[:cut])
        first = _drain(decoder)
        decoder.receive_data(data[cut:])
        assert first + _drain(decoder) == MESSAGES, f"cut at {cut}"
        assert decoder.buffered == 0


def test_one_byte_at_a_time():
    data = encode_frames(MESSAGES)
    decoder = FrameDecoder()
    out = []
    for i in range(len(data)):
        decoder.receive_data(data[i : i + 1])
        out.extend(_drain(decoder))
    assert out == MESSAGES


def test_partial_frame_is_kept_in_the_buffer():
    data = encode_frame([1, 2, 3])
    decoder = FrameDecoder()
    decoder.receive_data(data[:-1])
    assert decoder.next_frame() is NEED_DATA
    assert decoder.buffered == len(data) - 1
    assert decoder.peek_prefix(4) == data[:4]
    assert decoder.buffered == len(data) - 1  # peek does not consume


def test_oversize_declared_length_raises_before_the_body_arrives():
    decoder = FrameDecoder(max_frame_size=100)
    decoder.receive_data(struct.pack(">I", 101))  # only the header: no body at all
    with pytest.raises(FrameTooLargeError) as info:
        decoder.next_frame()
    assert "101" in str(info.value)
    assert "100" in str(info.value)
    assert isinstance(info.value, ProtocolError)


def test_length_at_the_limit_is_accepted():
    body = msgpack.packb(b"x" * 90)
    decoder = FrameDecoder(max_frame_size=len(body))
    decoder.receive_data(struct.pack(">I", len(body)) + body)
    assert decoder.next_frame() == b"x" * 90


def test_default_limit_is_max_frame_size():
    decoder = FrameDecoder()
    decoder.receive_data(struct.pack(">I", MAX_FRAME_SIZE + 1))
    with pytest.raises(FrameTooLargeError):
        decoder.next_frame()
    assert MAX_FRAME_SIZE > MAX_DATA_SIZE


def test_maximal_znode_data_fits_in_a_frame():
    message = [7, 5, {"path": "/a" * 100, "data": b"\xff" * MAX_DATA_SIZE, "version": -1}]
    decoder = FrameDecoder()
    decoder.receive_data(encode_frame(message))
    assert decoder.next_frame() == message


def _framed(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # the one byte msgpack never uses
        b"",  # empty frame
        b"\x92\x01",  # an array of two with only one element
        msgpack.packb(1) + msgpack.packb(2),  # trailing bytes after a value
        msgpack.packb({1: "int key"}),  # map keys must be strings
    ],
    ids=["reserved-byte", "empty", "truncated", "extra-data", "int-map-key"],
)
def test_garbage_raises_malformed_frame(body):
    decoder = FrameDecoder()
    decoder.receive_data(_framed(body))
    with pytest.raises(MalformedFrameError) as info:
        decoder.next_frame()
    assert isinstance(info.value, ProtocolError)
    assert f"{len(body)} bytes" in str(info.value)


def test_frames_before_garbage_are_delivered():
    decoder = FrameDecoder()
    decoder.receive_data(encode_frame("good") + _framed(b"\xc1"))
    assert decoder.next_frame() == "good"
    with pytest.raises(MalformedFrameError):
        decoder.next_frame()
