"""Length-prefixed msgpack frames, as a sans-IO decoder and an encoder.

A frame is a 4-byte big-endian unsigned length followed by that many bytes of
msgpack. The decoder follows h11's shape: feed it bytes with `receive_data`,
take frames with `next_frame` until it returns `NEED_DATA`. A declared length
over the limit raises `FrameTooLargeError` before the body is buffered, so a
peer cannot make us hold more than `max_frame_size` bytes for it; bytes that
are not msgpack raise `MalformedFrameError`. After either, the stream is
broken and the decoder must not be used again.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import msgpack

from coord.errors import FrameTooLargeError, MalformedFrameError

MAX_DATA_SIZE: Final = 1024 * 1024
"""Largest znode data, 1 MiB (ZooKeeper's jute.maxbuffer is 1 MiB - 1)."""

MAX_FRAME_SIZE: Final = MAX_DATA_SIZE + 64 * 1024
"""Largest frame: room for one maximal znode plus its path and headers."""

_HEADER = struct.Struct(">I")


class NeedData:
    """The type of NEED_DATA: "no whole frame is buffered yet; feed more bytes"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()


def encode_frame(message: Any) -> bytes:
    """Encode one message as a frame (length prefix included)."""
    body = msgpack.packb(message, use_bin_type=True)
    return _HEADER.pack(len(body)) + body


def encode_frames(messages: list[Any]) -> bytes:
    """Encode many messages into one buffer, for one socket write."""
    packer = msgpack.Packer(use_bin_type=True)
    parts: list[bytes] = []
    for message in messages:
        body = packer.pack(message)
        parts.append(_HEADER.pack(len(body)))
        parts.append(body)
    return b"".join(parts)


class FrameDecoder:
    """Turns a byte stream into decoded msgpack messages."""

    __slots__ = ("_buffer", "_max_frame_size")

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._buffer = bytearray()
        self._max_frame_size = max_frame_size

    def receive_data(self, data: bytes | bytearray) -> None:
        """Append bytes read from the stream."""
        self._buffer += data

    @property
    def buffered(self) -> int:
        """How many bytes wait in the buffer (a partial frame, or whole ones not yet taken)."""
        return len(self._buffer)

    def peek_prefix(self, size: int) -> bytes:
        """The first `size` buffered bytes, without consuming them."""
        return bytes(self._buffer[:size])

    def next_frame(self) -> Any:
        """The next decoded message, or NEED_DATA when no whole frame is buffered."""
        buffer = self._buffer
        if len(buffer) < 4:
            return NEED_DATA
        (length,) = _HEADER.unpack_from(buffer, 0)
        if length > self._max_frame_size:
            raise FrameTooLargeError(
                f"frame of {length} bytes is over the limit of {self._max_frame_size} bytes"
            )
        end = 4 + length
        if len(buffer) < end:
            return NEED_DATA
        body = bytes(buffer[4:end])
        del buffer[:end]
        try:
            return msgpack.unpackb(body, raw=False, use_list=True, strict_map_key=True)
        except Exception as exc:  # msgpack raises several unrelated types
            raise MalformedFrameError(
                f"frame of {length} bytes is not valid msgpack: {exc}"
            ) from None
