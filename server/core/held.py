"""A leader's refusals held until the state they were decided against is committed.

The sequencer checks a write against the pending state: the tree plus the
txns it has proposed and not yet seen committed. A refusal decided there (a
create refused with NodeExists because another client's create of the node
is pending, a set refused with BadVersion against a pending set) describes a
state that may never be: a crash of the leader loses those proposals. So the
refusal waits until the tree has applied the last txn that was pending when
it was decided, as ZooKeeper's refusals wait their turn in its commit
pipeline. Leadership lost in between means the state may be gone: a held
refusal for our own client closes its connection (the client resends), a
forwarded one is dropped (the follower's forward deadline closes its client's
connection). A standalone server does not hold: its pending txns are durable
before any reply of their batch leaves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coord.server.core.connection import Connection, Slot
from coord.server.core.forwarding import ForwardReply


@dataclass(slots=True)
class Released:
    """What `HeldRefusals.release` lets go."""

    answered: list[tuple[Connection, Slot]] = field(default_factory=list)
    """Slots whose refusal may now be sent (their connection's queue is flushed)."""
    lost: list[Connection] = field(default_factory=list)
    """Connections to close: their refusal was decided by a leadership that ended."""
    forwards: list[tuple[int, ForwardReply]] = field(default_factory=list)
    """Forwarded refusals to send, with the member each goes back to."""


class HeldRefusals:
    """(Leader) Refusals by the zxid they wait for, in the order they were decided."""

    def __init__(self) -> None:
        self._replies: list[tuple[int, Connection, Slot]] = []
        self._forwards: list[tuple[int, ForwardReply, int]] = []
        self.count = 0
        """Refusals held (a plain number: the apply path checks it after every txn)."""

    def hold_reply(self, zxid: int, conn: Connection, slot: Slot) -> None:
        self._replies.append((zxid, conn, slot))
        self.count += 1

    def hold_forward(self, zxid: int, reply: ForwardReply, origin: int) -> None:
        self._forwards.append((zxid, reply, origin))
        self.count += 1

    def release(self, applied_zxid: int, *, leading: bool) -> Released:
        """Let go of what waited for txns up to `applied_zxid` (`leading`: still the leader)."""
        out = Released()
        waiting: list[tuple[int, Connection, Slot]] = []
        for zxid, conn, slot in self._replies:
            if zxid > applied_zxid:
                waiting.append((zxid, conn, slot))
            elif leading:
                out.answered.append((conn, slot))
            else:
                out.lost.append(conn)
        self._replies = waiting
        still: list[tuple[int, ForwardReply, int]] = []
        for zxid, reply, origin in self._forwards:
            if zxid > applied_zxid:
                still.append((zxid, reply, origin))
            elif leading:
                out.forwards.append((origin, reply))
        self._forwards = still
        self.count = len(self._replies) + len(self._forwards)
        return out


__all__ = ["HeldRefusals", "Released"]
