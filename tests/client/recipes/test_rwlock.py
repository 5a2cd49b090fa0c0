"""Read-write lock: readers share, writers exclude, order is kept, failures are survived."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from coord.client import ClientState
from coord.client.recipes import LockLostError
from coord.server.testing import InProcessEnsemble

from .conftest import ConnectFactory, Hold, HoldLog, followers, restart_member_of, wait_children

PATH = "/locks/table"


def both_readers(a: Hold, b: Hold) -> bool:
    return a.who.startswith("r") and b.who.startswith("r")


async def test_readers_share_and_writers_exclude(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as zk2:
        async with zk.ReadLock(PATH), zk2.ReadLock(PATH):
            assert not await zk2.WriteLock(PATH).acquire(blocking=False)
        async with zk.WriteLock(PATH):
            assert not await zk2.ReadLock(PATH).acquire(blocking=False)
            assert not await zk2.Lock(PATH).acquire(blocking=False)  # Lock == WriteLock


async def test_a_queued_writer_is_not_overtaken_by_later_readers(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
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
            await wait_children(zk, PATH, lambda names: len(names) == 2)
            nursery.start_soon(late_reader)
            await wait_children(zk, PATH, lambda names: len(names) == 3)
            await reader.release()
        assert order == ["w", "r"]


async def test_race_of_readers_and_writers(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    log = HoldLog()

    async def worker(i: int) -> None:
        async with connect(session_timeout=2) as zk:
            rw = zk.ReadWriteLock(PATH, identifier=str(i))
            for k in range(4):
                write = (i + k) % 3 == 0
                lock = rw.write_lock if write else rw.read_lock
                async with lock:
                    hold = log.begin(("w" if write else "r") + str(i), lock.token)
                    await trio.sleep(0.003)  # hold it a while (virtual): overlaps would show
                    log.end(hold)

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(worker, i)
    writers = HoldLog([h for h in log.holds if h.who.startswith("w")])
    writers.check()
    log.check(shared=both_readers)
    assert any(
        both_readers(a, b) and b.start < a.end for a in log.holds for b in log.holds if a is not b
    )


async def test_expired_writer_is_cancelled_before_a_reader_enters(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    log = HoldLog()
    async with (
        connect(session_timeout=0.6) as zk,
        connect(session_timeout=2, members=await followers(ensemble)) as zk2,
    ):
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
            await wait_children(zk2, PATH, lambda names: len(names) == 2)  # the reader waits
            await ensemble.expire_session(zk)
        # And a restart of its server does not disturb a reader.
        async with zk2.ReadLock(PATH) as lock:
            await restart_member_of(ensemble, zk2)
            await trio.sleep(2)  # a session timeout on: the guard has renewed its trust
            assert zk2.state is ClientState.CONNECTED
            assert lock.is_trusted()
        assert lock.lost is None
    log.check(shared=both_readers)
