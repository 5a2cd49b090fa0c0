"""One client connection: its codec, its byte-bounded outbound queue, its writer.

`ClientLink` is what a client port (coord.server.runtime.native_port,
coord.server.runtime.zk_port) holds of a connection that the shared listener
(coord.server.runtime.client_listener) accepted: `receive` the client's bytes,
`send` bytes to it, `close` it once they are sent (`finish`: and wait for
that), its `address` and its `identity` for ACLs.

What the server holds for a connection that does not read is bounded in bytes,
not in batches: a client that pipelines gets of a 1 MiB node and never reads
would otherwise make the server hold every reply (a thousand such gets are a
gigabyte). `ClientLink.offer` counts the bytes queued and not yet written to
the socket; once a batch would take them over `max_bytes`, the connection is
cut off: its queue is dropped and its tasks are cancelled, so the memory goes
at once. Only the connection ends; its session lives on until its lease runs
out, so the client can reconnect and resume it (ZooKeeper closes a slow
consumer's connection the same way).

Encoding is bounded too: `encode_bounded` encodes a batch frame by frame and
stops as soon as the budget is spent, so an over-long batch is never built
in memory whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from coord.server.core.identity import ConnectionIdentity
from coord.server.core.output import ClientOutput
from coord.server.native.codec import NativeEncoder, OverBudget

READ_SIZE = 256 * 1024
"""Most bytes one read from a client's socket takes."""

FINISH_S = 5.0
"""How long `ClientLink.finish` waits for what is queued to leave before it gives up."""

COALESCE_BYTES = 1024 * 1024
"""The writer joins queued chunks into one socket write up to this size (more: one write each),
so that coalescing never doubles a large queue in memory."""


class FrameCodec(Protocol):
    """How a connection's output frames from the core become bytes on its socket.

    The native port sends msgpack frames; the ZooKeeper port
    (coord.server.runtime.zk_port) passes a translator that speaks jute. `finished`
    asks the runtime to close the connection once these bytes are sent.
    """

    def encode(self, frames: list[ClientOutput]) -> bytes: ...

    @property
    def finished(self) -> bool: ...


NATIVE_CODEC: FrameCodec = NativeEncoder()


@dataclass(eq=False)
class ClientLink:
    """The runtime's side of one client connection (the core knows it by `conn_id`)."""

    conn_id: int
    stream: trio.abc.Stream
    address: str
    outbound: trio.MemorySendChannel[bytes | None]
    max_bytes: int
    """The bound on `queued_bytes`; over it the connection is cut off."""
    codec: FrameCodec = NATIVE_CODEC
    cut_off: bool = False
    x509: str = ""
    """The subject of the client's verified TLS certificate ("" without one)."""
    handshaken: bool = False
    """The read loop saw a complete handshake (the handshake deadline stops counting)."""
    queued_bytes: int = 0
    """Bytes queued for this connection and not yet written to its socket."""
    peak_bytes: int = 0
    """The most `queued_bytes` ever was."""
    scope: trio.CancelScope | None = None
    """The connection's tasks; cancelled to cut the connection off."""
    on_cut: Callable[[ClientLink, str], None] | None = None
    """Told (with the reason) when `send` cuts the connection off; the listener logs it."""

    @property
    def identity(self) -> ConnectionIdentity:
        """Who the client is for the ip and x509 ACL schemes."""
        return ConnectionIdentity(ip=self.address, x509=self.x509)

    def send(self, data: bytes) -> None:
        """Queue `data` for the client, within the byte bound (over it: the connection is cut)."""
        reason = self.offer(data)
        if reason is not None and self.on_cut is not None:
            self.on_cut(self, reason)

    def close(self) -> None:
        """Close the connection once what is queued is sent (the writer then ends its tasks)."""
        reason = self.offer(None)
        if reason is not None and self.on_cut is not None:
            self.on_cut(self, reason)

    async def finish(self) -> None:
        """`close`, then wait (at most FINISH_S) for the writer to end this connection's tasks.

        For a read loop that must not read on: the writer cancels it once the
        last bytes are out; a client that reads nothing costs it FINISH_S at most.
        """
        self.close()
        with trio.move_on_after(FINISH_S):
            await trio.sleep_forever()

    def encode_bounded(self, frames: list[ClientOutput]) -> bytes:
        """Encode `frames` in order; raise OverBudget as soon as the queue would pass its bound."""
        budget = self.max_bytes - self.queued_bytes
        if isinstance(self.codec, NativeEncoder):
            return self.codec.send_within(frames, budget)
        encode = self.codec.encode
        if len(frames) == 1:
            data = encode(frames)
            if len(data) > budget:
                raise OverBudget(f"{len(data)} bytes with {self.queued_bytes} queued")
            return data
        parts: list[bytes] = []
        size = 0
        for frame in frames:
            part = encode([frame])
            size += len(part)
            if size > budget:
                raise OverBudget(f"over {size} bytes with {self.queued_bytes} queued")
            parts.append(part)
            if self.codec.finished:
                break
        return b"".join(parts)

    async def receive(self) -> bytes | bytearray:
        """The client's next bytes; b"" once it closed, broke, or was cut off."""
        try:
            data = await self.stream.receive_some(READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""
        return b"" if self.cut_off else data

    def offer(self, data: bytes | None) -> str | None:
        """Queue `data` (None: close once the rest is sent); the reason if it was cut off."""
        if self.cut_off:
            return None
        if data is not None and self.queued_bytes + len(data) > self.max_bytes:
            self.cut()
            return f"over {self.max_bytes} bytes of replies unread"
        try:
            self.outbound.send_nowait(data)
        except trio.WouldBlock:
            self.cut()
            return "too many reply batches unread"
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.cut_off = True
            return None
        if data is not None:
            self.queued_bytes += len(data)
            self.peak_bytes = max(self.peak_bytes, self.queued_bytes)
        return None

    def cut(self) -> None:
        """End the connection now, dropping what is queued (the session is not touched)."""
        self.cut_off = True
        self.outbound.close()
        if self.scope is not None:
            self.scope.cancel()


async def write_loop(
    link: ClientLink, receive: trio.MemoryReceiveChannel[bytes | None], scope: trio.CancelScope
) -> None:
    """Send queued batches, coalescing what is queued into few writes; None means close.

    Bytes count as queued until `send_all` has handed them to the kernel.
    """
    try:
        async for data in receive:
            chunks: list[bytes] = []
            closing = data is None
            if data is not None:
                chunks.append(data)
            while not closing:
                try:
                    more = receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                if more is None:
                    closing = True
                else:
                    chunks.append(more)
            await _send_chunks(link, chunks)
            if closing:
                break
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    scope.cancel()


async def _send_chunks(link: ClientLink, chunks: list[bytes]) -> None:
    group: list[bytes] = []
    size = 0
    for chunk in chunks:
        if group and size + len(chunk) > COALESCE_BYTES:
            await _send(link, group, size)
            group, size = [], 0
        group.append(chunk)
        size += len(chunk)
    if group:
        await _send(link, group, size)


async def _send(link: ClientLink, group: list[bytes], size: int) -> None:
    await link.stream.send_all(group[0] if len(group) == 1 else b"".join(group))
    link.queued_bytes -= size
