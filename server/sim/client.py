"""A simulated client: the client library's own sans-IO protocol over a simulated connection.

It holds a real session through `coord.client.protocol.ClientProtocol` (the
request table, xids, the watch registry, the last zxid seen), connects with
its last zxid, re-registers its watches with SET_WATCHES after a reconnect,
and resends the writes it had in flight with their first xids, as
`coord.client.Client` does. What it does is drawn from the seed: creates in
every mode, sets and deletes with versions, multis, sync-then-read, reads
that leave one-shot watches, get_children of the root and of the queue (with
and without a child watch), taking the queue's first child (and deleting the
queue itself, which fails while it has children), persistent watches on keys
and recursive ones on the root or the queue, closing its session.

The world moves its frames; the client only decides. Every call, reply and
event is reported to the `History` (coord.server.sim.checks).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from coord.client.ops import create_body, delete_body, parse_children, set_body
from coord.client.pending import Call
from coord.client.protocol import PING_FRAME, ClientProtocol, NoticeReceived
from coord.client.watches import WatchKind, split_set_watches
from coord.errors import ConnectionLossError, KeeperError, SessionExpiredError
from coord.messages import (
    PROTOCOL_VERSION,
    AddWatchMode,
    ConnectResponse,
    OpCode,
    WatchedEvent,
)

if TYPE_CHECKING:
    from coord.server.sim.checks import History

KEYS = ("/k0", "/k1", "/k2")
EPHEMERALS = ("/e0", "/e1")
QUEUE = "/q"
PARENTS = ("/", QUEUE)
"""Where children come and go: the root (keys, ephemerals, the queue) and the queue."""
RESENT = frozenset({OpCode.CREATE, OpCode.DELETE, OpCode.SET_DATA, OpCode.MULTI, OpCode.SYNC})


class SimClient:
    """One user of the service: a session at a time, one member at a time."""

    def __init__(self, client_id: int, rng: random.Random, history: History) -> None:
        self.client_id = client_id
        self.rng = rng
        self.history = history
        self.protocol = ClientProtocol()
        self.session_id = 0
        self.password = b""
        self.timeout_ms = rng.choice([1_000, 2_000, 4_000])
        self.member: int | None = None
        self.connected = False
        self.last_heard_ms = 0
        self.last_sent_ms = 0
        self.silent_until_ms = 0
        """A stalled process: it sends and reads nothing until then (its session may expire)."""
        self.pipeline = rng.randint(1, 3)
        self.versions: dict[str, int] = {}
        self.queue_seen: list[str] = []
        """The queue's children as our last get_children of it answered (to take the first)."""
        self._counter = 0
        self.expired_sessions = 0
        self._closing: Call | None = None

    # -- the connection -------------------------------------------------------------------

    def handshake(self) -> dict[str, Any]:
        """The connect request for a new connection (the world sends it first)."""
        return {
            "protocol_version": PROTOCOL_VERSION,
            "last_zxid_seen": self.protocol.last_zxid,
            "timeout_ms": self.timeout_ms,
            "session_id": self.session_id,
            "password": self.password,
        }

    def connection_lost(self) -> None:
        """The connection is gone: resend writes and syncs, fail the rest (outcome unknown)."""
        self.connected = False
        self.member = None

        def loss(call: Call) -> BaseException:
            return ConnectionLossError(f"connection lost during {call.describe()}")

        self.protocol.requests.requeue_in_flight(lambda call: call.op in RESENT, loss)

    def on_connect_response(self, frame: Any, now_ms: int) -> bool:
        """The first frame of a connection; False when it was refused."""
        if not isinstance(frame, dict):  # a notice: the member closes before it answered
            return False
        response = ConnectResponse.model_validate(frame)
        if response.error:
            error = KeeperError.from_wire(response.error, {"message": response.message})
            if isinstance(error, SessionExpiredError):
                self._session_over(expired=True)
            return False
        if self.session_id and response.session_id != self.session_id:
            self._session_over(expired=True)
            return False
        if not self.session_id:
            self.history.session_started(self, response.session_id)
            self.protocol.see_zxid(response.zxid)  # as coord.client.Client does
        else:
            self.history.reconnected(self)
        self.session_id = response.session_id
        self.password = response.password
        self.connected = True
        self.last_heard_ms = now_ms
        self.protocol.requests.abandon_queued(OpCode.SET_WATCHES)
        lists = self.protocol.watches.set_watches()
        if lists:
            for body in reversed(split_set_watches(lists, self.protocol.last_zxid, 1 << 19)):
                self.protocol.requests.enqueue(Call(OpCode.SET_WATCHES, body), first=True)
        return True

    def receive(self, frame: Any, now_ms: int) -> bool:
        """A frame from the member; False when the connection must end."""
        self.last_heard_ms = now_ms
        self.history.frame(self, frame)
        try:
            self.protocol.receive_frame(frame)
        except NoticeReceived as notice:
            if isinstance(notice.error, SessionExpiredError):
                self._session_over(expired=True)  # as coord.client.Client: the session is lost
            return False
        if isinstance(frame, list) and len(frame) == 4 and frame[2] == SessionExpiredError.code:
            # The member says the session is gone, or (after our own CLOSE_SESSION on
            # this connection) that it is closing: that one is no expiry.
            closed_by_us = self._closing is not None
            self._closing = None
            self._session_over(expired=not closed_by_us)
            return False
        return True

    def _session_over(self, *, expired: bool) -> None:
        """The session ended (expired, or closed by us): start afresh with a new one."""
        self.history.session_ended(self, self.session_id, expired=expired)
        if expired:
            self.expired_sessions += 1

        def gone(call: Call) -> BaseException:
            return SessionExpiredError(f"session ended during {call.describe()}")

        self.protocol.requests.fail_all(gone)
        self.protocol.watches.clear()
        self.session_id = 0
        self.password = b""
        self.versions.clear()

    # -- what to send -----------------------------------------------------------------------

    def frames_to_send(self, now_ms: int) -> list[list[Any]]:
        """New calls drawn from the seed, then every frame the protocol has to send."""
        if not self.connected or now_ms < self.silent_until_ms:
            return []
        requests = self.protocol.requests
        while requests.in_flight + requests.queued < self.pipeline and self.rng.random() < 0.3:
            self._new_calls()
        frames = self.protocol.take_frames()
        for xid, op, _ in frames:
            self.history.sent(self, xid, op)
        if not frames and now_ms - self.last_sent_ms > self.timeout_ms // 3:
            frames.append(list(PING_FRAME))
        if frames:
            self.last_sent_ms = now_ms
        return frames

    def wants_new_member(self, now_ms: int) -> bool:
        """Heard nothing for 2/3 of the session timeout: try another member."""
        return self.connected and now_ms - self.last_heard_ms > self.timeout_ms * 2 // 3

    def _call(
        self, op: OpCode, body: dict[str, Any], on_reply: Any = None, after_sync: Call | None = None
    ) -> Call:
        call = Call(int(op), body, path=body.get("path"), on_reply=on_reply)
        self.history.invoked(self, call, after_sync)
        self.protocol.requests.enqueue(call)
        return call

    def probe(self) -> None:
        """A write that cannot fail on its own (a new path): the liveness phase needs one."""
        self._call(OpCode.CREATE, create_body(f"/live-{self.client_id}-{self._counter}", b"x"))
        self._counter += 1

    def _value(self) -> bytes:
        self._counter += 1
        return f"c{self.client_id}-{self._counter}".encode()

    def _new_calls(self) -> None:
        rng = self.rng
        key = rng.choice(KEYS)
        roll = rng.random()
        if roll < 0.02:
            self._call(OpCode.CREATE, create_body(QUEUE, b""))
        elif roll < 0.13:
            self._call(OpCode.CREATE, create_body(key, self._value()))
        elif roll < 0.19:
            path = rng.choice(EPHEMERALS)
            self._call(OpCode.CREATE, create_body(path, self._value(), ephemeral=True))
        elif roll < 0.26:
            ephemeral = rng.random() < 0.5
            body = create_body(QUEUE + "/n-", self._value(), ephemeral=ephemeral, sequential=True)
            self._call(OpCode.CREATE, body)
        elif roll < 0.41:
            version = self.versions.get(key, -1) if rng.random() < 0.5 else -1
            self._call(OpCode.SET_DATA, set_body(key, self._value(), version))
        elif roll < 0.46:
            version = self.versions.get(key, -1) if rng.random() < 0.5 else -1
            self._call(OpCode.DELETE, delete_body(key, version))
        elif roll < 0.50:
            other = rng.choice(KEYS)
            ops = [
                [int(OpCode.CHECK), {"path": key, "version": self.versions.get(key, 0)}],
                [int(OpCode.SET_DATA), set_body(other, self._value(), -1)],
            ]
            self._call(OpCode.MULTI, {"ops": ops})
        elif roll < 0.53:  # (two different keys: the model keeps one change per path and txn)
            other = rng.choice([k for k in KEYS if k != key])
            ops = [
                [int(OpCode.CREATE), create_body(key, self._value())],
                [int(OpCode.DELETE), delete_body(other, -1)],
            ]
            self._call(OpCode.MULTI, {"ops": ops})
        elif roll < 0.62:
            sync = self._call(OpCode.SYNC, {"path": key})
            self._read(key, watch=False, after_sync=sync)
        elif roll < 0.74:
            self._read(key, watch=rng.random() < 0.6)
        elif roll < 0.78:
            if rng.random() < 0.6:
                self._add_watch(key)
            else:
                self._add_watch(rng.choice(PARENTS), recursive=True)
        elif roll < 0.80:
            self._closing = self._call(OpCode.CLOSE_SESSION, {})
        elif roll < 0.84:
            self._call(OpCode.EXISTS, {"path": key, "watch": True},
                       on_reply=self._watch_hook(None, key))  # fmt: skip
        elif roll < 0.94:
            self._children(rng.choice(PARENTS), watch=rng.random() < 0.6)
        else:
            self._take_from_queue()

    def _read(self, key: str, *, watch: bool, after_sync: Call | None = None) -> None:
        hook = self._watch_hook(WatchKind.DATA, key) if watch else None
        body = {"path": key, "watch": watch}
        self._call(OpCode.GET_DATA, body, on_reply=hook, after_sync=after_sync)

    def _children(self, parent: str, *, watch: bool) -> None:
        child_hook = self._watch_hook(WatchKind.CHILD, parent) if watch else None

        def hook(err: int, result: Any) -> None:
            if err == 0 and parent == QUEUE:
                self.queue_seen = parse_children(result)[0]
            if child_hook is not None:
                child_hook(err, result)

        self._call(OpCode.GET_CHILDREN, {"path": parent, "watch": watch}, on_reply=hook)

    def _take_from_queue(self) -> None:
        """Delete the queue's first child we saw (another client may have taken it), or,
        knowing of none, the queue itself (NotEmpty while it has children)."""
        if self.queue_seen:
            name = self.queue_seen.pop(0)
            self._call(OpCode.DELETE, delete_body(f"{QUEUE}/{name}", -1))
        else:
            self._call(OpCode.DELETE, delete_body(QUEUE, -1))

    def _watch_hook(self, kind: WatchKind | None, path: str) -> Callable[[int, Any], None]:
        registry = self.protocol.watches

        def hook(err: int, result: Any) -> None:
            if err == 0:
                chosen = kind or (WatchKind.EXIST if result is None else WatchKind.DATA)
                registry.add(chosen, path, self._on_event)
                self.history.watch_set(self, chosen, path)

        return hook

    def _add_watch(self, path: str, *, recursive: bool = False) -> None:
        registry = self.protocol.watches
        kind = WatchKind.PERSISTENT_RECURSIVE if recursive else WatchKind.PERSISTENT
        mode = AddWatchMode.PERSISTENT_RECURSIVE if recursive else AddWatchMode.PERSISTENT

        def hook(err: int, result: Any) -> None:
            if err == 0 and not registry.has(kind, path):
                registry.add(kind, path, self._on_event)
                self.history.watch_set(self, kind, path)

        self._call(OpCode.ADD_WATCH, {"path": path, "mode": int(mode)}, on_reply=hook)

    def take_closed(self) -> bool:
        """Our CLOSE_SESSION was answered (or lost with its connection): start a new session.

        A close whose connection broke may not have happened; then the session
        expires on its own, and its ephemerals go then.
        """
        closing = self._closing
        if closing is not None and closing.done:
            self._closing = None
            self._session_over(expired=False)
            return True
        return False

    def _on_event(self, event: WatchedEvent) -> None:
        self.history.event_seen(self, event)

    def remember_version(self, path: str, version: int | None) -> None:
        if version is None:
            self.versions.pop(path, None)
        else:
            self.versions[path] = version
