"""Sessions against the fake server: watches, ordering, reconnects, expiry, timeouts."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from coord.client import (
    Client,
    ClientState,
    ConnectionLossError,
    EventType,
    RequestTimeoutError,
    SessionExpiredError,
    WatchedEvent,
    WatchStream,
)
from coord.errors import KeeperError, NoNodeError
from coord.messages import OpCode, WatcherType


def make_client(fake, **kwargs) -> Client:
    kwargs.setdefault("session_timeout", 9.0)
    return Client("fake:2281", stream_factory=fake.factory, **kwargs)


async def test_watch_event_is_dispatched_before_a_later_reply(fake, autojump_clock, stat):
    async with make_client(fake) as zk:
        conn = await fake.accept()
        stream = WatchStream()
        seen: list[WatchedEvent] = []
        box = fake.spawn(zk.get, "/cfg", watch=stream)
        xid, body = await conn.expect(OpCode.GET_DATA)
        assert body == {"path": "/cfg", "watch": True}
        await conn.reply(xid, [b"v1", stat], zxid=110)
        await box.get()

        box = fake.spawn(zk.exists, "/cfg", watch=seen.append)
        xid, _ = await conn.expect(OpCode.EXISTS)
        await conn.reply(xid, stat)
        await box.get()

        box = fake.spawn(zk.get, "/cfg")
        xid, _ = await conn.expect(OpCode.GET_DATA)
        # The event and the reply that shows the change arrive in one write.
        await conn.send(
            conn.event_frame(EventType.CHANGED, "/cfg", 111), [xid, 111, 0, [b"v2", stat]]
        )
        data, _ = await box.get()
        assert data == b"v2"
        # Already there when the reply is seen: no waiting.
        assert stream.next_nowait() == WatchedEvent(EventType.CHANGED, "/cfg", 111)
        assert seen == [WatchedEvent(EventType.CHANGED, "/cfg", 111)]
        # One-shot: a second event goes nowhere.
        await conn.event(EventType.CHANGED, "/cfg", 112)
        box = fake.spawn(zk.sync)
        xid, _ = await conn.expect(OpCode.SYNC)
        await conn.reply(xid, "/")
        await box.get()
        with pytest.raises(trio.WouldBlock):
            stream.next_nowait()
        assert len(seen) == 1


async def test_exists_on_missing_node_sets_an_exist_watch(fake, autojump_clock):
    async with make_client(fake) as zk:
        conn = await fake.accept()
        stream = WatchStream()
        box = fake.spawn(zk.exists, "/later", watch=stream)
        xid, _ = await conn.expect(OpCode.EXISTS)
        await conn.reply(xid, None)
        assert await box.get() is None
        await conn.event(EventType.CREATED, "/later", 150)
        assert await stream.next() == WatchedEvent(EventType.CREATED, "/later", 150)


async def test_failed_read_sets_no_watch(fake, autojump_clock):
    async with make_client(fake) as zk:
        conn = await fake.accept()
        calls: list[WatchedEvent] = []
        box = fake.spawn(zk.get, "/nope", watch=calls.append)
        xid, _ = await conn.expect(OpCode.GET_DATA)
        await conn.reply(xid, {"message": "no node"}, err=NoNodeError.code)
        assert isinstance(await box.error_of(), NoNodeError)
        assert len(zk._protocol.watches) == 0


async def test_callback_exception_is_logged_not_raised(fake, autojump_clock, stat, caplog):
    async with make_client(fake) as zk:
        conn = await fake.accept()
        later = WatchStream()

        def broken(event: WatchedEvent) -> None:
            raise RuntimeError("user bug")

        for watch in (broken, later):
            box = fake.spawn(zk.get, "/x", watch=watch)
            xid, _ = await conn.expect(OpCode.GET_DATA)
            await conn.reply(xid, [b"", stat])
            await box.get()
        await conn.event(EventType.DELETED, "/x", 200)
        assert (await later.next()).type is EventType.DELETED
        assert "user bug" in caplog.text
        assert zk.state is ClientState.CONNECTED


async def test_persistent_watch_context_adds_and_removes(fake, autojump_clock):
    async with make_client(fake) as zk:
        conn = await fake.accept()

        async def watcher(task_status=trio.TASK_STATUS_IGNORED):
            got = []
            async with zk.watch("/app", recursive=True) as events:
                task_status.started()
                async for event in events:
                    got.append(event)
                    if len(got) == 2:
                        break
            return got

        box = fake.spawn(watcher)
        xid, body = await conn.expect(OpCode.ADD_WATCH)
        assert body == {"path": "/app", "mode": 1}
        await conn.reply(xid)
        await conn.event(EventType.CREATED, "/app/a/b", 300)
        await conn.event(EventType.CHILD, "/app", 301)  # recursive watches skip CHILD
        await conn.event(EventType.CHANGED, "/app", 302)
        xid, body = await conn.expect(OpCode.REMOVE_WATCHES)
        assert body == {"path": "/app", "watcher_type": int(WatcherType.PERSISTENT_RECURSIVE)}
        await conn.reply(xid)
        assert await box.get() == [
            WatchedEvent(EventType.CREATED, "/app/a/b", 300),
            WatchedEvent(EventType.CHANGED, "/app", 302),
        ]
        assert len(zk._protocol.watches) == 0


async def test_remove_watches_fires_removed_event(fake, autojump_clock):
    async with make_client(fake) as zk:
        conn = await fake.accept()
        got: list[WatchedEvent] = []
        box = fake.spawn(zk.add_watch, "/p", got.append)
        xid, body = await conn.expect(OpCode.ADD_WATCH)
        assert body == {"path": "/p", "mode": 0}
        await conn.reply(xid, zxid=400)
        await box.get()
        box = fake.spawn(zk.remove_all_watches, "/p")
        xid, body = await conn.expect(OpCode.REMOVE_WATCHES)
        assert body == {"path": "/p", "watcher_type": int(WatcherType.ANY)}
        await conn.reply(xid)
        await box.get()
        assert got == [WatchedEvent(EventType.PERSISTENT_WATCH_REMOVED, "/p", 400)]


async def test_reconnect_resends_watches_first_and_keeps_session(fake, autojump_clock, stat):
    states: list[ClientState] = []
    async with make_client(fake) as zk:
        zk.add_listener(states.append)
        conn = await fake.accept()
        data_events = WatchStream()
        for fn, op, result, zxid in [
            (zk.get, OpCode.GET_DATA, [b"", stat], 101),
            (zk.exists, OpCode.EXISTS, None, 102),
            (zk.get_children, OpCode.GET_CHILDREN, [[], None], 103),
        ]:
            path = {OpCode.GET_DATA: "/d", OpCode.EXISTS: "/e", OpCode.GET_CHILDREN: "/c"}[op]
            box = fake.spawn(fn, path, watch=data_events)
            xid, _ = await conn.expect(op)
            await conn.reply(xid, result, zxid=zxid)
            await box.get()
        box = fake.spawn(zk.add_watch, "/p", data_events, recursive=True)
        xid, _ = await conn.expect(OpCode.ADD_WATCH)
        await conn.reply(xid, zxid=105)
        await box.get()

        in_flight = fake.spawn(zk.set, "/d", b"x")
        first_xid, _ = await conn.expect(OpCode.SET_DATA)
        read = fake.spawn(zk.get, "/r")
        await conn.expect(OpCode.GET_DATA)
        await conn.close()
        # A read in flight fails (its outcome is harmless to retry by hand) ...
        assert isinstance(await read.error_of(), ConnectionLossError)
        assert zk.state is ClientState.SUSPENDED

        # A call made while suspended waits and goes out after the SET_WATCHES.
        queued = fake.spawn(zk.exists, "/q")
        conn2 = await fake.accept()
        assert conn2.connect_request["session_id"] == 0x1234
        assert conn2.connect_request["password"] == b"secret"
        assert conn2.connect_request["last_zxid_seen"] == 105
        xid, body = await conn2.expect(OpCode.SET_WATCHES)
        assert body == {
            "relative_zxid": 105,
            "data": ["/d"],
            "exist": ["/e"],
            "child": ["/c"],
            "persistent_recursive": ["/p"],
        }
        # Missed events come before the SET_WATCHES reply.
        await conn2.event(EventType.CREATED, "/e", 106)
        await conn2.reply(xid, zxid=106)
        # ... while the write in flight is resent first, with its first xid, so that the
        # server can answer it with its first result instead of applying it twice.
        xid, body = await conn2.expect(OpCode.SET_DATA)
        assert xid == first_xid and body["path"] == "/d"
        await conn2.reply(xid, stat, zxid=107)
        assert list(await in_flight.get()) == list(stat)
        xid, body = await conn2.expect(OpCode.EXISTS)
        assert body["path"] == "/q"
        await conn2.reply(xid, None)
        assert await queued.get() is None
        assert await data_events.next() == WatchedEvent(EventType.CREATED, "/e", 106)
        assert states == [ClientState.SUSPENDED, ClientState.CONNECTED]
        assert zk.state is ClientState.CONNECTED


async def test_expired_on_reconnect_is_lost_forever(fake, autojump_clock, stat):
    async with make_client(fake) as zk:
        states = zk.states()
        conn = await fake.accept()
        stream = WatchStream()
        box = fake.spawn(zk.get, "/w", watch=stream)
        xid, _ = await conn.expect(OpCode.GET_DATA)
        await conn.reply(xid, [b"", stat])
        await box.get()
        in_flight = fake.spawn(zk.get, "/in-flight")
        await conn.expect(OpCode.GET_DATA)
        during = []
        zk.add_listener(
            lambda s: (
                during.append(fake.spawn(zk.get, "/during")) if s is ClientState.SUSPENDED else None
            )
        )
        fake.handshake_errors = [SessionExpiredError.code]
        await conn.close()
        await fake.accept()
        assert [s async for s in states] == [ClientState.SUSPENDED, ClientState.LOST]
        assert zk.state is ClientState.LOST
        assert isinstance(await in_flight.error_of(), ConnectionLossError)
        assert isinstance(await during[0].error_of(), SessionExpiredError)
        with pytest.raises(SessionExpiredError):
            await stream.next()
        for _ in range(2):
            with pytest.raises(SessionExpiredError, match="expired"):
                await zk.exists("/a")
        attempts = fake.attempts
        await trio.sleep(60)
        assert fake.attempts == attempts  # never makes a new session
    assert zk.state is ClientState.LOST


async def test_session_timeout_without_reconnect_is_lost(fake, autojump_clock):
    fake.timeout_ms = 6000
    async with make_client(fake, session_timeout=6) as zk:
        conn = await fake.accept()
        lost = trio.Event()
        zk.add_listener(lambda s: lost.set() if s is ClientState.LOST else None)
        fake.refuse = True
        start = trio.current_time()
        await conn.close()
        await lost.wait()
        assert trio.current_time() - start == pytest.approx(6, abs=0.01)
        assert fake.attempts > 3
        with pytest.raises(SessionExpiredError, match="not reconnected within"):
            await zk.get("/a")


async def test_notice_of_expiry_means_lost(fake, autojump_clock):
    async with make_client(fake) as zk:
        conn = await fake.accept()
        await conn.notice(SessionExpiredError.code, "session expired by the leader")
        await conn.close()
        with pytest.raises(SessionExpiredError):
            while True:
                await zk.exists("/a")
                await trio.sleep(0.01)  # pragma: no cover
        assert zk.state is ClientState.LOST
        assert fake.attempts == 1


async def test_other_notice_reconnects(fake, autojump_clock):
    async with make_client(fake) as zk:
        conn = await fake.accept()
        await conn.notice(-1, "server shutting down")
        await conn.close()
        await fake.accept()
        await trio.testing.wait_all_tasks_blocked()
        assert zk.state is ClientState.CONNECTED


async def test_request_timeout(fake, autojump_clock):
    async with make_client(fake, request_timeout=5) as zk:
        conn = await fake.accept()
        start = trio.current_time()
        with pytest.raises(RequestTimeoutError, match=r"GET_DATA '/slow' got no reply within 5 s"):
            await zk.get("/slow")
        assert trio.current_time() - start == pytest.approx(5)
        # The late reply is consumed and dropped; the session goes on.
        xid, _ = await conn.expect(OpCode.GET_DATA)
        await conn.reply(xid, {"message": "late"}, err=NoNodeError.code)
        box = fake.spawn(zk.sync, "/")
        xid, _ = await conn.expect(OpCode.SYNC)
        await conn.reply(xid, "/")
        assert await box.get() == "/"
        assert conn.pings > 0  # the idle session was kept alive meanwhile


async def test_pings_when_idle_and_dead_connection_detected(fake, autojump_clock):
    async with make_client(fake) as zk:  # 9 s: ping after 3 s idle, dead after 6 s silent
        conn = await fake.accept()
        await trio.sleep(3.5)
        assert conn.pings == 1
        conn.answer_pings = False
        start = trio.current_time()
        await conn.closed.wait()
        # The last frame received was the ping reply at ~3 s, so dead at ~9 s.
        assert trio.current_time() - start == pytest.approx(5.5, abs=0.1)
        await fake.accept()
        await trio.testing.wait_all_tasks_blocked()
        assert zk.state is ClientState.CONNECTED


async def test_transaction_results_and_failure(fake, autojump_clock, stat):
    async with make_client(fake) as zk:
        conn = await fake.accept()
        t = zk.transaction()
        t.create("/t/a", b"1", ephemeral=True)
        t.set_data("/t", b"2", version=3)
        t.check("/t", 4)
        t.delete("/t/old")
        box = fake.spawn(t.commit)
        xid, body = await conn.expect(OpCode.MULTI)
        assert body == {
            "ops": [
                [1, {"path": "/t/a", "data": b"1", "mode": 1}],
                [5, {"path": "/t", "data": b"2", "version": 3}],
                [13, {"path": "/t", "version": 4}],
                [2, {"path": "/t/old", "version": -1}],
            ]
        }
        await conn.reply(xid, [[0, ["/t/a", stat]], [0, stat], [0, None], [0, None]])
        assert await box.get() == ["/t/a", tuple(stat), True, True]

        async def failing():
            async with zk.transaction() as t2:
                t2.check("/t", 1)
                t2.delete("/t/b")
            return t2.results

        box = fake.spawn(failing)
        xid, _ = await conn.expect(OpCode.MULTI)
        await conn.reply(xid, [[-103, {"message": "bad version", "path": "/t"}], [-203, {}]])
        results = await box.get()
        assert [type(r).__name__ for r in results] == ["BadVersionError", "RolledBackError"]
        assert all(isinstance(r, KeeperError) for r in results)
        with pytest.raises(ValueError, match="already committed"):
            await t.commit()


async def test_removing_one_of_two_callables_keeps_the_server_watch(fake, autojump_clock):
    async with make_client(fake) as zk:
        conn = await fake.accept()
        first, second = WatchStream(), WatchStream()
        for stream in (first, second):
            box = fake.spawn(zk.add_watch, "/p", stream)
            xid, _ = await conn.expect(OpCode.ADD_WATCH)
            await conn.reply(xid)
            await box.get()
        await zk.remove_watches("/p", WatcherType.PERSISTENT, first)  # no request needed
        assert first.next_nowait().type is EventType.PERSISTENT_WATCH_REMOVED
        await conn.event(EventType.CHANGED, "/p", 500)
        assert (await second.next()).zxid == 500
        with pytest.raises(trio.WouldBlock):
            first.next_nowait()
        box = fake.spawn(zk.remove_watches, "/p", WatcherType.PERSISTENT, second)
        xid, body = await conn.expect(OpCode.REMOVE_WATCHES)
        assert body == {"path": "/p", "watcher_type": int(WatcherType.PERSISTENT)}
        await conn.reply(xid, {"message": "already gone"}, err=-121)  # NoWatcher: tolerated
        await box.get()
        with pytest.raises(KeeperError, match="no PERSISTENT watch"):
            await zk.remove_watches("/p", WatcherType.PERSISTENT)


async def test_fails_over_to_a_host_that_answers(fake, autojump_clock):
    fake.refuse_hosts = {"a", "b"}
    fake.handshake_errors = [-1]  # the first server that answers refuses: try on
    async with Client("a:1,b:2,c:3", session_timeout=9, stream_factory=fake.factory) as zk:
        assert zk.connected_host == "c:3"
        assert {h for h, _ in fake.hosts_tried} == {"a", "b", "c"}
        assert [h for h, _ in fake.hosts_tried].count("c") == 2


async def test_client_cannot_be_entered_twice(fake, autojump_clock):
    zk = make_client(fake)
    async with zk:
        with pytest.raises(RuntimeError, match="only once"):
            async with zk:
                pass  # pragma: no cover
