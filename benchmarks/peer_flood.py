"""Attack B as a measurement: two connections stream 300 MB frames at a leader's peer port.

    python benchmarks/peer_flood.py [--mb 300] [--connections 2]

Starts a local 3-member ensemble (no secret, as an attacker without one
would face an ensemble configured without it), finds the leader from the
members' logs, samples its RSS (VmRSS) before, then while each connection
sends `{"hello": <a member id>}` and a frame header declaring `--mb` MB
followed by that many bytes, and reports the peak. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgpack

from coord.server.tools.local_ensemble import write_config

_ROLE = re.compile(r"member (\d+) is leading")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _flood(port: int, hello_id: int, size: int, sent: list[int]) -> None:
    chunk = b"\0" * (1 << 20)
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            hello = msgpack.packb({"hello": hello_id})
            sock.sendall(struct.pack(">I", len(hello)) + hello + struct.pack(">I", size))
            total = 0
            while total < size:
                sock.sendall(chunk)
                total += len(chunk)
                sent.append(len(chunk))
    except OSError:
        pass  # the member closed the connection


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=300)
    parser.add_argument("--connections", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="peer-flood-"))
    config = write_config(root, 3, 0, 100, False)
    ports = [int(x) for x in re.findall(r"peer_port = (\d+)", config.read_text())]
    procs = []
    for member in (1, 2, 3):
        log = open(root / f"member-{member}.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "coord.server", "--config", str(config), "--id", str(member),
             "--log-level", "INFO"], stdout=subprocess.DEVNULL, stderr=log))  # fmt: skip
    try:
        leader = None
        deadline = time.monotonic() + 30
        while leader is None and time.monotonic() < deadline:
            for member in (1, 2, 3):
                if _ROLE.search((root / f"member-{member}.log").read_text(errors="replace")):
                    leader = member
            time.sleep(0.1)
        if leader is None:
            print("no leader", file=sys.stderr)
            return 1
        time.sleep(1.0)
        pid = procs[leader - 1].pid
        before = _rss_mb(pid)
        sent: list[int] = []
        other = next(m for m in (1, 2, 3) if m != leader)
        threads = [
            threading.Thread(
                target=_flood, args=(ports[leader - 1], other, args.mb * 1_000_000, sent)
            )
            for _ in range(args.connections)
        ]
        for thread in threads:
            thread.start()
        peak = before
        while any(t.is_alive() for t in threads):
            peak = max(peak, _rss_mb(pid))
            time.sleep(0.05)
        time.sleep(0.5)
        peak = max(peak, _rss_mb(pid))
        alive = procs[leader - 1].poll() is None
        accepted = sum(sent) / 1e6
        print(f"leader {leader}: RSS before {before:.0f} MB, peak while flooded {peak:.0f} MB, "
              f"attacker bytes accepted {accepted:.0f} MB, leader alive: {alive}")  # fmt: skip
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
