"""What the core says to a client: small frozen values, one type per kind of frame.

Why types and not wire lists. The core serves two wires (the native msgpack
protocol and ZooKeeper's jute), and each encodes these values in its own
codec (coord.server.native.codec, coord.server.zk.translate), as h11's
`send(event) -> bytes` does. The core decides what is said; a wire decides
only how. Nothing here knows a byte layout, so a test or a second wire reads
`reply.result.stat.version`, never `frame[3][1][4]`.

They are NamedTuples: immutable, and built at the cost of a tuple (a reply is
made for every request; a frozen dataclass costs three times as much to
construct). Only a codec turns them into wire values; never hand one to
msgpack directly, which would pack its fields as they stand.

The frames a connection gets, in the order the core emits them:

- `Connected` answers a handshake that made or resumed a session;
  `ConnectRefused` one that did not (the connection closes after it).
- `Reply` answers request `xid` (a ping too); `ErrorReply` refuses it.
  Replies come in request order per connection.
- `WatchedEvent` (coord.messages) is a watch firing.
- `Notice` says why the server is about to close the connection (the session
  expired or moved, the member lost its leader).

Every frame carries the zxid the client has seen once it reads it; per
connection these never go back (see ServerCore._emit).

A reply's `result` is the op's answer: `Created` (create), `NodeData`
(get_data), `Children` (get_children), `NodeAcl` (get_acls), a `Stat`
(set_data, set_acls, exists; None for exists of a missing node), `str`
(sync: its path), `int` (the number of nodes below a path), `list[str]`
(get_ephemerals), `MultiResults` (multi and multi_read), None for the rest.
"""

from __future__ import annotations

from typing import NamedTuple, TypeAlias

from coord.acl import ACL
from coord.errors import KeeperError
from coord.messages import Stat, WatchedEvent


class Created(NamedTuple):
    """A create's answer: the node's path (sequential: with its suffix) and its stat."""

    path: str
    stat: Stat


class NodeData(NamedTuple):
    """A get_data's answer."""

    data: bytes | None
    stat: Stat


class Children(NamedTuple):
    """A get_children's answer: the names, sorted; the parent's stat if it was asked for."""

    names: list[str]
    stat: Stat | None


class NodeAcl(NamedTuple):
    """A get_acls's answer (redacted for a reader without ADMIN)."""

    acl: tuple[ACL, ...]
    stat: Stat


class OpOutcome(NamedTuple):
    """One op of a multi: its result, or the error it failed (or was rolled back) with."""

    result: Result = None
    error: KeeperError | None = None


class MultiResults(NamedTuple):
    """The answer of a multi (all applied, or each op's error) or of a multi_read."""

    outcomes: tuple[OpOutcome, ...]

    @property
    def failed(self) -> bool:
        return any(outcome.error is not None for outcome in self.outcomes)


Result: TypeAlias = (
    Created | NodeData | Children | NodeAcl | MultiResults | Stat | str | int | list[str] | None
)


class Reply(NamedTuple):
    """Request `xid` succeeded; `zxid` is the last one the member applied when it answered."""

    xid: int
    zxid: int
    result: Result = None


class ErrorReply(NamedTuple):
    """Request `xid` failed with `error`."""

    xid: int
    zxid: int
    error: KeeperError


class Notice(NamedTuple):
    """Why the connection is about to close; not an answer to any request."""

    zxid: int
    error: KeeperError


class Connected(NamedTuple):
    """A handshake made or resumed `session_id`."""

    session_id: int
    timeout_ms: int
    password: bytes
    zxid: int
    server_id: int


class ConnectRefused(NamedTuple):
    """A handshake was refused with `error` (SessionExpired: the session is gone)."""

    zxid: int
    server_id: int
    error: KeeperError


ClientOutput: TypeAlias = Reply | ErrorReply | WatchedEvent | Notice | Connected | ConnectRefused
"""One frame for one connection."""


__all__ = [
    "Children",
    "ClientOutput",
    "ConnectRefused",
    "Connected",
    "Created",
    "ErrorReply",
    "MultiResults",
    "NodeAcl",
    "NodeData",
    "Notice",
    "OpOutcome",
    "Reply",
    "Result",
]
