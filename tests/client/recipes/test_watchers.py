"""DataWatch and ChildrenWatch: the current value first, every change, no stale last value."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from coord.client import ClientState, SessionExpiredError, Stat
from coord.client.recipes import DataWatch
from coord.server.testing import InProcessEnsemble

from .conftest import ConnectFactory, Notifier, followers, wait_state

PATH = "/config/db"


async def next_value(watch):  # type: ignore[no-untyped-def]
    with trio.fail_after(5):
        return await watch.__anext__()


async def next_data(watch: DataWatch) -> bytes | None:
    """The data of the DataWatch's next (data, stat)."""
    data, _stat = await next_value(watch)
    return data


async def test_data_watch_current_value_then_changes(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    async with (
        connect(session_timeout=2) as zk,
        connect(session_timeout=2) as writer,
        zk.DataWatch(PATH) as watch,
    ):
        assert await next_value(watch) == (None, None)
        await writer.create(PATH, b"v1", makepath=True)
        data, stat = await next_value(watch)
        assert data == b"v1" and isinstance(stat, Stat)
        await writer.set(PATH, b"v2")
        assert await next_data(watch) == b"v2"
        await writer.delete(PATH)
        assert await next_value(watch) == (None, None)
        await writer.create(PATH, b"v3")
        assert await next_data(watch) == b"v3"


async def test_a_burst_ends_on_the_latest_value(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as writer:
        await writer.create(PATH, b"0", makepath=True)
        async with zk.DataWatch(PATH) as watch:
            assert await next_data(watch) == b"0"

            async def write_burst(w: int) -> None:
                for i in range(20):
                    await writer.set(PATH, b"%d-%d" % (w, i))

            async with trio.open_nursery() as nursery:
                for w in range(3):
                    nursery.start_soon(write_burst, w)
            final, _ = await writer.get(PATH)
            seen = []
            while not seen or seen[-1] != final:
                seen.append(await next_data(watch))
            assert len(seen) == len(set(seen))  # never the same value twice in a row


async def test_callback_form_and_stop_by_returning_false(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    async with connect(session_timeout=2) as zk:
        await zk.create(PATH, b"a", makepath=True)
        got: list[bytes | None] = []

        def on_change(data: bytes | None, stat: Stat | None) -> bool:
            got.append(data)
            return data != b"stop"

        async with trio.open_nursery() as nursery:
            await nursery.start(zk.DataWatch(PATH, on_change).run)
            assert got == [b"a"]  # started() came after the first call
            await zk.set(PATH, b"b")
            await zk.set(PATH, b"stop")
        assert got[0] == b"a" and got[-1] == b"stop"


async def test_children_watch(autojump_clock: MockClock, connect: ConnectFactory) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as writer:
        async with zk.ChildrenWatch("/svc") as watch:
            assert await next_value(watch) == []
            await writer.create("/svc/a", makepath=True)
            assert await next_value(watch) == ["a"]
            await writer.create("/svc/b", ephemeral=True)
            assert await next_value(watch) == ["a", "b"]
        got: list[list[str]] = []
        calls = Notifier()

        async def on_children(children: list[str]) -> None:
            got.append(children)
            calls.changed()

        async with trio.open_nursery() as nursery:
            await nursery.start(zk.ChildrenWatch("/svc", on_children).run)
            assert got == [["a", "b"]]
            await writer.delete("/svc/a")
            await calls.wait_until(lambda: got[-1] == ["b"])
            nursery.cancel_scope.cancel()


async def test_changes_while_disconnected_and_across_a_restart_are_not_missed(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    down, up = await followers(ensemble)
    async with (
        connect(session_timeout=2, members=[down]) as zk,
        connect(session_timeout=2, members=[up]) as writer,
    ):
        await writer.create(PATH, b"1", makepath=True)
        await writer.create("/svc/x", makepath=True)
        async with zk.DataWatch(PATH) as data, zk.ChildrenWatch("/svc") as kids:
            assert await next_data(data) == b"1"
            assert await next_value(kids) == ["x"]
            await ensemble.kill(down)  # zk's only member
            await wait_state(zk, ClientState.SUSPENDED)
            await writer.set(PATH, b"2")
            await writer.set(PATH, b"3")
            await writer.create("/svc/y")
            await ensemble.start(down)
            assert await next_data(data) == b"3"
            assert await next_value(kids) == ["x", "y"]
            leader = await ensemble.wait_for_leader()
            await ensemble.restart(leader)  # a new leader is elected; both clients stay
            await ensemble.wait_serving()
            await writer.set(PATH, b"4")
            assert await next_data(data) == b"4"


async def test_expired_session_ends_the_iteration_with_an_error(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    async with connect(session_timeout=0.4) as zk, zk.DataWatch(PATH) as watch:
        await next_value(watch)
        await ensemble.expire_session(zk)
        with pytest.raises(SessionExpiredError):
            await next_value(watch)
