"""The client against the real standalone server, over real sockets.

The server fixture (tests/conftest.py) clamps session timeouts to 0.2-2 s, so
these tests run in real time but stay fast; waits are on events and streams,
never on sleeps that hope.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from coord.client import (
    BadVersionError,
    Client,
    ClientState,
    EventType,
    InvalidPathError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    SessionClosedError,
    Stat,
    WatchedEvent,
    WatchStream,
)
from coord.messages import OpCode

pytestmark = pytest.mark.usefixtures("coord_server")


@pytest.fixture
async def zk(coord_server) -> AsyncIterator[Client]:
    async with Client(coord_server.hosts, session_timeout=2, request_timeout=5) as client:
        yield client


@pytest.fixture
async def zk2(coord_server) -> AsyncIterator[Client]:
    async with Client(coord_server.hosts, session_timeout=2, request_timeout=5) as client:
        yield client


async def next_event(stream: WatchStream) -> WatchedEvent:
    with trio.fail_after(5):
        return await stream.next()


async def test_example_flow(zk: Client) -> None:
    assert zk.state is ClientState.CONNECTED
    assert zk.session_id != 0
    assert 0 < zk.session_timeout <= 2
    await zk.ensure_path("/app/jobs")
    path = await zk.create("/app/jobs/job-", b"payload", ephemeral=True, sequential=True)
    assert path == "/app/jobs/job-0000000000"
    data, stat = await zk.get(path)
    assert data == b"payload"
    assert stat.ephemeral_owner == zk.session_id
    assert stat.version == 0 and stat.data_length == 7
    stat2 = await zk.set(path, b"v2", version=stat.version)
    assert stat2.version == 1 and stat2.mzxid > stat.mzxid
    assert zk.last_zxid >= stat2.mzxid
    with pytest.raises(BadVersionError):
        await zk.set(path, b"v3", version=0)
    assert await zk.get_children("/app/jobs") == ["job-0000000000"]
    children, parent_stat = await zk.get_children("/app/jobs", include_data=True)
    assert children == ["job-0000000000"] and parent_stat.num_children == 1
    await zk.delete(path, version=1)
    assert await zk.exists(path) is None


async def test_errors(zk: Client) -> None:
    with pytest.raises(NoNodeError) as info:
        await zk.get("/missing")
    assert info.value.path == "/missing"
    await zk.create("/e", b"")
    with pytest.raises(NodeExistsError):
        await zk.create("/e", b"")
    await zk.create("/e/child", b"")
    with pytest.raises(NotEmptyError):
        await zk.delete("/e")
    with pytest.raises(BadVersionError):
        await zk.delete("/e/child", version=5)
    with pytest.raises(NoNodeError):
        await zk.create("/no/parent", b"")
    # Server-side validation, past the client's own check.
    with pytest.raises(InvalidPathError):
        await zk._request(OpCode.GET_DATA, {"path": "/bad/", "watch": False})
    assert zk.state is ClientState.CONNECTED


async def test_makepath_and_recursive_delete(zk: Client) -> None:
    created, stat = await zk.create("/r/a/b/c", b"leaf", makepath=True, include_data=True)
    assert created == "/r/a/b/c" and isinstance(stat, Stat)
    await zk.create("/r/a/x", b"")
    await zk.ensure_path("/r/a/b/c")  # already there: no error
    await zk.delete("/r", recursive=True)
    assert await zk.exists("/r") is None
    await zk.delete("/r", recursive=True)  # already gone: no error


async def test_pipelined_sequential_creates_keep_order(zk: Client) -> None:
    await zk.create("/seq", b"")
    results: dict[int, str] = {}

    async def make(i: int) -> None:
        results[i] = await zk.create("/seq/n-", str(i).encode(), sequential=True)

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(make, i)
    names = await zk.get_children("/seq")
    assert len(names) == 50 and sorted(results.values()) == [f"/seq/{n}" for n in names]


async def test_one_shot_watches_fire_with_zxids(zk: Client, zk2: Client) -> None:
    data_events, child_events, exist_events = WatchStream(), WatchStream(), WatchStream()
    await zk.create("/w", b"1")
    await zk.get("/w", watch=data_events)
    await zk.get_children("/w", watch=child_events)
    assert await zk.exists("/w/new", watch=exist_events) is None

    stat = await zk2.set("/w", b"2")
    event = await next_event(data_events)
    assert event == WatchedEvent(EventType.CHANGED, "/w", stat.mzxid)

    path, stat = await zk2.create("/w/new", b"", include_data=True)
    assert await next_event(exist_events) == WatchedEvent(EventType.CREATED, path, stat.czxid)
    event = await next_event(child_events)
    assert event.type is EventType.CHILD and event.path == "/w" and event.zxid == stat.czxid

    # Fired watches are gone; this change reaches nobody.
    await zk2.set("/w", b"3")
    await zk.sync()
    with pytest.raises(trio.WouldBlock):
        data_events.next_nowait()


async def test_event_comes_before_the_reply_that_shows_the_change(zk: Client, zk2: Client) -> None:
    await zk.create("/order", b"0")
    stream = WatchStream()
    await zk.get("/order", watch=stream)
    await zk2.set("/order", b"1")
    await zk.sync("/order")
    data, stat = await zk.get("/order")
    assert data == b"1"
    assert stream.next_nowait() == WatchedEvent(EventType.CHANGED, "/order", stat.mzxid)


async def test_persistent_recursive_watch(zk: Client, zk2: Client) -> None:
    await zk.create("/tree", b"")
    async with zk.watch("/tree", recursive=True) as events:
        _, s1 = await zk2.create("/tree/a", b"", include_data=True)
        _, s2 = await zk2.create("/tree/a/b", b"", include_data=True)
        s3 = await zk2.set("/tree/a/b", b"x")
        await zk2.delete("/tree/a/b")
        got = [await next_event(events) for _ in range(4)]
        assert [(e.type, e.path) for e in got] == [
            (EventType.CREATED, "/tree/a"),
            (EventType.CREATED, "/tree/a/b"),
            (EventType.CHANGED, "/tree/a/b"),
            (EventType.DELETED, "/tree/a/b"),
        ]
        assert [e.zxid for e in got[:3]] == [s1.czxid, s2.czxid, s3.mzxid]
        assert got[3].zxid > s3.mzxid
    assert len(zk._protocol.watches) == 0
    # The server dropped it too: a later change produces no event frame for us.
    before = zk._protocol.frames_received
    await zk2.create("/tree/c", b"")
    await zk.sync()
    assert zk._protocol.frames_received == before + 1  # just the sync reply


async def test_transaction(zk: Client) -> None:
    await zk.create("/tx", b"0")
    t = zk.transaction()
    t.check("/tx", 0)
    t.create("/tx/a", b"a")
    t.set_data("/tx", b"1")
    t.delete("/tx/a")
    results = await t.commit()
    assert results[0] is True and results[1] == "/tx/a"
    assert isinstance(results[2], Stat) and results[2].version == 1
    assert results[3] is True

    t = zk.transaction()
    t.create("/tx/b", b"")
    t.check("/tx", 0)  # stale: the multi fails, nothing applies
    results = await t.commit()
    assert isinstance(results[0], RolledBackError)
    assert isinstance(results[1], BadVersionError)
    assert await zk.exists("/tx/b") is None


async def test_close_deletes_ephemerals_at_once(coord_server, zk2: Client) -> None:
    async with Client(coord_server.hosts, session_timeout=2) as zk:
        await zk.create("/eph", b"", ephemeral=True)
        gone = WatchStream()
        assert await zk2.exists("/eph", watch=gone) is not None
    event = await next_event(gone)
    assert event.type is EventType.DELETED
    with pytest.raises(SessionClosedError):
        await zk.get("/eph")


async def test_reconnect_keeps_session_and_reports_missed_changes(coord_server, zk2) -> None:
    streams: list[trio.SocketStream] = []
    gate_open = True

    async def factory(host: str, port: int) -> trio.abc.Stream:
        if not gate_open:
            raise OSError("gate closed")
        stream = await trio.open_tcp_stream(host, port)
        streams.append(stream)
        return stream

    async with Client(coord_server.hosts, session_timeout=2, stream_factory=factory) as zk:
        await zk.create("/rc", b"0", ephemeral=True)
        changed = WatchStream()
        await zk.get("/rc", watch=changed)
        session = zk.session_id
        states = zk.states()

        gate_open = False
        await streams[-1].aclose()  # the connection dies under the client
        with trio.fail_after(5):
            assert await states.next() is ClientState.SUSPENDED
        stat = await zk2.set("/rc", b"1")  # a change the client cannot hear now
        gate_open = True
        with trio.fail_after(5):
            assert await states.next() is ClientState.CONNECTED
        assert zk.session_id == session and len(streams) >= 2
        # SET_WATCHES went first and the server reported the missed change.
        assert await next_event(changed) == WatchedEvent(EventType.CHANGED, "/rc", stat.mzxid)
        assert (await zk.get("/rc"))[0] == b"1"  # the ephemeral survived: same session


async def test_a_cancelled_block_still_closes_the_session_at_once(coord_server):
    """Leaving `async with Client` because of a cancellation still sends CLOSE_SESSION,
    so the ephemerals go at once and not one session timeout later."""
    async with Client(coord_server.hosts, session_timeout=2) as observer:
        with trio.CancelScope() as scope:
            async with Client(coord_server.hosts, session_timeout=2) as zk:
                await zk.create("/owned", b"", ephemeral=True)
                scope.cancel()
                await trio.sleep_forever()
        assert scope.cancelled_caught
        assert await observer.exists("/owned") is None


async def test_real_heartbeats_keep_an_idle_session_alive(coord_server):
    """The one real-time test of the heartbeat: an idle client outlives its lease many times.

    The point is the real thing (the client's ping timer against the server's lease
    clock over a socket), so this waits real time: 1.5 s with a 300 ms session.
    """
    async with Client(coord_server.hosts, session_timeout=0.3) as zk:
        assert zk.session_timeout == 0.3
        await zk.create("/heartbeat", b"", ephemeral=True)
        states = []
        zk.add_listener(states.append)
        await trio.sleep(1.5)  # five session timeouts with nothing to do but ping
        assert states == [] and zk.state is ClientState.CONNECTED
        assert await zk.exists("/heartbeat") is not None
