"""Peer links: the trio transport between ensemble members. It moves messages, nothing more.

Each member keeps one outbound TCP connection to every other member, for its
own messages to that member, and accepts the others' outbound connections on
its peer port for theirs. A connection starts with a handshake naming the
sender (coord.server.runtime.peer_auth); after that every frame is one peer message
(coord.server.zab.codec), or a fragment of one too big for a frame.

Trust: nothing is read from a connection as a ZAB message before the
handshake is done. With an ensemble secret, the handshake is a mutual
HMAC-SHA256 challenge-response that binds the sender's member id, so a
connection's sender is proven, not claimed. Every message is then checked
against the protocol's ranges by the codec; a connection that sends one that
fails is logged once and dropped. The peer port accepts connections only from
the members' addresses and at most `max_peer_connections` at once; frames
are at most `peer_max_frame_bytes`, and fragments held for all connections
together at most `peer_max_message_bytes`.

Delivery is best effort, and that is all the protocol needs: a message queued
for a member that cannot be reached is dropped once its bounded queue is full,
a connection that breaks loses what was in flight, and the broadcast recovers
(a follower that sees a gap asks to be synced again). Per connection, order
is kept (TCP), so a leader's Sync, NewLeader and Proposals arrive in order.

Silence. A link must notice a peer that went away without a word (a cut
cable, a firewall, a paused process) in well under a second, and come back as
fast when the peer does, or a healed member waits out TCP's retransmission
backoff (seconds, doubling). So an idle link sends a heartbeat frame every
`peer_heartbeat_ms`; a reader that gets nothing for `peer_silence_ms` drops
the connection; a writer's socket gives up on data unacknowledged for as long
(TCP_USER_TIMEOUT), and a connect attempt has as long to succeed; reconnects
back off from 50 ms to at most 250 ms. A member's newer connection replaces
its older one, so a peer that reconnected never leaves a dead link holding a
place under `max_peer_connections`.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Protocol

import trio

from coord.errors import ProtocolError
from coord.framing import NEED_DATA, FrameDecoder, encode_frame
from coord.server.config import ConfigError, EnsembleSpec
from coord.server.runtime.peer_auth import HandshakeError, accept_handshake, connect_handshake
from coord.server.runtime.tls import peer_contexts
from coord.server.zab.codec import (
    FragmentBudget,
    PeerDecodeError,
    Reassembler,
    WireMessage,
    decode_message,
    encode_wire,
)

log = logging.getLogger(__name__)

PEER_QUEUE = 4096
"""Most frames queued for one peer; `queued_bytes` bounds them in bytes too."""
COALESCE_BYTES = 1024 * 1024
"""The writer joins queued frames into one socket write up to this size, so that
joining never doubles a large queue in memory."""
PEER_MAX_FRAME = 8 * 1024 * 1024
"""The default largest peer frame (EnsembleSpec.peer_max_frame_bytes)."""
PEER_MAX_MESSAGE = 1024 * 1024 * 1024
"""The default budget for fragments (EnsembleSpec.peer_max_message_bytes)."""
RETRY_MIN = 0.05
RETRY_MAX = 0.25
HEARTBEAT = encode_frame(None)
"""The frame an idle link sends: msgpack nil, which no peer message is (they are lists)."""

Deliver = Callable[[int, WireMessage], None]
"""How a transport hands a received message to its member: deliver(sender, message)."""
LinkLost = Callable[[int], None]
"""How a transport tells its member that a member's link ended: lost(member). Only a link
that closed says so (a process that died closes its sockets at once); a silent one is
the read deadline's to end, and a member's reconnect replacing its link is no loss."""


def _nobody(member: int) -> None:
    """The default LinkLost: nobody listens."""


class PeerTransport(Protocol):
    """What a member asks of its links: `PeerNetwork` (TCP), or in-memory links in tests."""

    async def serve(
        self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None: ...

    def send(self, peer_id: int, message: WireMessage) -> None: ...


class PeerTransportFactory(Protocol):
    """(my id, the ensemble, deliver, lost) -> the member's links; `PeerNetwork` is one."""

    def __call__(
        self, my_id: int, spec: EnsembleSpec, deliver: Deliver, lost: LinkLost = _nobody
    ) -> PeerTransport: ...


