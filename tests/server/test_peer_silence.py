"""Peer links notice silence: heartbeats on idle links, a read deadline, and a member's
newer connection replacing its older one. On real sockets, because the point is what
TCP does; each test waits on the event it checks (a close, a frame) under a deadline."""

from __future__ import annotations

import trio

from coord.framing import NEED_DATA, FrameDecoder, encode_frame
from coord.server.config import EnsembleSpec, MemberSpec
from coord.server.runtime.peer_auth import accept_handshake, connect_handshake
from coord.server.runtime.peers import HEARTBEAT, PeerNetwork
from coord.server.zab.codec import WireMessage, encode_message
from coord.server.zab.messages import Ping


def _spec(peer_two_port: int = 0, **settings: int) -> EnsembleSpec:
    members = [
        MemberSpec(id=1, client_port=0, peer_port=0),
        MemberSpec(id=2, client_port=0, peer_port=peer_two_port),
    ]
    return EnsembleSpec(member=members, **settings)  # type: ignore[arg-type]


async def _member_one(
    nursery: trio.Nursery, spec: EnsembleSpec
) -> tuple[PeerNetwork, list[tuple[int, WireMessage]], trio.Event]:
    got: list[tuple[int, WireMessage]] = []
    arrived = trio.Event()

    def deliver(sender: int, message: WireMessage) -> None:
        got.append((sender, message))
        arrived.set()

    network = PeerNetwork(1, spec, deliver, LOST.append)
    await nursery.start(network.serve)
    return network, got, arrived


LOST: list[int] = []
"""Members whose link member 1 saw close (the tests clear it first)."""


async def _as_member_two(network: PeerNetwork) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", network.port)
    await connect_handshake(stream, 2, 1, None)
    return stream


async def _until_closed(stream: trio.SocketStream, within: float) -> float:
    """Read until the other end closes, within `within` seconds; how long it took."""
    started = trio.current_time()
    with trio.fail_after(within):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
    return trio.current_time() - started


async def test_a_silent_link_is_dropped_at_the_read_deadline(nursery: trio.Nursery) -> None:
    network, _, _ = await _member_one(nursery, _spec(peer_heartbeat_ms=50, peer_silence_ms=300))
    silent = await _as_member_two(network)
    took = await _until_closed(silent, within=5)
    assert took >= 0.25 and network.silent_links == 1


async def test_heartbeats_are_not_messages_and_keep_the_link(nursery: trio.Nursery) -> None:
    network, got, arrived = await _member_one(
        nursery, _spec(peer_heartbeat_ms=50, peer_silence_ms=500)
    )
    link = await _as_member_two(network)
    for _ in range(30):  # 1.5 s of heartbeats: three read deadlines' worth
        await link.send_all(HEARTBEAT)
        await trio.sleep(0.05)
    await link.send_all(encode_frame(encode_message(Ping(1, 0))))
    with trio.fail_after(5):
        await arrived.wait()
    assert got == [(2, Ping(1, 0))] and network.silent_links == 0


async def test_a_members_new_connection_replaces_its_old_one(nursery: trio.Nursery) -> None:
    """Otherwise each reconnect of a peer leaves a dead link holding a connection slot."""
    network, got, arrived = await _member_one(nursery, _spec(peer_silence_ms=60_000))
    old = await _as_member_two(network)
    new = await _as_member_two(network)
    assert await _until_closed(old, within=5) < 5
    await new.send_all(encode_frame(encode_message(Ping(1, 0))))
    with trio.fail_after(5):
        await arrived.wait()
    assert got == [(2, Ping(1, 0))] and network.inbound == 1


async def test_an_idle_outbound_link_sends_heartbeats(nursery: trio.Nursery) -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen()
    spec = _spec(listener.getsockname()[1], peer_heartbeat_ms=50, peer_silence_ms=300)
    await _member_one(nursery, spec)  # member 1 dials member 2: us
    with trio.fail_after(5):
        sock, _ = await listener.accept()
        stream = trio.SocketStream(sock)
        sender, leftover = await accept_handshake(stream, 2, spec, None)
        decoder = FrameDecoder()
        decoder.receive_data(leftover)
        beats = 0
        while beats < 3:
            frame = decoder.next_frame()
            if frame is NEED_DATA:
                decoder.receive_data(await stream.receive_some(4096))
                continue
            assert frame is None  # nothing was sent: only heartbeats
            beats += 1
    assert sender == 1


async def test_a_link_that_closes_is_reported_lost_and_a_replaced_or_silent_one_is_not(
    nursery: trio.Nursery,
) -> None:
    LOST.clear()
    network, _, _ = await _member_one(nursery, _spec(peer_heartbeat_ms=50, peer_silence_ms=300))
    silent = await _as_member_two(network)
    await _until_closed(silent, within=5)  # dropped for silence: not a loss
    old = await _as_member_two(network)
    new = await _as_member_two(network)
    await _until_closed(old, within=5)  # replaced: not a loss
    assert LOST == []
    await new.send_all(encode_frame(encode_message(Ping(1, 0))))  # it carries a message...
    await new.aclose()  # ...and closes
    with trio.fail_after(5):
        while not LOST:
            await trio.sleep(0.01)
    assert LOST == [2]
