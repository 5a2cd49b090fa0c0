"""The native wire protocol: op codes, request and reply shapes, events.

Every frame is a msgpack value (see coord.framing). After the handshake:

    request   [xid, op, body]               client -> server
    reply     [xid, zxid, err, result]      server -> client
    event     [WATCH_XID, zxid, 0, {"type": t, "path": p}]
    ping      [PING_XID, OpCode.PING, {}]  -> [PING_XID, zxid, 0, None]
    notice    [NOTICE_XID, zxid, err, details] sent before the server closes

The handshake is one ConnectRequest map from the client and one
ConnectResponse map back. `err` is 0 or an error code from coord.errors, in
which case `result` holds the error's details. Replies come back in the order
the requests were sent on a connection; a watch event is always sent before any
reply that shows the change that fired it.

Results, by op (for err == 0; a stat is the list of Stat's 11 fields):

    CREATE          [path, stat]
    DELETE          None
    EXISTS          stat, or None when the node does not exist (the watch is
                    still set, as an exists-watch that fires on creation)
    GET_DATA        [data, stat]
    SET_DATA        stat
    GET_CHILDREN    [sorted names, stat or None (stat only if include_stat)]
    SYNC            path
    CHECK           None
    MULTI           [[code, result-or-details], ...] one per op; when one op
                    fails nothing is applied, the failing op carries its code
                    and details and every other op carries RolledBackError's
                    code (-203); the reply's own err stays 0
    MULTI_READ      [[code, result-or-details], ...] one per GET_DATA or
                    GET_CHILDREN op, read at one point of the tree; each op
                    succeeds or fails on its own
    GET_ACL         [acl, stat]: acl is [[perms, scheme, id], ...] (digest
                    hashes shown as "user:x" to a reader without ADMIN)
    SET_ACL         stat (a write: the version is the node's aversion)
    AUTH            None (the connection gains the credential's ids; a bad
                    one is AuthFailed and the connection stays as it was)
    GET_EPHEMERALS  sorted paths of the session's ephemerals that start with
                    the prefix (a plain string prefix, as in ZooKeeper)
    GET_ALL_CHILDREN_NUMBER  the number of nodes below the path (all depths)
    ADD_WATCH, REMOVE_WATCHES, CHECK_WATCHES, SET_WATCHES, CLOSE_SESSION,
    PING: None

Null data: a create or set may carry nil instead of bytes, ZooKeeper's null
data; GET_DATA then answers nil, and the stat's data_length is 0.

Op codes are ZooKeeper's numbers, so that a ZooKeeper-compatible front end maps
onto the same server core. Request bodies are validated at the server's
boundary into the frozen pydantic models below (`extra="forbid"`, strict
types); everything inside the server takes these models.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated, Any, Final, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, Strict, StrictInt, StrictStr, ValidationError

from coord.errors import MarshallingError, UnimplementedError

PROTOCOL_VERSION: Final = 1

WATCH_XID: Final = -1
PING_XID: Final = -2
NOTICE_XID: Final = -3
MAX_XID: Final = 2**31 - 1


class OpCode(enum.IntEnum):
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
    CHECK = 13
    MULTI = 14
    CHECK_WATCHES = 17
    REMOVE_WATCHES = 18
    MULTI_READ = 22
    AUTH = 100
    SET_WATCHES = 101
    GET_EPHEMERALS = 103
    GET_ALL_CHILDREN_NUMBER = 104
    ADD_WATCH = 106
    CLOSE_SESSION = -11


class CreateMode(enum.IntEnum):
    """ZooKeeper's create flags."""

    PERSISTENT = 0
    EPHEMERAL = 1
    PERSISTENT_SEQUENTIAL = 2
    EPHEMERAL_SEQUENTIAL = 3
    CONTAINER = 4
    PERSISTENT_WITH_TTL = 5
    PERSISTENT_SEQUENTIAL_WITH_TTL = 6

    @property
    def is_ephemeral(self) -> bool:
        return self in (CreateMode.EPHEMERAL, CreateMode.EPHEMERAL_SEQUENTIAL)

    @property
    def is_sequential(self) -> bool:
        return self in (
            CreateMode.PERSISTENT_SEQUENTIAL,
            CreateMode.EPHEMERAL_SEQUENTIAL,
            CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL,
        )

    @property
    def is_ttl(self) -> bool:
        return self in (CreateMode.PERSISTENT_WITH_TTL, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL)

    @property
    def is_container(self) -> bool:
        return self is CreateMode.CONTAINER


