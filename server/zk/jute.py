"""ZooKeeper's jute wire format: op codes, multi, requests by op code, and the framing.

Pure: bytes in, records out, and back; no sockets. The facts are Apache
ZooKeeper's (zookeeper.jute, ZooDefs, ClientCnxn); see ZK-WIRE.md in the design
notes. Everything is big-endian: int 4 bytes, long 8, bool 1; a buffer or
ustring is an int length then the bytes (-1 means null); a vector is an int
count (-1 null) then the items.

The records are declared once each, as field lists, in `jute_records`;
`jute_schema` generates their codecs at import (see there why and how). This
module re-exports them, so `jute.CreateRequest` is the one name callers use.
Multi requests and responses are not a flat field list (a header before each
op, a body chosen by its type, an end marker) and are written out here.

Framing: every message is an int32 length then the body. `PacketDecoder`
follows h11's shape (`receive_data`, `next_packet` -> bytes or `NEED_DATA`) and
refuses a declared length over jute.maxbuffer (0xfffff) before buffering it, as
ZooKeeper closes such a connection. Decoding errors raise `JuteDecodeError`
(a MalformedFrameError: the stream cannot be trusted any more).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final, Self

from coord.errors import FrameTooLargeError
from coord.framing import NEED_DATA, NeedData
from coord.server.zk.jute_codegen import JuteDecodeError
from coord.server.zk.jute_records import (
    ACL,
    MULTI_END,
    OPEN_ACL_UNSAFE,
    STAT_LAYOUT,
    AddWatchRequest,
    AuthPacket,
    CheckVersionRequest,
    ClientInfo,
    ConnectRequest,
    ConnectResponse,
    Create2Response,
    CreateRequest,
    CreateResponse,
    CreateTTLRequest,
    DeleteRequest,
    ErrorResponse,
    GetACLResponse,
    GetAllChildrenNumberResponse,
    GetChildren2Response,
    GetChildrenResponse,
    GetDataResponse,
    GetEphemeralsResponse,
    Id,
    KeeperState,
    MultiHeader,
    PathRequest,
    PathResponse,
    PathWatchRequest,
    Perms,
    ReconfigRequest,
    ReplyHeader,
    RequestHeader,
    SaslRequest,
    SetACLRequest,
    SetDataRequest,
    SetWatches,
    SetWatches2,
    StatResponse,
    WatcherEvent,
    WatchesRequest,
    WhoAmIResponse,
)
from coord.server.zk.jute_schema import (
    Reader,
    Record,
    fixed_format,
    to_signed64,
    to_unsigned64,
)

MAX_PACKET: Final = 0xFFFFF
"""jute.maxbuffer: ZooKeeper closes a connection that declares a longer packet."""

_INT = struct.Struct(">i")
_HEADERS = struct.Struct(">i" + fixed_format(ReplyHeader))  # a reply's length and header
_REQUEST = struct.Struct(">i" + fixed_format(RequestHeader))  # a request's length and header
_MULTI_HEADER = struct.Struct(">" + fixed_format(MultiHeader))  # read and written in place


class ZkOp(enum.IntEnum):
    """ZooKeeper's op codes (ZooDefs.OpCode)."""

    NOTIFICATION = 0
    CREATE = 1
    DELETE = 2
    EXISTS = 3
    GET_DATA = 4
    SET_DATA = 5
    GET_ACL = 6
    SET_ACL = 7
    GET_CHILDREN = 8
    SYNC = 9
    PING = 11
    GET_CHILDREN2 = 12
    CHECK = 13
    MULTI = 14
    CREATE2 = 15
    RECONFIG = 16
    CHECK_WATCHES = 17
    REMOVE_WATCHES = 18
    CREATE_CONTAINER = 19
    DELETE_CONTAINER = 20
    CREATE_TTL = 21
    MULTI_READ = 22
    AUTH = 100
    SET_WATCHES = 101
    SASL = 102
    GET_EPHEMERALS = 103
    GET_ALL_CHILDREN_NUMBER = 104
    SET_WATCHES2 = 105
    ADD_WATCH = 106
    WHO_AM_I = 107
    CREATE_SESSION = -10
    CLOSE_SESSION = -11
    ERROR = -1


WATCH_XID: Final = -1
PING_XID: Final = -2
AUTH_XID: Final = -4
SET_WATCHES_XID: Final = -8


# -- multi ----------------------------------------------------------------------

MULTI_REQUEST_BODIES: Final[dict[int, type[Record]]] = {
    ZkOp.CREATE: CreateRequest,
    ZkOp.CREATE2: CreateRequest,
    ZkOp.CREATE_CONTAINER: CreateRequest,
    ZkOp.CREATE_TTL: CreateTTLRequest,
    ZkOp.DELETE: DeleteRequest,
    ZkOp.SET_DATA: SetDataRequest,
    ZkOp.CHECK: CheckVersionRequest,
    ZkOp.GET_DATA: PathWatchRequest,
    ZkOp.GET_CHILDREN: PathWatchRequest,
}
"""What a multi (14) or multiRead (22) may carry, by op code."""

