"""A bare-bones protocol client for server tests: frames in, frames out, no cleverness.

Tests of the server use it to send exactly the bytes they mean (bad frames,
unknown ops, pipelined bursts) without the real client's checks in the way.
"""

from __future__ import annotations

from typing import Any

import trio

from coord.framing import NEED_DATA, FrameDecoder, encode_frame
from coord.messages import PROTOCOL_VERSION, WATCH_XID


class RawClient:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.decoder = FrameDecoder()
        self.session_id = 0
        self.password = b""
        self.timeout_ms = 0
        self._xid = 0
        self.events: list[Any] = []

    @classmethod
    async def connect(
        cls, port: int, *, timeout_ms: int = 1000, session_id: int = 0, password: bytes = b""
    ) -> tuple[RawClient, dict[str, Any]]:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = cls(stream)
        await client.send(
            {
                "protocol_version": PROTOCOL_VERSION,
                "timeout_ms": timeout_ms,
                "session_id": session_id,
                "password": password,
                "last_zxid_seen": 0,
            }
        )
        response = await client.receive()
        client.session_id = response["session_id"]
        client.password = response["password"]
        client.timeout_ms = response["timeout_ms"]
        return client, response

    async def send(self, message: Any) -> None:
        await self.stream.send_all(encode_frame(message))

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def receive(self) -> Any:
        """The next frame; raises EOFError if the server closed the connection."""
        while True:
            frame = self.decoder.next_frame()
            if frame is not NEED_DATA:
                return frame
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError("server closed the connection")
            self.decoder.receive_data(data)

    def next_xid(self) -> int:
        self._xid += 1
        return self._xid

    async def submit(self, op: int, body: dict[str, Any] | None = None) -> int:
        xid = self.next_xid()
        await self.send([xid, op, body or {}])
        return xid

    async def reply(self, xid: int) -> list[Any]:
        """The reply for `xid`; watch events that come first are kept in `events`."""
        while True:
            frame = await self.receive()
            if isinstance(frame, list) and frame[0] == WATCH_XID:
                self.events.append(frame)
                continue
            assert frame[0] == xid, f"expected the reply to xid {xid}, got {frame!r}"
            return frame

    async def call(self, op: int, body: dict[str, Any] | None = None) -> list[Any]:
        return await self.reply(await self.submit(op, body))

    async def result(self, op: int, body: dict[str, Any] | None = None) -> Any:
        """The result of a request that must succeed (the reply's error code is 0)."""
        _xid, _zxid, err, result = await self.call(op, body)
        assert err == 0, f"op {op} failed with {err}: {result!r}"
        return result

    async def aclose(self) -> None:
        await self.stream.aclose()
