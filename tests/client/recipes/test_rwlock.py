"""Read-write lock: readers share, writers exclude, order is kept, failures are survived."""

from __future__ import annotations

import pytest
import trio

from coord.client import ClientState
from coord.client.recipes import LockLostError

from .conftest import ConnectFactory, Hold, HoldLog, Net, RestartableServer, wait_state

PATH = "/locks/table"


def both_readers(a: Hold, b: Hold) -> bool:
    return a.who.startswith("r") and b.who.startswith("r")


async def test_readers_share_and_writers_exclude(connect: ConnectFactory) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as zk2:
        async with zk.ReadLock(PATH), zk2.ReadLock(PATH):
            assert not await zk2.WriteLock(PATH).acquire(blocking=False)
        async with zk.WriteLock(PATH):
            assert not await zk2.ReadLock(PATH).acquire(blocking=False)
            assert not await zk2.Lock(PATH).acquire(blocking=False)  # Lock == WriteLock


async def test_a_queued_writer_is_not_overtaken_by_later_readers(connect: ConnectFactory) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as zk2:
        order: list[str] = []
        reader = zk.ReadLock(PATH)
        await reader.acquire()
        async with trio.open_nursery() as nursery:

            async def writer() -> None:
                async with zk2.WriteLock(PATH):
                    order.append("w")

            async def late_reader() -> None:
                async with zk2.ReadLock(PATH):
                    order.append("r")

            nursery.start_soon(writer)
            with trio.fail_after(5):
                while len(await zk.get_children(PATH)) < 2:
                    await trio.sleep(0.01)
            nursery.start_soon(late_reader)
            with trio.fail_after(5):
                while len(await zk.get_children(PATH)) < 3:
                    await trio.sleep(0.01)
            await reader.release()
        assert order == ["w", "r"]


async def test_race_of_readers_and_writers(connect: ConnectFactory) -> None:
    log = HoldLog()

    async def worker(i: int) -> None:
        async with connect(session_timeout=2) as zk:
            rw = zk.ReadWriteLock(PATH, identifier=str(i))
            for k in range(4):
                write = (i + k) % 3 == 0
                lock = rw.write_lock if write else rw.read_lock
                async with lock:
                    hold = log.begin(("w" if write else "r") + str(i), lock.token)
                    await trio.sleep(0.003)
                    log.end(hold)

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(worker, i)
    writers = HoldLog([h for h in log.holds if h.who.startswith("w")])
    writers.check()
    log.check(shared=both_readers)


async def test_expired_writer_is_cancelled_before_a_reader_enters(
    connect: ConnectFactory, server: RestartableServer
) -> None:
    net = Net()
    log = HoldLog()
    async with connect(session_timeout=0.6, net=net) as zk, connect(session_timeout=2) as zk2:
        held = trio.Event()

        async def writer() -> None:
            with pytest.raises(LockLostError):
                async with zk.WriteLock(PATH) as lock:
                    hold = log.begin("w", lock.token)
                    held.set()
                    try:
                        await trio.sleep_forever()
                    finally:
                        log.end(hold)

        async def reader() -> None:
            await held.wait()
            async with zk2.ReadLock(PATH) as lock:
                log.end(log.begin("r", lock.token))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            nursery.start_soon(reader)
            await held.wait()
            await net.cut()
        await wait_state(zk, ClientState.LOST)
        # And a quick restart does not disturb a reader.
        async with zk2.ReadLock(PATH) as lock:
            await server.restart()
            with trio.fail_after(5):
                while zk2.state is not ClientState.CONNECTED:
                    await trio.sleep(0.02)
        assert lock.lost is None
    log.check(shared=both_readers)
