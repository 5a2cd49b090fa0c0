"""The client listener both client ports share, driven through its public interface.

A toy wire stands in for a port (the real ports have their own tests over real
sockets: test_limits, test_tls, zk/test_port); streams are in memory and time
is virtual, so a deadline of seconds takes none.
"""

from __future__ import annotations

import ast
from pathlib import Path

import trio
import trio.testing

from coord.framing import NEED_DATA, FrameDecoder
from coord.messages import OpCode, Stat
from coord.server.config import ServerConfig
from coord.server.core.output import NodeData, Reply
from coord.server.native.codec import output_from_wire
from coord.server.runtime.client_listener import ClientListener
from coord.server.runtime.links import NATIVE_CODEC, ClientLink, FrameCodec
from coord.server.runtime.stats import ServerStats

MIB = 1024 * 1024
RUNTIME = Path(__file__).resolve().parents[2] / "server" / "runtime"


class _ToyWire:
    """b"hello" shakes hands (answered b"hi"), b"bye" gets b"bye!" and a close; the rest echoes."""

    def __init__(self) -> None:
        self.links: list[ClientLink] = []

    @property
    def codec(self) -> FrameCodec:
        return NATIVE_CODEC

    async def serve(self, link: ClientLink) -> None:
        self.links.append(link)
        while data := await link.receive():
            if data == b"hello":
                link.handshaken = True
                link.send(b"hi")
            elif data == b"bye":
                link.send(b"bye!")
                await link.finish()
                return
            else:
                link.send(bytes(data))


class _Rig:
    def __init__(self, nursery: trio.Nursery, **settings: object) -> None:
        config = ServerConfig(port=0, in_memory=True, **settings)  # type: ignore[arg-type]
        self.nursery = nursery
        self.stats = ServerStats()
        self.closed: list[int] = []
        self.listener = ClientListener(
            config,
            self.stats,
            now_ms=lambda: int(trio.current_time() * 1000),
            on_closed=self.closed.append,
        )
        self.wire = _ToyWire()

    async def connect(
        self, host: str, *, hello: bool = True, wire: _ToyWire | None = None
    ) -> trio.testing.MemoryStream:
        ours, theirs = trio.testing.memory_stream_pair()
        self.nursery.start_soon(self.listener.serve_connection, theirs, host, wire or self.wire)
        if hello:
            await ours.send_all(b"hello")
            assert await ours.receive_some() == b"hi"
        await trio.testing.wait_all_tasks_blocked()
        return ours  # type: ignore[return-value]


_STAT = Stat(1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1)


def _xid_and_result(decoder: FrameDecoder) -> tuple[int, object]:
    """The next frame read back as the typed reply the listener was given."""
    frame = decoder.next_frame()
    assert frame is not NEED_DATA
    reply = output_from_wire(frame, OpCode.SYNC)
    assert isinstance(reply, Reply), reply
    return reply.xid, reply.result


async def _rest(stream: trio.abc.Stream) -> bytes:
    """Everything the server sends until it closes (which must be within a virtual minute)."""
    got = b""
    with trio.fail_after(60):
        while data := await stream.receive_some():
            got += data
    return got


async def test_connections_are_limited_per_address_and_each_close_is_told_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = _Rig(nursery, max_client_connections=2)
    first = await rig.connect("10.0.0.1")
    second = await rig.connect("10.0.0.1")
    other = await rig.connect("10.0.0.2")
    refused = await rig.connect("10.0.0.1", hello=False)
    assert await _rest(refused) == b""
    assert rig.stats.connections_refused == 1 and rig.stats.connections_accepted == 3
    assert rig.stats.by_address == {"10.0.0.1": 2, "10.0.0.2": 1}
    assert sorted(rig.listener.links) == [1, 2, 3]
    for stream in (first, second, other):
        await stream.aclose()
    await trio.testing.wait_all_tasks_blocked()
    assert sorted(rig.closed) == [1, 2, 3]
    assert rig.listener.links == {} and not rig.stats.by_address


