"""The transactions the log carries: what a prepared write does, decided once.

A txn is produced by the preparer (coord.server.core.prep) from a request and the pending
state, and applied by the DataTree on every replica. Everything the apply step
needs is in the txn (the sequential name is already chosen, the parent's
cversion already known, the time already read), so applying is deterministic:
the same txns in the same order give the same tree anywhere.

Txns are frozen slotted dataclasses; `TxnHeader` carries the zxid, the time the
leader decided it, and which session and request it answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from coord.acl import ACL, OPEN_ACL_UNSAFE
from coord.messages import CreateMode


@dataclass(frozen=True, slots=True)
class TxnHeader:
    zxid: int
    time_ms: int
    session_id: int
    xid: int


@dataclass(frozen=True, slots=True)
class CreateTxn:
    path: str
    data: bytes | None
    """None is ZooKeeper's null data, kept distinct from b"" everywhere."""
    mode: CreateMode
    ephemeral_owner: int
    ttl_ms: int
    parent_cversion: int
    """The parent's cversion after this create."""
    acl: tuple[ACL, ...] = OPEN_ACL_UNSAFE
    """The node's ACL, already fixed up (no `auth:` entries left)."""


@dataclass(frozen=True, slots=True)
class DeleteTxn:
    path: str
    parent_cversion: int = -1
    """The parent's cversion after this delete; -1 means one more than it is now.

    The preparer always fills it in: absolute values make replaying a txn
    over a fuzzy snapshot that already holds its effect harmless.
    """


@dataclass(frozen=True, slots=True)
class SetDataTxn:
    path: str
    data: bytes | None
    version: int
    """The node's version after this set."""


@dataclass(frozen=True, slots=True)
class SetACLTxn:
    path: str
    acl: tuple[ACL, ...]
    """The new ACL, already fixed up."""
    aversion: int
    """The node's aversion after this change."""


@dataclass(frozen=True, slots=True)
class CheckTxn:
    """A version check inside a multi: decided at prep time, nothing to apply."""

    path: str
    version: int


@dataclass(frozen=True, slots=True)
class MultiTxn:
    txns: tuple[CreateTxn | DeleteTxn | SetDataTxn | SetACLTxn | CheckTxn, ...]


@dataclass(frozen=True, slots=True)
class CreateSessionTxn:
    session_id: int
    timeout_ms: int
    password: bytes


@dataclass(frozen=True, slots=True)
class CloseSessionTxn:
    """Ends a session (closed by its client, or expired): its ephemerals go in one step."""

    session_id: int
    expired: bool
    deletes: tuple[DeleteTxn, ...] = ()
    """The session's ephemerals as the preparer saw them, deepest first. When empty,
    the tree deletes whatever its ephemeral index holds for the session."""


TxnBody = (
    CreateTxn
    | DeleteTxn
    | SetDataTxn
    | SetACLTxn
    | CheckTxn
    | MultiTxn
    | CreateSessionTxn
    | CloseSessionTxn
)


@dataclass(frozen=True, slots=True)
class Txn:
    header: TxnHeader
    body: TxnBody

    @property
    def zxid(self) -> int:
        return self.header.zxid
