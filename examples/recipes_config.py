"""Config watches: a DataWatch, a ChildrenWatch and a TreeCache follow changes.

    python examples/recipes_config.py 127.0.0.1:2281

A writer changes a config value and registers services; the watches print
the current value first, then each change (a burst may collapse into its
latest value, never into an older one).
"""

from __future__ import annotations

import sys

import trio

from coord.client import Client

ROOT = "/examples/recipes/config"


async def writer(zk: Client) -> None:
    for version in range(2, 5):
        await trio.sleep(0.05)
        await zk.set(f"{ROOT}/db", b"host=db%d" % version)
    await zk.create(f"{ROOT}/services/api-1", b"10.0.0.1", ephemeral=True)
    await zk.create(f"{ROOT}/services/api-2", b"10.0.0.2", ephemeral=True)


async def main(hosts: str) -> None:
    async with Client(hosts, session_timeout=10) as zk:
        await zk.delete(ROOT, recursive=True) if await zk.exists(ROOT) else None
        await zk.create(f"{ROOT}/db", b"host=db1", makepath=True)
        await zk.ensure_path(f"{ROOT}/services")
        async with zk.TreeCache(ROOT) as cache, trio.open_nursery() as nursery:
            nursery.start_soon(writer, zk)
            async with zk.DataWatch(f"{ROOT}/db") as config:
                async for data, _stat in config:
                    print(f"db config: {data!r}")
                    if data == b"host=db4":
                        break
            async with zk.ChildrenWatch(f"{ROOT}/services") as services:
                async for names in services:
                    print(f"services: {names}")
                    if len(names) == 2:
                        break
            with trio.fail_after(5):
                while cache.get_children(f"{ROOT}/services") != {"api-1", "api-2"}:
                    await trio.sleep(0.01)
            print(f"tree cache: {sorted(cache.snapshot())}")


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2281")
