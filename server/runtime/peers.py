"""Peer links: the trio transport between ensemble members. It moves messages, nothing more.

Each member keeps one outbound TCP connection to every other member, for its
own messages to that member, and accepts the others' outbound connections on
its peer port for theirs. A connection starts with a hello frame naming the
sender; after that every frame is one peer message (server.zab.codec).

Delivery is best effort, and that is all the protocol needs: a message queued
for a member that cannot be reached is dropped once its bounded queue is full,
a connection that breaks loses what was in flight, and the broadcast recovers
(a follower that sees a gap asks to be synced again). Per connection, order
is kept (TCP), so a leader's Sync, NewLeader and Proposals arrive in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import trio

from coord.errors import ProtocolError
from coord.framing import NEED_DATA, FrameDecoder, encode_frame, encode_frames
from server.config import ConfigError, EnsembleSpec
from server.zab.codec import PeerDecodeError, WireMessage, decode_message, encode_message

log = logging.getLogger(__name__)

PEER_QUEUE = 4096
PEER_MAX_FRAME = 1 << 30
RETRY_MIN = 0.05
RETRY_MAX = 0.25

Deliver = Callable[[int, WireMessage], None]
"""How a transport hands a received message to its member: deliver(sender, message)."""


class PeerTransport(Protocol):
    """What a member asks of its links: `PeerNetwork` (TCP), or in-memory links in tests."""

    async def serve(
        self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None: ...

    def send(self, peer_id: int, message: WireMessage) -> None: ...


PeerTransportFactory = Callable[[int, EnsembleSpec, Deliver], PeerTransport]
"""(my id, the ensemble, deliver) -> the member's links; `PeerNetwork` itself is one."""


class PeerNetwork:
    """Links to the other members of the ensemble."""

    def __init__(
        self,
        my_id: int,
        spec: EnsembleSpec,
        deliver: Deliver,
    ) -> None:
        self.my_id = my_id
        self.spec = spec
        self.deliver = deliver
        self._queues: dict[int, trio.MemorySendChannel[bytes]] = {}
        self._receivers: dict[int, trio.MemoryReceiveChannel[bytes]] = {}
        for member in spec.member:
            if member.id != my_id:
                send, receive = trio.open_memory_channel[bytes](PEER_QUEUE)
                self._queues[member.id] = send
                self._receivers[member.id] = receive
        self.dropped = 0
        self.port = 0

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        me = self.spec.get(self.my_id)
        listeners = await trio.open_tcp_listeners(me.peer_port, host=me.host)
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, self._inbound, listeners)
            for peer_id in self._queues:
                nursery.start_soon(self._outbound, peer_id)
            task_status.started(self.port)

    def send(self, peer_id: int, message: WireMessage) -> None:
        queue = self._queues.get(peer_id)
        if queue is None:
            return
        try:
            queue.send_nowait(encode_frame(encode_message(message)))
        except trio.WouldBlock:
            self.dropped += 1

    async def _outbound(self, peer_id: int) -> None:
        member = self.spec.get(peer_id)
        receive = self._receivers[peer_id]
        delay = RETRY_MIN
        while True:
            try:
                stream = await trio.open_tcp_stream(member.host, member.peer_port)
            except OSError:
                await trio.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)
                continue
            delay = RETRY_MIN
            try:
                async with stream:
                    await stream.send_all(encode_frames([{"hello": self.my_id}]))
                    async for first in receive:
                        chunks = [first]
                        while True:
                            try:
                                chunks.append(receive.receive_nowait())
                            except trio.WouldBlock:
                                break
                        await stream.send_all(b"".join(chunks))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.debug("link to member %d broke: %s", peer_id, exc)
            await trio.sleep(RETRY_MIN)

    async def _inbound(self, stream: trio.SocketStream) -> None:
        decoder = FrameDecoder(max_frame_size=PEER_MAX_FRAME)
        sender: int | None = None
        try:
            async with stream:
                while True:
                    data = await stream.receive_some(256 * 1024)
                    if not data:
                        return
                    decoder.receive_data(data)
                    while True:
                        frame = decoder.next_frame()
                        if frame is NEED_DATA:
                            break
                        if sender is None:
                            sender = _hello(frame, self.spec)
                            continue
                        self.deliver(sender, decode_message(frame))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return
        except (PeerDecodeError, ValueError, ConfigError, ProtocolError) as exc:
            log.warning("dropping a peer link from member %s: %s", sender, exc)


def _hello(frame: object, spec: EnsembleSpec) -> int:
    if not isinstance(frame, dict) or not isinstance(frame.get("hello"), int):
        raise ValueError(f"expected a hello frame, got {frame!r:.80}")
    sender: int = frame["hello"]
    spec.get(sender)  # raises for a stranger
    return sender
