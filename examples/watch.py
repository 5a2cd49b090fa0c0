"""A persistent recursive watch: every change below a path, as it happens.

    python examples/watch.py 127.0.0.1:2281            # a short demo, then exit
    python examples/watch.py 127.0.0.1:2281 forever    # until Ctrl-C

Unlike a one-shot watch, a persistent watch stays in place after it fires,
so no change can slip through between an event and re-arming the watch.
`zk.watch()` gives it as an async iterator and removes it when the block
ends. In the demo a second task makes a few changes; in `forever` mode try
`coord create /examples/watch/x hi` from another terminal.
"""

from __future__ import annotations

import sys

import trio

from coord.client import Client

ROOT = "/examples/watch"
DEMO_EVENTS = 5  # the changes make_changes() makes, one event each


async def make_changes(zk: Client) -> None:
    """Create, change and delete nodes under ROOT: five events for the watcher."""
    await zk.create(f"{ROOT}/config", b"v1")
    await zk.create(f"{ROOT}/config/db", b"host=a")
    await zk.set(f"{ROOT}/config/db", b"host=b")
    await zk.delete(f"{ROOT}/config/db")
    await zk.delete(f"{ROOT}/config")


async def main(hosts: str, forever: bool) -> None:
    async with Client(hosts, session_timeout=10) as zk:
        await zk.ensure_path(ROOT)
        seen = 0
        async with zk.watch(ROOT, recursive=True) as events, trio.open_nursery() as nursery:
            if not forever:
                nursery.start_soon(make_changes, zk)
            print(f"watching {ROOT} and everything below it")
            async for event in events:
                print(f"{event.type.name:8} {event.path} (zxid 0x{event.zxid:x})")
                seen += 1
                if not forever and seen == DEMO_EVENTS:
                    break


if __name__ == "__main__":
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2281"
    try:
        trio.run(main, address, len(sys.argv) > 2 and sys.argv[2] == "forever")
    except KeyboardInterrupt:
        pass
