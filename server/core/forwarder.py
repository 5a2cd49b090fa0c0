"""Both ends of a forwarded write: the follower that sends it, the leader that orders it.

Only the member that holds the Sequencer orders writes. A follower's core
forwards each client write to the leader (a `ForwardRequest`) and answers it
when the txn is committed and applied locally; the leader either submits it to
its sequencer (no answer needed: the txn is the answer) or sends back a
`ForwardReply` saying why not (or, for a retry of a write applied before, its
first result). This module holds what each end keeps for that, so the replica
core (coord.server.core.replica) only routes.
"""

from __future__ import annotations

import logging
from typing import Any

from coord.acl import Id
from coord.errors import ConnectionLossError, KeeperError, ServerSystemError
from coord.messages import MultiRequest, OpCode, parse_multi_ops, parse_request_body
from coord.server.core.connection import Answer, Connection, Slot
from coord.server.core.forwarding import ForwardReply, ForwardRequest, SessionTouches
from coord.server.core.output import ErrorReply, Reply
from coord.server.core.prep import MultiFailed
from coord.server.core.results import multi_failure
from coord.server.core.sequencer import CREATE_SESSION, AlreadyApplied, AlreadyPending, Sequencer
from coord.server.native.codec import result_from_wire, result_to_wire

log = logging.getLogger(__name__)

SYNC_ALIAS_BASE = 1 << 32
"""Xids a follower gives the syncs it forwards: above every client xid (31 bits)."""

WaitKey = tuple[int, int]
"""(session id, the xid its txn will carry): how an applied txn finds its slot."""


# -- the leader's end ---------------------------------------------------------------------


class ForwardedWrites:
    """(Leader) Orders followers' writes, refusing one whose predecessor never arrived."""

    def __init__(self) -> None:
        self._last_xid: dict[int, int] = {}
        """session -> the xid of the last request a follower forwarded for it."""

    def receive(
        self, sequencer: Sequencer | None, request: ForwardRequest, now_ms: int
    ) -> ForwardReply | None:
        """Submit a follower's client write; None when its txn will answer it, else the reply."""
        error: KeeperError | None = None
        result: Any = None
        applied_at = 0
        try:
            if sequencer is None:
                raise ConnectionLossError("this member is not the leader any more")
            last = self._last_xid.get(request.session_id, 0)
            self._last_xid[request.session_id] = request.xid
            if request.prev_xid and request.prev_xid != last:
                raise ConnectionLossError(
                    "a request sent before this one was lost on the way to the leader; "
                    "reconnect and send both again"
                )
            parsed = (
                tuple(request.body)
                if request.op == CREATE_SESSION
                else parse_request_body(request.op, request.body)
            )
            ids = tuple(Id(scheme, ident) for scheme, ident in request.auth)
            sequencer.submit(request.session_id, request.xid, request.op, parsed, now_ms, ids)
            return None
        except AlreadyPending:
            return None  # the follower's slot is answered when the txn is applied there
        except AlreadyApplied as done:
            result = result_to_wire(done.result)
            applied_at = done.zxid
        except KeeperError as exc:
            error = exc
        except MultiFailed as failed:
            result = result_to_wire(multi_failure(failed))
        return ForwardReply(
            request.session_id,
            request.xid,
            error.code if error is not None else 0,
            error.to_wire() if error is not None else result,
            applied_at,
        )


# -- the follower's end -------------------------------------------------------------------


class Forwarder:
    """(Follower) The writes sent to the leader, not yet answered, and the sessions heard from."""

    def __init__(self, server_id: int) -> None:
        self.server_id = server_id
        self.sent_at: dict[WaitKey, int] = {}
        """A forwarded write -> when it went to the leader (see `overdue`)."""
        self._sync_aliases = 0
        self._touched: set[int] = set()

    def forward(self, conn: Connection, slot: Slot, body: Any, now_ms: int) -> ForwardRequest:
        """The message that forwards `slot` (`body`: the client's validated request)."""
        if slot.op == CREATE_SESSION:
            body = list(slot.request)
        elif slot.op == OpCode.SYNC:
            # A sync's marker answers only the sync that asked for it. A resent sync
            # (same client xid) must not be answered by the marker of the first one,
            # which the leader may have ordered before writes acknowledged since: the
            # read after it would miss them.
            self._sync_aliases += 1
            slot.wait_xid = SYNC_ALIAS_BASE + self._sync_aliases
        forward = ForwardRequest(
            self.server_id,
            conn.session_id,
            slot.wait_xid,
            slot.op,
            body,
            conn.auth,  # Ids are (scheme, id) tuples already
            conn.forwarded_xid,
        )
        conn.forwarded_xid = slot.wait_xid
        self.sent_at[(conn.session_id, slot.wait_xid)] = now_ms
        return forward

    def settled(self, key: WaitKey) -> None:
        """The write was answered (applied here, refused, or its connection closed)."""
        if self.sent_at:
            self.sent_at.pop(key, None)

    def overdue(self, now_ms: int, limit_ms: int) -> list[WaitKey]:
        """Take the writes that have waited for the leader longer than `limit_ms`.

        A peer link may lose a stretch of messages (a full queue, a broken
        connection) and nothing else tells the follower: the write and every
        request behind it would wait for good while pings keep the session alive.
        """
        oldest = now_ms - limit_ms
        late = [key for key, sent_at in self.sent_at.items() if sent_at <= oldest]
        for key in late:
            del self.sent_at[key]
        return late

    def touched(self, session_id: int) -> None:
        self._touched.add(session_id)

    def take_touches(self) -> SessionTouches | None:
        """The sessions heard from since the last call, for the leader."""
        if not self._touched:
            return None
        touches = SessionTouches(tuple(sorted(self._touched)))
        self._touched.clear()
        return touches


def refused_answer(slot: Slot, refusal: KeeperError | None, result: Any, zxid: int) -> Answer:
    """The reply to a forwarded write the leader answered itself (`result`: native layout)."""
    if refusal is not None:
        return ErrorReply(slot.xid, zxid, refusal)
    sub_ops = (
        tuple(op for op, _ in parse_multi_ops(slot.request))
        if isinstance(slot.request, MultiRequest)
        else ()
    )
    try:
        return Reply(slot.xid, zxid, result_from_wire(slot.op, result, sub_ops))
    except ValueError as exc:
        log.error("the leader's result for xid %d does not fit op %d: %s", slot.xid, slot.op, exc)
        return ErrorReply(slot.xid, zxid, ServerSystemError("the leader sent a bad result"))


__all__ = ["SYNC_ALIAS_BASE", "ForwardedWrites", "Forwarder", "WaitKey", "refused_answer"]
