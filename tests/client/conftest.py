"""A scriptable fake server for the client tests, on in-memory streams.

The client connects through `FakeServer.factory` (its `stream_factory`), so
no socket is opened and trio's MockClock can run the tests: every timeout,
ping and backoff happens in virtual time. Each connection gets a pump task
that answers the handshake and PINGs by itself (so a test that is busy
elsewhere does not make the client think the server died) and queues every
other frame for the test to `expect()`.

What it sends is built as the server builds it: typed outputs
(coord.server.core.output) through the native codec's `to_wire`, so a test
replies `Created(path, stat)` or fails a request with a KeeperError rather
than spelling out a wire list (a raw result still passes through unchanged).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from coord.errors import KeeperError
from coord.framing import NEED_DATA, FrameDecoder, encode_frames
from coord.messages import PING_XID, EventType, OpCode, WatchedEvent
from coord.server.core.output import (
    ClientOutput,
    Connected,
    ConnectRefused,
    ErrorReply,
    Notice,
    Reply,
    Result,
)
from coord.server.native.codec import result_to_wire, to_wire

STAT = [5, 6, 1000, 2000, 1, 0, 0, 0, 3, 0, 5]


class Box:
    """The outcome of a coroutine run in the background, awaitable later."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    async def get(self) -> Any:
        await self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value

    async def error_of(self) -> BaseException:
        await self.done.wait()
        assert self.error is not None, f"expected an error, got {self.value!r}"
        return self.error


class FakeConn:
    """The server end of one client connection."""

    def __init__(self, stream: trio.abc.Stream, server: FakeServer) -> None:
        self.stream = stream
        self.server = server
        self.zxid = server.zxid
        send, receive = trio.open_memory_channel[Any](1000)
        self._frames_in = send
        self.frames = receive
        self.connect_request: dict[str, Any] | None = None
        self.handshake_done = trio.Event()
        self.answer_pings = True
        self.pings = 0
        self.chunks: list[int] = []  # frames per receive_some, to see coalescing
        self.closed = trio.Event()
        self.session_closed = False
        self._send_lock = trio.Lock()

    async def pump(self) -> None:
        decoder = FrameDecoder()
        try:
            while True:
                data = await self.stream.receive_some(1 << 20)
                if not data:
                    break
                decoder.receive_data(data)
                count = 0
                while (frame := decoder.next_frame()) is not NEED_DATA:
                    count += 1
                    await self._handle(frame)
                self.chunks.append(count)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._frames_in.close()
            self.closed.set()

    async def _handle(self, frame: Any) -> None:
        if self.connect_request is None:
            assert isinstance(frame, dict), frame
            self.connect_request = frame
            error = self.server.handshake_errors.pop(0) if self.server.handshake_errors else 0
            server = self.server
            answer: ClientOutput = Connected(
                server.session_id, server.timeout_ms, server.password, self.zxid, server_id=1
            )
            if error:
                refusal = KeeperError.from_wire(error, {"message": "refused"})
                answer = ConnectRefused(self.zxid, 1, refusal)
            await self.output(answer)
            self.handshake_done.set()
            if error:
                await self.close()
            return
        xid, op, _body = frame
        if xid == PING_XID:
            self.pings += 1
            if self.answer_pings:
                await self.output(Reply(PING_XID, self.zxid))
            return
        if op == OpCode.CLOSE_SESSION:
            self.session_closed = True
            await self.reply(xid)
            await self.close()
            return
        await self._frames_in.send(frame)

    async def send(self, *frames: Any) -> None:
        """Write frames (msgpack values) in one chunk, as one send_all."""
        async with self._send_lock:
            await self.stream.send_all(encode_frames(list(frames)))

    async def output(self, *outputs: ClientOutput) -> None:
        """Write typed frames in one chunk, encoded as the server encodes them."""
        await self.send(*(to_wire(output) for output in outputs))

    async def expect(self, op: OpCode) -> tuple[int, dict[str, Any]]:
        """The next request (pings aside); asserts its op. Returns (xid, body)."""
        xid, got, body = await self.frames.receive()
        assert got == op, f"expected {op.name}, got op {got} {body}"
        return xid, body

    async def reply(
        self, xid: int, result: Result | Any = None, *, zxid: int | None = None, err: int = 0
    ) -> None:
        """Answer `xid` with `result` (a typed result or its wire form), or with error `err`
        (then `result` is the error's details)."""
        if zxid is not None:
            self.zxid = max(self.zxid, zxid)
        at = self.zxid if zxid is None else zxid
        if err:
            await self.output(ErrorReply(xid, at, KeeperError.from_wire(err, result)))
        else:
            await self.send([xid, at, 0, result_to_wire(result)])

    async def fail(self, xid: int, error: KeeperError, *, zxid: int | None = None) -> None:
        """Answer `xid` with `error`."""
        if zxid is not None:
            self.zxid = max(self.zxid, zxid)
        await self.output(ErrorReply(xid, self.zxid if zxid is None else zxid, error))

    async def event(self, type_: int, path: str, zxid: int) -> None:
        self.zxid = max(self.zxid, zxid)
        await self.send(self.event_frame(type_, path, zxid))

    @staticmethod
    def event_frame(type_: int, path: str, zxid: int) -> Any:
        """A watch event's wire frame (to send together with others)."""
        return to_wire(WatchedEvent(EventType(type_), path, zxid))

    async def notice(self, err: int, message: str = "bye") -> None:
        await self.output(Notice(self.zxid, KeeperError.from_wire(err, {"message": message})))

    async def close(self) -> None:
        await trio.aclose_forcefully(self.stream)


class FakeServer:
    """Hands each client connection to the test as a FakeConn."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        send, receive = trio.open_memory_channel[FakeConn](100)
        self._conns_in = send
        self._conns = receive
        self.session_id = 0x1234
        self.password = b"secret"
        self.timeout_ms = 9000
        self.zxid = 100
        self.handshake_errors: list[int] = []
        self.refuse = False
        self.refuse_hosts: set[str] = set()
        self.attempts = 0
        self.hosts_tried: list[tuple[str, int]] = []

    async def factory(self, host: str, port: int) -> trio.abc.Stream:
        self.attempts += 1
        self.hosts_tried.append((host, port))
        if self.refuse or host in self.refuse_hosts:
            raise OSError(f"connection to {host}:{port} refused")
        client_end, server_end = trio.testing.memory_stream_pair()
        conn = FakeConn(server_end, self)
        self._nursery.start_soon(conn.pump)
        await self._conns_in.send(conn)
        await trio.lowlevel.checkpoint()
        return client_end

    async def accept(self) -> FakeConn:
        conn = await self._conns.receive()
        await conn.handshake_done.wait()
        return conn

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Box:
        """Run `fn(*args, **kwargs)` in the background; its outcome lands in the Box."""
        box = Box()

        async def run() -> None:
            try:
                box.value = await fn(*args, **kwargs)
            except Exception as exc:
                box.error = exc
            finally:
                box.done.set()

        self._nursery.start_soon(run)
        return box


@pytest.fixture
def fake(nursery: trio.Nursery) -> FakeServer:
    return FakeServer(nursery)


@pytest.fixture
def stat() -> list[int]:
    return list(STAT)
