"""Session leases through the real runtime, over in-memory streams with a MockClock.

The point here is the lease logic, so time is virtual: the clock jumps as soon
as every task is blocked, and a 2-second expiry takes no real time.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from coord.errors import SessionExpiredError
from coord.framing import encode_frame
from coord.messages import PING_XID, CreateMode, EventType, OpCode, WatchedEvent
from coord.server.config import ServerConfig
from coord.server.core.output import Children, Connected, ConnectRefused, Notice, Reply
from coord.server.runtime import StandaloneServer
from tests.rawclient import RawClient


async def _start(nursery: trio.Nursery) -> StandaloneServer:
    server = StandaloneServer(ServerConfig(port=0, tick_ms=100, in_memory=True))
    await nursery.start(server.run)
    return server


async def _connect(
    server: StandaloneServer,
    nursery: trio.Nursery,
    *,
    timeout_ms: int = 1000,
    session_id: int = 0,
    password: bytes = b"",
) -> tuple[RawClient, Connected | ConnectRefused]:
    client_end, server_end = trio.testing.memory_stream_pair()
    nursery.start_soon(server.serve_connection, server_end, "memory")
    client = RawClient(client_end)
    response = await client.handshake(
        timeout_ms=timeout_ms, session_id=session_id, password=password
    )
    return client, response


async def _hello(server: StandaloneServer, nursery: trio.Nursery, **kwargs: Any) -> RawClient:
    """A client whose handshake made or resumed a session."""
    client, response = await _connect(server, nursery, **kwargs)
    assert isinstance(response, Connected), response
    return client


async def test_timeout_is_negotiated_within_the_bounds(nursery, autojump_clock):
    server = await _start(nursery)
    _, low = await _connect(server, nursery, timeout_ms=1)
    _, high = await _connect(server, nursery, timeout_ms=10**9)
    assert isinstance(low, Connected) and low.timeout_ms == 200  # 2 x tick
    assert isinstance(high, Connected) and high.timeout_ms == 40_000  # the default ceiling


async def test_silent_session_expires_and_its_ephemerals_go_in_one_step(nursery, autojump_clock):
    server = await _start(nursery)
    owner = await _hello(server, nursery, timeout_ms=1000)
    observer = await _hello(server, nursery, timeout_ms=2000)
    eph = int(CreateMode.EPHEMERAL)
    for name in ("a", "b", "c"):
        await owner.ok(OpCode.CREATE, {"path": f"/{name}", "mode": eph})
    children = await observer.result(OpCode.GET_CHILDREN, {"path": "/", "watch": True})
    assert children == Children(["a", "b", "c"], None)
    for name in ("a", "b", "c"):
        await observer.call(OpCode.EXISTS, {"path": f"/{name}", "watch": True})
    start = trio.current_time()
    # The owner goes silent. Its connection gets the expiry notice, then is closed.
    notice = await owner.receive()
    elapsed = trio.current_time() - start
    assert isinstance(notice, Notice) and isinstance(notice.error, SessionExpiredError)
    assert 1.0 <= elapsed <= 1.0 + 2 * 0.1, elapsed
    # All deletes carry one zxid: one txn removed them.
    events = [await observer.receive() for _ in range(4)]
    assert all(isinstance(e, WatchedEvent) for e in events)
    assert len({e.zxid for e in events}) == 1
    kinds = sorted((e.type, e.path) for e in events)
    assert kinds == [
        (EventType.DELETED, "/a"),
        (EventType.DELETED, "/b"),
        (EventType.DELETED, "/c"),
        (EventType.CHILD, "/"),
    ]
    assert (await observer.result(OpCode.GET_CHILDREN, {"path": "/"})).names == []


async def test_heartbeats_keep_a_session_alive(nursery, autojump_clock):
    server = await _start(nursery)
    owner = await _hello(server, nursery, timeout_ms=1000)
    await owner.ok(OpCode.CREATE, {"path": "/kept", "mode": int(CreateMode.EPHEMERAL)})
    for _ in range(30):  # 30 x 0.3 s = 9 s, far past the 1 s lease
        await trio.sleep(0.3)
        await owner.send([PING_XID, OpCode.PING, {}])
        pong = await owner.receive()
        assert isinstance(pong, Reply) and pong.xid == PING_XID
    assert await owner.result(OpCode.EXISTS, {"path": "/kept"}) is not None


async def test_session_resumes_on_a_new_connection_with_id_and_password(nursery, autojump_clock):
    server = await _start(nursery)
    first = await _hello(server, nursery, timeout_ms=1000)
    await first.ok(OpCode.CREATE, {"path": "/mine", "mode": int(CreateMode.EPHEMERAL)})
    await first.aclose()
    await trio.sleep(0.5)  # within the lease
    second, resumed = await _connect(
        server,
        nursery,
        timeout_ms=1000,
        session_id=first.session_id,
        password=first.password,
    )
    assert isinstance(resumed, Connected)
    assert resumed.session_id == first.session_id
    stat = await second.result(OpCode.EXISTS, {"path": "/mine"})
    assert stat is not None and stat.ephemeral_owner == first.session_id


async def test_resume_with_a_wrong_password_or_after_expiry_is_refused(nursery, autojump_clock):
    server = await _start(nursery)
    first = await _hello(server, nursery, timeout_ms=1000)
    await first.aclose()
    _, wrong = await _connect(server, nursery, session_id=first.session_id, password=b"\x00" * 16)
    assert isinstance(wrong, ConnectRefused)  # a refusal names no session
    assert isinstance(wrong.error, SessionExpiredError)
    await trio.sleep(2.0)  # past the lease
    _, late = await _connect(server, nursery, session_id=first.session_id, password=first.password)
    assert isinstance(late, ConnectRefused) and isinstance(late.error, SessionExpiredError)


async def test_ttl_node_vanishes_when_unchanged_for_its_ttl(nursery, autojump_clock):
    server = await _start(nursery)
    client = await _hello(server, nursery, timeout_ms=2000)
    mode = int(CreateMode.PERSISTENT_WITH_TTL)
    await client.ok(OpCode.CREATE, {"path": "/ttl", "mode": mode, "ttl_ms": 500})
    for _ in range(3):  # a change restarts the TTL
        await trio.sleep(0.3)
        await client.ok(OpCode.SET_DATA, {"path": "/ttl", "data": b"touch"})
    start = trio.current_time()
    assert await client.result(OpCode.EXISTS, {"path": "/ttl", "watch": True}) is not None
    frame = await client.receive()
    assert isinstance(frame, WatchedEvent), frame
    assert (frame.type, frame.path) == (EventType.DELETED, "/ttl")
    assert 0.4 <= trio.current_time() - start <= 0.5 + 0.2


async def test_unsent_frames_after_close_are_harmless(nursery, autojump_clock):
    server = await _start(nursery)
    client = await _hello(server, nursery, timeout_ms=2000)
    await client.send([1, OpCode.CLOSE_SESSION, {}])
    assert isinstance(await client.receive(), Reply)
    try:
        await client.send_raw(encode_frame([2, OpCode.GET_DATA, {"path": "/"}]))
    except trio.BrokenResourceError:
        pass
    other = await _hello(server, nursery)
    await other.ok(OpCode.EXISTS, {"path": "/"})
