"""The jute records clients exchange, each declared once as its field list.

The layouts are Apache ZooKeeper's (zookeeper.jute; see ZK-WIRE.md in the design
notes); `jute_schema` turns each declaration into its codec at import. Records
that ZooKeeper declares separately but that share one layout are declared once
here, under the name of what they have in common (PathWatchRequest stands for
ExistsRequest, GetDataRequest, GetChildrenRequest and GetChildren2Request).
Multi requests and responses are not a flat field list; they live in `jute`.
"""

from __future__ import annotations

import enum
from typing import Final

from coord.acl import Perm
from coord.messages import Stat
from coord.server.zk.jute_schema import (
    Bool,
    Buffer,
    Int,
    Long,
    Record,
    SessionId,
    TrailingBool,
    UString,
    Vector,
    layout,
    record,
)

STAT_LAYOUT: Final = layout(
    Stat,
    czxid=Long,
    mzxid=Long,
    ctime=Long,
    mtime=Long,
    version=Int,
    cversion=Int,
    aversion=Int,
    ephemeral_owner=SessionId,
    data_length=Int,
    num_children=Int,
    pzxid=Long,
)
"""org.apache.zookeeper.data.Stat, 68 bytes; the owner is a session id."""


# -- org.apache.zookeeper.data -----------------------------------------------


@record
class Id(Record):
    scheme: UString
    id: UString


@record
class ACL(Record):
    perms: Int
    id: Id


@record
class ClientInfo(Record):
    auth_scheme: UString
    user: UString


Perms = Perm
"""ZooKeeper's permission bits (coord.acl's, the same on both ports)."""

OPEN_ACL_UNSAFE: Final = (ACL(Perms.ALL, Id("world", "anyone")),)


# -- headers and the handshake -------------------------------------------------


@record
class RequestHeader(Record):
    xid: Int
    type: Int


@record
class ReplyHeader(Record):
    xid: Int
    zxid: Long
    err: Int


@record
class MultiHeader(Record):
    type: Int
    done: Bool
    err: Int


MULTI_END: Final = MultiHeader(-1, True, -1)


@record
class ConnectRequest(Record):
    """The client's first packet (no header). `read_only` is None when an old client
    left the flag out; session ids are ours (unsigned), signed only on the wire."""

    protocol_version: Int
    last_zxid_seen: Long
    timeout_ms: Int
    session_id: SessionId
    password: Buffer
    read_only: TrailingBool = None


@record
class ConnectResponse(Record):
    protocol_version: Int
    timeout_ms: Int
    session_id: SessionId
    password: Buffer
    read_only: TrailingBool = False


@record
class WatcherEvent(Record):
    type: Int
    state: Int
    path: UString


class KeeperState(enum.IntEnum):
    """Watcher.Event.KeeperState: the `state` of a WatcherEvent."""

    DISCONNECTED = 0
    SYNC_CONNECTED = 3
    AUTH_FAILED = 4
    CONNECTED_READ_ONLY = 5
    SASL_AUTHENTICATED = 6
    CLOSED = 7
    EXPIRED = -112


@record
class ErrorResponse(Record):
    err: Int


@record
class AuthPacket(Record):
    type: Int
    scheme: UString
    auth: Buffer


@record
class SetWatches(Record):
    relative_zxid: Long
    data: Vector[UString]
    exist: Vector[UString]
    child: Vector[UString]


@record
class SetWatches2(Record):
    relative_zxid: Long
    data: Vector[UString]
    exist: Vector[UString]
    child: Vector[UString]
    persistent: Vector[UString]
    persistent_recursive: Vector[UString]


# -- request bodies -------------------------------------------------------------


@record
class CreateRequest(Record):
    """create, create2 and createContainer (the op code says which)."""

    path: UString
    data: Buffer
    acl: Vector[ACL]
    flags: Int


@record
class CreateTTLRequest(Record):
    path: UString
    data: Buffer
    acl: Vector[ACL]
    flags: Int
    ttl: Long


@record
class DeleteRequest(Record):
    path: UString
    version: Int


@record
class CheckVersionRequest(Record):
    path: UString
    version: Int


@record
class PathWatchRequest(Record):
    """ExistsRequest, GetDataRequest, GetChildrenRequest, GetChildren2Request: one layout."""

    path: UString
    watch: Bool


@record
class PathRequest(Record):
    """SyncRequest, GetACLRequest, GetAllChildrenNumberRequest, GetEphemeralsRequest
    (whose one field ZooKeeper calls prefixPath): one layout."""

    path: UString


@record
class SetDataRequest(Record):
    path: UString
    data: Buffer
    version: Int


@record
class SetACLRequest(Record):
    path: UString
    acl: Vector[ACL]
    version: Int


@record
class WatchesRequest(Record):
    """CheckWatchesRequest and RemoveWatchesRequest: a path and a watcher type."""

    path: UString
    type: Int


@record
class AddWatchRequest(Record):
    path: UString
    mode: Int


@record
class ReconfigRequest(Record):
    joining: UString
    leaving: UString
    new_members: UString
    config_id: Long


@record
class SaslRequest(Record):
    token: Buffer


# -- response bodies ------------------------------------------------------------


@record
class CreateResponse(Record):
    path: UString


@record
class Create2Response(Record):
    path: UString
    stat: Stat


@record
class StatResponse(Record):
    """ExistsResponse, SetDataResponse, SetACLResponse: a Stat alone."""

    stat: Stat


@record
class GetDataResponse(Record):
    data: Buffer
    stat: Stat


@record
class GetChildrenResponse(Record):
    children: Vector[UString]


@record
class GetChildren2Response(Record):
    children: Vector[UString]
    stat: Stat


@record
class GetACLResponse(Record):
    acl: Vector[ACL]
    stat: Stat


@record
class PathResponse(Record):
    """SyncResponse: the path."""

    path: UString


@record
class GetAllChildrenNumberResponse(Record):
    total: Int


@record
class GetEphemeralsResponse(Record):
    ephemerals: Vector[UString]


@record
class WhoAmIResponse(Record):
    client_info: Vector[ClientInfo]
