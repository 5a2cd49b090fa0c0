"""Restarting a server on its data directory brings back exactly what was acknowledged."""

from __future__ import annotations

import trio

from coord.messages import WATCH_XID, CreateMode, EventType, OpCode
from coord.server.config import ServerConfig
from coord.server.runtime import StandaloneServer
from tests.rawclient import RawClient


async def _run(
    nursery: trio.Nursery, data_dir, **settings
) -> tuple[StandaloneServer, trio.CancelScope]:
    server = StandaloneServer(
        ServerConfig(port=0, tick_ms=100, data_dir=data_dir, fsync=False, **settings)
    )
    scope = trio.CancelScope()

    async def serve(task_status=trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await server.serve(task_status=task_status)

    await nursery.start(serve)
    return server, scope


async def test_restart_brings_back_the_tree(nursery, tmp_path):
    server, scope = await _run(nursery, tmp_path)
    client, _ = await RawClient.connect(server.port)
    await client.call(OpCode.CREATE, {"path": "/a", "data": b"1"})
    await client.call(OpCode.SET_DATA, {"path": "/a", "data": b"2"})
    mode = int(CreateMode.PERSISTENT_SEQUENTIAL)
    for _ in range(5):
        await client.call(OpCode.CREATE, {"path": "/a/s-", "data": b"", "mode": mode})
    await client.call(OpCode.DELETE, {"path": "/a/s-0000000002"})
    before = await client.call(OpCode.GET_DATA, {"path": "/a"})
    await client.aclose()
    scope.cancel()

    server, scope = await _run(nursery, tmp_path)
    client, _ = await RawClient.connect(server.port)
    after = await client.call(OpCode.GET_DATA, {"path": "/a"})
    assert after[3] == before[3]  # same data and the same stat, field by field
    children = (await client.call(OpCode.GET_CHILDREN, {"path": "/a"}))[3][0]
    assert children == [f"s-{i:010d}" for i in (0, 1, 3, 4)]
    # The sequence counter goes on where it was, and zxids keep growing.
    created = await client.call(OpCode.CREATE, {"path": "/a/s-", "data": b"", "mode": mode})
    assert created[3][0] == "/a/s-0000000006"
    assert created[1] > before[1]
    await client.aclose()
    scope.cancel()


async def test_snapshots_during_writes_and_restart_from_snapshot_plus_log(nursery, tmp_path):
    server, scope = await _run(nursery, tmp_path, snapshot_every=50)
    client, _ = await RawClient.connect(server.port)
    await client.call(OpCode.CREATE, {"path": "/s", "data": b""})
    xids = [
        await client.submit(OpCode.CREATE, {"path": f"/s/n{i}", "data": b"%d" % i})
        for i in range(400)
    ]
    for xid in xids:
        assert (await client.reply(xid))[2] == 0
    await client.aclose()
    await server.wait_snapshot_idle()
    assert server.stats.snapshots >= 2
    snapshots = sorted(tmp_path.glob("snapshot.*"))
    assert 1 <= len(snapshots) <= 3  # older ones were purged
    assert not list(tmp_path.glob("*.tmp"))
    scope.cancel()

    server, scope = await _run(nursery, tmp_path)
    assert server.recovered is not None and server.recovered.snapshot_zxid > 0
    client, _ = await RawClient.connect(server.port)
    children = (await client.call(OpCode.GET_CHILDREN, {"path": "/s"}))[3][0]
    assert sorted(children) == sorted(f"n{i}" for i in range(400))
    await client.aclose()
    scope.cancel()


async def test_sessions_across_a_restart(nursery, tmp_path):
    """A session whose client comes back keeps its ephemerals; an abandoned one loses them."""
    server, scope = await _run(nursery, tmp_path)
    keeper, keeper_hello = await RawClient.connect(server.port, timeout_ms=2000)
    leaver, _ = await RawClient.connect(server.port, timeout_ms=200)
    eph = int(CreateMode.EPHEMERAL)
    await keeper.call(OpCode.CREATE, {"path": "/kept", "data": b"", "mode": eph})
    await leaver.call(OpCode.CREATE, {"path": "/gone", "data": b"", "mode": eph})
    await keeper.aclose()
    await leaver.aclose()
    scope.cancel()

    server, scope = await _run(nursery, tmp_path)
    keeper, resumed = await RawClient.connect(
        server.port,
        timeout_ms=2000,
        session_id=keeper_hello["session_id"],
        password=keeper_hello["password"],
    )
    assert resumed.get("error", 0) == 0 and resumed["session_id"] == keeper_hello["session_id"]
    exists = await keeper.call(OpCode.EXISTS, {"path": "/gone", "watch": True})
    if exists[3] is not None:  # the abandoned session expires one timeout after the restart
        event = await keeper.receive()
        assert event[0] == WATCH_XID
        assert event[3] == {"type": int(EventType.DELETED), "path": "/gone"}
    assert (await keeper.call(OpCode.EXISTS, {"path": "/gone"}))[3] is None
    kept = (await keeper.call(OpCode.EXISTS, {"path": "/kept"}))[3]
    assert kept is not None and kept[7] == keeper_hello["session_id"]
    await keeper.aclose()
    scope.cancel()


async def test_a_write_resent_after_a_restart_is_not_applied_twice(nursery, tmp_path):
    """The table of write results is rebuilt from the replayed log."""
    server, scope = await _run(nursery, tmp_path)
    client, hello = await RawClient.connect(server.port, timeout_ms=2000)
    mode = int(CreateMode.PERSISTENT_SEQUENTIAL)
    await client.send([7, OpCode.CREATE, {"path": "/job-", "data": b"", "mode": mode}])
    first = await client.reply(7)
    assert first[2] == 0
    await client.aclose()
    scope.cancel()

    server, scope = await _run(nursery, tmp_path)
    again, resumed = await RawClient.connect(
        server.port,
        timeout_ms=2000,
        session_id=hello["session_id"],
        password=hello["password"],
    )
    assert resumed.get("error", 0) == 0
    # The reply was lost, say: the client resends with the same xid.
    await again.send([7, OpCode.CREATE, {"path": "/job-", "data": b"", "mode": mode}])
    retry = await again.reply(7)
    assert retry[2] == 0 and retry[3][0] == first[3][0] == "/job-0000000000"
    children = (await again.call(OpCode.GET_CHILDREN, {"path": "/"}))[3][0]
    assert children == ["job-0000000000"]
    await again.aclose()
    scope.cancel()
