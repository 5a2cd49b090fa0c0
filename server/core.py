"""ServerCore: one server's request path as a pure state machine.

Theory of operation. The runtime feeds the core inputs (a connection's
handshake, a request frame, a lost connection, the passing of time) and takes
its output as one `Ready` batch at a time:

    ready = core.ready()
    persist(ready.txns)        # durable before any message of this batch is sent
    send(ready.messages)       # in order; then close ready.closes
    core.advance(ready)        # the txns are durable: apply them

A write request is prepared into a txn (server.prep) at once, against the
pending state, and waits in the Ready until the runtime has made it durable;
`advance` applies it to the tree, routes its watch triggers, and answers it.
Replication (a later stage) puts a quorum between `ready` and `advance`; the
rest stays. Nothing here reads a clock or does IO: time arrives as `now_ms`.

Ordering rules, which the tests hold:
- Per connection, replies go out in the order the requests came (FIFO), so a
  read waits behind its own session's earlier writes. Each request takes a
  slot in its connection's queue; a slot is answered when it reaches the head
  and its write (if any) has been applied. Reads are evaluated then, never
  earlier.
- A watch event is queued when the txn that fires it is applied, which is
  before any reply evaluated afterwards: a client sees the event before any
  reply that shows the change.
- Pings are answered at once, out of band, so a busy pipeline cannot starve
  the heartbeat.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from coord import paths
from coord.errors import (
    BadArgumentsError,
    BadVersionError,
    KeeperError,
    NoNodeError,
    NoWatcherError,
    SessionExpiredError,
    SessionMovedError,
)
from coord.messages import (
    PROTOCOL_VERSION,
    AddWatchMode,
    AddWatchRequest,
    CheckRequest,
    ConnectRequest,
    CreateMode,
    EventType,
    ExistsRequest,
    GetChildrenRequest,
    GetDataRequest,
    MultiRequest,
    OpCode,
    RemoveWatchesRequest,
    SetWatchesRequest,
    SyncRequest,
    WatchedEvent,
    WatcherType,
    event_to_wire,
    parse_multi_ops,
    parse_request_body,
)
from server.prep import MultiFailed, Preparer
from server.sessions import SessionTracker
from server.tree import ApplyResult, DataTree
from server.txn import (
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    MultiTxn,
    SetDataTxn,
    Txn,
    TxnBody,
    TxnHeader,
)
from server.watches import WatchManager

log = logging.getLogger(__name__)

NOTICE_XID = -3
_WRITE_OPS = frozenset({OpCode.CREATE, OpCode.DELETE, OpCode.SET_DATA, OpCode.MULTI})


@dataclass(slots=True)
class Ready:
    """One batch of work for the runtime.

    Contract: every txn in `txns` is durable before any message in `messages`
    is sent; messages go out in list order (per connection that is the order
    the client must see); connections in `closes` are closed after their
    messages are sent; then the runtime calls `advance(ready)`.
    """

    txns: list[Txn] = field(default_factory=list)
    messages: list[tuple[int, Any]] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.txns or self.messages or self.closes)


class _Slot:
    """A request's place in its connection's reply order."""

    __slots__ = ("op", "reply", "request", "waiting_zxid", "xid")

    def __init__(self, xid: int, op: int, request: Any = None) -> None:
        self.xid = xid
        self.op = op
        self.request = request
        self.waiting_zxid = 0
        self.reply: Any = None


class _Connection:
    __slots__ = ("closed", "conn_id", "session_id", "slots")

    def __init__(self, conn_id: int) -> None:
        self.conn_id = conn_id
        self.session_id = 0
        self.slots: deque[_Slot] = deque()
        self.closed = False


@dataclass(slots=True)
class CoreConfig:
    tick_ms: int = 2000
    min_session_timeout_ms: int = 0
    max_session_timeout_ms: int = 0
    server_id: int = 1
    epoch: int = 1
    session_id_base: int = 0
    """Where session ids start; the runtime seeds it from the time so restarts don't reuse ids."""