class EventType(enum.IntEnum):
    """ZooKeeper's watch event types."""

    CREATED = 1
    DELETED = 2
    CHANGED = 3
    CHILD = 4
    DATA_WATCH_REMOVED = 5
    CHILD_WATCH_REMOVED = 6
    PERSISTENT_WATCH_REMOVED = 7


class WatcherType(enum.IntEnum):
    """Which watches a remove-watches request removes (ZooKeeper's numbers)."""

    CHILDREN = 1
    DATA = 2
    ANY = 3
    PERSISTENT = 4
    PERSISTENT_RECURSIVE = 5


class AddWatchMode(enum.IntEnum):
    PERSISTENT = 0
    PERSISTENT_RECURSIVE = 1


class Stat(NamedTuple):
    """A znode's metadata, ZooKeeper's fields. Times are milliseconds since the epoch."""

    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeral_owner: int
    data_length: int
    num_children: int
    pzxid: int

    @property
    def created(self) -> float:
        """ctime in seconds (kazoo's name)."""
        return self.ctime / 1000.0

    @property
    def last_modified(self) -> float:
        """mtime in seconds (kazoo's name)."""
        return self.mtime / 1000.0


@dataclass(frozen=True, slots=True)
class WatchedEvent:
    """A watch notification: what happened, where, and the zxid of the change."""

    type: EventType
    path: str
    zxid: int


# --------------------------------------------------------------------------
# Request bodies, validated at the server's boundary.


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


_AclEntry = Annotated[tuple[StrictInt, StrictStr, StrictStr], Strict(False)]
"""One ACL entry, `[perms, scheme, id]` (msgpack decodes arrays as lists and strict
mode takes only real tuples, so the entry alone is lax; its items stay strict)."""


_AuthPair = Annotated[
    tuple[
        Annotated[StrictStr, Field(max_length=64)],
        Annotated[bytes, Strict(), Field(max_length=4096)],
    ],
    Strict(False),
]
"""One `[scheme, credential]` pair (lax for the same reason as `_MultiOp` below)."""


class ConnectRequest(_Body):
    protocol_version: int
    last_zxid_seen: int = 0
    timeout_ms: int = Field(ge=0)
    session_id: int = 0
    password: bytes = b""
    auth: list[_AuthPair] = Field(default=[], max_length=64)
    """Credentials applied to the connection before its session is made or resumed:
    the client sends every one it authenticated with, on every connect."""


class ConnectResponse(_Body):
    protocol_version: int
    timeout_ms: int
    session_id: int
    password: bytes
    zxid: int
    server_id: int = 0
    error: int = 0
    message: str = ""


class CreateRequest(_Body):
    path: str
    data: bytes | None = b""
    mode: int = 0
    ttl_ms: int = 0
    acl: list[_AclEntry] | None = Field(default=None, max_length=1024)
    """The new node's ACL; None is the open ACL (world:anyone, every permission)."""


class DeleteRequest(_Body):
    path: str
    version: int = -1


class ExistsRequest(_Body):
    path: str
    watch: bool = False


class GetDataRequest(_Body):
    path: str
    watch: bool = False


class SetDataRequest(_Body):
    path: str
    data: bytes | None
    version: int = -1


class GetChildrenRequest(_Body):
    path: str
    watch: bool = False
    include_stat: bool = False


class SyncRequest(_Body):
    path: str = "/"


class CheckRequest(_Body):
    path: str
    version: int


class PingRequest(_Body):
    pass


class CloseSessionRequest(_Body):
    pass


class AddWatchRequest(_Body):
    path: str
    mode: int = 0


class RemoveWatchesRequest(_Body):
    path: str
    watcher_type: int


class SetWatchesRequest(_Body):
    """Re-register watches after a reconnect; events missed since `relative_zxid` fire."""

    relative_zxid: int
    data: list[str] = []
    exist: list[str] = []
    child: list[str] = []
    persistent: list[str] = []
    persistent_recursive: list[str] = []


_MultiOp = Annotated[tuple[StrictInt, Annotated[dict[str, Any], Strict()]], Strict(False)]
"""One `[op, body]` pair. msgpack decodes arrays as lists and strict mode takes only
real tuples, so the pair alone is lax (a list is accepted); its items stay strict."""


class MultiRequest(_Body):
    ops: list[_MultiOp]


class MultiReadRequest(_Body):
    """GET_DATA and GET_CHILDREN ops answered together, at one point of the tree."""

    ops: list[_MultiOp]


class GetACLRequest(_Body):
    path: str


class SetACLRequest(_Body):
    path: str
    acl: list[_AclEntry] = Field(max_length=1024)
    version: int = -1


class AuthRequest(_Body):
    """add_auth: `credential` is scheme-specific ("user:password" for digest)."""

    scheme: str = Field(max_length=64)
    credential: bytes = Field(max_length=4096)


