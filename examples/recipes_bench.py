"""Measure the lock and the election against a running coord-server.

    coord-server --config bench.toml            # max_client_connections = 0 for 100 clients
    python examples/recipes_bench.py 127.0.0.1:2281 [seconds-per-run]

Prints:
- lock hand-over latency: from the moment the holder starts releasing (its
  `async with` block ends) to the moment the next waiter's `async with`
  body starts, over many hand-overs between two clients; median and p99;
- acquisitions per second with 1, 10 and 100 contenders, each a Client of
  its own looping `async with zk.Lock(path): pass`;
- election fail-over: the leader is a separate process, ended with SIGINT
  (it leaves cleanly and closes its session: its node goes at once) or
  SIGKILL (its session ends only when the server expires it); the time from
  the signal until the next leader's work starts.
All clients run in this one process, so every time is read from one clock.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys

import trio

from coord.client import Client

ROOT = "/bench/recipes"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def handover(hosts: str, rounds: int) -> list[float]:
    """Two clients pass the lock back and forth; each hand-over is timed."""
    released_at: list[float] = []
    latencies: list[float] = []
    path = f"{ROOT}/handover"

    async def side(zk: Client, turns: int) -> None:
        for _ in range(turns):
            async with zk.Lock(path):
                if released_at:
                    latencies.append(trio.current_time() - released_at[-1])
                await trio.sleep(0.001)  # let the other side queue up behind us
                released_at.append(trio.current_time())

    async with Client(hosts) as a, Client(hosts) as b, trio.open_nursery() as nursery:
        nursery.start_soon(side, a, rounds)
        nursery.start_soon(side, b, rounds)
    return latencies


async def throughput(hosts: str, contenders: int, seconds: float) -> float:
    path = f"{ROOT}/tp{contenders}"
    count = 0
    started = trio.Event()
    deadline = 0.0

    async def contender(zk: Client) -> None:
        nonlocal count
        await started.wait()
        while trio.current_time() < deadline:
            async with zk.Lock(path):
                count += 1

    async with trio.open_nursery() as outer:
        clients: list[Client] = []

        async def open_client(task_status: trio.TaskStatus[Client]) -> None:
            async with Client(hosts, session_timeout=20) as zk:
                task_status.started(zk)
                await trio.sleep_forever()

        for _ in range(contenders):
            clients.append(await outer.start(open_client))
        async with trio.open_nursery() as nursery:
            for zk in clients:
                nursery.start_soon(contender, zk)
            await trio.sleep(0.1)
            begin = trio.current_time()
            deadline = begin + seconds
            started.set()
        elapsed = trio.current_time() - begin
        outer.cancel_scope.cancel()
    return count / elapsed


LEADER = """
import sys, trio
from coord.client import Client
async def main():
    async with Client(sys.argv[1], session_timeout=float(sys.argv[3])) as zk:
        async with zk.Election(sys.argv[2], "old").lead():
            print("leading", flush=True)
            await trio.sleep_forever()
trio.run(main)
"""


async def failover(hosts: str, *, kill: bool, session_timeout: float) -> float:
    """Seconds from the leader's end to the next leader's work starting.

    The old leader is a process of its own. `kill`: SIGKILL, so its session
    ends only when the server expires it; otherwise SIGINT, so it leaves its
    block and closes its session cleanly (its node goes at once).
    """
    path = f"{ROOT}/election-{'kill' if kill else 'exit'}"
    led_at = 0.0
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", LEADER, hosts, path, str(session_timeout)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    buffer = b""
    while b"leading" not in buffer:
        buffer += await process.stdout.receive_some()
    async with Client(hosts, session_timeout=session_timeout) as follower:
        async with trio.open_nursery() as nursery:

            async def campaign(task_status: trio.TaskStatus[None]) -> None:
                nonlocal led_at
                election = follower.Election(path, "new")
                task_status.started()
                async with election.lead():
                    led_at = trio.current_time()

            await nursery.start(campaign)
            await trio.sleep(0.2)
            ended_at = trio.current_time()
            process.send_signal(signal.SIGKILL if kill else signal.SIGINT)
        await process.wait()
    return led_at - ended_at


async def main(hosts: str, seconds: float) -> None:
    async with Client(hosts) as zk:
        if await zk.exists(ROOT):
            await zk.delete(ROOT, recursive=True)
    latencies = await handover(hosts, 300)
    print(
        f"lock hand-over over {len(latencies)} hand-overs: median"
        f" {statistics.median(latencies) * 1000:.2f} ms, p99 {pct(latencies, 0.99) * 1000:.2f} ms"
    )
    for contenders in (1, 10, 100):
        rate = await throughput(hosts, contenders, seconds)
        print(f"acquisitions per second with {contenders:3d} contenders: {rate:7.0f}")
    for kill in (False, True):
        times = [await failover(hosts, kill=kill, session_timeout=2.0) for _ in range(3)]
        how = "SIGKILL, the session expires (timeout 2 s)" if kill else "SIGINT, clean exit"
        print(f"election fail-over, {how}: " + ", ".join(f"{t * 1000:.0f} ms" for t in times))


if __name__ == "__main__":
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2281"
    trio.run(main, address, float(sys.argv[2]) if len(sys.argv) > 2 else 3.0)