MULTI_RESULT_BODIES: Final[dict[int, type[Record] | None]] = {
    ZkOp.CREATE: CreateResponse,
    ZkOp.CREATE2: Create2Response,
    ZkOp.DELETE: None,
    ZkOp.SET_DATA: StatResponse,
    ZkOp.CHECK: None,
    ZkOp.GET_DATA: GetDataResponse,
    ZkOp.GET_CHILDREN: GetChildrenResponse,
    ZkOp.ERROR: ErrorResponse,
}
"""What a multi response carries per result type (create2 also stands for the container
and TTL creates; a failed op is type -1 with an ErrorResponse)."""


_MULTI_END = MULTI_END.to_bytes()


def _multi_header(data: bytes, pos: int) -> tuple[int, bool, int]:
    """The (type, done, err) of the MultiHeader at `pos`, without building a record
    (a multi has one per op); JuteDecodeError when the bytes end first."""
    try:
        op, done, err = _MULTI_HEADER.unpack_from(data, pos)
    except struct.error as exc:
        raise JuteDecodeError(f"multi ends early: {exc}") from None
    return op, done, err


@dataclass(frozen=True, slots=True)
class MultiRequest(Record):
    """multi and multiRead: (op, body) pairs, each after a MultiHeader, then the end marker."""

    ops: tuple[tuple[int, Record], ...]

    def pack_into(self, out: bytearray) -> None:
        for op, body in self.ops:
            out += _MULTI_HEADER.pack(op, False, -1)
            body.pack_into(out)
        out += _MULTI_END

    @classmethod
    def unpack_from(cls, data: bytes, pos: int = 0) -> tuple[Self, int]:
        data = bytes(data)
        ops: list[tuple[int, Record]] = []
        while True:  # ends: every round reads at least a header, or raises
            op, done, _ = _multi_header(data, pos)
            pos += _MULTI_HEADER.size
            if done:
                return cls(tuple(ops)), pos
            body = MULTI_REQUEST_BODIES.get(op)
            if body is None:
                raise JuteDecodeError(f"op code {op} cannot appear in a multi")
            value, pos = body.unpack_from(data, pos)
            ops.append((op, value))


@dataclass(frozen=True, slots=True)
class OpResult:
    """One result of a multi: its type (-1 for an error), the error code, and the body."""

    type: int
    err: int
    body: Record | None


@dataclass(frozen=True, slots=True)
class MultiResponse(Record):
    results: tuple[OpResult, ...]

    def pack_into(self, out: bytearray) -> None:
        for result in self.results:
            out += _MULTI_HEADER.pack(result.type, False, result.err)
            if result.body is not None:
                result.body.pack_into(out)
        out += _MULTI_END

    @classmethod
    def unpack_from(cls, data: bytes, pos: int = 0) -> tuple[Self, int]:
        data = bytes(data)
        results: list[OpResult] = []
        while True:
            op, done, err = _multi_header(data, pos)
            pos += _MULTI_HEADER.size
            if done:
                return cls(tuple(results)), pos
            if op not in MULTI_RESULT_BODIES:
                raise JuteDecodeError(f"result type {op} cannot appear in a multi")
            body_type = MULTI_RESULT_BODIES[op]
            body = None
            if body_type is not None:
                body, pos = body_type.unpack_from(data, pos)
            results.append(OpResult(op, err, body))


# -- requests by op code ----------------------------------------------------------

REQUEST_BODIES: Final[dict[int, type[Record] | None]] = {
    ZkOp.CREATE: CreateRequest,
    ZkOp.CREATE2: CreateRequest,
    ZkOp.CREATE_CONTAINER: CreateRequest,
    ZkOp.CREATE_TTL: CreateTTLRequest,
    ZkOp.DELETE: DeleteRequest,
    ZkOp.EXISTS: PathWatchRequest,
    ZkOp.GET_DATA: PathWatchRequest,
    ZkOp.SET_DATA: SetDataRequest,
    ZkOp.GET_ACL: PathRequest,
    ZkOp.SET_ACL: SetACLRequest,
    ZkOp.GET_CHILDREN: PathWatchRequest,
    ZkOp.GET_CHILDREN2: PathWatchRequest,
    ZkOp.SYNC: PathRequest,
    ZkOp.PING: None,
    ZkOp.CHECK: CheckVersionRequest,
    ZkOp.MULTI: MultiRequest,
    ZkOp.MULTI_READ: MultiRequest,
    ZkOp.RECONFIG: ReconfigRequest,
    ZkOp.CHECK_WATCHES: WatchesRequest,
    ZkOp.REMOVE_WATCHES: WatchesRequest,
    ZkOp.AUTH: AuthPacket,
    ZkOp.SET_WATCHES: SetWatches,
    ZkOp.SET_WATCHES2: SetWatches2,
    ZkOp.SASL: SaslRequest,
    ZkOp.GET_EPHEMERALS: PathRequest,
    ZkOp.GET_ALL_CHILDREN_NUMBER: PathRequest,
    ZkOp.ADD_WATCH: AddWatchRequest,
    ZkOp.WHO_AM_I: None,
    ZkOp.CLOSE_SESSION: None,
}
"""The body record of each request the codec knows (None: no body)."""


