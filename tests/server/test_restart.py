"""Restarting a server on its data directory brings back exactly what was acknowledged."""

from __future__ import annotations

import trio

from coord.messages import CreateMode, EventType, OpCode, WatchedEvent
from coord.server.config import ServerConfig
from coord.server.core.output import Reply
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
    before = await client.ok(OpCode.GET_DATA, {"path": "/a"})
    await client.aclose()
    scope.cancel()

    server, scope = await _run(nursery, tmp_path)
    client, _ = await RawClient.connect(server.port)
    after = await client.result(OpCode.GET_DATA, {"path": "/a"})
    assert after == before.result  # same data and the same stat, field by field
    assert after.data == b"2"
    children = (await client.result(OpCode.GET_CHILDREN, {"path": "/a"})).names
    assert children == [f"s-{i:010d}" for i in (0, 1, 3, 4)]
    # The sequence counter goes on where it was, and zxids keep growing.
    created = await client.ok(OpCode.CREATE, {"path": "/a/s-", "data": b"", "mode": mode})
    assert created.result.path == "/a/s-0000000006"
    assert created.zxid > before.zxid
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
        reply = await client.reply(xid)
        assert isinstance(reply, Reply), reply
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
    children = (await client.result(OpCode.GET_CHILDREN, {"path": "/s"})).names
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
        session_id=keeper_hello.session_id,
        password=keeper_hello.password,
    )
    assert resumed.session_id == keeper_hello.session_id  # a Connected: not refused
    exists = await keeper.result(OpCode.EXISTS, {"path": "/gone", "watch": True})
    if exists is not None:  # the abandoned session expires one timeout after the restart
        event = await keeper.receive()
        assert isinstance(event, WatchedEvent), event
        assert (event.type, event.path) == (EventType.DELETED, "/gone")
    assert await keeper.result(OpCode.EXISTS, {"path": "/gone"}) is None
    kept = await keeper.result(OpCode.EXISTS, {"path": "/kept"})
    assert kept is not None and kept.ephemeral_owner == keeper_hello.session_id
    await keeper.aclose()
    scope.cancel()


async def test_a_write_resent_after_a_restart_is_not_applied_twice(nursery, tmp_path):
    """The table of write results is rebuilt from the replayed log."""
    server, scope = await _run(nursery, tmp_path)
    client, hello = await RawClient.connect(server.port, timeout_ms=2000)
    mode = int(CreateMode.PERSISTENT_SEQUENTIAL)
    await client.send([7, OpCode.CREATE, {"path": "/job-", "data": b"", "mode": mode}])
    first = await client.reply(7)
    assert isinstance(first, Reply), first
    await client.aclose()
    scope.cancel()

    server, scope = await _run(nursery, tmp_path)
    again, resumed = await RawClient.connect(
        server.port,
        timeout_ms=2000,
        session_id=hello.session_id,
        password=hello.password,
    )
    assert resumed.session_id == hello.session_id  # a Connected: not refused
    # The reply was lost, say: the client resends with the same xid.
    await again.send([7, OpCode.CREATE, {"path": "/job-", "data": b"", "mode": mode}])
    retry = await again.reply(7)
    assert isinstance(retry, Reply), retry
    assert retry.result.path == first.result.path == "/job-0000000000"
    children = (await again.result(OpCode.GET_CHILDREN, {"path": "/"})).names
    assert children == ["job-0000000000"]
    await again.aclose()
    scope.cancel()
