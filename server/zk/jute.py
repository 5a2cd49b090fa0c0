"""ZooKeeper's jute wire format: primitives, the records clients exchange, and the framing.

Pure: bytes in, records out, and back; no sockets. The facts are Apache
ZooKeeper's (zookeeper.jute, ZooDefs, ClientCnxn); see ZK-WIRE.md in the design
notes. Everything is big-endian: int 4 bytes, long 8, bool 1; a buffer or
ustring is an int length then the bytes (-1 means null); a vector is an int
count (-1 null) then the items.

Each record is a frozen slotted dataclass whose `FIELDS` table gives the wire
order and kind of its fields; `Record.write` and `Record.read` walk that table,
so a record's layout is written down once and both directions agree by
construction. The few records whose shape is not a flat field list (the
connect handshake with its optional read-only flag, multi requests and
responses) write and read themselves.

Framing: every message is an int32 length then the body. `PacketDecoder`
follows h11's shape (`receive_data`, `next_packet` -> bytes or `NEED_DATA`) and
refuses a declared length over jute.maxbuffer (0xfffff) before buffering it, as
ZooKeeper closes such a connection. Decoding errors raise `JuteDecodeError`
(a MalformedFrameError: the stream cannot be trusted any more).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, Self, TypeVar

from coord.errors import FrameTooLargeError, MalformedFrameError
from coord.framing import NEED_DATA, _NeedData
from coord.messages import Stat

T = TypeVar("T")

MAX_PACKET: Final = 0xFFFFF
"""jute.maxbuffer: ZooKeeper closes a connection that declares a longer packet."""

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_BOOL = struct.Struct(">?")
_STAT = struct.Struct(">qqqqiiiqiiq")
_LONG_RANGE = 1 << 64


class JuteDecodeError(MalformedFrameError):
    """Bytes that are not the record they should be (truncated, bad length, bad UTF-8)."""


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


def to_signed64(value: int) -> int:
    """A 64-bit id as jute's signed long (our session ids use the top bit for ids >= 128)."""
    return value - _LONG_RANGE if value >= 1 << 63 else value


def to_unsigned64(value: int) -> int:
    """The inverse of `to_signed64`: a signed long from the wire back to our id."""
    return value + _LONG_RANGE if value < 0 else value


# --------------------------------------------------------------------------
# Primitives


class Writer:
    """Appends jute primitives to a buffer."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def getvalue(self) -> bytes:
        return bytes(self._buffer)

    def write_int(self, value: int) -> None:
        self._buffer += _INT.pack(value)

    def write_long(self, value: int) -> None:
        self._buffer += _LONG.pack(value)

    def write_bool(self, value: bool) -> None:
        self._buffer += _BOOL.pack(bool(value))

    def write_buffer(self, value: bytes | None) -> None:
        if value is None:
            self._buffer += _INT.pack(-1)
        else:
            self._buffer += _INT.pack(len(value))
            self._buffer += value

    def write_ustring(self, value: str | None) -> None:
        self.write_buffer(None if value is None else value.encode("utf-8"))

    def write_stat(self, value: Stat) -> None:
        fields = list(value)
        fields[7] = to_signed64(fields[7])  # ephemeralOwner is a session id
        self._buffer += _STAT.pack(*fields)


class Reader:
    """Reads jute primitives from bytes; raises JuteDecodeError when they are not there."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self._data = data
        self._pos = pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _take(self, layout: struct.Struct) -> tuple[Any, ...]:
        end = self._pos + layout.size
        if end > len(self._data):
            raise JuteDecodeError(
                f"record ends early: need {layout.size} bytes at offset {self._pos}, "
                f"have {len(self._data) - self._pos}"
            )
        values = layout.unpack_from(self._data, self._pos)
        self._pos = end
        return values

    def read_int(self) -> int:
        return int(self._take(_INT)[0])

    def read_long(self) -> int:
        return int(self._take(_LONG)[0])

    def read_bool(self) -> bool:
        return bool(self._take(_BOOL)[0])

    def read_buffer(self) -> bytes | None:
        length = self.read_int()
        if length == -1:
            return None
        if length < 0 or length > self.remaining:
            raise JuteDecodeError(
                f"buffer length {length} at offset {self._pos - 4} does not fit "
                f"the {self.remaining} bytes left"
            )
        value = self._data[self._pos : self._pos + length]
        self._pos += length
        return bytes(value)

    def read_ustring(self) -> str | None:
        raw = self.read_buffer()
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JuteDecodeError(f"string is not UTF-8: {exc}") from None

    def read_stat(self) -> Stat:
        fields = list(self._take(_STAT))
        fields[7] = to_unsigned64(fields[7])
        return Stat(*fields)

    def read_vector(self, item: Callable[[Reader], T]) -> list[T] | None:
        count = self.read_int()
        if count == -1:
            return None
        if count < 0 or count > self.remaining:  # every item takes at least one byte
            raise JuteDecodeError(f"vector of {count} items does not fit {self.remaining} bytes")
        return [item(self) for _ in range(count)]


