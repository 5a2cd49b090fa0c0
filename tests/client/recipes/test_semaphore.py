"""Semaphore: never more than N holders, leases freed by expiry, restarts survived."""

from __future__ import annotations

import pytest
import trio

from coord.client import ClientState
from coord.client.recipes import LockLostError

from .conftest import ConnectFactory, Net, RestartableServer, wait_state

PATH = "/sem/gpu"


async def test_at_most_n_holders_in_a_race(connect: ConnectFactory) -> None:
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
                    await trio.sleep(0.005)
                    inside -= 1
                    count += 1

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(worker, i)
    assert count == 15 and most == 2


async def test_holders_max_leases_and_timeouts(connect: ConnectFactory) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as zk2:
        async with zk.Semaphore(PATH, "a", 1):
            assert await zk2.Semaphore(PATH, "b", 1).lease_holders() == ["a"]
            assert not await zk2.Semaphore(PATH, "b", 1).acquire(timeout=0.1)
            assert not await zk2.Semaphore(PATH, "b", 1).acquire(blocking=False)
            with pytest.raises(ValueError, match="max_leases"):
                await zk2.Semaphore(PATH, "b", 3).acquire()
        assert await zk.get_children(f"{PATH}/leases") == []
        assert await zk.get_children(f"{PATH}/lock") == []


async def test_expired_holder_frees_its_lease_and_restart_is_survived(
    connect: ConnectFactory, server: RestartableServer
) -> None:
    net = Net()
    async with connect(session_timeout=0.6, net=net) as zk, connect(session_timeout=2) as zk2:
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
            await net.cut()
            async with zk2.Semaphore(PATH, "b", 1) as sem:
                got_at = trio.current_time()
                await server.restart()
                with trio.fail_after(5):
                    while zk2.state is not ClientState.CONNECTED:
                        await trio.sleep(0.02)
            assert sem.lost is None
        assert stopped_at < got_at
        await wait_state(zk, ClientState.LOST)
