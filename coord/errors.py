"""The error families of the service, one class per error code.

Two families, as in h11: a `ProtocolError` means the byte stream can no longer
be trusted (the connection is closed), a `KeeperError` means one operation
failed and the session goes on. Error codes are ZooKeeper's numbers where
ZooKeeper has the error; codes below -200 are ours, for errors ZooKeeper folds
into BadArguments or answers by closing the connection.

Every error can be carried on the wire as `(code, details)`; `details` holds
the message and, where they apply, the path and the expected and actual
values, so that the client raises the same class with the same message.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CoordError(Exception):
    """Base of every error this project raises."""


class ProtocolError(CoordError):
    """The peer broke the protocol; the connection cannot be trusted any more."""


class FrameTooLargeError(ProtocolError):
    """A frame's declared length is over the limit."""


class MalformedFrameError(ProtocolError):
    """A frame could not be decoded or does not have the expected shape."""


class KeeperError(CoordError):
    """An operation failed. `code` is the wire error code."""

    code: ClassVar[int] = -1
    by_code: ClassVar[dict[int, type[KeeperError]]] = {}

    def __init__(
        self,
        message: str = "",
        *,
        path: str | None = None,
        expected: Any = None,
        actual: Any = None,
    ) -> None:
        self.message = message or type(self).__name__
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(self.message)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            KeeperError.by_code.setdefault(cls.code, cls)

    def to_wire(self) -> dict[str, Any]:
        """The details that travel with the code in an error reply."""
        out: dict[str, Any] = {"message": self.message}
        if self.path is not None:
            out["path"] = self.path
        if self.expected is not None:
            out["expected"] = self.expected
        if self.actual is not None:
            out["actual"] = self.actual
        return out

    @staticmethod
    def from_wire(code: int, details: Any) -> KeeperError:
        """Rebuild the exception for an error reply; unknown codes stay KeeperError."""
        cls = KeeperError.by_code.get(code, KeeperError)
        info = details if isinstance(details, dict) else {}
        message = str(info.get("message") or f"error code {code}")
        err = cls(
            message, path=info.get("path"), expected=info.get("expected"), actual=info.get("actual")
        )
        if cls is KeeperError:
            err.code = code  # type: ignore[misc]
        return err


class ServerSystemError(KeeperError):
    code = -1


class RuntimeInconsistencyError(KeeperError):
    code = -2


class DataInconsistencyError(KeeperError):
    code = -3


class ConnectionLossError(KeeperError):
    """The connection went away before the reply came; the outcome is unknown."""

    code = -4


class MarshallingError(KeeperError):
    """A request's body did not match its op's schema."""

    code = -5


class UnimplementedError(KeeperError):
    """The op code is unknown to the server."""

    code = -6


class OperationTimeoutError(KeeperError):
    code = -7


class BadArgumentsError(KeeperError):
    code = -8


class APIError(KeeperError):
    code = -100


class NoNodeError(KeeperError):
    code = -101


class NoAuthError(KeeperError):
    code = -102


class BadVersionError(KeeperError):
    code = -103


class NoChildrenForEphemeralsError(KeeperError):
    code = -108


class NodeExistsError(KeeperError):
    code = -110


class NotEmptyError(KeeperError):
    code = -111


class SessionExpiredError(KeeperError):
    """The session is gone for good; make a new client. Never silently replaced."""

    code = -112


class InvalidACLError(KeeperError):
    code = -114


class AuthFailedError(KeeperError):
    code = -115


class SessionMovedError(KeeperError):
    code = -118


class NoWatcherError(KeeperError):
    code = -121


class RequestTimeoutError(KeeperError):
    """No reply came within the request timeout; the outcome is unknown."""

    code = -122


class ThrottledError(KeeperError):
    code = -127


class InvalidPathError(BadArgumentsError):
    """The path breaks the znode path rules (message says which rule)."""

    code = -201


class DataTooLargeError(BadArgumentsError):
    """A znode's data is over the data limit."""

    code = -202


class RolledBackError(KeeperError):
    """An op in a failed multi that did not fail itself but was undone with the rest."""

    code = -203


class SessionClosedError(KeeperError):
    """The client was closed by its user; it cannot be used any more."""

    code = -204


class InvalidTTLError(BadArgumentsError):
    """A TTL create with a TTL out of range, or a TTL on a mode that cannot have one."""

    code = -205


class ChildListTooLargeError(BadArgumentsError):
    """A create that would make its parent's child list too large for one reply.

    Everything the server accepts must stay listable: a parent whose
    get_children reply passed the frame limit (coord.framing.MAX_FRAME_SIZE,
    or a ZooKeeper client's jute.maxbuffer) could not be listed, nor deleted
    recursively, by any client. ZooKeeper answers such a create with success
    and leaves the parent unlistable; we refuse it.
    """

    code = -206


class TooManyWatchesError(KeeperError):
    """The session already has the most watches the server allows (max_watches_per_session)."""

    code = -207


class ReplyTooLargeError(BadArgumentsError):
    """A read whose reply would not fit one frame (a multi-read of many big nodes,
    the ephemerals of a session that owns very many): the client could not read
    it, so the server refuses it; ask for less at a time."""

    code = -208


def error_for_code(code: int) -> type[KeeperError]:
    """The exception class for a wire error code (KeeperError when unknown)."""
    return KeeperError.by_code.get(code, KeeperError)
