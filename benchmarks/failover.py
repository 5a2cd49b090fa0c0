"""Time from SIGKILL of the leader to the first acknowledged write after it.

    python benchmarks/failover.py [--tries 5] [--tick-ms 200]

Starts a 3-member ensemble as real processes (fsync on) in a temporary
directory, keeps one client writing, kills the leader, records how long the
client waited for its next acknowledged write, restarts the killed member,
and repeats. Prints every try and the median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coord.client import Client
from tests.ensemble_procs import ProcessEnsemble


async def one_try(ensemble: ProcessEnsemble, zk: Client, round_number: int) -> float:
    leader = await ensemble.wait_all_serving()
    await zk.create(f"/failover/warm-{round_number}", b"")
    acked = trio.Event()

    async def writer() -> None:
        index = 0
        while True:
            await zk.create(f"/failover/r{round_number}-{index}", b"x")
            index += 1
            if killed.is_set():
                acked.set()
                return

    killed = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await trio.sleep(0.5)
        started = trio.current_time()
        await ensemble.kill(leader)
        killed.set()
        with trio.fail_after(30):
            await acked.wait()
        elapsed = trio.current_time() - started
    await ensemble.start(leader)
    return elapsed


async def main(tries: int, tick_ms: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        ensemble = ProcessEnsemble(Path(root), size=3, tick_ms=tick_ms)
        await ensemble.start_all()
        try:
            await ensemble.wait_all_serving()
            async with Client(ensemble.hosts, session_timeout=10, request_timeout=30) as zk:
                await zk.ensure_path("/failover")
                times = []
                for round_number in range(tries):
                    elapsed = await one_try(ensemble, zk, round_number)
                    times.append(elapsed)
                    print(f"try {round_number + 1}: {elapsed * 1000:.0f} ms", flush=True)
            print(f"median {statistics.median(times) * 1000:.0f} ms over {tries} tries "
                  f"(tick {tick_ms} ms, sync_limit 5 ticks)")  # fmt: skip
        finally:
            await ensemble.stop_all()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--tick-ms", type=int, default=200)
    args = parser.parse_args()
    trio.run(main, args.tries, args.tick_ms)
