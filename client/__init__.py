"""The trio client library of the coordination service.

    from coord.client import Client, NoNodeError

    async with Client("127.0.0.1:2281", session_timeout=10) as zk:
        await zk.ensure_path("/app")
        path = await zk.create("/app/worker-", b"", ephemeral=True, sequential=True)

See coord.client.client for how sessions, reconnects and watches work. The error
classes are coord.errors', and the ACL builders coord.acl's (kazoo's names:
make_digest_acl, OPEN_ACL_UNSAFE, ...), re-exported so that users import from
one place.
"""

from coord.acl import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Id,
    Permissions,
    make_acl,
    make_digest_acl,
    make_digest_acl_credential,
)
from coord.errors import (
    APIError,
    AuthFailedError,
    BadArgumentsError,
    BadVersionError,
    ChildListTooLargeError,
    ConnectionLossError,
    CoordError,
    DataInconsistencyError,
    DataTooLargeError,
    FrameTooLargeError,
    InvalidACLError,
    InvalidPathError,
    InvalidTTLError,
    KeeperError,
    MalformedFrameError,
    MarshallingError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    NoWatcherError,
    OperationTimeoutError,
    ProtocolError,
    ReplyTooLargeError,
    RequestTimeoutError,
    RolledBackError,
    RuntimeInconsistencyError,
    ServerSystemError,
    SessionClosedError,
    SessionExpiredError,
    SessionMovedError,
    ThrottledError,
    TooManyWatchesError,
    UnimplementedError,
)
from coord.messages import EventType, Stat, WatchedEvent, WatcherType

from .client import Client
from .states import ClientState
from .streams import StateStream, StreamOverflowError, WatchStream
from .transaction import Transaction

__all__ = [
    "ACL",
    "CREATOR_ALL_ACL",
    "OPEN_ACL_UNSAFE",
    "READ_ACL_UNSAFE",
    "APIError",
    "AuthFailedError",
    "BadArgumentsError",
    "BadVersionError",
    "ChildListTooLargeError",
    "Client",
    "ClientState",
    "ConnectionLossError",
    "CoordError",
    "DataInconsistencyError",
    "DataTooLargeError",
    "EventType",
    "FrameTooLargeError",
    "Id",
    "InvalidACLError",
    "InvalidPathError",
    "InvalidTTLError",
    "KeeperError",
    "MalformedFrameError",
    "MarshallingError",
    "NoAuthError",
    "NoChildrenForEphemeralsError",
    "NoNodeError",
    "NoWatcherError",
    "NodeExistsError",
    "NotEmptyError",
    "OperationTimeoutError",
    "Permissions",
    "ProtocolError",
    "ReplyTooLargeError",
    "RequestTimeoutError",
    "RolledBackError",
    "RuntimeInconsistencyError",
    "ServerSystemError",
    "SessionClosedError",
    "SessionExpiredError",
    "SessionMovedError",
    "Stat",
    "StateStream",
    "StreamOverflowError",
    "ThrottledError",
    "TooManyWatchesError",
    "Transaction",
    "UnimplementedError",
    "WatchStream",
    "WatchedEvent",
    "WatcherType",
    "make_acl",
    "make_digest_acl",
    "make_digest_acl_credential",
]
