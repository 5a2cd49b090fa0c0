"""Queue and LockingQueue: order, each item once, redelivery after a consumer dies."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from coord.server.testing import InProcessEnsemble

from .conftest import ConnectFactory


async def test_fifo_with_priorities(autojump_clock: MockClock, connect: ConnectFactory) -> None:
    async with connect(session_timeout=2) as zk:
        queue = zk.Queue("/q/a")
        assert await queue.get() is None
        await queue.put(b"1")
        await queue.put_all([b"2", b"3"])
        await queue.put(b"urgent", priority=1)
        assert await queue.length() == 4
        assert [await queue.get() for _ in range(4)] == [b"urgent", b"1", b"2", b"3"]
        start = trio.current_time()
        assert await queue.get(block=True, timeout=0.05) is None
        assert trio.current_time() - start == pytest.approx(0.05)


async def test_racing_consumers_get_each_item_once_across_a_leader_restart(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    got: list[bytes] = []
    items = [b"%d" % i for i in range(60)]

    async def consumer() -> None:
        async with connect(session_timeout=2) as zk:
            queue = zk.Queue("/q/race")
            while True:  # until the queue has stayed empty for a while (virtual)
                item = await queue.get(block=True, timeout=5.0)
                if item is None:
                    return
                got.append(item)

    async with connect(session_timeout=2) as producer, trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(consumer)
        queue = producer.Queue("/q/race")
        for i, item in enumerate(items):
            await queue.put(item)
            if i == 30:
                await ensemble.restart(await ensemble.wait_for_leader())
                await ensemble.wait_serving()
    # At-most-once: a delete whose reply is lost in the restart may drop one per consumer.
    assert len(got) == len(set(got)) and len(got) >= len(items) - 4


async def test_locking_queue_consume_release_and_redelivery(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    async with connect(session_timeout=0.5) as dying, connect(session_timeout=2) as zk:
        queue = zk.LockingQueue("/q/lock")
        await queue.put(b"a")
        await queue.put(b"b")
        async with queue.item() as item:
            assert item == b"a" and queue.holds_lock()
        assert not queue.holds_lock() and await queue.length() == 1
        with pytest.raises(RuntimeError, match="failed on b"):
            async with queue.item() as item:
                raise RuntimeError("failed on b")
        assert await queue.length() == 1  # released, not consumed
        other = dying.LockingQueue("/q/lock")
        assert await other.get(timeout=1) == b"b"
        assert await queue.get(timeout=0.05) is None  # taken by the other consumer
        result: list[bytes | None] = []

        async def wait_for_b(task_status: trio.TaskStatus[None]) -> None:
            task_status.started()
            result.append(await queue.get(timeout=5))

        async with trio.open_nursery() as nursery:
            await nursery.start(wait_for_b)
            await ensemble.expire_session(dying)  # the consumer holding b dies: its lock goes
        assert result == [b"b"]
        assert await queue.consume()
        assert await queue.length() == 0


async def test_racing_locking_consumers_each_item_exactly_once(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    got: list[bytes] = []

    async def consumer() -> None:
        async with connect(session_timeout=2) as zk:
            queue = zk.LockingQueue("/q/lrace")
            while True:
                item = await queue.get(timeout=0.5)
                if item is None:
                    return
                got.append(item)
                await queue.consume()

    async with connect(session_timeout=2) as producer:
        await producer.LockingQueue("/q/lrace").put_all([b"%d" % i for i in range(40)])
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(consumer)
    assert sorted(got) == sorted(b"%d" % i for i in range(40))
