"""A test driver for ServerCore: feeds it, carries out its Ready batches at once.

Every frame the core emits goes through the real msgpack framing before the
test looks at it, so what is checked is what a client would receive.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from coord.errors import KeeperError
from coord.framing import NEED_DATA, FrameDecoder
from coord.messages import (
    PROTOCOL_VERSION,
    WATCH_XID,
    ConnectRequest,
    CreateMode,
    EventType,
    OpCode,
)
from coord.server.core.identity import UNKNOWN, ConnectionIdentity
from coord.server.core.output import ClientOutput
from coord.server.core.replica import CoreConfig, ServerCore
from coord.server.native.codec import NativeEncoder

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


class Driver:
    """Feeds a ServerCore and carries out its Ready batches at once."""

    def __init__(self, **config: Any) -> None:
        self.core = ServerCore(CoreConfig(tick_ms=TICK, **config))
        self.now = 1_000_000
        self.inbox: dict[int, list[Any]] = defaultdict(list)
        self.log: list[tuple[int, Any]] = []  # every (conn, frame) in emission order
        self.closed: list[int] = []
        self.txns: list[Any] = []
        self._xid: dict[int, int] = defaultdict(int)
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
                self.inbox[conn].append(frame)
                self.log.append((conn, frame))
            self.closed.extend(ready.closes)
            core.advance(ready, now_ms=self.now)

    def take(self, conn: int) -> list[Any]:
        return self.inbox.pop(conn, [])

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
    ) -> dict[str, Any] | None:
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
        assert isinstance(response, dict), frames
        if response.get("error", 0) == 0:
            self.session_of[conn] = response["session_id"]
        return response

    def send(self, conn: int, op: int, body: Any = None, *, xid: int | None = None) -> int:
        if xid is None:
            self._xid[conn] += 1
            xid = self._xid[conn]
        self.core.request(conn, xid, op, body if body is not None else {}, now_ms=self.now)
        return xid

    def call(self, conn: int, op: int, body: Any = None) -> list[Any]:
        """Send one request, run, and return its reply (other frames stay in the inbox)."""
        xid = self.send(conn, op, body)
        self.run()
        return self.reply(conn, xid)

    def reply(self, conn: int, xid: int) -> list[Any]:
        frames = self.inbox[conn]
        for i, frame in enumerate(frames):
            if isinstance(frame, list) and frame[0] == xid:
                del frames[i]
                return frame
        raise AssertionError(f"no reply to xid {xid} on conn {conn}: {frames}")

    def events(self, conn: int) -> list[tuple[EventType, str]]:
        """Take the watch events queued for `conn` (other frames stay)."""
        frames = self.inbox[conn]
        events = [f for f in frames if isinstance(f, list) and f[0] == WATCH_XID]
        self.inbox[conn] = [f for f in frames if not (isinstance(f, list) and f[0] == WATCH_XID)]
        return [(EventType(f[3]["type"]), f[3]["path"]) for f in events]

    def tick(self, advance_ms: int) -> None:
        self.now += advance_ms
        self.core.tick(self.now)
        self.run()

    # -- shorthands ------------------------------------------------------------------

    def create(self, conn, path, data=b"", mode=CreateMode.PERSISTENT, **extra):
        body = {"path": path, "data": data, "mode": int(mode), **extra}
        return self.call(conn, OpCode.CREATE, body)

    def get(self, conn, path, watch=False):
        return self.call(conn, OpCode.GET_DATA, {"path": path, "watch": watch})

    def exists(self, conn, path, watch=False):
        return self.call(conn, OpCode.EXISTS, {"path": path, "watch": watch})


def ok(reply: list[Any]) -> Any:
    assert reply[2] == 0, reply
    return reply[3]


def error_of(reply: list[Any]) -> KeeperError:
    assert reply[2] != 0, reply
    return KeeperError.from_wire(reply[2], reply[3])
