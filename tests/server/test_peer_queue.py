"""What a member queues for a peer is bounded in bytes, not only in frames.

A follower that stops reading (or a link that is down) while the leader sends
it SNAPs would otherwise make the leader hold every one of them: 4096 frames
of 8 MiB is 32 GiB. Over the bound a message is dropped whole, and ZAB's own
timeouts bring the peer back. Real sockets on 127.0.0.1 for the writer half.
"""

from __future__ import annotations

import functools

import trio

from coord.framing import FrameDecoder
from coord.server.config import EnsembleSpec, MemberSpec
from coord.server.runtime.peers import PeerNetwork
from coord.server.zab.messages import Sync, SyncMode

MIB = 1024 * 1024


def _snap(size: int) -> Sync:
    return Sync(7, SyncMode.SNAP, 0, 7 << 32 | 3, (), 7 << 32 | 3, b"s" * size)


def _network(peer_port: int) -> PeerNetwork:
    members = [
        MemberSpec(id=1, client_port=0, peer_port=0),
        MemberSpec(id=2, client_port=0, peer_port=peer_port),
        MemberSpec(id=3, client_port=0, peer_port=0),
    ]
    spec = EnsembleSpec(
        member=members, peer_max_frame_bytes=256 * 1024, peer_max_message_bytes=2 * MIB
    )
    return PeerNetwork(1, spec, lambda sender, message: None)


def test_messages_past_the_byte_bound_are_dropped_whole() -> None:
    network = _network(peer_port=1)  # nothing listens there: nothing drains the queue
    network.send(2, _snap(MIB))
    network.send(2, _snap(MIB))
    assert network.dropped == 0
    network.send(2, _snap(MIB))  # three would pass 2 MiB + one frame
    assert network.dropped == 1
    assert MIB * 2 < network.queued_bytes[2] <= network.max_queued_bytes
    network.send(3, _snap(MIB))  # every peer has its own bound
    assert network.dropped == 1


async def test_the_writer_drains_the_count_as_it_sends() -> None:
    received = bytearray()
    done = trio.Event()

    async def reader(stream: trio.SocketStream) -> None:
        while len(received) < 2 * MIB:
            data = await stream.receive_some(1 << 16)
            if not data:
                break
            received.extend(data)
        done.set()

    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, reader, 0, host="127.0.0.1")
        (listener,) = await nursery.start(serve)
        port = listener.socket.getsockname()[1]
        network = _network(peer_port=port)
        network.send(2, _snap(MIB))
        network.send(2, _snap(MIB))
        await nursery.start(network.serve)  # its writer to member 2 connects and sends
        with trio.fail_after(10):
            await done.wait()
        assert network.queued_bytes[2] == 0 and network.dropped == 0
        decoder = FrameDecoder(max_frame_size=1 << 20)
        decoder.receive_data(bytes(received))
        assert decoder.next_frame() == {"hello": 1}  # no secret: the plain hello first
        nursery.cancel_scope.cancel()
