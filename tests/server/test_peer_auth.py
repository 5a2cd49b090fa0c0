"""Peer connections on real sockets: the handshake, forged hellos, the port's limits.

One member's PeerNetwork listens on 127.0.0.1 (a free port); the test plays
the other end by hand. Each test waits on what it checks (the connection
closing, a message delivered), under a deadline.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import trio

from coord.framing import encode_frame, encode_frames
from coord.server.config import EnsembleSpec, MemberSpec
from coord.server.runtime.peer_auth import NONCE_BYTES, connect_handshake, proof
from coord.server.runtime.peers import PeerNetwork
from coord.server.zab.codec import WireMessage, encode_message
from coord.server.zab.messages import LeaderInfo, Ping

SECRET = "correct horse battery staple"


class Inbox:
    def __init__(self) -> None:
        self.got: list[tuple[int, WireMessage]] = []
        self.event = trio.Event()

    def deliver(self, sender: int, message: WireMessage) -> None:
        self.got.append((sender, message))
        self.event.set()


def _spec(secret: str | None, **kwargs: object) -> EnsembleSpec:
    members = [MemberSpec(id=i, client_port=0, peer_port=0) for i in (1, 2, 3)]
    return EnsembleSpec(member=members, secret=secret, **kwargs)  # type: ignore[arg-type]


async def _start(
    nursery: trio.Nursery, secret: str | None, **kwargs: object
) -> tuple[PeerNetwork, Inbox]:
    inbox = Inbox()
    network = PeerNetwork(1, _spec(secret, **kwargs), inbox.deliver)
    await nursery.start(network.serve)
    return network, inbox


async def _closed(stream: trio.SocketStream) -> bool:
    """Read until the other end closes (True), within 5 s."""
    with trio.fail_after(5):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
    return True


@pytest.fixture
async def secured(nursery: trio.Nursery) -> AsyncIterator[tuple[PeerNetwork, Inbox]]:
    yield await _start(nursery, SECRET)


async def test_the_right_secret_opens_the_link(secured):
    network, inbox = secured
    stream = await trio.open_tcp_stream("127.0.0.1", network.port)
    await connect_handshake(stream, 2, 1, SECRET.encode())
    await stream.send_all(encode_frame(encode_message(Ping(1, 0))))
    with trio.fail_after(5):
        await inbox.event.wait()
    assert inbox.got == [(2, Ping(1, 0))]
    await stream.aclose()


async def test_a_wrong_secret_is_closed_before_any_message_is_read(secured):
    network, inbox = secured
    stream = await trio.open_tcp_stream("127.0.0.1", network.port)
    nonce = b"n" * NONCE_BYTES
    # The proof and a ZAB message in one write: the message must not be read.
    await stream.send_all(encode_frame({"hello": 2, "nonce": nonce}))
    reply = await stream.receive_some(4096)
    assert reply, "the acceptor answers the hello with its challenge"
    forged = proof(b"a guess at the secret!", "connector", nonce, b"?" * 32, 2, 1)
    await stream.send_all(encode_frames([{"proof": forged}, encode_message(LeaderInfo(2**32 + 5))]))
    assert await _closed(stream)
    assert inbox.got == [] and network.rejected == 1


@pytest.mark.parametrize(
    "hello",
    [
        {"hello": 2},  # the old hello: no longer enough to be member 2
        {"hello": 2, "nonce": b"short"},
        {"hello": 9, "nonce": b"n" * NONCE_BYTES},  # a stranger
        {"hello": 1, "nonce": b"n" * NONCE_BYTES},  # ourselves
        [3, 5],  # a ZAB message before any hello
    ],
)
async def test_a_forged_hello_delivers_nothing(secured, hello):
    network, inbox = secured
    stream = await trio.open_tcp_stream("127.0.0.1", network.port)
    await stream.send_all(
        encode_frames([hello, encode_message(LeaderInfo(999999)), encode_message(Ping(1, 0))])
    )
    assert await _closed(stream)
    assert inbox.got == [] and network.rejected == 1


async def test_a_replayed_proof_does_not_open_another_link(secured):
    """A proof seen on one connection is useless on the next: the acceptor's nonce changed."""
    network, inbox = secured
    first = await trio.open_tcp_stream("127.0.0.1", network.port)
    await connect_handshake(first, 2, 1, SECRET.encode())
    nonce = b"n" * NONCE_BYTES
    second = await trio.open_tcp_stream("127.0.0.1", network.port)
    await second.send_all(encode_frame({"hello": 2, "nonce": nonce}))
    await second.receive_some(4096)
    stale = proof(SECRET.encode(), "connector", nonce, b"n" * NONCE_BYTES, 2, 1)
    await second.send_all(encode_frames([{"proof": stale}, encode_message(Ping(1, 0))]))
    assert await _closed(second)
    assert inbox.got == []
    await first.aclose()


async def test_a_silent_connection_is_closed_at_the_handshake_deadline(nursery):
    network, _ = await _start(nursery, SECRET, peer_handshake_timeout_ms=200)
    stream = await trio.open_tcp_stream("127.0.0.1", network.port)
    assert await _closed(stream)
    assert network.rejected == 1


async def test_connections_over_the_limit_are_closed_at_accept(nursery):
    network, _ = await _start(nursery, SECRET, peer_max_connections=2)
    held = [await trio.open_tcp_stream("127.0.0.1", network.port) for _ in range(2)]
    with trio.fail_after(5):
        while network.inbound < 2:
            await trio.sleep(0.01)
    extra = await trio.open_tcp_stream("127.0.0.1", network.port)
    assert await _closed(extra)
    assert network.refused == 1
    for stream in held:
        await stream.aclose()


async def test_a_frame_over_the_limit_drops_the_link_before_its_body(nursery):
    """Attack B: a declared 300 MB frame is refused at its header, nothing buffered."""
    network, inbox = await _start(nursery, None)
    stream = await trio.open_tcp_stream("127.0.0.1", network.port)
    await stream.send_all(encode_frame({"hello": 2}) + (300_000_000).to_bytes(4, "big"))
    assert await _closed(stream)
    assert inbox.got == [] and network.rejected == 1


async def test_without_a_secret_the_old_hello_works_and_a_warning_is_logged(nursery, caplog):
    caplog.set_level(logging.WARNING)
    network, inbox = await _start(nursery, None)
    assert any("not authenticated" in r.getMessage() for r in caplog.records)
    stream = await trio.open_tcp_stream("127.0.0.1", network.port)
    await stream.send_all(encode_frames([{"hello": 3}, encode_message(Ping(2, 0))]))
    with trio.fail_after(5):
        await inbox.event.wait()
    assert inbox.got == [(3, Ping(2, 0))]
    await stream.aclose()


def test_the_secret_comes_from_a_file_and_is_never_shown(tmp_path):
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    members = [MemberSpec(id=1, client_port=0, peer_port=0)]
    spec = EnsembleSpec(member=members, secret_file=path)
    assert spec.peer_secret() == SECRET.encode()
    assert SECRET not in repr(_spec(SECRET))
    with pytest.raises(ValueError, match="not both"):
        EnsembleSpec(member=members, secret=SECRET, secret_file=path)
    with pytest.raises(ValueError, match="16"):
        EnsembleSpec(member=members, secret="short")
