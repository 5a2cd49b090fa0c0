"""python -m coord.server.sim: run seeds of the whole-member simulator (see the package)."""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections import Counter

from coord.server.sim.world import run_seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coord.server.sim", description=__doc__)
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--seed", type=int, help="run this one seed")
    parser.add_argument("--trace", action="store_true", help="print the seed's event trace")
    parser.add_argument("--jobs", type=int, default=1, help="processes to run seeds in")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.start, args.start + args.seeds)
    totals: Counter[str] = Counter()
    failures = []
    started = time.perf_counter()
    if args.jobs > 1 and not args.trace:
        with multiprocessing.Pool(args.jobs) as pool:
            results = list(pool.imap(run_seed, seeds, chunksize=4))
    else:
        results = [run_seed(seed, trace=args.trace) for seed in seeds]
    for seed, result in zip(seeds, results, strict=True):
        totals.update(result.stats)
        if args.trace:
            print("\n".join(result.trace))
        if not result.ok:
            failures.append(result)
            print(
                f"FAIL {result.failure}\n  replay: python -m coord.server.sim --seed {seed} --trace"
            )
    elapsed = time.perf_counter() - started
    print(f"{len(seeds)} seeds, {len(failures)} failed, {elapsed:.1f} s")
    print("  " + ", ".join(f"{k}={v}" for k, v in sorted(totals.items())))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
