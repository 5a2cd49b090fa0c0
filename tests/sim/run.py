"""Run many simulator seeds from the command line, in parallel, and summarize.

    python -m tests.sim.run --seeds 5000              # seeds 0..4999, every core
    python -m tests.sim.run --seeds 2000 --start 10000 --jobs 2
    python -m tests.sim.run --seed 1234 --trace       # one seed, with its event trace
    python -m tests.sim.run --seeds 1000 --network datagram   # beyond the TCP contract
    python -m tests.sim.run --seeds 1000 --sync-reads leader  # the weaker sync design

It prints the seeds run and the time taken, the faults injected over all of
them (drops, duplicates, partitions, crashes, restarts, torn writes, clock
jumps, ...), the client operations, and every failing seed with its first
line and how to reproduce it. The exit status is 1 when a seed failed.
Results do not depend on --jobs: each seed is a separate, deterministic run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from multiprocessing import Pool

from tests.sim.cluster import Stats
from tests.sim.simulation import (
    LIVENESS_STEPS,
    NETWORKS,
    SAFETY_STEPS,
    Result,
    SimConfig,
    run_seed,
)

_options: argparse.Namespace


def _init(options: argparse.Namespace) -> None:
    global _options
    _options = options


def _run(seed: int) -> Result:
    config = SimConfig.from_seed(
        seed,
        network=_options.network,
        sync_reads=_options.sync_reads,
        safety_steps=_options.safety_steps,
        liveness_steps=_options.liveness_steps,
    )
    result = run_seed(seed, config=config, trace=_options.trace)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.sim.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seeds", type=int, default=1000, help="how many seeds (default 1000)")
    parser.add_argument("--start", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--seed", type=int, help="run just this seed")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--network", choices=NETWORKS, default="fifo")
    parser.add_argument("--sync-reads", choices=("marker", "leader"), default="marker")
    parser.add_argument("--safety-steps", type=int, default=SAFETY_STEPS)
    parser.add_argument("--liveness-steps", type=int, default=LIVENESS_STEPS)
    parser.add_argument("--trace", action="store_true", help="print the event trace (one seed)")
    parser.add_argument("--trace-lines", type=int, default=200)
    options = parser.parse_args(argv)
    seeds = [options.seed] if options.seed is not None else list(
        range(options.start, options.start + options.seeds)
    )  # fmt: skip
    options.trace = options.trace and len(seeds) == 1

    started = time.monotonic()
    if options.jobs > 1 and len(seeds) > 1:
        with Pool(options.jobs, initializer=_init, initargs=(options,)) as pool:
            results = list(pool.imap(_run, seeds, chunksize=16))
    else:
        _init(options)
        results = [_run(seed) for seed in seeds]
    elapsed = time.monotonic() - started

    total = Stats()
    for result in results:
        total.add(result.stats)
    failed = [r for r in results if not r.ok]
    print(
        f"{len(results)} seeds ({options.network} network, {options.sync_reads} sync reads) "
        f"in {elapsed:.1f} s with {options.jobs} job(s): {len(failed)} failed"
    )
    print("faults injected:")
    faults = (
        ("steps", total.steps),
        ("packets delivered", total.delivered),
        ("drops", total.drops),
        ("duplicates", total.dups),
        ("lost (crashed target or partition)", total.lost),
        ("partitions", total.partitions),
        ("heals", total.heals),
        ("crashes", total.crashes),
        ("restarts", total.restarts),
        ("torn writes", total.torn_writes),
        ("log records lost to them", total.lost_appends),
        ("crashes mid-send", total.partial_sends),
        ("clock jumps", total.clock_jumps),
        ("slow Readys", total.slow_readys),
    )
    for name, value in faults:
        print(f"  {name:36} {value}")
    print("protocol:")
    for name, value in (
        ("leaders established", total.leaders),
        ("DIFF syncs sent", total.diffs_sent),
        ("TRUNC syncs sent", total.truncs_sent),
        ("SNAP syncs sent", total.snaps_sent),
        ("truncations carried out", total.truncs),
        ("snapshots installed", total.snaps),
    ):
        print(f"  {name:36} {value}")
    print("clients:")
    for name, value in (
        ("writes", sum(r.writes for r in results)),
        ("writes acknowledged", sum(r.acked for r in results)),
        ("sync reads", sum(r.sync_reads for r in results)),
        ("sync reads answered", sum(r.sync_reads_done for r in results)),
        ("plain reads", sum(r.plain_reads for r in results)),
        ("plain reads of uncommitted values", sum(r.phantom_reads for r in results)),
    ):
        print(f"  {name:36} {value}")
    if results:
        longest = max(results, key=lambda r: r.liveness_steps)
        print(f"  longest liveness phase: {longest.liveness_steps} steps (seed {longest.seed})")
    for result in failed:
        lines = result.failure.splitlines()
        print(f"FAILED seed {result.seed}: {lines[0]}")
        print(f"  {lines[-1]}")
    if options.trace and results:
        print("\n".join(results[0].trace[-options.trace_lines :]))
        if failed:
            print(failed[0].failure)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
