"""Barrier and DoubleBarrier: release together, across restarts, despite expired parties."""

from __future__ import annotations

import pytest
import trio

from coord.client import ClientState, SessionExpiredError

from .conftest import ConnectFactory, Net, RestartableServer, wait_state


async def test_barrier_releases_every_waiter_also_across_a_restart(
    connect: ConnectFactory, server: RestartableServer
) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as zk2:
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
            await trio.sleep(0.05)
            await server.restart()
            with trio.fail_after(5):
                while not zk.connected:
                    await trio.sleep(0.02)
            assert await barrier.remove()
        assert released == 3 and not await barrier.remove()


async def test_barrier_wait_of_an_expired_session_raises(connect: ConnectFactory) -> None:
    net = Net()
    async with connect(session_timeout=0.4, net=net) as zk, connect(session_timeout=2) as zk2:
        await zk2.Barrier("/barrier/x").create()
        errors: list[BaseException] = []

        async def wait() -> None:
            try:
                await zk.Barrier("/barrier/x").wait()
            except SessionExpiredError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            await trio.sleep(0.05)
            await net.cut()
        assert zk.state is ClientState.LOST and len(errors) == 1


async def test_double_barrier_enter_and_leave_together(connect: ConnectFactory) -> None:
    n = 4
    entered: list[float] = []
    left: list[float] = []
    last_enter = 0.0
    last_leave_call = 0.0

    async def party(i: int) -> None:
        nonlocal last_enter, last_leave_call
        async with connect(session_timeout=2) as zk:
            barrier = zk.DoubleBarrier("/double/b", n, identifier=str(i))
            await trio.sleep(0.01 * i)
            last_enter = max(last_enter, trio.current_time())
            assert await barrier.enter(timeout=5)
            entered.append(trio.current_time())
            await trio.sleep(0.01 * (n - i))
            last_leave_call = max(last_leave_call, trio.current_time())
            assert await barrier.leave(timeout=5)
            left.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(party, i)
    assert min(entered) >= last_enter  # nobody got in before the last arrived
    assert min(left) >= last_leave_call  # nobody got out before the last left


async def test_double_barrier_timeout_and_an_expired_party(connect: ConnectFactory) -> None:
    net = Net()
    async with connect(session_timeout=0.4, net=net) as zk, connect(session_timeout=2) as zk2:
        await zk2.ensure_path("/double/c")
        gone = zk.DoubleBarrier("/double/c", 2, "gone")

        async def enter() -> None:
            with pytest.raises(SessionExpiredError):
                await gone.enter()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(enter)
            with trio.fail_after(5):
                while not await zk2.get_children("/double/c"):
                    await trio.sleep(0.01)
            await net.cut()
            await wait_state(zk, ClientState.LOST)
        with trio.fail_after(5):  # the server expires the session a tick later
            while await zk2.get_children("/double/c"):
                await trio.sleep(0.02)
        # The expired party's node went with its session: one party alone times out.
        alone = zk2.DoubleBarrier("/double/c", 2, "alone")
        assert not await alone.enter(timeout=0.2)
        assert await zk2.get_children("/double/c") == []