class PeerStream:
    """One connection's bytes -> validated messages: frames, fragments, then the codec (sans-IO)."""

    def __init__(self, spec: EnsembleSpec, budget: FragmentBudget) -> None:
        self._members = frozenset(m.id for m in spec.member)
        self._frames = FrameDecoder(max_frame_size=spec.peer_max_frame_bytes)
        self._fragments = Reassembler(budget)

    def receive_data(self, data: bytes | bytearray) -> None:
        self._frames.receive_data(data)

    def messages(self) -> list[WireMessage]:
        """Every whole message buffered; raises PeerDecodeError or ProtocolError on bad input."""
        out: list[WireMessage] = []
        while (frame := self._frames.next_frame()) is not NEED_DATA:
            if frame is None:
                continue  # a heartbeat
            value = self._fragments.add(frame)
            if value is not None:
                out.append(decode_message(value, self._members))
        return out

    def close(self) -> None:
        self._fragments.close()


class PeerNetwork:
    """Links to the other members of the ensemble."""

    def __init__(
        self,
        my_id: int,
        spec: EnsembleSpec,
        deliver: Deliver,
        lost: LinkLost = _nobody,
    ) -> None:
        self.my_id = my_id
        self.spec = spec
        self.deliver = deliver
        self.lost = lost
        self.secret = spec.peer_secret()
        self.budget = FragmentBudget(spec.peer_max_message_bytes)
        self._queues: dict[int, trio.MemorySendChannel[bytes]] = {}
        self._receivers: dict[int, trio.MemoryReceiveChannel[bytes]] = {}
        self.queued_bytes: dict[int, int] = {}
        """Bytes queued for each peer and not yet taken by its writer: at most
        `max_queued_bytes` (the largest message, a SNAP, plus one frame)."""
        self.max_queued_bytes = spec.peer_max_message_bytes + spec.peer_max_frame_bytes
        for member in spec.member:
            if member.id != my_id:
                send, receive = trio.open_memory_channel[bytes](PEER_QUEUE)
                self._queues[member.id] = send
                self._receivers[member.id] = receive
                self.queued_bytes[member.id] = 0
        self.dropped = 0
        self.refused = 0
        """Inbound connections closed at accept (not a member's address, or over the limit)."""
        self.rejected = 0
        """Inbound connections dropped for a failed handshake or a bad message."""
        self.inbound = 0
        self.port = 0
        self._allowed: frozenset[str] | None = None
        self._tls = None if spec.tls is None else peer_contexts(spec.tls)
        """(accepting, connecting) SSL contexts when the config has [tls]."""
        self._heartbeat = spec.peer_heartbeat_ms / 1000.0
        self._silence = spec.peer_silence_ms / 1000.0
        self._links_from: dict[int, trio.CancelScope] = {}
        """The reading task of each member's current inbound connection."""
        self.silent_links = 0
        """Connections dropped because the other side went silent."""

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        me = self.spec.get(self.my_id)
        if self.secret is None:
            log.warning(
                "member %d: no [ensemble] secret or secret_file is set: peer connections "
                "are not authenticated, and anyone who reaches the peer port can claim to be "
                "a member",
                self.my_id,
            )
        self._allowed = await _member_addresses(self.spec)
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
        if not self._queue_frames(peer_id, encode_wire(message, self.spec.peer_max_frame_bytes)):
            self.dropped += 1

    def _queue_frames(self, peer_id: int, frames: list[bytes]) -> bool:
        """Queue a message's frames for `peer_id`: all of them, or (the queue full) none."""
        queue = self._queues[peer_id]
        size = sum(len(frame) for frame in frames)
        stats = queue.statistics()
        if (
            stats.current_buffer_used + len(frames) > stats.max_buffer_size
            or self.queued_bytes[peer_id] + size > self.max_queued_bytes
        ):
            # All of it or none: half a fragmented message is garbage. ZAB's own
            # timeouts recover a peer that falls this far behind.
            return False
        self.queued_bytes[peer_id] += size
        for frame in frames:
            queue.send_nowait(frame)
        return True

    @property
    def _timeout(self) -> float:
        return self.spec.peer_handshake_timeout_ms / 1000.0

    async def _outbound(self, peer_id: int) -> None:
        member = self.spec.get(peer_id)
        source = _source_address(self.spec.get(self.my_id).host)
        delay = RETRY_MIN
        while True:
            stream: trio.SocketStream | None = None
            with trio.move_on_after(self._silence):
                try:
                    stream = await trio.open_tcp_stream(
                        member.host, member.peer_port, local_address=source
                    )
                except OSError:
                    pass
            if stream is None:
                await trio.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)
                continue
            delay = RETRY_MIN
            _give_up_unacknowledged_after(stream, self._silence)
            link: trio.abc.Stream = stream
            if self._tls is not None:
                link = trio.SSLStream(stream, self._tls[1], server_hostname=member.host)
            try:
                async with link:
                    with trio.fail_after(self._timeout):
                        await connect_handshake(link, self.my_id, peer_id, self.secret)
                    await self._write(peer_id, link)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.debug("link to member %d broke: %s", peer_id, exc)
            except (HandshakeError, trio.TooSlowError) as exc:
                log.warning("handshake with member %d failed: %s", peer_id, exc or "timed out")
                await trio.sleep(RETRY_MAX)
            await trio.sleep(RETRY_MIN)

    async def _write(self, peer_id: int, link: trio.abc.Stream) -> None:
        """Send what is queued for `peer_id`, joined into large writes; a heartbeat when idle.

        No timer per message (a busy link sends thousands a second): the writer only
        notes when it last sent, and a ticker beside it queues a heartbeat when a whole
        heartbeat interval went by without one."""
        receive = self._receivers[peer_id]
        last_sent = trio.current_time()

        async def ticker() -> None:
            while True:
                await trio.sleep_until(last_sent + self._heartbeat)
                if trio.current_time() >= last_sent + self._heartbeat:
                    self._queue_frames(peer_id, [HEARTBEAT])
                    await trio.sleep(self._heartbeat)

        failure: Exception | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            try:
                async for first in receive:
                    chunks, size = [first], len(first)
                    while size < COALESCE_BYTES:
                        try:
                            chunks.append(receive.receive_nowait())
                        except trio.WouldBlock:
                            break
                        size += len(chunks[-1])
                    self.queued_bytes[peer_id] -= size
                    await link.send_all(chunks[0] if len(chunks) == 1 else b"".join(chunks))
                    last_sent = trio.current_time()
            except Exception as exc:  # a broken link: the caller redials
                failure = exc
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure  # as itself, not inside the nursery's exception group

    async def _inbound(self, stream: trio.SocketStream) -> None:
        address = _peer_address(stream)
        if self.inbound >= self.spec.max_peer_connections or (
            self._allowed is not None and address not in self._allowed
        ):
            self.refused += 1
            log.warning(
                "refusing a peer connection from %s (%s)",
                address,
                "not a member's address"
                if self._allowed is not None and address not in self._allowed
                else f"{self.inbound} peer connections already",
            )
            await trio.aclose_forcefully(stream)
            return
        self.inbound += 1
        link: trio.abc.Stream = stream
        if self._tls is not None:
            link = trio.SSLStream(stream, self._tls[0], server_side=True)
        try:
            async with link:
                await self._serve_inbound(link, address)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            self.inbound -= 1

    async def _serve_inbound(self, stream: trio.abc.Stream, address: str) -> None:
        """Handshake, then deliver messages until the stream ends or fails a check.

        A failure is counted and logged before the stream is closed (by the caller).
        """
        reader = PeerStream(self.spec, self.budget)
        sender: int | None = None
        try:
            with trio.fail_after(self._timeout):
                sender, leftover = await accept_handshake(
                    stream, self.my_id, self.spec, self.secret
                )
            reader.receive_data(leftover)
            with trio.CancelScope() as replaced:
                previous = self._links_from.get(sender)
                if previous is not None:
                    previous.cancel()  # the member reconnected: its old link is dead
                self._links_from[sender] = replaced
                closed = False
                try:
                    closed = await self._read(sender, stream, reader)
                finally:
                    if self._links_from.get(sender) is replaced:
                        del self._links_from[sender]
            if closed and not replaced.cancelled_caught:
                self.lost(sender)
        except trio.TooSlowError:
            self.rejected += 1
            log.warning("dropping a peer connection from %s: no handshake in time", address)
        except trio.BrokenResourceError as exc:
            if sender is not None:
                raise  # an authenticated link that broke: nothing to report
            self.rejected += 1
            cause = exc.__cause__ or exc
            log.warning("dropping a peer connection from %s: handshake failed: %s", address, cause)
        except (HandshakeError, PeerDecodeError, ValueError, ConfigError, ProtocolError) as exc:
            self.rejected += 1
            who = f"member {sender}" if sender is not None else f"unauthenticated {address}"
            log.warning("dropping a peer connection from %s: %s", who, exc)
        finally:
            reader.close()

    async def _read(self, sender: int, stream: trio.abc.Stream, reader: PeerStream) -> bool:
        """Deliver `sender`'s messages until the stream ends or stays silent too long.
        True when a link that carried messages closed (a connection that never did is
        no evidence that the member is gone).

        A read only notes the time; a watchdog beside it ends the link once nothing has
        come for `peer_silence_ms` (no timer per read: a busy link reads thousands of
        times a second)."""
        carried = closed = silent = False
        failure: Exception | None = None
        heard = trio.current_time()

        async def watchdog(scope: trio.CancelScope) -> None:
            nonlocal silent
            while trio.current_time() < heard + self._silence:
                await trio.sleep_until(heard + self._silence)
            silent = True
            scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watchdog, nursery.cancel_scope)
            try:
                while True:
                    for message in reader.messages():
                        carried = True
                        self.deliver(sender, message)
                    data = await stream.receive_some(256 * 1024)
                    heard = trio.current_time()
                    if not data:
                        break
                    reader.receive_data(data)
                closed = True
            except trio.BrokenResourceError:
                closed = True  # reset: the other end is gone as surely as with a close
            except Exception as exc:  # a bad frame or message: the caller drops the link
                failure = exc
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure  # as itself, not inside the nursery's exception group
        if silent and not closed:
            self.silent_links += 1
            log.info("member %d was silent for %.2f s: dropping its link", sender, self._silence)
            return False
        return closed and carried


