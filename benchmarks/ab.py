"""A/B throughput of two source trees of this project, run alternately on one machine.

    python benchmarks/ab.py OLD_TREE NEW_TREE [--rounds 5] [--clients 8] [--outstanding 32]

Each round starts a standalone server from OLD_TREE, runs `coord bench`
(from this checkout) against it, stops it, then does the same for NEW_TREE,
so that both see the same machine noise. Prints each round and, per
workload, the median ops/s of each tree and the ratio NEW/OLD. The servers
run with --no-fsync: the point is the CPU cost of a change, not the disk's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def run_round(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    """One server from `tree`, one bench against it: ops/s by workload."""
    with tempfile.TemporaryDirectory() as data:
        log_path = Path(data) / "server.log"
        command = [sys.executable, "-m", "server", "--port", "0", "--no-fsync"]
        command += ["--data-dir", f"{data}/d"]
        with log_path.open("w") as log:
            server = subprocess.Popen(
                command,
                cwd=tree,
                env={**os.environ, "PYTHONPATH": str(tree)},
                stderr=log,
            )
        try:
            port = _wait_for_port(server, log_path)
            bench = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "client.cli",
                    "-s",
                    f"127.0.0.1:{port}",
                    "bench",
                    "--clients",
                    str(args.clients),
                    "--outstanding",
                    str(args.outstanding),
                    "--duration",
                    str(args.duration),
                    "--workloads",
                    args.workloads,
                    "--json",
                    "-q",
                ],
                cwd=HERE,
                env={**os.environ, "PYTHONPATH": str(HERE)},
                capture_output=True,
                text=True,
            )
            if bench.returncode != 0:
                raise RuntimeError(f"bench failed: {bench.stderr}")
        finally:
            server.terminate()
            server.wait(timeout=30)
    results = json.loads(bench.stdout)["results"]
    return {r["workload"]: float(r["ops_per_sec"]) for r in results}


def _wait_for_port(server: subprocess.Popen[bytes], log_path: Path) -> int:
    """The port from the server's start-up line in its log."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        found = re.search(r"serving on 127\.0\.0\.1:(\d+)", log_path.read_text())
        if found:
            return int(found.group(1))
        time.sleep(0.05)
    raise RuntimeError(f"the server did not start: {log_path.read_text()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--outstanding", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--workloads", default="create,set,get")
    args = parser.parse_args()
    samples: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    for round_number in range(args.rounds):
        for name, tree in (("old", args.old), ("new", args.new)):
            got = run_round(tree.resolve(), args)
            for workload, ops in got.items():
                samples[name].setdefault(workload, []).append(ops)
            shown = ", ".join(f"{w} {ops:,.0f}" for w, ops in got.items())
            print(f"round {round_number + 1} {name}: {shown} ops/s", flush=True)
    print(f"\nmedians over {args.rounds} rounds ({args.clients}x{args.outstanding}):")
    for workload in samples["old"]:
        old = statistics.median(samples["old"][workload])
        new = statistics.median(samples["new"][workload])
        print(f"  {workload:8} old {old:10,.0f}  new {new:10,.0f}  new/old {new / old:.3f}")


if __name__ == "__main__":
    main()
