"""Semaphore: never more than N holders, leases freed by expiry, restarts survived."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from coord.client import ClientState
from coord.client.recipes import LockLostError
from coord.server.testing import InProcessEnsemble

from .conftest import ConnectFactory, children, followers, restart_member_of

PATH = "/sem/gpu"


async def test_at_most_n_holders_in_a_race(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    inside = 0
    most = 0
    count = 0

    async def worker(i: int) -> None:
        nonlocal inside, most, count
        async with connect(session_timeout=2) as zk:
            for _ in range(3):
                async with zk.Semaphore(PATH, f"w{i}", max_leases=2) as sem:
                    assert sem.token is not None
                    inside += 1
                    most = max(most, inside)
                    await trio.sleep(0.005)  # hold it a while (virtual): a third would show
                    inside -= 1
                    count += 1

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(worker, i)
    assert count == 15 and most == 2


async def test_holders_max_leases_and_timeouts(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as zk2:
        async with zk.Semaphore(PATH, "a", 1) as sem:
            assert sem.is_acquired and sem.is_trusted()
            await zk2.sync(PATH)
            assert await zk2.Semaphore(PATH, "b", 1).lease_holders() == ["a"]
            start = trio.current_time()
            assert not await zk2.Semaphore(PATH, "b", 1).acquire(timeout=0.1)
            assert trio.current_time() - start == pytest.approx(0.1)
            assert not await zk2.Semaphore(PATH, "b", 1).acquire(blocking=False)
            with pytest.raises(ValueError, match="max_leases"):
                await zk2.Semaphore(PATH, "b", 3).acquire()
        assert not sem.is_acquired and sem.lost is None
        assert await children(zk, f"{PATH}/leases") == []
        assert await children(zk, f"{PATH}/lock") == []


async def test_expired_holder_frees_its_lease_and_a_restart_is_survived(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    async with (
        connect(session_timeout=0.6) as zk,
        connect(session_timeout=2, members=await followers(ensemble)) as zk2,
    ):
        held = trio.Event()
        stopped_at = got_at = 0.0

        async def holder() -> None:
            nonlocal stopped_at
            with pytest.raises(LockLostError):
                async with zk.Semaphore(PATH, "a", 1):
                    held.set()
                    try:
                        await trio.sleep_forever()
                    finally:
                        stopped_at = trio.current_time()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(holder)
            await held.wait()
            nursery.start_soon(ensemble.expire_session, zk)
            async with zk2.Semaphore(PATH, "b", 1) as sem:
                got_at = trio.current_time()
                await restart_member_of(ensemble, zk2)
                await trio.sleep(2)  # a session timeout on: the guard has renewed its trust
                assert zk2.state is ClientState.CONNECTED
                assert sem.is_trusted()
            assert sem.lost is None
        assert stopped_at < got_at
        assert zk.state is ClientState.LOST