# --------------------------------------------------------------------------
# Field kinds and records


@dataclass(frozen=True, slots=True)
class Kind(Generic[T]):
    """How one field travels: a name for messages, a writer and a reader."""

    name: str
    write: Callable[[Writer, T], None]
    read: Callable[[Reader], T]


INT: Final[Kind[int]] = Kind("int", Writer.write_int, Reader.read_int)
LONG: Final[Kind[int]] = Kind("long", Writer.write_long, Reader.read_long)
BOOL: Final[Kind[bool]] = Kind("bool", Writer.write_bool, Reader.read_bool)
BUFFER: Final[Kind[bytes | None]] = Kind("buffer", Writer.write_buffer, Reader.read_buffer)
USTRING: Final[Kind[str | None]] = Kind("ustring", Writer.write_ustring, Reader.read_ustring)
STAT: Final[Kind[Stat]] = Kind("Stat", Writer.write_stat, Reader.read_stat)


def vector(item: Kind[T]) -> Kind[list[T] | None]:
    """A vector of `item` (None travels as the null vector, count -1)."""

    def write(out: Writer, values: list[T] | None) -> None:
        if values is None:
            out.write_int(-1)
            return
        out.write_int(len(values))
        for value in values:
            item.write(out, value)

    def read(inp: Reader) -> list[T] | None:
        return inp.read_vector(item.read)

    return Kind(f"vector<{item.name}>", write, read)


R = TypeVar("R", bound="Record")


def record(cls: type[R]) -> Kind[R]:
    """A field that is itself a record."""
    return Kind(cls.__name__, lambda out, value: value.write(out), cls.read)


class Record:
    """Base of the jute records: `FIELDS` is the wire order of (attribute, kind)."""

    __slots__ = ()
    FIELDS: ClassVar[tuple[tuple[str, Kind[Any]], ...]] = ()

    if TYPE_CHECKING:

        def __init__(self, *args: Any) -> None: ...

    def write(self, out: Writer) -> None:
        for name, kind in self.FIELDS:
            kind.write(out, getattr(self, name))

    @classmethod
    def read(cls, inp: Reader) -> Self:
        return cls(*[kind.read(inp) for _, kind in cls.FIELDS])

    def to_bytes(self) -> bytes:
        out = Writer()
        self.write(out)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        return cls.read(Reader(data))


# -- org.apache.zookeeper.data -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Id(Record):
    scheme: str | None
    id: str | None
    FIELDS = (("scheme", USTRING), ("id", USTRING))


@dataclass(frozen=True, slots=True)
class ACL(Record):
    perms: int
    id: Id
    FIELDS = (("perms", INT), ("id", record(Id)))


@dataclass(frozen=True, slots=True)
class ClientInfo(Record):
    auth_scheme: str | None
    user: str | None
    FIELDS = (("auth_scheme", USTRING), ("user", USTRING))


ACLS: Final = vector(record(ACL))
STRINGS: Final = vector(USTRING)


