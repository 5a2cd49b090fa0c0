"""Session leases through the real runtime, over in-memory streams with a MockClock.

The point here is the lease logic, so time is virtual: the clock jumps as soon
as every task is blocked, and a 2-second expiry takes no real time.
"""

from __future__ import annotations

import trio
import trio.testing

from coord.errors import SessionExpiredError
from coord.framing import encode_frame
from coord.messages import NOTICE_XID, PROTOCOL_VERSION, WATCH_XID, CreateMode, EventType, OpCode
from coord.server.config import ServerConfig
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
) -> tuple[RawClient, dict]:
    client_end, server_end = trio.testing.memory_stream_pair()
    nursery.start_soon(server.serve_connection, server_end, "memory")
    client = RawClient(client_end)  # type: ignore[arg-type]
    await client.send(
        {
            "protocol_version": PROTOCOL_VERSION,
            "timeout_ms": timeout_ms,
            "session_id": session_id,
            "password": password,
        }
    )
    response = await client.receive()
    client.session_id = response["session_id"]
    client.password = response["password"]
    client.timeout_ms = response["timeout_ms"]
    return client, response


async def test_timeout_is_negotiated_within_tick_bounds(nursery, autojump_clock):
    server = await _start(nursery)
    _, low = await _connect(server, nursery, timeout_ms=1)
    _, high = await _connect(server, nursery, timeout_ms=10**9)
    assert low["timeout_ms"] == 200  # 2 x tick
    assert high["timeout_ms"] == 2000  # 20 x tick


async def test_silent_session_expires_and_its_ephemerals_go_in_one_step(nursery, autojump_clock):
    server = await _start(nursery)
    owner, _ = await _connect(server, nursery, timeout_ms=1000)
    observer, _ = await _connect(server, nursery, timeout_ms=2000)
    eph = int(CreateMode.EPHEMERAL)
    for name in ("a", "b", "c"):
        assert (await owner.call(OpCode.CREATE, {"path": f"/{name}", "mode": eph}))[2] == 0
    reply = await observer.call(OpCode.GET_CHILDREN, {"path": "/", "watch": True})
    assert reply[3][0] == ["a", "b", "c"]
    for name in ("a", "b", "c"):
        await observer.call(OpCode.EXISTS, {"path": f"/{name}", "watch": True})
    start = trio.current_time()
    # The owner goes silent. Its connection gets the expiry notice, then is closed.
    notice = await owner.receive()
    elapsed = trio.current_time() - start
    assert notice[0] == NOTICE_XID and notice[2] == SessionExpiredError.code
    assert 1.0 <= elapsed <= 1.0 + 2 * 0.1, elapsed
    # All deletes carry one zxid: one txn removed them.
    events = [await observer.receive() for _ in range(4)]
    assert all(e[0] == WATCH_XID for e in events)
    assert len({e[1] for e in events}) == 1
    kinds = sorted((e[3]["type"], e[3]["path"]) for e in events)
    assert kinds == [
        (EventType.DELETED, "/a"),
        (EventType.DELETED, "/b"),
        (EventType.DELETED, "/c"),
        (EventType.CHILD, "/"),
    ]
    assert (await observer.call(OpCode.GET_CHILDREN, {"path": "/"}))[3][0] == []


async def test_heartbeats_keep_a_session_alive(nursery, autojump_clock):
    server = await _start(nursery)
    owner, _ = await _connect(server, nursery, timeout_ms=1000)
    await owner.call(OpCode.CREATE, {"path": "/kept", "mode": int(CreateMode.EPHEMERAL)})
    for _ in range(30):  # 30 x 0.3 s = 9 s, far past the 1 s lease
        await trio.sleep(0.3)
        await owner.send([-2, OpCode.PING, {}])
        assert (await owner.receive())[0] == -2
    assert (await owner.call(OpCode.EXISTS, {"path": "/kept"}))[3] is not None


async def test_session_resumes_on_a_new_connection_with_id_and_password(nursery, autojump_clock):
    server = await _start(nursery)
    first, response = await _connect(server, nursery, timeout_ms=1000)
    await first.call(OpCode.CREATE, {"path": "/mine", "mode": int(CreateMode.EPHEMERAL)})
    await first.aclose()
    await trio.sleep(0.5)  # within the lease
    second, resumed = await _connect(
        server,
        nursery,
        timeout_ms=1000,
        session_id=response["session_id"],
        password=response["password"],
    )
    assert resumed["session_id"] == response["session_id"]
    assert resumed.get("error", 0) == 0
    stat = (await second.call(OpCode.EXISTS, {"path": "/mine"}))[3]
    assert stat is not None and stat[7] == response["session_id"]


async def test_resume_with_a_wrong_password_or_after_expiry_is_refused(nursery, autojump_clock):
    server = await _start(nursery)
    first, response = await _connect(server, nursery, timeout_ms=1000)
    await first.aclose()
    _, wrong = await _connect(
        server, nursery, session_id=response["session_id"], password=b"\x00" * 16
    )
    assert wrong["error"] == SessionExpiredError.code and wrong["session_id"] == 0
    await trio.sleep(2.0)  # past the lease
    _, late = await _connect(
        server, nursery, session_id=response["session_id"], password=response["password"]
    )
    assert late["error"] == SessionExpiredError.code


async def test_ttl_node_vanishes_when_unchanged_for_its_ttl(nursery, autojump_clock):
    server = await _start(nursery)
    client, _ = await _connect(server, nursery, timeout_ms=2000)
    mode = int(CreateMode.PERSISTENT_WITH_TTL)
    await client.call(OpCode.CREATE, {"path": "/ttl", "mode": mode, "ttl_ms": 500})
    for _ in range(3):  # a change restarts the TTL
        await trio.sleep(0.3)
        await client.call(OpCode.SET_DATA, {"path": "/ttl", "data": b"touch"})
    start = trio.current_time()
    assert (await client.call(OpCode.EXISTS, {"path": "/ttl", "watch": True}))[3] is not None
    while True:
        frame = await client.receive()
        if frame[0] == WATCH_XID:
            break
        if frame[0] == -2:
            continue
    assert frame[3] == {"type": int(EventType.DELETED), "path": "/ttl"}
    assert 0.4 <= trio.current_time() - start <= 0.5 + 0.2


async def test_unsent_frames_after_close_are_harmless(nursery, autojump_clock):
    server = await _start(nursery)
    client, _ = await _connect(server, nursery, timeout_ms=2000)
    await client.send([1, OpCode.CLOSE_SESSION, {}])
    assert (await client.receive())[2] == 0
    try:
        await client.send_raw(encode_frame([2, OpCode.GET_DATA, {"path": "/"}]))
    except trio.BrokenResourceError:
        pass
    other, _ = await _connect(server, nursery)
    assert (await other.call(OpCode.EXISTS, {"path": "/"}))[2] == 0