def decode_request(packet: bytes) -> tuple[RequestHeader, Record | None]:
    """A request packet: its header, and its body if the op is one we know (else None,
    and the caller answers Unimplemented: the body of an unknown op cannot be read)."""
    header, pos = RequestHeader.unpack_from(packet, 0)
    body_type = REQUEST_BODIES.get(header.type)
    body = body_type.unpack_from(packet, pos)[0] if body_type is not None else None
    return header, body


def encode_request(header: RequestHeader, body: Record | None = None) -> bytes:
    """A whole request packet, length prefix included (clients and tests use it)."""
    out = bytearray(_REQUEST.size)
    if body is not None:
        body.pack_into(out)
    _REQUEST.pack_into(out, 0, len(out) - 4, header.xid, header.type)
    return bytes(out)


def encode_reply(header: ReplyHeader, body: Record | None = None) -> bytes:
    """A whole reply packet, length prefix included: one buffer, the prefix and header
    filled in once the body is there."""
    out = bytearray(_HEADERS.size)
    if body is not None:
        body.pack_into(out)
    _HEADERS.pack_into(out, 0, len(out) - 4, header.xid, header.zxid, header.err)
    return bytes(out)


def frame(body: bytes) -> bytes:
    return _INT.pack(len(body)) + body


# -- framing ----------------------------------------------------------------------


class PacketDecoder:
    """Splits a byte stream into packets (the bodies after each length prefix)."""

    __slots__ = ("_buffer", "_max_packet")

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self._buffer = bytearray()
        self._max_packet = max_packet

    def receive_data(self, data: bytes | bytearray) -> None:
        self._buffer += data

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def peek(self, size: int) -> bytes:
        return bytes(self._buffer[:size])

    def next_packet(self) -> bytes | NeedData:
        """The next whole packet, or NEED_DATA; FrameTooLargeError for a length over the limit."""
        buffer = self._buffer
        if len(buffer) < 4:
            return NEED_DATA
        (length,) = _INT.unpack_from(buffer, 0)
        if length < 0 or length > self._max_packet:
            raise FrameTooLargeError(
                f"packet length {length} is outside 0..{self._max_packet} (jute.maxbuffer)"
            )
        end = 4 + length
        if len(buffer) < end:
            return NEED_DATA
        packet = bytes(buffer[4:end])
        del buffer[:end]
        return packet


__all__ = [
    "ACL",
    "AUTH_XID",
    "MAX_PACKET",
    "MULTI_END",
    "MULTI_REQUEST_BODIES",
    "MULTI_RESULT_BODIES",
    "OPEN_ACL_UNSAFE",
    "PING_XID",
    "REQUEST_BODIES",
    "SET_WATCHES_XID",
    "STAT_LAYOUT",
    "WATCH_XID",
    "AddWatchRequest",
    "AuthPacket",
    "CheckVersionRequest",
    "ClientInfo",
    "ConnectRequest",
    "ConnectResponse",
    "Create2Response",
    "CreateRequest",
    "CreateResponse",
    "CreateTTLRequest",
    "DeleteRequest",
    "ErrorResponse",
    "GetACLResponse",
    "GetAllChildrenNumberResponse",
    "GetChildren2Response",
    "GetChildrenResponse",
    "GetDataResponse",
    "GetEphemeralsResponse",
    "Id",
    "JuteDecodeError",
    "KeeperState",
    "MultiHeader",
    "MultiRequest",
    "MultiResponse",
    "OpResult",
    "PacketDecoder",
    "PathRequest",
    "PathResponse",
    "PathWatchRequest",
    "Perms",
    "Reader",
    "ReconfigRequest",
    "Record",
    "ReplyHeader",
    "RequestHeader",
    "SaslRequest",
    "SetACLRequest",
    "SetDataRequest",
    "SetWatches",
    "SetWatches2",
    "StatResponse",
    "WatcherEvent",
    "WatchesRequest",
    "WhoAmIResponse",
    "ZkOp",
    "decode_request",
    "encode_reply",
    "encode_request",
    "frame",
    "to_signed64",
    "to_unsigned64",
]
