"""ServerCore: one member's client-facing request path, as a pure state machine.

Theory of operation. The runtime feeds the core inputs (a connection's
handshake, a request frame, a lost connection, the passing of time, and in
an ensemble the messages other members forward) and takes its output as one
`Ready` batch at a time. Standalone:

    ready = core.ready()
    persist(ready.txns)        # durable before any message of this batch is sent
    send(ready.messages)       # in order; then close ready.closes
    core.advance(ready)        # the txns are durable: apply them

In an ensemble, `ready.txns` are proposals for the atomic broadcast instead,
`ready.peer_messages` go to other members, and the runtime calls
`apply_committed(txns)` with what the broadcast commits.

Who decides writes. Exactly one member holds a `Sequencer` (coord.server.core.sequencer):
the standalone server, or the established leader. It prepares writes into
txns against the pending state and owns the session leases. Every other
member forwards its clients' writes (and the session touches it saw) to the
leader, and answers them when the txn is committed and applied here; a write
the leader refused comes back as a ForwardReply with the error. A member that
loses its leader closes its client connections: the clients resume their
sessions on a member that is serving.

Ordering rules, which the tests hold:
- Per connection, replies go out in the order the requests came (FIFO), so a
  read waits behind its own session's earlier writes. Each request takes a
  slot in its connection's queue; a slot is answered when it reaches the head
  and its write (if any) has been applied. Reads are evaluated then, never
  earlier. A write's slot is found again by (session id, xid) from the txn.
- A watch event is queued when the txn that fires it is applied, which is
  before any reply evaluated afterwards: a client sees the event before any
  reply that shows the change.
- Pings are answered at once, out of band, so a busy pipeline cannot starve
  the heartbeat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from coord.acl import OPEN_ACL_UNSAFE, Perm
from coord.errors import (
    BadArgumentsError,
    ConnectionLossError,
    KeeperError,
    SessionExpiredError,
    SessionMovedError,
)
from coord.messages import (
    PROTOCOL_VERSION,
    WRITE_OPS,
    ConnectRequest,
    CreateMode,
    OpCode,
    SetWatchesRequest,
    parse_request_body,
)
from coord.server.core.acls import AclList, authenticate, authorized
from coord.server.core.connection import Answer, Connection, Slot
from coord.server.core.dedupe import WriteResults
from coord.server.core.forwarder import ForwardedWrites, Forwarder, refused_answer
from coord.server.core.forwarding import ForwardReply, ForwardRequest, PeerOutput, SessionTouches
from coord.server.core.held import HeldRefusals
from coord.server.core.identity import UNKNOWN, ConnectionIdentity
from coord.server.core.output import (
    ClientOutput,
    Connected,
    ConnectRefused,
    ErrorReply,
    Notice,
    Reply,
    Result,
)
from coord.server.core.prep import MultiFailed, Preparer
from coord.server.core.reads import evaluate_read, set_watches
from coord.server.core.results import multi_failure, remember_write, result_of
from coord.server.core.sequencer import CREATE_SESSION, AlreadyApplied, AlreadyPending, Sequencer
from coord.server.core.sessions import SessionTracker
from coord.server.core.tree import DataTree
from coord.server.core.txn import (
    CloseSessionTxn,
    Txn,
)
from coord.server.core.watches import WatchManager

log = logging.getLogger(__name__)

_WRITE_OPS = WRITE_OPS | {OpCode.SYNC}
"""Requests that go through the sequencer and the quorum. SYNC is one: it is a no-op
txn, so a read after it on the same session sees every write committed before it."""


@dataclass(slots=True)
class Ready:
    """One batch of work for the runtime.

    Contract: every txn in `txns` is durable (standalone) or handed to the
    broadcast (ensemble) before any message in `messages` is sent; messages go
    out in list order (per connection that is the order the client must see);
    connections in `closes` are closed after their messages are sent;
    `peer_messages` go to the named members.
    """

    txns: list[Txn] = field(default_factory=list)
    messages: list[tuple[int, ClientOutput]] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)
    peer_messages: list[tuple[int, PeerOutput]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.txns or self.messages or self.closes or self.peer_messages)


@dataclass(slots=True)
class CoreConfig:
    tick_ms: int = 2000
    min_session_timeout_ms: int = 0
    max_session_timeout_ms: int = 0
    server_id: int = 1
    epoch: int = 1
    session_id_base: int = 0
    """Where session ids start; the runtime seeds it from the time so restarts don't reuse ids."""
    standalone: bool = True
    """A standalone server sequences its own writes; an ensemble member waits to be told."""
    super_digest: str = ""
    """ZooKeeper's superDigest, "super:<base64 sha1>": a digest auth matching it passes
    every ACL check. Empty: no super user."""
    max_watches_per_session: int = 0
    """The most watches one session's connection may hold (0: no cap)."""
    forward_timeout_ms: int = 10_000
    """(Follower) How long a forwarded write may wait for the leader before its client's
    connection is closed (the client resends it elsewhere)."""


