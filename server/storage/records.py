"""Log records: length and CRC framing, and the scan that tells whole from torn or corrupt.

A record is an 8-byte header, `length:u32 crc32:u32` (big-endian, CRC of the
payload), then `length` bytes of payload. A file is a magic line followed by
records. Scanning a file's bytes ends in one of three ways:

- CLEAN: every byte belongs to a whole record;
- TORN: the last record is cut short (its header or payload runs past the
  end), or the tail is all zero bytes, or a record fails its CRC but ends in
  a zero byte with only zero bytes after it: what a crash during an append
  leaves (the file had grown, but only a prefix of the append had reached the
  disk; the rest reads as zeros). Nothing in it was acknowledged
  (acknowledgement follows fsync), so the tail is truncated at `offset` with
  a warning;
- CORRUPT: a whole record whose CRC does not match, with more bytes after
  it, or a length over the limit: bit rot or a bug, not a crash. The server
  stops and names the file and offset, unless the operator asks to truncate.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass, field

HEADER = struct.Struct(">II")
MAX_RECORD_SIZE = 64 * 1024 * 1024
LOG_MAGIC = b"COORDLOG1\n"


class ScanEnd(enum.Enum):
    CLEAN = "clean"
    TORN = "torn"
    CORRUPT = "corrupt"


@dataclass(slots=True)
class ScanResult:
    records: list[tuple[int, bytes]] = field(default_factory=list)
    """(offset of the record's header, payload) for every whole, valid record."""
    end: ScanEnd = ScanEnd.CLEAN
    offset: int = 0
    """Where the valid data ends: the truncation point for TORN and CORRUPT."""
    reason: str = ""


def encode_record(payload: bytes) -> bytes:
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def scan(data: bytes | memoryview, start: int = 0) -> ScanResult:
    """Split `data[start:]` into records and say how it ends."""
    result = ScanResult()
    view = memoryview(data)
    size = len(view)
    offset = start
    while offset < size:
        if size - offset < HEADER.size:
            return _torn(result, offset, "a record header is cut short")
        length, crc = HEADER.unpack_from(view, offset)
        if length == 0 and crc == 0 and not any(view[offset:]):
            return _torn(result, offset, "the tail is zero bytes")
        if length > MAX_RECORD_SIZE:
            result.end, result.offset = ScanEnd.CORRUPT, offset
            result.reason = f"record length {length} is over the limit of {MAX_RECORD_SIZE}"
            return result
        end = offset + HEADER.size + length
        if end > size:
            return _torn(result, offset, f"a record of {length} bytes is cut short")
        payload = bytes(view[offset + HEADER.size : end])
        actual = zlib.crc32(payload)
        if actual != crc and not view[end - 1] and not any(view[end:]):
            return _torn(result, offset, "a record ends in zero bytes, as does the file")
        if actual != crc:
            result.end, result.offset = ScanEnd.CORRUPT, offset
            result.reason = f"CRC mismatch: expected {crc:#010x}, actual {actual:#010x}"
            return result
        result.records.append((offset, payload))
        offset = end
    result.offset = offset
    return result


def _torn(result: ScanResult, offset: int, reason: str) -> ScanResult:
    result.end, result.offset, result.reason = ScanEnd.TORN, offset, reason
    return result
