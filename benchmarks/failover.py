"""Time from a fault of the leader to the first acknowledged write after it.

    python benchmarks/failover.py [--tries 5] [--tick-ms 200] [--pause-s 12 | --isolate-s 3]

Starts a 3-member ensemble as real processes (fsync on) in a temporary
directory, keeps one client writing, and either kills the leader (SIGKILL,
then restarts it), or with --pause-s freezes it (SIGSTOP) for that long and
resumes it (SIGCONT), or with --isolate-s cuts it off from the other members
by firewall rules for that long (root and iptables; each member has its own
loopback address, tests/chaos/nemesis.py). Records how long after the fault
the first write sent after it was acknowledged, and counts every
SessionExpiredError the client was told: with a pause longer than the session
timeout, a resumed leader must not tell the live session it expired (target:
0). Prints every try and the
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
from tests.chaos.nemesis import Firewall
from tests.chaos.run import ADDRESSES
from tests.ensemble_procs import ProcessEnsemble


async def one_try(
    ensemble: ProcessEnsemble,
    zk: Client,
    round_number: int,
    pause_s: float,
    isolate_s: float,
    firewall: Firewall | None,
) -> float:
    leader = await ensemble.wait_all_serving()
    await zk.create(f"/failover/warm-{round_number}", b"")
    acked = trio.Event()

    async def writer() -> None:
        """Writes one after another; done at the first one sent after the fault that is
        acknowledged (one sent before it may be acknowledged after: it does not count)."""
        index = 0
        while True:
            sent_after_the_fault = killed.is_set()
            await zk.create(f"/failover/r{round_number}-{index}", b"x")
            index += 1
            if sent_after_the_fault:
                acked.set()
                return

    killed = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await trio.sleep(0.5)
        started = trio.current_time()
        address = ensemble.addresses[leader - 1]
        if pause_s:
            ensemble.signal(leader, signal.SIGSTOP)
        elif firewall is not None:
            firewall.cut(address, [a for a in ensemble.addresses if a != address])
        else:
            await ensemble.kill(leader)
        killed.set()

        async def undo() -> None:
            if pause_s:
                await trio.sleep(pause_s)
                ensemble.signal(leader, signal.SIGCONT)
            elif firewall is not None:
                await trio.sleep(isolate_s)
                firewall.heal()

        nursery.start_soon(undo)
        with trio.fail_after(60):
            await acked.wait()
        elapsed = trio.current_time() - started
    if not pause_s and firewall is None:
        await ensemble.start(leader)
    return elapsed


async def main(tries: int, tick_ms: int, pause_s: float, isolate_s: float) -> None:
    firewall = None
    if isolate_s:
        if Firewall.available():
            raise SystemExit(f"--isolate-s: {Firewall.available()}")
        firewall = Firewall()
        firewall.install()
    with tempfile.TemporaryDirectory() as root:
        ensemble = ProcessEnsemble(Path(root), size=3, tick_ms=tick_ms, addresses=ADDRESSES)
        await ensemble.start_all()
        try:
            await ensemble.wait_all_serving()
            async with Client(ensemble.hosts, session_timeout=10, request_timeout=30) as zk:
                await zk.ensure_path("/failover")
                times = []
                expired = 0
                for round_number in range(tries):
                    try:
                        elapsed = await one_try(
                            ensemble, zk, round_number, pause_s, isolate_s, firewall
                        )
                    except SessionExpiredError as exc:
                        expired += 1
                        print(f"try {round_number + 1}: told the session expired: {exc}")
                        break
                    times.append(elapsed)
                    print(f"try {round_number + 1}: {elapsed * 1000:.0f} ms", flush=True)
            fault = (
                f"pause {pause_s:g} s"
                if pause_s
                else f"isolate {isolate_s:g} s"
                if isolate_s
                else "kill"
            )
            if times:
                print(f"median {statistics.median(times) * 1000:.0f} ms over {len(times)} "
                      f"tries ({fault}; tick {tick_ms} ms, sync_limit 5 ticks)")  # fmt: skip
            print(f"SessionExpired told to the live session: {expired}")
        finally:
            await ensemble.stop_all()
            if firewall is not None:
                firewall.remove()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--tick-ms", type=int, default=200)
    parser.add_argument("--pause-s", type=float, default=0.0, help="pause instead of kill")
    parser.add_argument("--isolate-s", type=float, default=0.0, help="cut off instead of kill")
    args = parser.parse_args()
    trio.run(main, args.tries, args.tick_ms, args.pause_s, args.isolate_s)