class Perms(enum.IntFlag):
    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


OPEN_ACL_UNSAFE: Final = (ACL(Perms.ALL, Id("world", "anyone")),)


# -- headers and the handshake -------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestHeader(Record):
    xid: int
    type: int
    FIELDS = (("xid", INT), ("type", INT))


@dataclass(frozen=True, slots=True)
class ReplyHeader(Record):
    xid: int
    zxid: int
    err: int
    FIELDS = (("xid", INT), ("zxid", LONG), ("err", INT))


@dataclass(frozen=True, slots=True)
class MultiHeader(Record):
    type: int
    done: bool
    err: int
    FIELDS = (("type", INT), ("done", BOOL), ("err", INT))


MULTI_END: Final = MultiHeader(-1, True, -1)


@dataclass(frozen=True, slots=True)
class ConnectRequest(Record):
    """The client's first packet (no header). `read_only` is None when an old client
    left the flag out; session ids are ours (unsigned), signed only on the wire."""

    protocol_version: int
    last_zxid_seen: int
    timeout_ms: int
    session_id: int
    password: bytes | None
    read_only: bool | None = None

    def write(self, out: Writer) -> None:
        out.write_int(self.protocol_version)
        out.write_long(self.last_zxid_seen)
        out.write_int(self.timeout_ms)
        out.write_long(to_signed64(self.session_id))
        out.write_buffer(self.password)
        if self.read_only is not None:
            out.write_bool(self.read_only)

    @classmethod
    def read(cls, inp: Reader) -> Self:
        version = inp.read_int()
        last_zxid = inp.read_long()
        timeout = inp.read_int()
        session_id = to_unsigned64(inp.read_long())
        password = inp.read_buffer()
        read_only = inp.read_bool() if inp.remaining else None
        return cls(version, last_zxid, timeout, session_id, password, read_only)


@dataclass(frozen=True, slots=True)
class ConnectResponse(Record):
    protocol_version: int
    timeout_ms: int
    session_id: int
    password: bytes | None
    read_only: bool | None = False

    def write(self, out: Writer) -> None:
        out.write_int(self.protocol_version)
        out.write_int(self.timeout_ms)
        out.write_long(to_signed64(self.session_id))
        out.write_buffer(self.password)
        if self.read_only is not None:
            out.write_bool(self.read_only)

    @classmethod
    def read(cls, inp: Reader) -> Self:
        version = inp.read_int()
        timeout = inp.read_int()
        session_id = to_unsigned64(inp.read_long())
        password = inp.read_buffer()
        read_only = inp.read_bool() if inp.remaining else None
        return cls(version, timeout, session_id, password, read_only)


@dataclass(frozen=True, slots=True)
class WatcherEvent(Record):
    type: int
    state: int
    path: str | None
    FIELDS = (("type", INT), ("state", INT), ("path", USTRING))


class KeeperState(enum.IntEnum):
    """Watcher.Event.KeeperState: the `state` of a WatcherEvent."""

    DISCONNECTED = 0
    SYNC_CONNECTED = 3
    AUTH_FAILED = 4
    CONNECTED_READ_ONLY = 5
    SASL_AUTHENTICATED = 6
    CLOSED = 7
    EXPIRED = -112


@dataclass(frozen=True, slots=True)
class ErrorResponse(Record):
    err: int
    FIELDS = (("err", INT),)


@dataclass(frozen=True, slots=True)
class AuthPacket(Record):
    type: int
    scheme: str | None
    auth: bytes | None
    FIELDS = (("type", INT), ("scheme", USTRING), ("auth", BUFFER))


@dataclass(frozen=True, slots=True)
class SetWatches(Record):
    relative_zxid: int
    data: list[str | None] | None
    exist: list[str | None] | None
    child: list[str | None] | None
    FIELDS = (("relative_zxid", LONG), ("data", STRINGS), ("exist", STRINGS), ("child", STRINGS))


