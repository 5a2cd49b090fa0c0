"""The basic flow: an ephemeral sequential node, get, a versioned set, children, delete.

    coord-server --port 2281 &
    python examples/basic.py 127.0.0.1:2281

Every step prints what it did, so the output reads as a walk through the
API. The conditional set shows optimistic concurrency: a write that names
the version it read fails with BadVersionError if anyone wrote in between,
instead of silently overwriting their change.
"""

from __future__ import annotations

import sys

import trio

from coord.client import BadVersionError, Client

ROOT = "/examples/basic"


async def main(hosts: str) -> None:
    async with Client(hosts, session_timeout=10) as zk:
        await zk.ensure_path(ROOT)
        # Ephemeral: gone when this session ends. Sequential: the server
        # appends a unique, increasing counter, so workers never collide.
        path = await zk.create(f"{ROOT}/worker-", b"hello", ephemeral=True, sequential=True)
        print(f"created {path}")

        data, stat = await zk.get(path)
        print(f"get {path}: {data!r} (version {stat.version}, owner 0x{stat.ephemeral_owner:x})")

        stat = await zk.set(path, b"updated", version=stat.version)
        print(f"set {path} at the version read: now version {stat.version}")
        try:
            await zk.set(path, b"stale", version=0)
        except BadVersionError as exc:
            print(f"set with a stale version refused: {exc}")

        children = await zk.get_children(ROOT)
        print(f"children of {ROOT}: {children}")

        await zk.delete(path, version=stat.version)
        print(f"deleted {path}; exists now: {await zk.exists(path)}")


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2281")
