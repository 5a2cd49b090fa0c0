"""What members send each other besides ZAB: forwarded writes, refusals, session touches.

A follower forwards its clients' writes to the leader (the leader's core
sequences them), hears back when the leader refuses one, and reports which
sessions it heard from so that the leader renews their leases. These ride
the same peer links as the ZAB messages (coord.server.zab.codec encodes both),
but they are the replica cores' business, not the broadcast's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ForwardRequest:
    """A follower's client write, sent to the leader to be sequenced."""

    origin: int
    session_id: int
    xid: int
    op: int
    body: Any
    auth: tuple[tuple[str, str], ...] = ()
    """The ACL ids of the client's connection on the follower: the leader checks with them."""
    prev_xid: int = 0
    """The xid of the request this connection forwarded before this one (0: none).

    Peer links keep order but may lose a stretch (a full queue, a broken
    connection). A write whose predecessor never reached the leader must not be
    applied ahead of it: the leader refuses it (ConnectionLoss), the follower
    closes the client's connection, and the client resends both, in order."""


@dataclass(frozen=True, slots=True)
class ForwardReply:
    """The leader refused a forwarded write: the reply frame's err and result."""

    session_id: int
    xid: int
    err: int
    result: Any
    zxid: int = 0
    """For a retry of a write applied before (err 0): the zxid that applied it."""


@dataclass(frozen=True, slots=True)
class SessionTouches:
    """Sessions a follower heard from since its last report: the leader renews their leases."""

    session_ids: tuple[int, ...]


PeerOutput = ForwardRequest | ForwardReply | SessionTouches
