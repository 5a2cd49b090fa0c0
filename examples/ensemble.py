"""Start a local 3-member ensemble from Python, use it, and watch it survive a member's loss.

    python examples/ensemble.py [DATA_DIR]

The members run in this process (each with its own ports and data directory on
127.0.0.1); `coord-server ensemble --size 3` does the same with one process
per member. The client gets all three addresses and moves between them.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import trio

from coord.client import Client
from coord.server.config import load_config
from coord.server.runtime.member import EnsembleMember
from coord.server.tools.local_ensemble import write_config


async def run_member(
    member: EnsembleMember,
    scope: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until `scope` is cancelled (this example's way to stop one member)."""
    with scope:
        await member.serve(task_status=task_status)


async def main(root: Path) -> None:
    config_path = write_config(root, size=3, observers=0, tick_ms=100, fsync=True)
    configs = [load_config(config_path, {}, member_id=i) for i in (1, 2, 3)]
    hosts = configs[0].ensemble.connection_string()  # type: ignore[union-attr]
    print(f"connection string: {hosts}")
    async with trio.open_nursery() as nursery:
        scopes = {config.server_id: trio.CancelScope() for config in configs}
        for config in configs:
            await nursery.start(run_member, EnsembleMember(config), scopes[config.server_id])
        async with Client(hosts, session_timeout=4) as zk:
            await zk.ensure_path("/demo")
            for i in range(3):
                await zk.create(f"/demo/item-{i}", b"%d" % i)
            print("connected to", zk.connected_host, "children:", await zk.get_children("/demo"))
            # Stop the member this client talks to; the client moves on with its session.
            port = int((zk.connected_host or "").rsplit(":", 1)[1])
            victim = next(c.server_id for c in configs if c.port == port)
            scopes[victim].cancel()
            print(f"stopped member {victim}")
            await zk.create("/demo/after", b"still here")
            print("now on", zk.connected_host, "children:", await zk.get_children("/demo"))
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="coord-"))
    trio.run(main, directory)
