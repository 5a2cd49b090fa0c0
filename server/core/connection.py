"""A client connection as the core sees it: its session, ACL ids, and its queue of slots.

Per connection, replies go out in request order: each request takes a `Slot`
at the tail of its connection's queue, and a slot is sent when it reaches the
head and has its answer (a write's comes when its txn is applied or refused; a
read is evaluated only then). See coord.server.core.replica.
"""

from __future__ import annotations

from collections import deque
from typing import Any, TypeAlias

from coord.server.core.acls import AuthIds
from coord.server.core.identity import ConnectionIdentity
from coord.server.core.output import Connected, ErrorReply, Reply

Answer: TypeAlias = Reply | ErrorReply | Connected
"""What a slot is answered with: a request's reply, or (for the handshake) its session."""


class Slot:
    """A request's place in its connection's reply order."""

    __slots__ = ("held_until", "op", "reply", "request", "wait_xid", "waiting", "xid")

    def __init__(self, xid: int, op: int, request: Any = None) -> None:
        self.xid = xid
        self.wait_xid = xid
        """The xid its txn will carry: the client's, or a forwarded sync's own."""
        self.op = op
        self.request = request
        """The validated request (a coord.messages model), once parsed."""
        self.waiting = False
        """A write in flight: answered when its txn is applied (or refused)."""
        self.reply: Answer | None = None
        self.held_until = 0
        """A refusal decided against pending txns: sent once the tree has applied this zxid."""


class Connection:
    """One client connection: at most one session, and its slots in request order."""

    __slots__ = (
        "auth",
        "certificate",
        "closed",
        "closing",
        "conn_id",
        "forwarded_xid",
        "sent_zxid",
        "session_id",
        "slots",
    )

    def __init__(self, conn_id: int, identity: ConnectionIdentity) -> None:
        self.conn_id = conn_id
        self.auth: AuthIds = identity.ids()
        """The connection's ACL ids: implicit ones from the transport, then add_auth's."""
        self.certificate = bool(identity.x509)
        self.session_id = 0
        self.slots: deque[Slot] = deque()
        self.closed = False
        self.closing = False
        self.sent_zxid = 0
        """The highest zxid of a frame sent on this connection (they never go back)."""
        self.forwarded_xid = 0
        """The xid of the last request this connection forwarded to the leader."""


__all__ = ["Answer", "Connection", "Slot"]
