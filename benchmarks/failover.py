"""Time from a fault of the leader to the first acknowledged write after it.

    python benchmarks/failover.py [--tries 5] [--tick-ms 200] [--pause-s 12]

Starts a 3-member ensemble as real processes (fsync on) in a temporary
directory, keeps one client writing, and either kills the leader (SIGKILL,
then restarts it) or, with --pause-s, freezes it (SIGSTOP) for that long and
resumes it (SIGCONT). Records how long the client waited for its next
acknowledged write, and counts every SessionExpiredError the client was
told: with a pause longer than the session timeout, a resumed leader must
not tell the live session it expired (target: 0). Prints every try and the
median.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coord.client import Client
from coord.errors import SessionExpiredError
from tests.ensemble_procs import ProcessEnsemble


async def one_try(
    ensemble: ProcessEnsemble, zk: Client, round_number: int, pause_s: float
) -> float:
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
        if pause_s:
            ensemble.signal(leader, signal.SIGSTOP)
        else:
            await ensemble.kill(leader)
        killed.set()
        if pause_s:
            await trio.sleep(pause_s)
            ensemble.signal(leader, signal.SIGCONT)
        with trio.fail_after(60):
            await acked.wait()
        elapsed = trio.current_time() - started
    if not pause_s:
        await ensemble.start(leader)
    return elapsed


async def main(tries: int, tick_ms: int, pause_s: float) -> None:
    with tempfile.TemporaryDirectory() as root:
        ensemble = ProcessEnsemble(Path(root), size=3, tick_ms=tick_ms)
        await ensemble.start_all()
        try:
            await ensemble.wait_all_serving()
            async with Client(ensemble.hosts, session_timeout=10, request_timeout=30) as zk:
                await zk.ensure_path("/failover")
                times = []
                expired = 0
                for round_number in range(tries):
                    try:
                        elapsed = await one_try(ensemble, zk, round_number, pause_s)
                    except SessionExpiredError as exc:
                        expired += 1
                        print(f"try {round_number + 1}: told the session expired: {exc}")
                        break
                    times.append(elapsed)
                    print(f"try {round_number + 1}: {elapsed * 1000:.0f} ms", flush=True)
            fault = f"pause {pause_s:g} s" if pause_s else "kill"
            if times:
                print(f"median {statistics.median(times) * 1000:.0f} ms over {len(times)} "
                      f"tries ({fault}; tick {tick_ms} ms, sync_limit 5 ticks)")  # fmt: skip
            print(f"SessionExpired told to the live session: {expired}")
        finally:
            await ensemble.stop_all()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--tick-ms", type=int, default=200)
    parser.add_argument("--pause-s", type=float, default=0.0, help="pause instead of kill")
    args = parser.parse_args()
    trio.run(main, args.tries, args.tick_ms, args.pause_s)
