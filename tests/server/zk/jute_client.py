"""A bare-bones jute client for tests: exactly the packets a test means, no cleverness.

Built on coord.server.zk.jute (the codec under test has its own round-trip tests);
kazoo and zkCli are the independent clients. `RawZk` talks to a real socket;
`split_packets` and `reply_body` decode what a translator wrote.
"""

from __future__ import annotations

from typing import Any

import trio

from coord.framing import NEED_DATA
from coord.server.zk import jute
from coord.server.zk.jute import (
    ConnectRequest,
    ConnectResponse,
    PacketDecoder,
    Reader,
    Record,
    ReplyHeader,
    RequestHeader,
    WatcherEvent,
    ZkOp,
)

REPLY_BODIES: dict[int, type[Record] | None] = {
    ZkOp.CREATE: jute.CreateResponse,
    ZkOp.CREATE2: jute.Create2Response,
    ZkOp.CREATE_CONTAINER: jute.Create2Response,
    ZkOp.CREATE_TTL: jute.Create2Response,
    ZkOp.EXISTS: jute.StatResponse,
    ZkOp.GET_DATA: jute.GetDataResponse,
    ZkOp.SET_DATA: jute.StatResponse,
    ZkOp.GET_ACL: jute.GetACLResponse,
    ZkOp.SET_ACL: jute.StatResponse,
    ZkOp.GET_CHILDREN: jute.GetChildrenResponse,
    ZkOp.GET_CHILDREN2: jute.GetChildren2Response,
    ZkOp.SYNC: jute.PathResponse,
    ZkOp.MULTI: jute.MultiResponse,
    ZkOp.MULTI_READ: jute.MultiResponse,
    ZkOp.GET_EPHEMERALS: jute.GetEphemeralsResponse,
    ZkOp.GET_ALL_CHILDREN_NUMBER: jute.GetAllChildrenNumberResponse,
    ZkOp.WHO_AM_I: jute.WhoAmIResponse,
}

OPEN_ACL = list(jute.OPEN_ACL_UNSAFE)


def connect_packet(**fields: Any) -> bytes:
    """A framed ConnectRequest: a new session with a 4 s timeout unless `fields` say otherwise."""
    values: dict[str, Any] = {
        "protocol_version": 0,
        "last_zxid_seen": 0,
        "timeout_ms": 4000,
        "session_id": 0,
        "password": bytes(16),
        "read_only": False,
    }
    values.update(fields)
    return jute.frame(ConnectRequest(**values).to_bytes())


def split_packets(data: bytes) -> list[bytes]:
    decoder = PacketDecoder(max_packet=1 << 30)
    decoder.receive_data(data)
    out = []
    while (packet := decoder.next_packet()) is not NEED_DATA:
        assert isinstance(packet, bytes)
        out.append(packet)
    return out


def reply_body(op: int, reader: Reader) -> Record | None:
    """The body of a successful reply to `op` (None for ops that answer a header alone)."""
    body = REPLY_BODIES.get(op)
    return None if body is None else body.read(reader)


def parse_reply(packet: bytes) -> tuple[ReplyHeader, Reader]:
    reader = Reader(packet)
    return ReplyHeader.read(reader), reader


class RawZk:
    """A jute client over a trio stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.decoder = PacketDecoder(max_packet=1 << 30)
        self.xid = 0
        self.events: list[WatcherEvent] = []
        self.session_id = 0
        self.password = b""

    @classmethod
    async def connect(
        cls,
        port: int,
        *,
        session_id: int = 0,
        password: bytes = bytes(16),
        timeout_ms: int = 2000,
        last_zxid: int = 0,
    ) -> tuple[RawZk, ConnectResponse | None]:
        """Handshake; the response is None when the server closed without answering."""
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        return await cls.handshake(
            stream,
            session_id=session_id,
            password=password,
            timeout_ms=timeout_ms,
            last_zxid=last_zxid,
        )

    @classmethod
    async def handshake(
        cls,
        stream: trio.abc.Stream,
        *,
        session_id: int = 0,
        password: bytes = bytes(16),
        timeout_ms: int = 2000,
        last_zxid: int = 0,
    ) -> tuple[RawZk, ConnectResponse | None]:
        """Handshake over any stream (a socket, or an in-memory pipe to a test member)."""
        client = cls(stream)
        request = ConnectRequest(0, last_zxid, timeout_ms, session_id, password, False)
        await client.send_raw(jute.frame(request.to_bytes()))
        packet = await client.packet()
        if packet is None:
            return client, None
        response = ConnectResponse.from_bytes(packet)
        client.session_id = response.session_id
        client.password = response.password or b""
        return client, response

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def packet(self) -> bytes | None:
        """The next packet, or None at EOF."""
        while True:
            packet = self.decoder.next_packet()
            if packet is not NEED_DATA:
                assert isinstance(packet, bytes)
                return packet
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return None
            if not data:
                return None
            self.decoder.receive_data(data)

    async def send(self, op: int, body: Record | None = None, *, xid: int | None = None) -> int:
        if xid is None:
            self.xid += 1
            xid = self.xid
        await self.send_raw(jute.encode_request(RequestHeader(xid, op), body))
        return xid

    async def reply(self) -> tuple[ReplyHeader, Reader]:
        """The next reply that is not a watch event (events are kept in `events`)."""
        while True:
            packet = await self.packet()
            if packet is None:
                raise EOFError("the server closed the connection")
            header, reader = parse_reply(packet)
            if header.xid == jute.WATCH_XID:
                self.events.append(WatcherEvent.read(reader))
                continue
            return header, reader

    async def call(self, op: int, body: Record | None = None) -> tuple[ReplyHeader, Any]:
        """Send one request and read its reply: (header, decoded body or None)."""
        xid = await self.send(op, body)
        header, reader = await self.reply()
        assert header.xid == xid, (header, xid)
        return header, (reply_body(op, reader) if header.err == 0 else None)

    async def is_closed(self, timeout: float = 5.0) -> bool:
        """Whether the server closes the connection (within `timeout`)."""
        with trio.move_on_after(timeout):
            while await self.packet() is not None:
                pass
            return True
        return False

    async def aclose(self) -> None:
        await self.stream.aclose()


async def four_letter_word(port: int, word: str) -> str:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(word.encode())
    chunks = []
    with trio.fail_after(5):
        while data := await stream.receive_some(65536):
            chunks.append(data)
    await stream.aclose()
    return b"".join(chunks).decode()
