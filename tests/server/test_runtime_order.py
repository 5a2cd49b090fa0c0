"""Pipelining and ordering over real sockets: FIFO replies, events before replies."""

from __future__ import annotations

from coord.messages import PING_XID, CreateMode, EventType, OpCode, WatchedEvent
from coord.server.core.output import Reply
from tests.rawclient import RawClient


async def test_pipelined_requests_take_effect_and_reply_in_order(coord_server):
    client, _ = await RawClient.connect(coord_server.port)
    await client.call(OpCode.CREATE, {"path": "/counter", "data": b"0"})
    xids = []
    for i in range(1, 201):
        xids.append(await client.submit(OpCode.SET_DATA, {"path": "/counter", "data": b"%d" % i}))
        xids.append(await client.submit(OpCode.GET_DATA, {"path": "/counter"}))
    replies = [await client.receive() for _ in xids]
    assert all(isinstance(r, Reply) for r in replies)
    assert [r.xid for r in replies] == xids
    for i in range(200):
        set_reply, get_reply = replies[2 * i], replies[2 * i + 1]
        assert set_reply.result.version == i + 1  # version after the (i+1)-th set
        # Each read sees exactly the write sent just before it (FIFO per session).
        assert get_reply.result.data == b"%d" % (i + 1)
    zxids = [r.zxid for r in replies]
    assert zxids == sorted(zxids)
    await client.aclose()


async def test_pipelined_sequential_creates_get_increasing_names(coord_server):
    client, _ = await RawClient.connect(coord_server.port)
    await client.call(OpCode.CREATE, {"path": "/q", "data": b""})
    mode = int(CreateMode.PERSISTENT_SEQUENTIAL)
    xids = [
        await client.submit(OpCode.CREATE, {"path": "/q/item-", "data": b"", "mode": mode})
        for _ in range(50)
    ]
    names = [(await client.reply(xid)).result.path for xid in xids]
    assert names == [f"/q/item-{i:010d}" for i in range(50)]
    await client.aclose()


async def test_watch_event_reaches_the_watcher_before_a_reply_showing_the_change(coord_server):
    watcher, _ = await RawClient.connect(coord_server.port)
    writer, _ = await RawClient.connect(coord_server.port)
    await writer.call(OpCode.CREATE, {"path": "/w", "data": b"old"})
    reply = await watcher.result(OpCode.GET_DATA, {"path": "/w", "watch": True})
    assert reply.data == b"old"
    set_reply = await writer.ok(OpCode.SET_DATA, {"path": "/w", "data": b"new"})
    change_zxid = set_reply.zxid
    # The watcher reads again; whatever it receives first must be the event.
    xid = await watcher.submit(OpCode.GET_DATA, {"path": "/w"})
    first = await watcher.receive()
    # the event carries the zxid of the change
    assert first == WatchedEvent(EventType.CHANGED, "/w", change_zxid), first
    second = await watcher.receive()
    assert isinstance(second, Reply) and second.xid == xid and second.result.data == b"new"
    await watcher.aclose()
    await writer.aclose()


async def test_close_session_deletes_ephemerals_at_once_and_fires_watches(coord_server):
    owner, _ = await RawClient.connect(coord_server.port)
    observer, _ = await RawClient.connect(coord_server.port)
    mode = int(CreateMode.EPHEMERAL)
    await owner.call(OpCode.CREATE, {"path": "/lock", "data": b"", "mode": mode})
    assert await observer.result(OpCode.EXISTS, {"path": "/lock", "watch": True}) is not None
    assert await owner.result(OpCode.CLOSE_SESSION, {}) is None
    event = await observer.receive()
    assert isinstance(event, WatchedEvent) and event.type == EventType.DELETED
    assert event.path == "/lock"
    assert await observer.result(OpCode.EXISTS, {"path": "/lock"}) is None
    await observer.aclose()


async def test_ping_is_answered_with_the_ping_xid(coord_server):
    client, _ = await RawClient.connect(coord_server.port)
    await client.send([PING_XID, OpCode.PING, {}])
    reply = await client.receive()
    assert isinstance(reply, Reply) and reply.xid == PING_XID
    await client.aclose()