@dataclass(frozen=True, slots=True)
class SetWatches2(Record):
    relative_zxid: int
    data: list[str | None] | None
    exist: list[str | None] | None
    child: list[str | None] | None
    persistent: list[str | None] | None
    persistent_recursive: list[str | None] | None
    FIELDS = (
        ("relative_zxid", LONG),
        ("data", STRINGS),
        ("exist", STRINGS),
        ("child", STRINGS),
        ("persistent", STRINGS),
        ("persistent_recursive", STRINGS),
    )


# -- request bodies -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateRequest(Record):
    """create, create2 and createContainer (the op code says which)."""

    path: str | None
    data: bytes | None
    acl: list[ACL] | None
    flags: int
    FIELDS = (("path", USTRING), ("data", BUFFER), ("acl", ACLS), ("flags", INT))


@dataclass(frozen=True, slots=True)
class CreateTTLRequest(Record):
    path: str | None
    data: bytes | None
    acl: list[ACL] | None
    flags: int
    ttl: int
    FIELDS = (("path", USTRING), ("data", BUFFER), ("acl", ACLS), ("flags", INT), ("ttl", LONG))


@dataclass(frozen=True, slots=True)
class DeleteRequest(Record):
    path: str | None
    version: int
    FIELDS = (("path", USTRING), ("version", INT))


@dataclass(frozen=True, slots=True)
class CheckVersionRequest(Record):
    path: str | None
    version: int
    FIELDS = (("path", USTRING), ("version", INT))


@dataclass(frozen=True, slots=True)
class PathWatchRequest(Record):
    """ExistsRequest, GetDataRequest, GetChildrenRequest, GetChildren2Request: one layout."""

    path: str | None
    watch: bool
    FIELDS = (("path", USTRING), ("watch", BOOL))


@dataclass(frozen=True, slots=True)
class PathRequest(Record):
    """SyncRequest, GetACLRequest, GetAllChildrenNumberRequest, GetEphemeralsRequest
    (whose one field ZooKeeper calls prefixPath): one layout."""

    path: str | None
    FIELDS = (("path", USTRING),)


@dataclass(frozen=True, slots=True)
class SetDataRequest(Record):
    path: str | None
    data: bytes | None
    version: int
    FIELDS = (("path", USTRING), ("data", BUFFER), ("version", INT))


@dataclass(frozen=True, slots=True)
class SetACLRequest(Record):
    path: str | None
    acl: list[ACL] | None
    version: int
    FIELDS = (("path", USTRING), ("acl", ACLS), ("version", INT))


@dataclass(frozen=True, slots=True)
class WatchesRequest(Record):
    """CheckWatchesRequest and RemoveWatchesRequest: a path and a watcher type."""

    path: str | None
    type: int
    FIELDS = (("path", USTRING), ("type", INT))


@dataclass(frozen=True, slots=True)
class AddWatchRequest(Record):
    path: str | None
    mode: int
    FIELDS = (("path", USTRING), ("mode", INT))


@dataclass(frozen=True, slots=True)
class ReconfigRequest(Record):
    joining: str | None
    leaving: str | None
    new_members: str | None
    config_id: int
    FIELDS = (
        ("joining", USTRING),
        ("leaving", USTRING),
        ("new_members", USTRING),
        ("config_id", LONG),
    )


@dataclass(frozen=True, slots=True)
class SaslRequest(Record):
    token: bytes | None
    FIELDS = (("token", BUFFER),)


# -- response bodies ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateResponse(Record):
    path: str | None
    FIELDS = (("path", USTRING),)


@dataclass(frozen=True, slots=True)
class Create2Response(Record):
    path: str | None
    stat: Stat
    FIELDS = (("path", USTRING), ("stat", STAT))


@dataclass(frozen=True, slots=True)
class StatResponse(Record):
    """ExistsResponse, SetDataResponse, SetACLResponse: a Stat alone."""

    stat: Stat
    FIELDS = (("stat", STAT),)