def _source_address(host: str) -> str | None:
    """Dial from our own member address when it is a specific IP, so that the other side
    sees the address the config names for us (its accept filter checks it), also on a
    host with several addresses; None (the kernel's choice) for a name or a wildcard."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return None if address.is_unspecified else str(address)


def _give_up_unacknowledged_after(stream: trio.SocketStream, seconds: float) -> None:
    """Have the kernel break the connection when sent data stays unacknowledged this long
    (Linux's TCP_USER_TIMEOUT), instead of retransmitting for minutes; elsewhere the
    heartbeats and the other side's read deadline still end a dead link."""
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if option is not None:
        try:
            stream.setsockopt(socket.IPPROTO_TCP, option, int(seconds * 1000))
        except OSError:
            pass


def _peer_address(stream: trio.SocketStream) -> str:
    try:
        host = stream.socket.getpeername()[0]
    except OSError:
        return "?"
    return _normal(host)


def _normal(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


async def _member_addresses(spec: EnsembleSpec) -> frozenset[str] | None:
    """The IP addresses the members' hosts resolve to; None (no filter) if one will not."""
    found: set[str] = set()
    for member in spec.member:
        try:
            infos = await trio.socket.getaddrinfo(member.host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            log.warning("cannot resolve member %d's host %r: %s", member.id, member.host, exc)
            return None
        found.update(_normal(str(info[4][0])) for info in infos)
    return frozenset(found)
