"""A read-write lock, a lease and a set partitioner, each with two or three clients.

    python examples/recipes_more.py 127.0.0.1:2281

- ReadWriteLock: two readers hold the read lock at the same time; the writer
  waits until both are done.
- NonBlockingLease: two clients try to claim the same lease; one gets it.
- SetPartitioner: two members split six work items between them.
- Barrier: a worker waits until a coordinator lifts the barrier.
- Queue: a producer puts three items, a consumer takes them in order.
"""

from __future__ import annotations

import sys

import trio

from coord.client import Client


async def read_write_lock(hosts: str) -> None:
    order: list[str] = []

    async def reader(name: str) -> None:
        async with Client(hosts) as zk, zk.ReadWriteLock("/examples/rw").read_lock:
            order.append(f"{name} reads")
            await trio.sleep(0.2)
            order.append(f"{name} done")

    async def writer() -> None:
        await trio.sleep(0.05)  # let the readers queue first
        async with Client(hosts) as zk, zk.ReadWriteLock("/examples/rw").write_lock:
            order.append("writer writes")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader, "reader-1")
        nursery.start_soon(reader, "reader-2")
        nursery.start_soon(writer)
    print("read-write lock:", ", ".join(order))


async def lease(hosts: str) -> None:
    async with Client(hosts) as first, Client(hosts) as second:
        one = first.NonBlockingLease("/examples/lease", 5.0, identifier="first")
        two = second.NonBlockingLease("/examples/lease", 5.0, identifier="second")
        print("lease: first obtains it:", await one.obtain())
        print("lease: second obtains it:", await two.obtain())


async def partitioner(hosts: str) -> None:
    items = [f"item-{i}" for i in range(6)]
    shares: dict[str, list[str]] = {}

    async def member(name: str, ready: trio.Event) -> None:
        async with Client(hosts) as zk:
            part = zk.SetPartitioner("/examples/partition", set=items, identifier=name,
                                     time_boundary=0.5)  # fmt: skip

            async def work(partition: list[str]) -> None:
                shares[name] = sorted(partition)
                if len(shares) == 2 and sorted(i for s in shares.values() for i in s) == items:
                    ready.set()
                await trio.sleep_forever()

            await part.run(work)

    ready = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(member, "member-a", ready)
        nursery.start_soon(member, "member-b", ready)
        with trio.fail_after(30):
            await ready.wait()
        nursery.cancel_scope.cancel()
    for name in sorted(shares):
        print(f"partitioner: {name} works on {shares[name]}")


async def barrier_and_queue(hosts: str) -> None:
    async with Client(hosts) as coordinator, Client(hosts) as worker:
        gate = coordinator.Barrier("/examples/gate")
        await gate.create()
        lifted = trio.Event()

        async def wait_at_the_gate() -> None:
            await worker.Barrier("/examples/gate").wait(timeout=10)
            lifted.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_at_the_gate)
            await trio.sleep(0.1)
            print("barrier: worker still waiting:", not lifted.is_set())
            await gate.remove()
        print("barrier: worker passed after the barrier was removed:", lifted.is_set())

        await coordinator.Queue("/examples/queue").put_all([b"first", b"second", b"third"])
        consumer = worker.Queue("/examples/queue")
        taken = [await consumer.get(block=True, timeout=10) for _ in range(3)]
        print("queue:", [item.decode() for item in taken if item is not None])


async def main(hosts: str) -> None:
    async with Client(hosts) as zk:
        if await zk.exists("/examples"):
            await zk.delete("/examples", recursive=True)
        await zk.ensure_path("/examples")
    await read_write_lock(hosts)
    await lease(hosts)
    await partitioner(hosts)
    await barrier_and_queue(hosts)


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2281")