@dataclass(frozen=True, slots=True)
class GetDataResponse(Record):
    data: bytes | None
    stat: Stat
    FIELDS = (("data", BUFFER), ("stat", STAT))


@dataclass(frozen=True, slots=True)
class GetChildrenResponse(Record):
    children: list[str | None] | None
    FIELDS = (("children", STRINGS),)


@dataclass(frozen=True, slots=True)
class GetChildren2Response(Record):
    children: list[str | None] | None
    stat: Stat
    FIELDS = (("children", STRINGS), ("stat", STAT))


@dataclass(frozen=True, slots=True)
class GetACLResponse(Record):
    acl: list[ACL] | None
    stat: Stat
    FIELDS = (("acl", ACLS), ("stat", STAT))


@dataclass(frozen=True, slots=True)
class PathResponse(Record):
    """SyncResponse: the path."""

    path: str | None
    FIELDS = (("path", USTRING),)


@dataclass(frozen=True, slots=True)
class GetAllChildrenNumberResponse(Record):
    total: int
    FIELDS = (("total", INT),)


@dataclass(frozen=True, slots=True)
class GetEphemeralsResponse(Record):
    ephemerals: list[str | None] | None
    FIELDS = (("ephemerals", STRINGS),)


@dataclass(frozen=True, slots=True)
class WhoAmIResponse(Record):
    client_info: list[ClientInfo] | None
    FIELDS = (("client_info", vector(record(ClientInfo))),)


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


@dataclass(frozen=True, slots=True)
class MultiRequest(Record):
    """multi and multiRead: (op, body) pairs, each after a MultiHeader, then the end marker."""

    ops: tuple[tuple[int, Record], ...]

    def write(self, out: Writer) -> None:
        for op, body in self.ops:
            MultiHeader(op, False, -1).write(out)
            body.write(out)
        MULTI_END.write(out)

    @classmethod
    def read(cls, inp: Reader) -> Self:
        ops: list[tuple[int, Record]] = []
        while True:
            header = MultiHeader.read(inp)
            if header.done:
                return cls(tuple(ops))
            body = MULTI_REQUEST_BODIES.get(header.type)
            if body is None:
                raise JuteDecodeError(f"op code {header.type} cannot appear in a multi")
            ops.append((header.type, body.read(inp)))


@dataclass(frozen=True, slots=True)
class OpResult:
    """One result of a multi: its type (-1 for an error), the error code, and the body."""

    type: int
    err: int
    body: Record | None


@dataclass(frozen=True, slots=True)
class MultiResponse(Record):
    results: tuple[OpResult, ...]

    def write(self, out: Writer) -> None:
        for result in self.results:
            MultiHeader(result.type, False, result.err).write(out)
            if result.body is not None:
                result.body.write(out)
        MULTI_END.write(out)

    @classmethod
    def read(cls, inp: Reader) -> Self:
        results: list[OpResult] = []
        while True:
            header = MultiHeader.read(inp)
            if header.done:
                return cls(tuple(results))
            if header.type not in MULTI_RESULT_BODIES:
                raise JuteDecodeError(f"result type {header.type} cannot appear in a multi")
            body_type = MULTI_RESULT_BODIES[header.type]
            body = None if body_type is None else body_type.read(inp)
            results.append(OpResult(header.type, header.err, body))


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
    inp = Reader(packet)
    header = RequestHeader.read(inp)
    body_type = REQUEST_BODIES.get(header.type)
    body = body_type.read(inp) if body_type is not None else None
    return header, body


def encode_request(header: RequestHeader, body: Record | None = None) -> bytes:
    """A whole request packet, length prefix included (clients and tests use it)."""
    out = Writer()
    header.write(out)
    if body is not None:
        body.write(out)
    return frame(out.getvalue())


def encode_reply(header: ReplyHeader, body: Record | None = None) -> bytes:
    """A whole reply packet, length prefix included."""
    out = Writer()
    header.write(out)
    if body is not None:
        body.write(out)
    return frame(out.getvalue())


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

    def next_packet(self) -> bytes | _NeedData:
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
