"""Work distribution: a locking queue, a counter, a party, a barrier and a semaphore.

    python examples/recipes_work.py 127.0.0.1:2281

Three workers join a party, wait at a double barrier until all are there,
then take jobs from a LockingQueue (a job is removed only after its worker
finished it), run at most two at a time (a Semaphore), and count the jobs
done with a Counter.
"""

from __future__ import annotations

import sys

import trio

from coord.client import Client

ROOT = "/examples/recipes/work"
WORKERS = 3
JOBS = 9


async def worker(hosts: str, name: str) -> None:
    async with Client(hosts, session_timeout=10) as zk, zk.Party(f"{ROOT}/party", identifier=name):
        barrier = zk.DoubleBarrier(f"{ROOT}/start", WORKERS, identifier=name)
        await barrier.enter()
        queue = zk.LockingQueue(f"{ROOT}/jobs")
        done = zk.Counter(f"{ROOT}/done")
        while True:
            job = await queue.get(timeout=0.5)
            if job is None:
                break
            async with zk.Semaphore(f"{ROOT}/slots", identifier=name, max_leases=2):
                await trio.sleep(0.01)
            await queue.consume()
            print(f"{name} did {job.decode()}; done: {await done.add(1)}")
        await barrier.leave()


async def main(hosts: str) -> None:
    async with Client(hosts, session_timeout=10) as zk:
        if await zk.exists(ROOT):
            await zk.delete(ROOT, recursive=True)
        await zk.LockingQueue(f"{ROOT}/jobs").put_all([b"job-%d" % i for i in range(JOBS)])
        async with trio.open_nursery() as nursery:
            for i in range(WORKERS):
                nursery.start_soon(worker, hosts, f"worker-{i}")
        print(f"all done: {await zk.Counter(f'{ROOT}/done').get()} jobs")


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2281")