class ServerCore:
    """The standalone server's decisions: sessions, prep, apply, watches, replies."""

    def __init__(self, config: CoreConfig | None = None, tree: DataTree | None = None) -> None:
        self.config = config or CoreConfig()
        self.tree = tree or DataTree()
        self.preparer = Preparer(self.tree)
        self.sessions = SessionTracker(
            self.config.tick_ms,
            self.config.min_session_timeout_ms,
            self.config.max_session_timeout_ms,
        )
        self.watches = WatchManager()
        self._connections: dict[int, _Connection] = {}
        self._conn_of_session: dict[int, int] = {}
        self._waiting: dict[int, tuple[_Connection, _Slot]] = {}
        self._unpersisted: list[Txn] = []
        self._messages: list[tuple[int, Any]] = []
        self._closes: list[int] = []
        epoch_base = self.config.epoch << 32
        self._next_zxid = max(self.tree.last_zxid, epoch_base) + 1
        self._next_session_id = self.config.session_id_base or (self.config.server_id << 56) + 1

    def restore_sessions(self, now_ms: int) -> int:
        """After a restart: track every session the tree knows, each with a full lease.

        A session whose client is still around reconnects within its timeout;
        the others expire one timeout after the restart, and their ephemerals go.
        """
        for session_id, (timeout_ms, password) in sorted(self.tree.sessions.items()):
            if self.sessions.get(session_id) is None:
                self.sessions.add(session_id, timeout_ms, password, now_ms)
        return len(self.tree.sessions)

    # -- inputs ----------------------------------------------------------------

    def connect(
        self, conn_id: int, request: ConnectRequest, *, now_ms: int, password: bytes
    ) -> None:
        """A new connection's handshake. `password` is used if a new session is made."""
        conn = _Connection(conn_id)
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
        if request.session_id == 0:
            self._new_session(conn, request, now_ms, password)
        else:
            self._resume_session(conn, request, now_ms)

    def _new_session(
        self, conn: _Connection, request: ConnectRequest, now_ms: int, password: bytes
    ) -> None:
        session_id = self._next_session_id
        self._next_session_id += 1
        timeout = self.sessions.negotiate(request.timeout_ms)
        self.sessions.add(session_id, timeout, password, now_ms)
        conn.session_id = session_id
        self._conn_of_session[session_id] = conn.conn_id
        slot = _Slot(0, 0)
        zxid = self._propose(CreateSessionTxn(session_id, timeout, password), session_id, 0, now_ms)
        slot.waiting_zxid = zxid
        slot.reply = self._connect_response(session_id, timeout, password)
        conn.slots.append(slot)
        self._waiting[zxid] = (conn, slot)

    def _resume_session(self, conn: _Connection, request: ConnectRequest, now_ms: int) -> None:
        session = self.sessions.get(request.session_id)
        if session is None or session.closing or session.password != request.password:
            error = SessionExpiredError(
                f"session {request.session_id:#x} has expired or does not exist",
                actual=request.session_id,
            )
            self._refuse(conn, error)
            return
        previous = self._conn_of_session.get(session.session_id)
        if previous is not None and previous != conn.conn_id:
            old = self._connections.get(previous)
            if old is not None:
                self._emit(
                    old.conn_id,
                    _notice(
                        self.tree.last_zxid,
                        SessionMovedError(
                            f"session {session.session_id:#x} moved to another connection"
                        ),
                    ),
                )
                self._close(old)
        conn.session_id = session.session_id
        self._conn_of_session[session.session_id] = conn.conn_id
        self.sessions.touch(session.session_id, now_ms)
        slot = _Slot(0, 0)
        slot.reply = self._connect_response(
            session.session_id, session.timeout_ms, session.password
        )
        conn.slots.append(slot)
        self._flush(conn)

    def request(self, conn_id: int, xid: int, op: int, body: Any, *, now_ms: int) -> None:
        """One request frame, already split into xid, op and the raw body."""
        conn = self._connections.get(conn_id)
        if conn is None or conn.closed:
            return
        session = self.sessions.get(conn.session_id)
        if op == OpCode.PING:
            if session is not None:
                self.sessions.touch(session.session_id, now_ms)
            self._emit(conn_id, [xid, self.tree.last_zxid, 0, None])
            return
        slot = _Slot(xid, op)
        conn.slots.append(slot)
        if session is None or session.closing:
            slot.reply = _error_reply(
                xid,
                self.tree.last_zxid,
                SessionExpiredError(f"session {conn.session_id:#x} has expired or is closing"),
            )
            self._flush(conn)
            return
        self.sessions.touch(session.session_id, now_ms)
        try:
            slot.request = parse_request_body(op, body)
            if op in _WRITE_OPS:
                self._prepare(conn, slot, now_ms)
            elif op == OpCode.CLOSE_SESSION:
                session.closing = True
                txn = self.preparer.prepare_close_session(
                    session.session_id, expired=False, zxid=self._next_zxid
                )
                self._wait_for(conn, slot, self._propose(txn, session.session_id, xid, now_ms))
        except KeeperError as exc:
            slot.reply = _error_reply(xid, self.tree.last_zxid, exc)
        except MultiFailed as failed:
            slot.reply = [xid, self.tree.last_zxid, 0, _multi_failure(failed)]
        self._flush(conn)

    def connection_lost(self, conn_id: int) -> None:
        """The runtime saw the connection close. The session lives on until its lease ends."""
        conn = self._connections.get(conn_id)
        if conn is not None:
            self._drop_connection(conn)

    def tick(self, now_ms: int) -> None:
        """Time passed: expire sessions whose lease ran out, reap TTL nodes and containers."""
        for session_id in self.sessions.expired(now_ms):
            txn = self.preparer.prepare_close_session(
                session_id, expired=True, zxid=self._next_zxid
            )
            self._propose(txn, session_id, 0, now_ms)
        for path in sorted(self.tree.ttl_nodes | self.tree.containers):
            reap = self.preparer.prepare_reap(path, now_ms=now_ms, zxid=self._next_zxid)
            if reap is not None:
                self._propose(reap, 0, 0, now_ms)

    # -- outputs ---------------------------------------------------------------

    def has_ready(self) -> bool:
        return bool(self._unpersisted or self._messages or self._closes)

    def ready(self) -> Ready:
        """Take the pending batch. Call `advance` with it once it is carried out."""
        batch = Ready(self._unpersisted, self._messages, self._closes)
        self._unpersisted = []
        self._messages = []
        self._closes = []
        return batch

    def advance(self, ready: Ready, *, now_ms: int | None = None) -> None:
        """The batch's txns are durable and its messages sent: apply the txns."""
        for txn in ready.txns:
            self._apply(txn, now_ms if now_ms is not None else txn.header.time_ms)

    def next_deadline_ms(self) -> int | None:
        """When `tick` next has work for sessions (the runtime may tick more often)."""
        return self.sessions.next_deadline()

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    # -- internals -------------------------------------------------------------

    def _propose(self, body: TxnBody, session_id: int, xid: int, now_ms: int) -> int:
        zxid = self._next_zxid
        self._next_zxid += 1
        self._unpersisted.append(Txn(TxnHeader(zxid, now_ms, session_id, xid), body))
        return zxid

    def _wait_for(self, conn: _Connection, slot: _Slot, zxid: int) -> None:
        slot.waiting_zxid = zxid
        self._waiting[zxid] = (conn, slot)

    def _prepare(self, conn: _Connection, slot: _Slot, now_ms: int) -> None:
        request = slot.request
        zxid = self._next_zxid
        body: TxnBody
        if slot.op == OpCode.MULTI:
            assert isinstance(request, MultiRequest)
            ops = parse_multi_ops(request)
            body = self.preparer.prepare_multi(
                ops, session_id=conn.session_id, zxid=zxid, now_ms=now_ms
            )
        else:
            body = self.preparer.prepare_write(
                slot.op, request, session_id=conn.session_id, zxid=zxid, now_ms=now_ms
            )
        self._wait_for(conn, slot, self._propose(body, conn.session_id, slot.xid, now_ms))

    def _apply(self, txn: Txn, now_ms: int) -> None:
        zxid = txn.header.zxid
        result = self.tree.apply(txn)
        self.preparer.applied(zxid)
        if result.error:
            log.error("txn %#x did not fit the tree (error %d): %r", zxid, result.error, txn)
        for kind, path in result.triggers:
            for watcher, event in self.watches.trigger(kind, path, zxid):
                self._emit(watcher, event_to_wire(event))  # type: ignore[arg-type]
        body = txn.body
        if isinstance(body, CloseSessionTxn):
            self._session_closed(body, zxid)
        waiting = self._waiting.pop(zxid, None)
        if waiting is not None:
            conn, slot = waiting
            if slot.reply is None:
                slot.reply = [slot.xid, zxid, 0, _result_to_wire(body, result)]
            elif isinstance(slot.reply, dict):  # a new session's connect response
                slot.reply["zxid"] = zxid
            slot.waiting_zxid = 0
            self._flush(conn)
            if slot.op == OpCode.CLOSE_SESSION:
                self._close(conn)
        for path in result.emptied_containers:
            reap = self.preparer.prepare_reap(path, now_ms=now_ms, zxid=self._next_zxid)
            if reap is not None:
                self._propose(reap, 0, 0, now_ms)

    def _session_closed(self, body: CloseSessionTxn, zxid: int) -> None:
        self.sessions.remove(body.session_id)
        conn_id = self._conn_of_session.pop(body.session_id, None)
        if conn_id is None or not body.expired:
            return
        conn = self._connections.get(conn_id)
        if conn is not None:
            self._emit(
                conn_id, _notice(zxid, SessionExpiredError(f"session {body.session_id:#x} expired"))
            )
            self._close(conn)

    def _flush(self, conn: _Connection) -> None:
        """Send every answered slot at the head of the connection's queue, in order."""
        slots = conn.slots
        while slots and not conn.closed:
            slot = slots[0]
            if slot.waiting_zxid:
                return
            if slot.reply is None:
                slot.reply = self._read(conn, slot)
            slots.popleft()
            self._emit(conn.conn_id, slot.reply)

    def _read(self, conn: _Connection, slot: _Slot) -> list[Any]:
        zxid = self.tree.last_zxid
        try:
            return [slot.xid, zxid, 0, self._evaluate_read(conn.conn_id, slot.op, slot.request)]
        except KeeperError as exc:
            return _error_reply(slot.xid, zxid, exc)

    def _evaluate_read(self, watcher: Hashable, op: int, request: Any) -> Any:
        tree = self.tree
        if op == OpCode.GET_DATA:
            assert isinstance(request, GetDataRequest)
            path = paths.validate(request.path)
            node = tree.get(path)
            if node is None:
                raise NoNodeError(f"node {path!r} does not exist", path=path)
            if request.watch:
                self.watches.add_data_watch(path, watcher)
            return [node.data, node.stat()]
        if op == OpCode.EXISTS:
            assert isinstance(request, ExistsRequest)
            path = paths.validate(request.path)
            node = tree.get(path)
            if request.watch:
                self.watches.add_data_watch(path, watcher)
            return None if node is None else node.stat()
        if op == OpCode.GET_CHILDREN:
            assert isinstance(request, GetChildrenRequest)
            path = paths.validate(request.path)
            node = tree.get(path)
            if node is None:
                raise NoNodeError(f"node {path!r} does not exist", path=path)
            if request.watch:
                self.watches.add_child_watch(path, watcher)
            children = sorted(node.children) if node.children else []
            return [children, node.stat() if request.include_stat else None]
        if op == OpCode.SYNC:
            assert isinstance(request, SyncRequest)
            return paths.validate(request.path)
        if op == OpCode.CHECK:
            assert isinstance(request, CheckRequest)
            path = paths.validate(request.path)
            node = tree.get(path)
            if node is None:
                raise NoNodeError(f"node {path!r} does not exist", path=path)
            if request.version not in (-1, node.version):
                raise BadVersionError(
                    f"version mismatch on {path!r}: expected {request.version}, "
                    f"actual {node.version}",
                    path=path,
                    expected=request.version,
                    actual=node.version,
                )
            return None
        if op == OpCode.ADD_WATCH:
            assert isinstance(request, AddWatchRequest)
            path = paths.validate(request.path)
            if request.mode not in (AddWatchMode.PERSISTENT, AddWatchMode.PERSISTENT_RECURSIVE):
                raise BadArgumentsError(
                    f"unknown add-watch mode {request.mode} for {path!r}",
                    path=path,
                    expected="0 or 1",
                    actual=request.mode,
                )
            self.watches.add_persistent(
                path, watcher, recursive=request.mode == AddWatchMode.PERSISTENT_RECURSIVE
            )
            return None
        if op == OpCode.REMOVE_WATCHES:
            assert isinstance(request, RemoveWatchesRequest)
            path = paths.validate(request.path)
            try:
                kind = WatcherType(request.watcher_type)
            except ValueError:
                raise BadArgumentsError(
                    f"unknown watcher type {request.watcher_type} for {path!r}",
                    path=path,
                    expected="1..5",
                    actual=request.watcher_type,
                ) from None
            if not self.watches.remove(path, watcher, kind):
                raise NoWatcherError(f"no {kind.name.lower()} watch on {path!r}", path=path)
            return None
        if op == OpCode.SET_WATCHES:
            assert isinstance(request, SetWatchesRequest)
            self._set_watches(watcher, request)
            return None
        raise BadArgumentsError(f"op {op} is not a read", actual=op)

    def _set_watches(self, watcher: Hashable, request: SetWatchesRequest) -> None:
        """Re-register watches after a reconnect; fire at once what changed since then."""
        since = request.relative_zxid
        tree = self.tree
        fired: list[WatchedEvent] = []
        for path in map(paths.validate, request.data):
            node = tree.get(path)
            if node is None:
                fired.append(WatchedEvent(EventType.DELETED, path, tree.last_zxid))
            elif node.mzxid > since:
                fired.append(WatchedEvent(EventType.CHANGED, path, node.mzxid))
            else:
                self.watches.add_data_watch(path, watcher)
        for path in map(paths.validate, request.exist):
            node = tree.get(path)
            if node is not None:
                fired.append(WatchedEvent(EventType.CREATED, path, node.czxid))
            else:
                self.watches.add_data_watch(path, watcher)
        for path in map(paths.validate, request.child):
            node = tree.get(path)
            if node is None:
                fired.append(WatchedEvent(EventType.DELETED, path, tree.last_zxid))
            elif node.pzxid > since:
                fired.append(WatchedEvent(EventType.CHILD, path, node.pzxid))
            else:
                self.watches.add_child_watch(path, watcher)
        for path in map(paths.validate, request.persistent):
            self.watches.add_persistent(path, watcher, recursive=False)
        for path in map(paths.validate, request.persistent_recursive):
            self.watches.add_persistent(path, watcher, recursive=True)
        for event in fired:
            self._emit(watcher, event_to_wire(event))  # type: ignore[arg-type]

    def _refuse(self, conn: _Connection, error: KeeperError) -> None:
        response = {
            "protocol_version": PROTOCOL_VERSION,
            "timeout_ms": 0,
            "session_id": 0,
            "password": b"",
            "zxid": self.tree.last_zxid,
            "server_id": self.config.server_id,
            "error": error.code,
            "message": error.message,
        }
        self._emit(conn.conn_id, response)
        self._close(conn)

    def _connect_response(
        self, session_id: int, timeout_ms: int, password: bytes
    ) -> dict[str, Any]:
        return {
            "protocol_version": PROTOCOL_VERSION,
            "timeout_ms": timeout_ms,
            "session_id": session_id,
            "password": password,
            "zxid": self.tree.last_zxid,
            "server_id": self.config.server_id,
        }

    def _emit(self, conn_id: int, frame: Any) -> None:
        conn = self._connections.get(conn_id)
        if conn is not None and not conn.closed:
            self._messages.append((conn_id, frame))

    def _close(self, conn: _Connection) -> None:
        if not conn.closed:
            self._closes.append(conn.conn_id)
        self._drop_connection(conn)

    def _drop_connection(self, conn: _Connection) -> None:
        conn.closed = True
        self._connections.pop(conn.conn_id, None)
        self.watches.remove_watcher(conn.conn_id)
        if self._conn_of_session.get(conn.session_id) == conn.conn_id:
            del self._conn_of_session[conn.session_id]
        for slot in conn.slots:
            if slot.waiting_zxid:
                self._waiting.pop(slot.waiting_zxid, None)
        conn.slots.clear()


def _error_reply(xid: int, zxid: int, error: KeeperError) -> list[Any]:
    return [xid, zxid, error.code, error.to_wire()]


def _notice(zxid: int, error: KeeperError) -> list[Any]:
    return [NOTICE_XID, zxid, error.code, error.to_wire()]


def _multi_failure(failed: MultiFailed) -> list[list[Any]]:
    return [[error.code, error.to_wire()] for error in failed.results()]


def _result_to_wire(body: TxnBody, result: ApplyResult) -> Any:
    if isinstance(body, MultiTxn):
        subresults = result.result if isinstance(result.result, list) else []
        return [
            [0, _one_result(sub, value)] for sub, value in zip(body.txns, subresults, strict=False)
        ]
    return _one_result(body, result.result)


def _one_result(body: TxnBody, value: Any) -> Any:
    if isinstance(body, CreateTxn) and value is not None:
        path, stat = value
        return [path, stat]
    if isinstance(body, SetDataTxn):
        return value
    return None


__all__ = ["CoreConfig", "CreateMode", "Ready", "ServerCore"]
