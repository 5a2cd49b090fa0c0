"""Queue and LockingQueue: order, each item once, redelivery after a consumer dies."""

from __future__ import annotations

import trio

from coord.client import ClientState

from .conftest import ConnectFactory, Net, RestartableServer, wait_state


async def test_fifo_with_priorities(connect: ConnectFactory) -> None:
    async with connect(session_timeout=2) as zk:
        queue = zk.Queue("/q/a")
        assert await queue.get() is None
        await queue.put(b"1")
        await queue.put_all([b"2", b"3"])
        await queue.put(b"urgent", priority=1)
        assert await queue.length() == 4
        assert [await queue.get() for _ in range(4)] == [b"urgent", b"1", b"2", b"3"]
        assert await queue.get(block=True, timeout=0.05) is None


async def test_racing_consumers_get_each_item_once_across_a_restart(
    connect: ConnectFactory, server: RestartableServer
) -> None:
    got: list[bytes] = []
    items = [b"%d" % i for i in range(60)]

    async def consumer() -> None:
        async with connect(session_timeout=2) as zk:
            queue = zk.Queue("/q/race")
            while True:
                item = await queue.get(block=True, timeout=1.0)
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
                await server.restart()
    # At-most-once: a delete whose reply is lost in the restart may drop one.
    assert len(got) == len(set(got)) and len(got) >= len(items) - 4


async def test_locking_queue_consume_release_and_redelivery(connect: ConnectFactory) -> None:
    net = Net()
    async with connect(session_timeout=0.5, net=net) as dying, connect(session_timeout=2) as zk:
        queue = zk.LockingQueue("/q/lock")
        await queue.put(b"a")
        await queue.put(b"b")
        async with queue.item() as item:
            assert item == b"a" and queue.holds_lock()
        assert not queue.holds_lock() and await queue.length() == 1
        try:
            async with queue.item() as item:
                raise RuntimeError("failed on b")
        except RuntimeError:
            pass
        assert await queue.length() == 1  # released, not consumed
        other = dying.LockingQueue("/q/lock")
        assert await other.get(timeout=1) == b"b"
        assert await queue.get(timeout=0.05) is None  # taken by the other consumer
        waiting = trio.Event()
        result: list[bytes | None] = []

        async def wait_for_b() -> None:
            waiting.set()
            result.append(await queue.get(timeout=5))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_for_b)
            await waiting.wait()
            await net.cut()  # the consumer holding b dies: its lock is ephemeral
            await wait_state(dying, ClientState.LOST)
        assert result == [b"b"]
        assert await queue.consume()
        assert await queue.length() == 0


async def test_racing_locking_consumers_each_item_exactly_once(connect: ConnectFactory) -> None:
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
