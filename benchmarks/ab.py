"""A/B throughput of two source trees of this project, run alternately on one machine.

    python benchmarks/ab.py OLD_TREE NEW_TREE [--rounds 5] [--clients 8] [--outstanding 32]
                            [--ensemble 3]

Each round starts a standalone server (or, with --ensemble N, a local
ensemble of N members, `coord-server ensemble`) from OLD_TREE, runs `coord
bench` (from this checkout) against it, stops it, then does the same for NEW_TREE,
so that both see the same machine noise. Prints each round and, per
workload, the medians of each tree and the ratio NEW/OLD of two figures:
ops/s, and the server's CPU time per op (user + system, from /proc), which
is what a change on the hot path costs and is steadier than throughput on
a shared machine (for an ensemble: the CPU of all its members together).
The servers run with --no-fsync: the point is the CPU cost of a change, not
the disk's. Each workload is one `coord bench` run.
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
from typing import Any

HERE = Path(__file__).resolve().parents[1]


def run_round(tree: Path, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """One server from `tree`, a bench per workload: (ops/s, server CPU µs per op)."""
    if args.ensemble:
        return _run_ensemble_round(tree, args)
    with tempfile.TemporaryDirectory() as data:
        log_path = Path(data) / "server.log"
        command = [sys.executable, "-m", "coord.server", "--port", "0", "--no-fsync"]
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
            out: dict[str, tuple[float, float]] = {}
            for workload in args.workloads.split(","):
                cpu_before = _cpu_seconds(server.pid)
                result = _bench(port, workload, args)
                cpu = _cpu_seconds(server.pid) - cpu_before
                out[workload] = (result["ops_per_sec"], cpu * 1e6 / max(result["ops"], 1))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return out


def _run_ensemble_round(tree: Path, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """A local ensemble of `args.ensemble` members from `tree`; the bench spreads its
    clients over all of them."""
    with tempfile.TemporaryDirectory() as data:
        command = [sys.executable, "-m", "coord.server", "ensemble", "--no-fsync"]
        command += ["--size", str(args.ensemble), "--data-dir", f"{data}/e"]
        launcher = subprocess.Popen(
            command,
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree)},
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            hosts = ""
            assert launcher.stdout is not None
            for line in launcher.stdout:
                if line.startswith("connection string:"):
                    hosts = line.split(":", 1)[1].strip()
                    break
            members = _children(launcher.pid)
            _bench(hosts, "get", argparse.Namespace(**{**vars(args), "duration": 1.0}))
            out: dict[str, tuple[float, float]] = {}
            for workload in args.workloads.split(","):
                cpu_before = sum(_cpu_seconds(pid) for pid in members)
                result = _bench(hosts, workload, args)
                cpu = sum(_cpu_seconds(pid) for pid in members) - cpu_before
                out[workload] = (result["ops_per_sec"], cpu * 1e6 / max(result["ops"], 1))
        finally:
            launcher.terminate()
            launcher.wait(timeout=30)
    return out


def _children(pid: int) -> list[int]:
    """The member processes a launcher started (Linux /proc)."""
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def _bench(port: int | str, workload: str, args: argparse.Namespace) -> dict[str, Any]:
    """One `coord bench` of one workload; its result record."""
    bench = subprocess.run(
        [
            sys.executable,
            "-m",
            "coord.client.cli",
            "-s",
            port if isinstance(port, str) else f"127.0.0.1:{port}",
            "bench",
            "--clients",
            str(args.clients),
            "--outstanding",
            str(args.outstanding),
            "--duration",
            str(args.duration),
            "--workloads",
            workload,
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
    (record,) = json.loads(bench.stdout)["results"]
    return dict(record)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    parser.add_argument("--ensemble", type=int, default=0, help="members (0: standalone)")
    args = parser.parse_args()
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {"old": {}, "new": {}}
    for round_number in range(args.rounds):
        for name, tree in (("old", args.old), ("new", args.new)):
            got = run_round(tree.resolve(), args)
            for workload, figures in got.items():
                samples[name].setdefault(workload, []).append(figures)
            shown = ", ".join(
                f"{w} {ops:,.0f} ops/s {us:.0f} us/op" for w, (ops, us) in got.items()
            )
            print(f"round {round_number + 1} {name}: {shown}", flush=True)
    print(f"\nmedians over {args.rounds} rounds ({args.clients}x{args.outstanding}):")
    for workload in samples["old"]:
        old_ops, old_us = (
            statistics.median(x) for x in zip(*samples["old"][workload], strict=True)
        )
        new_ops, new_us = (
            statistics.median(x) for x in zip(*samples["new"][workload], strict=True)
        )
        print(
            f"  {workload:8} ops/s old {old_ops:9,.0f} new {new_ops:9,.0f}"
            f" new/old {new_ops / old_ops:.3f} | server CPU us/op old {old_us:6.1f}"
            f" new {new_us:6.1f} new/old {new_us / old_us:.3f}"
        )


if __name__ == "__main__":
    main()
