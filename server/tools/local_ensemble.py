"""`coord-server ensemble --size 3`: a local ensemble on loopback, for trying things out.

It writes an ensemble config (ports picked free on 127.0.0.1) under the data
directory, starts one `coord-server --config ... --id N` process per member,
prints the connection string, and stops the members on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def _free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((host, 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def write_config(
    root: Path,
    size: int,
    observers: int,
    tick_ms: int,
    fsync: bool,
    *,
    zk: bool = False,
    hosts: list[str] | None = None,
) -> Path:
    """Write root/ensemble.toml for `size` voters and `observers` observers on loopback.

    With `zk`, every member also gets a ZooKeeper-compatible client port. `hosts`
    gives each member its own loopback address (127.0.0.2, ...), so that a firewall
    rule can cut one member off from the others; by default all share 127.0.0.1.
    """
    root.mkdir(parents=True, exist_ok=True)
    total = size + observers
    hosts = hosts or ["127.0.0.1"] * total
    if len(hosts) != total:
        raise ValueError(f"{len(hosts)} hosts for {total} members")
    ports = [port for host in hosts for port in _free_ports(2, host)]
    zk_ports = [_free_ports(1, host)[0] for host in hosts] if zk else []
    lines = [
        "[server]",
        f"fsync = {'true' if fsync else 'false'}",
        "",
        "[ensemble]",
        f"tick_ms = {tick_ms}",
        "init_limit = 10",
        "sync_limit = 5",
        f'data_root = "{root}"',
    ]
    for index in range(total):
        lines += [
            "",
            "[[ensemble.member]]",
            f"id = {index + 1}",
            f'host = "{hosts[index]}"',
            f"client_port = {ports[2 * index]}",
            f"peer_port = {ports[2 * index + 1]}",
            f"observer = {'true' if index >= size else 'false'}",
        ]
        if zk:
            lines.append(f"zk_port = {zk_ports[index]}")
    path = root / "ensemble.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def local_ensemble_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="coord-server ensemble", description="Run a local ensemble on 127.0.0.1."
    )
    parser.add_argument("--size", type=int, default=3, help="voting members (3 or 5)")
    parser.add_argument("--observers", type=int, default=0, help="non-voting members")
    parser.add_argument("--data-dir", type=Path, default=Path("coord-data/ensemble"))
    parser.add_argument("--tick-ms", type=int, default=200)
    parser.add_argument("--no-fsync", action="store_true", help="for benchmarks only")
    parser.add_argument(
        "--zk", action="store_true", help="also open a ZooKeeper-compatible port on every member"
    )
    args = parser.parse_args(argv)
    if args.size < 1:
        parser.error("--size must be at least 1")
    config = write_config(
        args.data_dir.resolve(),
        args.size,
        args.observers,
        args.tick_ms,
        not args.no_fsync,
        zk=args.zk,
    )
    members = []
    for member_id in range(1, args.size + args.observers + 1):
        members.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "coord.server",
                    "--config",
                    str(config),
                    "--id",
                    str(member_id),
                    "--log-level",
                    "WARNING",
                ],
                stdout=subprocess.DEVNULL,
            )
        )
    text = config.read_text()
    hosts = [
        f"127.0.0.1:{line.split('=')[1].strip()}"
        for line in text.splitlines()
        if line.startswith("client_port")
    ]
    zk_hosts = [
        f"127.0.0.1:{line.split('=')[1].strip()}"
        for line in text.splitlines()
        if line.startswith("zk_port")
    ]
    print(f"ensemble config: {config}")
    print(f"connection string: {','.join(hosts)}", flush=True)
    if zk_hosts:
        print(f"ZooKeeper connection string: {','.join(zk_hosts)}", flush=True)
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop and all(member.poll() is None for member in members):
            time.sleep(0.2)
    finally:
        for member in members:
            if member.poll() is None:
                member.terminate()
        for member in members:
            member.wait()
    return 0