async def test_the_limit_counts_the_connections_of_every_port_together(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """One address may not get twice the limit by using both client ports."""
    rig = _Rig(nursery, max_client_connections=2)
    other_port = _ToyWire()
    await rig.connect("10.0.0.1")
    await rig.connect("10.0.0.1", wire=other_port)
    refused = await rig.connect("10.0.0.1", hello=False, wire=other_port)
    assert await _rest(refused) == b""
    assert rig.stats.connections_refused == 1 and len(other_port.links) == 1


async def test_a_connection_without_a_handshake_is_closed_at_the_deadline(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = _Rig(nursery, handshake_timeout_ms=3000)
    shaken = await rig.connect("10.0.0.1")
    started = trio.current_time()
    silent = await rig.connect("10.0.0.1", hello=False)
    assert await _rest(silent) == b""
    assert trio.current_time() - started >= 3.0
    assert rig.stats.handshake_timeouts == 1 and rig.closed == [2]
    await shaken.send_all(b"still here")
    assert await shaken.receive_some() == b"still here"


async def test_dispatch_routes_each_connections_frames_in_order_then_closes(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = _Rig(nursery)
    one = await rig.connect("10.0.0.1")
    two = await rig.connect("10.0.0.2")
    frames = [(1, Reply(1, 10, "a")), (2, Reply(2, 10, "b")), (1, Reply(3, 11, "c"))]
    rig.listener.dispatch([*frames, (99, Reply(4, 11, "gone"))], [2])
    decoder = FrameDecoder()
    decoder.receive_data(await one.receive_some())
    assert [_xid_and_result(decoder), _xid_and_result(decoder)] == [(1, "a"), (3, "c")]
    assert decoder.next_frame() is NEED_DATA
    decoder.receive_data(await _rest(two))
    assert _xid_and_result(decoder) == (2, "b") and decoder.next_frame() is NEED_DATA
    await trio.testing.wait_all_tasks_blocked()
    assert rig.closed == [2] and sorted(rig.listener.links) == [1]


async def test_a_batch_over_the_byte_bound_cuts_off_that_connection_only(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = _Rig(nursery, max_outbound_bytes=2 * MIB)
    slow = await rig.connect("10.0.0.1")
    fine = await rig.connect("10.0.0.2")
    big = Reply(1, 10, NodeData(b"x" * (3 * MIB), _STAT))
    rig.listener.dispatch([(1, big), (2, Reply(2, 10, "small"))], [])
    assert await _rest(slow) == b""
    assert rig.stats.cut_off == 1 and rig.closed == [1]
    decoder = FrameDecoder()
    decoder.receive_data(await fine.receive_some())
    assert _xid_and_result(decoder) == (2, "small")


async def test_a_send_over_the_byte_bound_cuts_the_connection_off(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = _Rig(nursery, max_outbound_bytes=2 * MIB)
    client = await rig.connect("10.0.0.1")
    (link,) = rig.wire.links
    link.send(b"x" * (2 * MIB + 1))
    assert link.cut_off and rig.stats.cut_off == 1
    assert await _rest(client) == b""
    await trio.testing.wait_all_tasks_blocked()
    assert rig.closed == [1]


async def test_finish_sends_what_is_queued_then_closes(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = _Rig(nursery)
    client = await rig.connect("10.0.0.1")
    (link,) = rig.wire.links
    assert link.identity.ip == "10.0.0.1" and link.identity.x509 == ""
    await client.send_all(b"bye")
    assert await _rest(client) == b"bye!"
    await trio.testing.wait_all_tasks_blocked()
    assert rig.closed == [1] and rig.stats.cut_off == 0


def _runtime_imports() -> dict[str, set[str]]:
    """runtime module -> the runtime modules it imports (TYPE_CHECKING ones too)."""
    graph: dict[str, set[str]] = {}
    for path in RUNTIME.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[path.stem] = {
            name.removeprefix("coord.server.runtime.")
            for name in found
            if name.startswith("coord.server.runtime.")
        }
    return graph


def test_the_client_ports_import_neither_each_other_nor_the_server() -> None:
    graph = _runtime_imports()
    for port in ("native_port", "zk_port", "client_listener", "links"):
        assert not graph[port] & {"standalone", "member", "native_port", "zk_port"}, port


def test_the_runtime_has_no_import_cycle() -> None:
    graph = _runtime_imports()
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for imported in graph.get(module, set()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
