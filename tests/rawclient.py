"""A bare-bones protocol client for server tests: frames in, frames out, no cleverness.

Tests of the server use it to send exactly the bytes they mean (bad frames,
unknown ops, pipelined bursts) without the real client's checks in the way.
What comes back is read by name: `receive`, `reply` and `call` turn each frame
into the value the server's core sent (coord.server.native.codec's
output_from_wire, given the op sent under the reply's xid), so a test asserts
`reply.result.stat.version`, never `frame[3][1][4]`. `receive_frame` is the
decoded msgpack value itself, for a test whose point is the layout.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

import trio

from coord.framing import NEED_DATA, FrameDecoder, encode_frame
from coord.messages import PROTOCOL_VERSION, OpCode, WatchedEvent
from coord.server.core.output import (
    ClientOutput,
    Connected,
    ConnectRefused,
    ErrorReply,
    Reply,
    Result,
)
from coord.server.native.codec import output_from_wire


def _request(message: Any) -> tuple[int, int, tuple[int, ...]] | None:
    """(xid, op, a multi's sub-ops) if `message` is a well-formed `[xid, op, body]`."""
    if not isinstance(message, list | tuple) or len(message) != 3:
        return None
    xid, op, body = message
    if not isinstance(xid, int) or not isinstance(op, int):
        return None
    sub_ops: tuple[int, ...] = ()
    if op in (OpCode.MULTI, OpCode.MULTI_READ) and isinstance(body, dict):
        ops = body.get("ops")
        if isinstance(ops, list):
            sub_ops = tuple(o[0] if isinstance(o, list | tuple) and o else 0 for o in ops)
    return xid, op, sub_ops


class RawClient:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.decoder = FrameDecoder()
        self.session_id = 0
        self.password = b""
        self.timeout_ms = 0
        self._xid = 0
        self._sent: dict[int, deque[tuple[int, tuple[int, ...]]]] = defaultdict(deque)
        self.events: list[WatchedEvent] = []

    @classmethod
    async def connect(
        cls, port: int, *, timeout_ms: int = 1000, session_id: int = 0, password: bytes = b""
    ) -> tuple[RawClient, Connected]:
        """A client on a new TCP connection whose handshake made or resumed a session."""
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = cls(stream)
        hello = await client.handshake(
            timeout_ms=timeout_ms, session_id=session_id, password=password
        )
        assert isinstance(hello, Connected), hello
        return client, hello

    async def handshake(
        self, *, timeout_ms: int = 1000, session_id: int = 0, password: bytes = b""
    ) -> Connected | ConnectRefused:
        """Send a ConnectRequest and read its answer; a session's id and password are kept."""
        await self.send(
            {
                "protocol_version": PROTOCOL_VERSION,
                "timeout_ms": timeout_ms,
                "session_id": session_id,
                "password": password,
                "last_zxid_seen": 0,
            }
        )
        response = await self.receive()
        assert isinstance(response, Connected | ConnectRefused), response
        if isinstance(response, Connected):
            self.session_id = response.session_id
            self.password = response.password
            self.timeout_ms = response.timeout_ms
        return response

    async def send(self, message: Any) -> None:
        """Send one msgpack value as a frame; a request's op is kept to read its reply."""
        request = _request(message)
        if request is not None:
            xid, op, sub_ops = request
            self._sent[xid].append((op, sub_ops))
        await self.stream.send_all(encode_frame(message))

    async def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (a reply to a request sent this way cannot be read by name)."""
        await self.stream.send_all(data)

    async def receive_frame(self) -> Any:
        """The next frame as msgpack decoded it; raises EOFError if the server closed."""
        while True:
            frame = self.decoder.next_frame()
            if frame is not NEED_DATA:
                return frame
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError("server closed the connection")
            self.decoder.receive_data(data)

    async def receive(self) -> ClientOutput:
        """The next frame, read by name; raises EOFError if the server closed."""
        frame = await self.receive_frame()
        if isinstance(frame, list) and frame and frame[0] in self._sent:
            pending = self._sent[frame[0]]
            op, sub_ops = pending.popleft()
            if not pending:
                del self._sent[frame[0]]
            return output_from_wire(frame, op, sub_ops)
        output = output_from_wire(frame)
        assert not isinstance(output, Reply | ErrorReply), f"a reply to nothing sent: {frame!r}"
        return output

    def next_xid(self) -> int:
        self._xid += 1
        return self._xid

    async def submit(self, op: int, body: dict[str, Any] | None = None) -> int:
        xid = self.next_xid()
        await self.send([xid, op, body or {}])
        return xid

    async def reply(self, xid: int) -> Reply | ErrorReply:
        """The reply for `xid`; watch events that come first are kept in `events`."""
        while True:
            frame = await self.receive()
            if isinstance(frame, WatchedEvent):
                self.events.append(frame)
                continue
            assert isinstance(frame, Reply | ErrorReply), f"expected a reply, got {frame!r}"
            assert frame.xid == xid, f"expected the reply to xid {xid}, got {frame!r}"
            return frame

    async def call(self, op: int, body: dict[str, Any] | None = None) -> Reply | ErrorReply:
        return await self.reply(await self.submit(op, body))

    async def result(self, op: int, body: dict[str, Any] | None = None) -> Result:
        """The result of a request that must succeed."""
        reply = await self.call(op, body)
        assert isinstance(reply, Reply), f"op {op} failed: {reply!r}"
        return reply.result

    async def ok(self, op: int, body: dict[str, Any] | None = None) -> Reply:
        """The reply to a request that must succeed."""
        reply = await self.call(op, body)
        assert isinstance(reply, Reply), f"op {op} failed: {reply!r}"
        return reply

    async def error(self, op: int, body: dict[str, Any] | None = None) -> ErrorReply:
        """The reply to a request that must fail."""
        reply = await self.call(op, body)
        assert isinstance(reply, ErrorReply), f"op {op} succeeded: {reply!r}"
        return reply

    async def aclose(self) -> None:
        await self.stream.aclose()
