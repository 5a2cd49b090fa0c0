"""A test driver for ServerCore: feeds it, carries out its Ready batches at once.

Every frame the core emits goes through the real native wire (msgpack framing)
before the test looks at it, so what is checked is what a client would receive;
the driver then reads each frame back by name (coord.server.native.codec's
output_from_wire), using the op a reply answers, so tests assert on
`reply.result.stat.version`, never on a position in a wire list.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from coord.errors import KeeperError
from coord.framing import NEED_DATA, FrameDecoder
from coord.messages import (
    PROTOCOL_VERSION,
    ConnectRequest,
    CreateMode,
    EventType,
    OpCode,
    WatchedEvent,
)
from coord.server.core.identity import UNKNOWN, ConnectionIdentity
from coord.server.core.output import (
    ClientOutput,
    Connected,
    ConnectRefused,
    ErrorReply,
    Reply,
    Result,
)
from coord.server.core.replica import CoreConfig, ServerCore
from coord.server.native.codec import NativeEncoder, output_from_wire

TICK = 100
PASSWORD = b"p" * 16


def _wire(frames: list[ClientOutput]) -> list[Any]:
    """What a client reads: the frames encoded by the native wire and decoded again."""
    decoder = FrameDecoder()
    decoder.receive_data(NativeEncoder().encode(frames))
    out = []
    while (frame := decoder.next_frame()) is not NEED_DATA:
        out.append(frame)
    return out


def _sub_ops(op: int, body: Any) -> tuple[int, ...]:
    """A multi's op codes, as far as its body names them (a bad body gets an error)."""
    if op not in (OpCode.MULTI, OpCode.MULTI_READ) or not isinstance(body, dict):
        return ()
    ops = body.get("ops")
    if not isinstance(ops, list):
        return ()
    return tuple(item[0] if isinstance(item, list | tuple) and item else 0 for item in ops)


