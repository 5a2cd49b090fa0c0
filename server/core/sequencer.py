"""Sequencer: the leader's decisions about writes, sessions and time. Pure.

Exactly one member decides at a time: the standalone server, or the
established leader of an ensemble. The sequencer turns write requests
(from the leader's own clients, or forwarded by followers) into txns with the
next zxids, checked against the pending state (coord.server.core.prep); it holds every
session's lease and turns an expired lease into a close txn; it reaps empty
containers and expired TTL nodes. Its txns are *proposals*: they take effect
only when the broadcast commits them and every member applies them.

A new sequencer starts on a tree that has applied the whole committed
history (a leader is established only then), with an empty pending overlay,
and gives every known session a fresh lease, as ZooKeeper does after a leader
change: a session whose client is alive reconnects within that lease.
"""

from __future__ import annotations

from typing import Any

from coord import paths
from coord.errors import ConnectionLossError, KeeperError, SessionExpiredError
from coord.messages import MultiRequest, OpCode, SyncRequest, parse_multi_ops
from coord.server.core.acls import AuthIds
from coord.server.core.dedupe import WriteResults
from coord.server.core.prep import Preparer
from coord.server.core.sessions import SessionTracker
from coord.server.core.tree import ApplyResult, DataTree
from coord.server.core.txn import (
    CheckTxn,
    CloseSessionTxn,
    CreateSessionTxn,
    Txn,
    TxnBody,
    TxnHeader,
)

CREATE_SESSION = -10
"""ZooKeeper's op code for createSession: used between members, never by clients."""

_WRITES = frozenset({OpCode.CREATE, OpCode.DELETE, OpCode.SET_DATA, OpCode.SET_ACL, OpCode.CHECK})


class AlreadyApplied(Exception):
    """A retried write that was applied before: answer it with its original result."""

    def __init__(self, zxid: int, result: Any) -> None:
        super().__init__(f"already applied at zxid {zxid:#x}")
        self.zxid = zxid
        self.result = result


class AlreadyPending(Exception):
    """A retried write whose txn is already on its way: wait for it, do not propose again."""


class Sequencer:
    def __init__(
        self,
        tree: DataTree,
        sessions: SessionTracker,
        *,
        epoch: int,
        now_ms: int,
        results: WriteResults | None = None,
    ) -> None:
        self.tree = tree
        self.results = results if results is not None else WriteResults()
        self._pending_writes: set[tuple[int, int]] = set()
        self.sessions = sessions
        self.preparer = Preparer(tree)
        self.epoch = epoch
        self._next_zxid = max(tree.last_zxid, epoch << 32) + 1
        self.proposals: list[Txn] = []
        for session_id, (timeout_ms, password) in sorted(tree.sessions.items()):
            if sessions.get(session_id) is None:
                sessions.add(session_id, timeout_ms, password, now_ms)

    @property
    def next_zxid(self) -> int:
        return self._next_zxid

    def take_proposals(self) -> list[Txn]:
        out = self.proposals
        self.proposals = []
        return out

    def submit(
        self,
        session_id: int,
        xid: int,
        op: int,
        request: Any,
        now_ms: int,
        ids: AuthIds = (),
    ) -> Txn:
        """Prepare one write from a connection with `ids` (its ACL identity);
        raise KeeperError (or MultiFailed) if it cannot apply."""
        zxid = self._next_zxid
        body: TxnBody
        if op == CREATE_SESSION:
            timeout_ms, password = request
            self.sessions.add(session_id, timeout_ms, password, now_ms)
            body = CreateSessionTxn(session_id, timeout_ms, password)
            return self._propose(body, session_id, xid, now_ms)
        session = self.sessions.get(session_id)
        if session is None:
            raise SessionExpiredError(f"session {session_id:#x} has expired")
        if session.closing:
            # Its close is proposed but not committed: it has not expired yet as far as
            # the ensemble knows (see ServerCore.request), so the client hears "try
            # again", and SessionExpired once the close commits.
            raise ConnectionLossError(f"session {session_id:#x} is closing; try again")
        self.sessions.touch(session_id, now_ms)
        if op != OpCode.SYNC:
            done = self.results.get(session_id, xid)
            if done is not None:
                raise AlreadyApplied(*done)
            if (session_id, xid) in self._pending_writes:
                raise AlreadyPending()
        if op == OpCode.SYNC:
            # A sync is a no-op txn: once it commits, a quorum has confirmed this leader,
            # and a member that applied it has applied every write before it.
            assert isinstance(request, SyncRequest)
            body = CheckTxn(paths.validate(request.path), -1)
        elif op == OpCode.CLOSE_SESSION:
            session.closing = True
            body = self.preparer.prepare_close_session(session_id, expired=False, zxid=zxid)
        elif op == OpCode.MULTI:
            assert isinstance(request, MultiRequest)
            body = self.preparer.prepare_multi(
                parse_multi_ops(request), session_id=session_id, zxid=zxid, now_ms=now_ms, ids=ids
            )
        elif op in _WRITES:
            body = self.preparer.prepare_write(
                op, request, session_id=session_id, zxid=zxid, now_ms=now_ms, ids=ids
            )
        else:
            raise KeeperError(f"op {op} is not a write", actual=op)
        return self._propose(body, session_id, xid, now_ms)

    def touch(self, session_id: int, now_ms: int) -> None:
        self.sessions.touch(session_id, now_ms)

    def tick(self, now_ms: int) -> None:
        """Expire sessions whose lease ran out; reap expired TTL nodes and empty containers."""
        for session_id in self.sessions.expired(now_ms):
            body = self.preparer.prepare_close_session(
                session_id, expired=True, zxid=self._next_zxid
            )
            self._propose(body, session_id, 0, now_ms)
        for path in sorted(self.tree.ttl_nodes | self.tree.containers):
            reap = self.preparer.prepare_reap(path, now_ms=now_ms, zxid=self._next_zxid)
            if reap is not None:
                self._propose(reap, 0, 0, now_ms)

    def applied(self, txn: Txn, result: ApplyResult, now_ms: int) -> None:
        """A committed txn was applied to the tree: catch the pending state up."""
        self.preparer.applied(txn.zxid)
        self._pending_writes.discard((txn.header.session_id, txn.header.xid))
        if isinstance(txn.body, CloseSessionTxn):
            self.sessions.remove(txn.body.session_id)
        for path in result.emptied_containers:
            reap = self.preparer.prepare_reap(path, now_ms=now_ms, zxid=self._next_zxid)
            if reap is not None:
                self._propose(reap, 0, 0, now_ms)

    def _propose(self, body: TxnBody, session_id: int, xid: int, now_ms: int) -> Txn:
        if xid > 0:
            self._pending_writes.add((session_id, xid))
        txn = Txn(TxnHeader(self._next_zxid, now_ms, session_id, xid), body)
        self._next_zxid += 1
        self.proposals.append(txn)
        return txn
