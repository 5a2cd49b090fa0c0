"""Three candidates elect a leader; each leads for a moment, then steps down.

    python examples/recipes_election.py 127.0.0.1:2281

The leader's work runs in a scope that is cancelled if leadership can no
longer be trusted; its token grows from one leader to the next.
"""

from __future__ import annotations

import sys

import trio

from coord.client import Client

PATH = "/examples/recipes/election"


async def candidate(hosts: str, name: str, done: list[str]) -> None:
    async with Client(hosts, session_timeout=10) as zk:
        election = zk.Election(PATH, identifier=name)

        async def lead() -> None:
            contenders = await election.contenders()
            print(f"{name} leads (token 0x{election.token:x}); contenders: {contenders}")
            await trio.sleep(0.05)

        await election.run(lead)
        done.append(name)


async def main(hosts: str) -> None:
    done: list[str] = []
    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(candidate, hosts, f"node-{i}", done)
            await trio.sleep(0.02)
    print(f"every candidate led once: {sorted(done)}")


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2281")