class CheckWatchesRequest(_Body):
    """Whether this connection has a watch of `watcher_type` on `path` (NoWatcher if not)."""

    path: str
    watcher_type: int


class GetEphemeralsRequest(_Body):
    prefix: str = "/"


class GetAllChildrenNumberRequest(_Body):
    path: str


Request = (
    CreateRequest
    | DeleteRequest
    | ExistsRequest
    | GetDataRequest
    | SetDataRequest
    | GetChildrenRequest
    | SyncRequest
    | CheckRequest
    | PingRequest
    | CloseSessionRequest
    | AddWatchRequest
    | RemoveWatchesRequest
    | SetWatchesRequest
    | MultiRequest
    | MultiReadRequest
    | GetACLRequest
    | SetACLRequest
    | AuthRequest
    | CheckWatchesRequest
    | GetEphemeralsRequest
    | GetAllChildrenNumberRequest
)

REQUEST_MODELS: Final[dict[int, type[_Body]]] = {
    OpCode.CREATE: CreateRequest,
    OpCode.DELETE: DeleteRequest,
    OpCode.EXISTS: ExistsRequest,
    OpCode.GET_DATA: GetDataRequest,
    OpCode.SET_DATA: SetDataRequest,
    OpCode.GET_CHILDREN: GetChildrenRequest,
    OpCode.SYNC: SyncRequest,
    OpCode.CHECK: CheckRequest,
    OpCode.PING: PingRequest,
    OpCode.CLOSE_SESSION: CloseSessionRequest,
    OpCode.ADD_WATCH: AddWatchRequest,
    OpCode.REMOVE_WATCHES: RemoveWatchesRequest,
    OpCode.SET_WATCHES: SetWatchesRequest,
    OpCode.MULTI: MultiRequest,
    OpCode.MULTI_READ: MultiReadRequest,
    OpCode.GET_ACL: GetACLRequest,
    OpCode.SET_ACL: SetACLRequest,
    OpCode.AUTH: AuthRequest,
    OpCode.CHECK_WATCHES: CheckWatchesRequest,
    OpCode.GET_EPHEMERALS: GetEphemeralsRequest,
    OpCode.GET_ALL_CHILDREN_NUMBER: GetAllChildrenNumberRequest,
}

MULTI_OPS: Final = frozenset({OpCode.CREATE, OpCode.DELETE, OpCode.SET_DATA, OpCode.CHECK})
MULTI_READ_OPS: Final = frozenset({OpCode.GET_DATA, OpCode.GET_CHILDREN})
WRITE_OPS: Final = frozenset(
    {
        OpCode.CREATE,
        OpCode.DELETE,
        OpCode.SET_DATA,
        OpCode.SET_ACL,
        OpCode.MULTI,
        OpCode.CLOSE_SESSION,
    }
)


def _describe(exc: ValidationError) -> str:
    parts = []
    for item in exc.errors()[:3]:
        where = ".".join(str(x) for x in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_request_body(op: int, body: Any) -> Any:
    """Validate a request body for `op`; raise UnimplementedError or MarshallingError."""
    model = REQUEST_MODELS.get(op)
    if model is None:
        raise UnimplementedError(f"unknown op code {op}", expected="a known op code", actual=op)
    if body is None:
        body = {}
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise MarshallingError(
            f"bad body for {OpCode(op).name}: {_describe(exc)}",
            path=body.get("path") if isinstance(body, dict) else None,
        ) from None


def parse_multi_ops(request: MultiRequest) -> list[tuple[int, Any]]:
    """Validate each op inside a multi; only create, delete, set and check may appear."""
    out: list[tuple[int, Any]] = []
    for op, body in request.ops:
        if op not in MULTI_OPS:
            raise UnimplementedError(
                f"op code {op} cannot appear in a multi",
                expected="create, delete, set_data or check",
                actual=op,
            )
        out.append((op, parse_request_body(op, body)))
    return out


def parse_connect(body: Any) -> ConnectRequest:
    """Validate the handshake frame."""
    try:
        return ConnectRequest.model_validate(body)
    except ValidationError as exc:
        raise MarshallingError(f"bad connect request: {_describe(exc)}") from None


def stat_to_wire(stat: Stat) -> list[int]:
    return list(stat)


def stat_from_wire(value: Any) -> Stat:
    return Stat(*value)


def event_to_wire(event: WatchedEvent) -> list[Any]:
    return [WATCH_XID, event.zxid, 0, {"type": int(event.type), "path": event.path}]


def event_from_wire(zxid: int, body: dict[str, Any]) -> WatchedEvent:
    return WatchedEvent(EventType(body["type"]), body["path"], zxid)