class ServerCore:
    """A member's sessions, connections, reads, watches and replies (and the sequencer, if any)."""

    def __init__(
        self,
        config: CoreConfig | None = None,
        tree: DataTree | None = None,
    ) -> None:
        self.config = config or CoreConfig()
        self.tree = tree if tree is not None else DataTree()
        self.watches = WatchManager(self.config.max_watches_per_session)
        self.sequencer: Sequencer | None = None
        self.leader_id: int | None = None
        if self.config.standalone:
            self.sequencer = Sequencer(
                self.tree,
                self._new_tracker(),
                epoch=self.config.epoch,
                now_ms=0,
                results=self.write_results,
            )
            self.leader_id = self.config.server_id
        self._connections: dict[int, Connection] = {}
        self._conn_of_session: dict[int, int] = {}
        self._waiting: dict[tuple[int, int], tuple[Connection, Slot]] = {}
        self._messages: list[tuple[int, ClientOutput]] = []
        self._closes: list[int] = []
        self._peer_out: list[tuple[int, PeerOutput]] = []
        self._held = HeldRefusals()
        self._next_session_id = self.config.session_id_base or (self.config.server_id << 56) + 1
        self._forwarded = ForwardedWrites()
        self._forwarder = Forwarder(self.config.server_id)

    def _new_tracker(self) -> SessionTracker:
        return SessionTracker(
            self.config.tick_ms,
            self.config.min_session_timeout_ms,
            self.config.max_session_timeout_ms,
        )

    @property
    def write_results(self) -> WriteResults:
        """The tree's table of recent write results (it travels with the tree)."""
        return self.tree.write_results

    @property
    def sessions(self) -> SessionTracker:
        """The session leases (held by the sequencer; an empty tracker on a follower)."""
        return self.sequencer.sessions if self.sequencer is not None else self._new_tracker()

    @property
    def preparer(self) -> Preparer:
        assert self.sequencer is not None, "only the member that sequences writes prepares them"
        return self.sequencer.preparer

    def restore_sessions(self, now_ms: int) -> int:
        """After a restart: give every session the tree knows a full lease from now.

        A session whose client is still around reconnects within its timeout;
        the others expire one timeout after the restart, and their ephemerals go.
        """
        if self.sequencer is not None:
            for session_id in self.tree.sessions:
                self.sequencer.sessions.touch(session_id, now_ms)
        return len(self.tree.sessions)

    # -- leadership (ensemble) -------------------------------------------------------

    def become_leader(self, epoch: int, now_ms: int) -> None:
        """This member is the established leader: sequence writes from now on."""
        self.sequencer = Sequencer(
            self.tree, self._new_tracker(), epoch=epoch, now_ms=now_ms, results=self.write_results
        )
        self.leader_id = self.config.server_id
        self._forwarded = ForwardedWrites()

    def follow(self, leader_id: int) -> None:
        """This member is synced with `leader_id`: forward writes to it."""
        self.sequencer = None
        self.leader_id = leader_id

    def stop_serving(self) -> None:
        """The leader is gone (or we lost our quorum): drop every client connection."""
        self.sequencer = None
        self.leader_id = None
        for conn in list(self._connections.values()):
            lost = ConnectionLossError("this member lost its leader; try another member")
            self._emit(conn.conn_id, Notice(self.tree.last_zxid, lost))
            self._close(conn)

    def reset_tree(self, tree: DataTree) -> None:
        """(Not serving) The tree was rebuilt (a truncated log, or a leader's snapshot)."""
        assert not self._connections, "the tree is only replaced while no client is served"
        self.tree = tree
        self.watches = WatchManager(self.config.max_watches_per_session)
        self.sequencer = None

    @property
    def serving(self) -> bool:
        return self.leader_id is not None

    # -- inputs: clients -------------------------------------------------------------

    def connect(
        self,
        conn_id: int,
        request: ConnectRequest,
        *,
        now_ms: int,
        password: bytes,
        identity: ConnectionIdentity = UNKNOWN,
    ) -> None:
        """A new connection's handshake. `password` is used if a new session is made;
        `identity` is what the transport knows of the client (its ACL ids)."""
        conn = Connection(conn_id, identity)
        self._connections[conn_id] = conn
        if request.protocol_version != PROTOCOL_VERSION:
            self._refuse(
                conn,
                BadArgumentsError(
                    f"protocol version {request.protocol_version} is not supported",
                    expected=PROTOCOL_VERSION,
                    actual=request.protocol_version,
                ),
            )
            return
        if not self.serving:
            self._refuse(conn, ConnectionLossError("this member is not serving (no leader)"))
            return
        if request.last_zxid_seen > self.tree.last_zxid:
            self._refuse(
                conn,
                KeeperError(
                    f"client has seen zxid {request.last_zxid_seen:#x}, newer than this "
                    f"server's {self.tree.last_zxid:#x}",
                    expected=f"<= {self.tree.last_zxid}",
                    actual=request.last_zxid_seen,
                ),
            )
            return
        try:
            for scheme, credential in request.auth:
                self._authenticate(conn, scheme, credential)
        except KeeperError as exc:
            self._refuse(conn, exc)
            return
        if request.session_id == 0:
            self._new_session(conn, request, now_ms, password)
        else:
            self._resume_session(conn, request, now_ms)

    def _new_session(
        self, conn: Connection, request: ConnectRequest, now_ms: int, password: bytes
    ) -> None:
        session_id = self._next_session_id
        self._next_session_id += 1
        timeout = self.sessions.negotiate(request.timeout_ms)
        conn.session_id = session_id
        self._conn_of_session[session_id] = conn.conn_id
        slot = Slot(0, CREATE_SESSION, (timeout, password))
        slot.reply = self._connect_response(session_id, timeout, password)
        conn.slots.append(slot)
        try:
            self._submit(conn, slot, now_ms)
        except KeeperError as exc:
            conn.slots.clear()
            self._refuse(conn, exc)

    def _resume_session(self, conn: Connection, request: ConnectRequest, now_ms: int) -> None:
        known = self.tree.sessions.get(request.session_id)
        if known is None or known[1] != request.password:
            error = SessionExpiredError(
                f"session {request.session_id:#x} has expired or does not exist",
                actual=request.session_id,
            )
            self._refuse(conn, error)
            return
        timeout_ms, password = known
        session_id = request.session_id
        previous = self._conn_of_session.get(session_id)
        if previous is not None and previous != conn.conn_id:
            old = self._connections.get(previous)
            if old is not None:
                moved = SessionMovedError(f"session {session_id:#x} moved to another connection")
                self._emit(old.conn_id, Notice(self.tree.last_zxid, moved))
                self._close(old)
        conn.session_id = session_id
        self._conn_of_session[session_id] = conn.conn_id
        self._touch(session_id, now_ms)
        slot = Slot(0, 0)
        slot.reply = self._connect_response(session_id, timeout_ms, password)
        conn.slots.append(slot)
        self._flush(conn)

    def request(self, conn_id: int, xid: int, op: int, body: Any, *, now_ms: int) -> None:
        """One request frame, already split into xid, op and the raw body."""
        conn = self._connections.get(conn_id)
        if conn is None or conn.closed:
            return
        if op == OpCode.PING:
            if conn.session_id:
                self._touch(conn.session_id, now_ms)
            self._emit(conn_id, Reply(xid, self.tree.last_zxid))
            return
        slot = Slot(xid, op)
        conn.slots.append(slot)
        if op == OpCode.AUTH:
            self._auth_request(conn, slot, body)
            return
        if not conn.session_id or conn.closing:
            error = SessionExpiredError(f"session {conn.session_id:#x} is closing")
            slot.reply = ErrorReply(xid, self.tree.last_zxid, error)
            self._flush(conn)
            return
        if self._lease_ended(conn.session_id):
            # The lease ran out here and the close is proposed, not committed. Only a
            # committed close may tell a client its session expired (a leader that was
            # paused past the lease is not the leader any more, and the ensemble kept
            # the session alive): the request waits for the outcome. The close applies
            # (a SessionExpired notice closes the connection), or this member stops
            # serving (ConnectionLoss: try another member).
            slot.waiting = True
            return
        self._touch(conn.session_id, now_ms)
        try:
            slot.request = parse_request_body(op, body)
            if op in _WRITE_OPS:
                if op == OpCode.CLOSE_SESSION:
                    conn.closing = True
                self._submit(conn, slot, now_ms, body)
        except KeeperError as exc:
            slot.reply = ErrorReply(xid, self.tree.last_zxid, exc)
        except MultiFailed as failed:
            slot.reply = Reply(xid, self.tree.last_zxid, multi_failure(failed))
        if slot.held_until > self.tree.last_zxid:
            slot.waiting = True
            self._held.hold_reply(slot.held_until, conn, slot)
        self._flush(conn)

    def _auth_request(self, conn: Connection, slot: Slot, body: Any) -> None:
        """add_auth: takes effect at once (for every request after it), answered in order."""
        try:
            request = parse_request_body(OpCode.AUTH, body)
            self._authenticate(conn, request.scheme, request.credential)
            slot.reply = Reply(slot.xid, self.tree.last_zxid)
        except KeeperError as exc:
            slot.reply = ErrorReply(slot.xid, self.tree.last_zxid, exc)
        self._flush(conn)

    def _authenticate(self, conn: Connection, scheme: str, credential: bytes) -> None:
        ids = authenticate(
            scheme,
            credential,
            super_digest=self.config.super_digest,
            certificate=conn.certificate,
        )
        conn.auth += tuple(i for i in ids if i not in conn.auth)

    def connection_lost(self, conn_id: int) -> None:
        """The runtime saw the connection close. The session lives on until its lease ends."""
        conn = self._connections.get(conn_id)
        if conn is not None:
            self._drop_connection(conn)

    def tick(self, now_ms: int) -> None:
        """Time passed: the sequencer (if here) expires leases and reaps TTLs and containers;
        a follower gives up on forwarded writes the leader never answered."""
        if self.sequencer is not None:
            self.sequencer.tick(now_ms)
        elif self._forwarder.sent_at:
            self._expire_forwards(now_ms)

    def _expire_forwards(self, now_ms: int) -> None:
        """Close the connections whose oldest forwarded write has waited past the limit.

        A peer link may lose a stretch of messages (a full queue, a broken
        connection) and nothing else tells the follower: the write and every
        request behind it would wait for good while pings keep the session
        alive. Closing has the client resend, in order (see ForwardRequest).
        """
        for key in self._forwarder.overdue(now_ms, self.config.forward_timeout_ms):
            waiting = self._waiting.get(key)
            if waiting is None:
                continue  # gone with a connection closed just before
            conn = waiting[0]
            error = ConnectionLossError("the leader did not answer a forwarded write in time")
            self._emit(conn.conn_id, Notice(self.tree.last_zxid, error))
            self._close(conn)

    # -- inputs: other members (ensemble) ---------------------------------------------

    def forwarded(self, request: ForwardRequest, *, now_ms: int) -> None:
        """(Leader) A follower's client write: sequence it, or send back why not."""
        reply = self._forwarded.receive(self.sequencer, request, now_ms)
        if reply is None:
            return
        decided_at = self._decided_at()
        if not reply.zxid and decided_at > self.tree.last_zxid:
            self._held.hold_forward(decided_at, reply, request.origin)  # (see HeldRefusals)
        else:
            self._peer_out.append((request.origin, reply))

    def forward_refused(self, reply: ForwardReply) -> None:
        """(Follower) The leader answered a forwarded write without a txn: it refused it,
        or (err 0) it was a retry of a write applied before, with its original result."""
        key = (reply.session_id, reply.xid)
        if reply.err == 0 and reply.zxid > self.tree.last_zxid:
            return  # not applied here yet: the slot is answered when it is, in order
        waiting = self._waiting.pop(key, None)
        self._forwarder.settled(key)
        if waiting is None:
            return
        conn, slot = waiting
        slot.waiting = False
        refusal = KeeperError.from_wire(reply.err, reply.result) if reply.err else None
        if slot.op == CREATE_SESSION:
            conn.slots.clear()
            self._refuse(conn, refusal or ConnectionLossError("the leader refused the session"))
            return
        if isinstance(refusal, ConnectionLossError) and conn.slots and conn.slots[0] is not slot:
            # Refused while an earlier write of this connection still waits: the leader
            # never got that one (see ForwardRequest.prev_xid). Answering this one
            # would wait behind it for good. Close; the client resends both, in order.
            # (A refusal at the head is answered: a close there would have the client
            # reconnect and resend at once, again and again, until this member notices
            # that its leader is gone.)
            self._emit(conn.conn_id, Notice(self.tree.last_zxid, refusal))
            self._close(conn)
            return
        slot.reply = refused_answer(slot, refusal, reply.result, self.tree.last_zxid)
        self._flush(conn)

    def touch_sessions(self, touches: SessionTouches, now_ms: int) -> None:
        """(Leader) Renew the leases of sessions a follower heard from."""
        if self.sequencer is not None:
            for session_id in touches.session_ids:
                self.sequencer.touch(session_id, now_ms)

    def take_touches(self) -> SessionTouches | None:
        """(Follower) The sessions heard from since the last call, for the leader."""
        return self._forwarder.take_touches()

    # -- outputs ---------------------------------------------------------------------

    def has_ready(self) -> bool:
        return bool(
            (self.sequencer is not None and self.sequencer.proposals)
            or self._messages
            or self._closes
            or self._peer_out
        )

    def ready(self) -> Ready:
        """Take the pending batch."""
        txns = self.sequencer.take_proposals() if self.sequencer is not None else []
        batch = Ready(txns, self._messages, self._closes, self._peer_out)
        self._messages = []
        self._closes = []
        self._peer_out = []
        return batch

    def advance(self, ready: Ready, *, now_ms: int | None = None) -> None:
        """(Standalone) The batch's txns are durable and its messages sent: apply the txns."""
        for txn in ready.txns:  # (nothing is held standalone: see _decided_at)
            self._apply(txn, now_ms if now_ms is not None else txn.header.time_ms)

    def apply_committed(self, txns: list[Txn], *, now_ms: int) -> None:
        """(Ensemble) The broadcast committed these txns: apply them, in order."""
        for txn in txns:
            self._apply(txn, now_ms)
            self._release_held()  # (before a later txn, a close, ends the connection)

    def _decided_at(self) -> int:
        """The last txn the sequencer's pending state holds (0: none, or it is durable
        before any reply leaves, as a standalone server's Ready promises)."""
        sequencer = self.sequencer
        if self.config.standalone or sequencer is None or not sequencer.preparer.pending_count:
            return 0
        return sequencer.next_zxid - 1

    def _release_held(self) -> None:
        """Send the held refusals whose txns are applied now (see HeldRefusals)."""
        if not self._held.count:
            return
        last = self.tree.last_zxid
        released = self._held.release(last, leading=self.sequencer is not None)
        self._peer_out.extend(released.forwards)
        for conn in released.lost:
            if not conn.closed:
                lost = ConnectionLossError("this member stopped leading; try again")
                self._emit(conn.conn_id, Notice(last, lost))
                self._close(conn)
        for conn, slot in released.answered:
            if not conn.closed:
                assert slot.reply is not None
                slot.reply = slot.reply._replace(zxid=max(slot.reply.zxid, last))
                slot.waiting = False
                self._flush(conn)

    def next_deadline_ms(self) -> int | None:
        """When `tick` next has work for sessions (the runtime may tick more often)."""
        return self.sequencer.sessions.next_deadline() if self.sequencer is not None else None

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    # -- internals -------------------------------------------------------------------

    def _lease_ended(self, session_id: int) -> bool:
        """Whether the sequencer (when it is here) already decided the session is over."""
        if self.sequencer is None:
            return False
        session = self.sequencer.sessions.get(session_id)
        return session is None or session.closing

    def _touch(self, session_id: int, now_ms: int) -> None:
        if self.sequencer is not None:
            self.sequencer.touch(session_id, now_ms)
        else:
            self._forwarder.touched(session_id)

    def _submit(self, conn: Connection, slot: Slot, now_ms: int, body: Any = None) -> None:
        """Send a write to whoever sequences writes; its slot waits for the txn or a refusal.

        A follower forwards `body`, the client's request as it arrived and as
        `slot.request` validated it (the models forbid extra fields, so the two
        say the same), rather than dumping the model again. The leader validates
        it once more, as it must any bytes from the network.
        """
        key = (conn.session_id, slot.xid)
        if key in self._waiting:
            raise BadArgumentsError(
                f"xid {slot.xid} is already in flight for session {conn.session_id:#x}",
                actual=slot.xid,
            )
        if self.sequencer is not None:
            try:
                self.sequencer.submit(
                    conn.session_id, slot.xid, slot.op, slot.request, now_ms, conn.auth
                )
            except AlreadyApplied as done:
                slot.reply = Reply(slot.xid, done.zxid, done.result)
                return
            except AlreadyPending:
                pass  # its txn is on the way; this slot takes its answer
            except (KeeperError, MultiFailed):
                slot.held_until = self._decided_at()  # (see HeldRefusals)
                raise
        elif self.leader_id is not None:
            forward = self._forwarder.forward(conn, slot, body, now_ms)
            key = (conn.session_id, slot.wait_xid)
            self._peer_out.append((self.leader_id, forward))
        else:
            raise ConnectionLossError("this member has no leader; try another member")
        slot.waiting = True
        self._waiting[key] = (conn, slot)

    def _may_read(
        self, path: str, deleted_acls: dict[str, AclList]
    ) -> Callable[[Hashable], bool] | None:
        """Who may hear of a change to `path` through a recursive watch (None: anyone)."""
        node = self.tree.nodes.get(path)
        acl = node.acl if node is not None else deleted_acls.get(path, OPEN_ACL_UNSAFE)
        if acl is OPEN_ACL_UNSAFE:
            return None

        def may_read(watcher: Hashable) -> bool:
            conn = self._connections.get(watcher)  # type: ignore[call-overload]
            return conn is not None and authorized(acl, Perm.READ, conn.auth)

        return may_read

    def _apply(self, txn: Txn, now_ms: int) -> None:
        zxid = txn.header.zxid
        result = self.tree.apply(txn)
        if result.error:
            log.error("txn %#x did not fit the tree (error %d): %r", zxid, result.error, txn)
        if self.sequencer is not None:
            self.sequencer.applied(txn, result, now_ms)
        recursive = self.watches.has_recursive
        for kind, path in result.triggers:
            may_read = self._may_read(path, result.deleted_acls) if recursive else None
            for watcher, event in self.watches.trigger(kind, path, zxid, may_read):
                self._emit(watcher, event)  # type: ignore[arg-type]
        body = txn.body
        header = txn.header
        reply_result: Result = None
        if isinstance(body, CloseSessionTxn):
            self._session_closed(body, zxid)
            self.write_results.forget(body.session_id)
        else:
            reply_result = remember_write(self.write_results, txn, result)
        waiting = self._waiting.pop((header.session_id, header.xid), None)
        if waiting is None:
            return
        self._forwarder.settled((header.session_id, header.xid))
        conn, slot = waiting
        if slot.op == CREATE_SESSION:
            assert isinstance(slot.reply, Connected)
            slot.reply = slot.reply._replace(zxid=zxid)
        elif slot.op == OpCode.SYNC:
            slot.reply = Reply(slot.xid, zxid, slot.request.path)
        else:
            if reply_result is None:
                reply_result = result_of(body, result)
            slot.reply = Reply(slot.xid, zxid, reply_result)
        slot.waiting = False
        self._flush(conn)
        if slot.op == OpCode.CLOSE_SESSION:
            self._close(conn)

    def _session_closed(self, body: CloseSessionTxn, zxid: int) -> None:
        conn_id = self._conn_of_session.pop(body.session_id, None)
        if conn_id is None or not body.expired:
            return
        conn = self._connections.get(conn_id)
        if conn is not None:
            expired = SessionExpiredError(f"session {body.session_id:#x} expired")
            self._emit(conn_id, Notice(zxid, expired))
            self._close(conn)

    def _flush(self, conn: Connection) -> None:
        """Send every answered slot at the head of the connection's queue, in order."""
        slots = conn.slots
        while slots and not conn.closed:
            slot = slots[0]
            if slot.waiting:
                return
            if slot.reply is None:
                slot.reply = self._read(conn, slot)
            elif slot.reply.zxid < conn.sent_zxid and not isinstance(slot.reply, Connected):
                # Decided early (an error at submit, a retry's first result) and sent
                # behind later frames: the zxids a client sees never go back.
                slot.reply = slot.reply._replace(zxid=conn.sent_zxid)
            slots.popleft()
            self._emit(conn.conn_id, slot.reply)

    def _read(self, conn: Connection, slot: Slot) -> Answer:
        zxid = self.tree.last_zxid
        try:
            if slot.op == OpCode.SET_WATCHES:
                assert isinstance(slot.request, SetWatchesRequest)
                fired = set_watches(self.tree, self.watches, conn.conn_id, slot.request)
                for event in fired:
                    self._emit(conn.conn_id, event)
                return Reply(slot.xid, zxid)
            result = evaluate_read(
                self.tree,
                self.watches,
                conn.conn_id,
                slot.op,
                slot.request,
                session_id=conn.session_id,  # GET_EPHEMERALS (for the ZooKeeper port)
                ids=conn.auth,
            )
            return Reply(slot.xid, zxid, result)
        except KeeperError as exc:
            return ErrorReply(slot.xid, zxid, exc)

    def _refuse(self, conn: Connection, error: KeeperError) -> None:
        refusal = ConnectRefused(self.tree.last_zxid, self.config.server_id, error)
        self._emit(conn.conn_id, refusal)
        self._close(conn)

    def _connect_response(self, session_id: int, timeout_ms: int, password: bytes) -> Connected:
        return Connected(
            session_id, timeout_ms, password, self.tree.last_zxid, self.config.server_id
        )

    def _emit(self, conn_id: int, output: ClientOutput) -> None:
        conn = self._connections.get(conn_id)
        if conn is not None and not conn.closed:
            self._messages.append((conn_id, output))
            if output.zxid > conn.sent_zxid:
                conn.sent_zxid = output.zxid

    def _close(self, conn: Connection) -> None:
        if not conn.closed:
            self._closes.append(conn.conn_id)
        self._drop_connection(conn)

    def _drop_connection(self, conn: Connection) -> None:
        conn.closed = True
        self._connections.pop(conn.conn_id, None)
        self.watches.remove_watcher(conn.conn_id)
        if self._conn_of_session.get(conn.session_id) == conn.conn_id:
            del self._conn_of_session[conn.session_id]
        for slot in conn.slots:
            if slot.waiting:
                self._waiting.pop((conn.session_id, slot.wait_xid), None)
                self._forwarder.settled((conn.session_id, slot.wait_xid))
        conn.slots.clear()


__all__ = ["CoreConfig", "CreateMode", "ForwardReply", "ForwardRequest", "Ready", "ServerCore"]