class Driver:
    """Feeds a ServerCore and carries out its Ready batches at once."""

    def __init__(self, **config: Any) -> None:
        self.core = ServerCore(CoreConfig(tick_ms=TICK, **config))
        self.now = 1_000_000
        self.inbox: dict[int, list[ClientOutput]] = defaultdict(list)
        self.log: list[tuple[int, ClientOutput]] = []  # every (conn, frame) in emission order
        self.wire: list[tuple[int, Any]] = []  # the same frames as the client decoded them
        self.closed: list[int] = []
        self.txns: list[Any] = []
        self._xid: dict[int, int] = defaultdict(int)
        self._sent: dict[tuple[int, int], deque[tuple[int, tuple[int, ...]]]] = defaultdict(deque)
        self.session_of: dict[int, int] = {}

    # -- driving -----------------------------------------------------------------

    def run(self) -> None:
        core = self.core
        while core.has_ready():
            ready = core.ready()
            assert ready
            self.txns.extend(ready.txns)
            conns = [conn for conn, _ in ready.messages]
            frames = _wire([frame for _, frame in ready.messages])
            for conn, frame in zip(conns, frames, strict=True):
                output = self._read(conn, frame)
                self.inbox[conn].append(output)
                self.log.append((conn, output))
                self.wire.append((conn, frame))
            self.closed.extend(ready.closes)
            core.advance(ready, now_ms=self.now)

    def _read(self, conn: int, frame: Any) -> ClientOutput:
        """One decoded frame by name; a reply is read as the op sent under its xid."""
        if isinstance(frame, list) and frame and (conn, frame[0]) in self._sent:
            pending = self._sent[(conn, frame[0])]
            op, sub_ops = pending.popleft()
            if not pending:
                del self._sent[(conn, frame[0])]
            return output_from_wire(frame, op, sub_ops)
        output = output_from_wire(frame)
        assert not isinstance(output, Reply | ErrorReply), f"a reply to nothing sent: {frame!r}"
        return output

    def take(self, conn: int) -> list[ClientOutput]:
        return self.inbox.pop(conn, [])

    def wire_of(self, conn: int) -> list[Any]:
        """Every frame `conn` was sent, as the client decoded it (for tests of the layout)."""
        return [frame for c, frame in self.wire if c == conn]

    def connect(
        self,
        conn: int,
        *,
        session_id: int = 0,
        password: bytes = b"",
        timeout_ms: int = 1_000,
        last_zxid_seen: int = 0,
        protocol_version: int = PROTOCOL_VERSION,
        run: bool = True,
        auth: list[tuple[str, bytes]] | None = None,
        identity: ConnectionIdentity = UNKNOWN,
    ) -> Connected | ConnectRefused | None:
        """Hand the core a handshake; with `run`, its answer (None without)."""
        request = ConnectRequest(
            protocol_version=protocol_version,
            timeout_ms=timeout_ms,
            session_id=session_id,
            password=password,
            last_zxid_seen=last_zxid_seen,
            auth=auth or [],
        )
        self.core.connect(conn, request, now_ms=self.now, password=PASSWORD, identity=identity)
        if not run:
            return None
        self.run()
        frames = self.take(conn)
        assert frames, "no connect response"
        response = frames[0]
        assert isinstance(response, Connected | ConnectRefused), frames
        if isinstance(response, Connected):
            self.session_of[conn] = response.session_id
        return response

    def hello(self, conn: int, **kwargs: Any) -> Connected:
        """`connect`, which must make or resume a session."""
        response = self.connect(conn, **kwargs)
        assert isinstance(response, Connected), response
        return response

    def refused(self, conn: int, **kwargs: Any) -> ConnectRefused:
        """`connect`, which must be refused."""
        response = self.connect(conn, **kwargs)
        assert isinstance(response, ConnectRefused), response
        return response

    def send(self, conn: int, op: int, body: Any = None, *, xid: int | None = None) -> int:
        """Hand the core one request; remember its op to read the reply by."""
        if xid is None:
            self._xid[conn] += 1
            xid = self._xid[conn]
        body = body if body is not None else {}
        self._sent[(conn, xid)].append((op, _sub_ops(op, body)))
        self.core.request(conn, xid, op, body, now_ms=self.now)
        return xid

    def call(self, conn: int, op: int, body: Any = None) -> Reply | ErrorReply:
        """Send one request, run, and return its reply (other frames stay in the inbox)."""
        xid = self.send(conn, op, body)
        self.run()
        return self.reply(conn, xid)

    def reply(self, conn: int, xid: int) -> Reply | ErrorReply:
        frames = self.inbox[conn]
        for i, frame in enumerate(frames):
            if isinstance(frame, Reply | ErrorReply) and frame.xid == xid:
                del frames[i]
                return frame
        raise AssertionError(f"no reply to xid {xid} on conn {conn}: {frames}")

    def watched(self, conn: int) -> list[WatchedEvent]:
        """Take the watch events queued for `conn` (other frames stay)."""
        frames = self.inbox[conn]
        self.inbox[conn] = [f for f in frames if not isinstance(f, WatchedEvent)]
        return [f for f in frames if isinstance(f, WatchedEvent)]

    def events(self, conn: int) -> list[tuple[EventType, str]]:
        """Take the watch events queued for `conn`, as (type, path) (other frames stay)."""
        return [(event.type, event.path) for event in self.watched(conn)]

    def tick(self, advance_ms: int) -> None:
        self.now += advance_ms
        self.core.tick(self.now)
        self.run()

    # -- shorthands ------------------------------------------------------------------

    def create(
        self,
        conn: int,
        path: str,
        data: bytes | None = b"",
        mode: int = CreateMode.PERSISTENT,
        **extra: Any,
    ) -> Reply | ErrorReply:
        body = {"path": path, "data": data, "mode": int(mode), **extra}
        return self.call(conn, OpCode.CREATE, body)

    def get(self, conn: int, path: str, watch: bool = False) -> Reply | ErrorReply:
        return self.call(conn, OpCode.GET_DATA, {"path": path, "watch": watch})

    def exists(self, conn: int, path: str, watch: bool = False) -> Reply | ErrorReply:
        return self.call(conn, OpCode.EXISTS, {"path": path, "watch": watch})


def ok(reply: ClientOutput) -> Result:
    """The result of a reply that must have succeeded."""
    assert isinstance(reply, Reply), reply
    return reply.result


def error_of(reply: ClientOutput) -> KeeperError:
    """The error of a reply that must have failed."""
    assert isinstance(reply, ErrorReply), reply
    return reply.error
