"""Barrier and DoubleBarrier: release together, across restarts, despite expired parties."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from coord.client import ClientState, SessionExpiredError
from coord.server.testing import InProcessEnsemble

from .conftest import ConnectFactory, children, followers, restart_member_of, wait_children


async def test_barrier_releases_every_waiter_also_across_a_restart(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    async with (
        connect(session_timeout=2) as zk,
        connect(session_timeout=2, members=await followers(ensemble)) as zk2,
    ):
        barrier = zk.Barrier("/barrier/b")
        assert await barrier.create() and not await barrier.create()
        assert not await zk2.Barrier("/barrier/b").wait(timeout=0.05)
        released = 0

        async def waiter() -> None:
            nonlocal released
            assert await zk2.Barrier("/barrier/b").wait(timeout=5)
            released += 1

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()  # all three wait on their watches
            await restart_member_of(ensemble, zk2)  # the watches move to the new connection
            assert released == 0
            assert await barrier.remove()
        assert released == 3 and not await barrier.remove()


async def test_barrier_wait_of_an_expired_session_raises(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    async with connect(session_timeout=0.4) as zk, connect(session_timeout=2) as zk2:
        await zk2.Barrier("/barrier/x").create()
        errors: list[BaseException] = []

        async def wait() -> None:
            try:
                await zk.Barrier("/barrier/x").wait()
            except SessionExpiredError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            await trio.testing.wait_all_tasks_blocked()  # it waits on its watch
            await ensemble.expire_session(zk)
        assert zk.state is ClientState.LOST and len(errors) == 1


async def test_double_barrier_enter_and_leave_together(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    """Parties arrive one after another; none gets in before the last has arrived,
    and none gets out before the last has asked to leave."""
    n = 4
    arrived = leaving = 0
    inside: list[int] = []
    out: list[int] = []

    async def party(i: int) -> None:
        nonlocal arrived, leaving
        async with connect(session_timeout=2) as zk:
            barrier = zk.DoubleBarrier("/double/b", n, identifier=str(i))
            # Arrive after the i parties before: the first waits longest.
            await wait_children(zk, "/double/b", lambda names: len(names) >= i)
            arrived += 1
            assert await barrier.enter(timeout=5)
            inside.append(arrived)
            leaving += 1
            assert await barrier.leave(timeout=5)
            out.append(leaving)

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(party, i)
    assert inside == [n] * n  # nobody got in before the last arrived
    assert out == [n] * n  # nobody got out before the last asked to leave


async def test_double_barrier_timeout_and_an_expired_party(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    async with connect(session_timeout=0.4) as zk, connect(session_timeout=2) as zk2:
        await zk2.ensure_path("/double/c")
        gone = zk.DoubleBarrier("/double/c", 2, "gone")

        async def enter() -> None:
            with pytest.raises(SessionExpiredError):
                await gone.enter()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(enter)
            await wait_children(zk2, "/double/c", lambda names: len(names) == 1)
            await ensemble.expire_session(zk)
        # The expired party's node went with its session: one party alone times out.
        assert await children(zk2, "/double/c") == []
        alone = zk2.DoubleBarrier("/double/c", 2, "alone")
        start = trio.current_time()
        assert not await alone.enter(timeout=0.2)
        assert trio.current_time() - start == pytest.approx(0.2)
        assert await zk2.get_children("/double/c") == []
