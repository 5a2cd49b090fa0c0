"""The client against a scripted fake server: requests, replies, errors, limits."""

from __future__ import annotations

import pytest
import trio

from coord.client import (
    Client,
    ClientState,
    FrameTooLargeError,
    InvalidPathError,
    NoNodeError,
    SessionClosedError,
    Stat,
)
from coord.errors import NodeExistsError
from coord.framing import MAX_FRAME_SIZE
from coord.messages import PROTOCOL_VERSION, CreateMode, OpCode
from coord.server.core.output import Children, Created, Reply


def make_client(fake, **kwargs) -> Client:
    kwargs.setdefault("session_timeout", 9.0)
    return Client("fake:2281", stream_factory=fake.factory, **kwargs)


async def test_handshake_and_properties(fake, autojump_clock):
    fake.timeout_ms = 6000
    async with make_client(fake) as zk:
        conn = await fake.accept()
        assert conn.connect_request == {
            "protocol_version": PROTOCOL_VERSION,
            "last_zxid_seen": 0,
            "timeout_ms": 9000,
            "session_id": 0,
            "password": b"",
        }
        assert zk.state is ClientState.CONNECTED
        assert zk.session_id == 0x1234
        assert zk.client_id == (0x1234, b"secret")
        assert zk.session_timeout == 6.0
        assert zk.connected_host == "fake:2281"
    assert conn.session_closed
    assert zk.state is ClientState.CLOSED


async def test_create_get_and_error_reply(fake, autojump_clock, stat):
    async with make_client(fake) as zk:
        conn = await fake.accept()
        box = fake.spawn(zk.create, "/a/b-", b"v", ephemeral=True, sequential=True)
        xid, body = await conn.expect(OpCode.CREATE)
        assert body == {"path": "/a/b-", "data": b"v", "mode": int(CreateMode.EPHEMERAL_SEQUENTIAL)}
        await conn.reply(xid, Created("/a/b-0000000001", Stat(*stat)), zxid=120)
        assert await box.get() == "/a/b-0000000001"
        assert zk.last_zxid == 120

        box = fake.spawn(zk.get, "/missing")
        xid, body = await conn.expect(OpCode.GET_DATA)
        assert body == {"path": "/missing", "watch": False}
        await conn.fail(xid, NoNodeError("no node /missing", path="/missing"))
        error = await box.error_of()
        assert isinstance(error, NoNodeError)
        assert error.path == "/missing"
        assert str(error) == "no node /missing"

        box = fake.spawn(zk.get_children, "/a", include_data=True)
        xid, body = await conn.expect(OpCode.GET_CHILDREN)
        assert body == {"path": "/a", "watch": False, "include_stat": True}
        await conn.reply(xid, Children(["x", "y"], Stat(*stat)))
        assert await box.get() == (["x", "y"], Stat(*stat))


async def test_pipelined_requests_are_coalesced_and_ordered(fake, autojump_clock, stat):
    async with make_client(fake) as zk:
        conn = await fake.accept()
        boxes = [fake.spawn(zk.set, f"/n{i}", b"x") for i in range(3)]
        await trio.testing.wait_all_tasks_blocked()
        seen = [await conn.expect(OpCode.SET_DATA) for _ in range(3)]
        xids = [xid for xid, _ in seen]
        assert xids == sorted(xids) and len(set(xids)) == 3
        # All three were queued before the writer ran, so they left in one write.
        assert conn.chunks[-1] == 3
        await conn.output(*[Reply(xid, 130 + i, Stat(*stat)) for i, xid in enumerate(xids)])
        for box in boxes:
            assert await box.get() == Stat(*stat)
        assert zk.last_zxid == 132


async def test_local_validation_sends_nothing(fake, autojump_clock):
    async with make_client(fake) as zk:
        conn = await fake.accept()
        with pytest.raises(InvalidPathError):
            await zk.get("no-slash")
        with pytest.raises(InvalidPathError):
            await zk.create("/a/", b"")
        with pytest.raises(TypeError):
            await zk.set("/a", "text")  # type: ignore[arg-type]

        async def async_callback(event: object) -> None:  # pragma: no cover
            pass

        with pytest.raises(TypeError, match="synchronously"):
            await zk.get("/a", watch=async_callback)
        with pytest.raises(TypeError, match="callable"):
            await zk.exists("/a", watch="nope")  # type: ignore[arg-type]
        with pytest.raises(FrameTooLargeError, match="CREATE '/big'"):
            await zk.create("/big", b"x" * MAX_FRAME_SIZE)
        # The raw request path skips local checks, so server validation can be tested.
        box = fake.spawn(zk._request, OpCode.GET_DATA, {"path": "no-slash", "watch": False})
        xid, body = await conn.expect(OpCode.GET_DATA)
        assert body["path"] == "no-slash"
        await conn.fail(xid, InvalidPathError("bad path", path="no-slash"))
        assert isinstance(await box.error_of(), InvalidPathError)


async def test_makepath_creates_missing_parents_in_one_pipeline(fake, autojump_clock, stat):
    async with make_client(fake) as zk:
        conn = await fake.accept()
        box = fake.spawn(zk.create, "/a/b/c", b"v", makepath=True, include_data=True)
        xid, _ = await conn.expect(OpCode.CREATE)
        await conn.fail(xid, NoNodeError("no parent"))
        (a_xid, a_body), (ab_xid, ab_body) = [await conn.expect(OpCode.EXISTS) for _ in range(2)]
        assert [a_body["path"], ab_body["path"]] == ["/a", "/a/b"]
        await conn.reply(a_xid, Stat(*stat))
        await conn.reply(ab_xid, None)
        xid, body = await conn.expect(OpCode.CREATE)
        assert body == {"path": "/a/b", "data": b"", "mode": 0}
        await conn.fail(xid, NodeExistsError("raced"))
        xid, body = await conn.expect(OpCode.CREATE)
        assert body["path"] == "/a/b/c"
        await conn.reply(xid, Created("/a/b/c", Stat(*stat)))
        assert await box.get() == ("/a/b/c", Stat(*stat))


async def test_recursive_delete_reads_levels_then_deletes_deepest_first(fake, autojump_clock):
    async with make_client(fake) as zk:
        conn = await fake.accept()
        box = fake.spawn(zk.delete, "/r", recursive=True)
        xid, body = await conn.expect(OpCode.GET_CHILDREN)
        assert body["path"] == "/r"
        await conn.reply(xid, Children(["a", "b"], None))
        (a_xid, a_body), (b_xid, b_body) = [
            await conn.expect(OpCode.GET_CHILDREN) for _ in range(2)
        ]
        assert [a_body["path"], b_body["path"]] == ["/r/a", "/r/b"]
        await conn.reply(a_xid, Children(["x"], None))
        await conn.fail(b_xid, NoNodeError("gone"))
        xid, body = await conn.expect(OpCode.GET_CHILDREN)
        assert body["path"] == "/r/a/x"
        await conn.reply(xid, Children([], None))
        deletes = [await conn.expect(OpCode.DELETE) for _ in range(3)]
        assert [b["path"] for _, b in deletes] == ["/r/a/x", "/r/a", "/r"]
        for xid, _ in deletes:
            await conn.reply(xid)
        assert await box.get() is None


async def test_close_sends_close_session_and_refuses_later_calls(fake, autojump_clock):
    states: list[ClientState] = []
    async with make_client(fake) as zk:
        zk.add_listener(states.append)
        conn = await fake.accept()
    assert conn.session_closed
    assert states == [ClientState.CLOSED]
    with pytest.raises(SessionClosedError):
        await zk.exists("/a")


async def test_first_connect_failure_raises(fake, autojump_clock):
    fake.refuse = True
    client = make_client(fake, connect_timeout=3)
    start = trio.current_time()
    with pytest.raises(Exception, match="could not connect to fake:2281 within 3 s"):
        async with client:
            pass  # pragma: no cover
    assert trio.current_time() - start == pytest.approx(3)
    assert fake.attempts > 2  # it retried with backoff
    with pytest.raises(SessionClosedError):
        await client.exists("/a")
