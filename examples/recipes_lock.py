"""Three workers take turns with a lock and write to a store that checks fencing tokens.

    python examples/recipes_lock.py 127.0.0.1:2281

Each worker writes with its lock's token; the store (a FencingVerifier in
front of a dict) refuses any token older than one it has seen, so a worker
that lost the lock without noticing could not overwrite a newer value. The
last lines show such a stale write being refused.
"""

from __future__ import annotations

import sys

import trio

from coord.client import Client
from coord.client.recipes import FencingVerifier, StaleTokenError

PATH = "/examples/recipes/lock"


class FencedStore:
    """A toy storage service that refuses writes carrying a stale token."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.verifier = FencingVerifier()

    def write(self, key: str, value: str, token: int) -> None:
        self.verifier.check(token, resource=key)
        self.data[key] = value


async def worker(hosts: str, name: str, store: FencedStore, tokens: list[int]) -> None:
    async with Client(hosts, session_timeout=10) as zk:
        for turn in range(2):
            async with zk.Lock(PATH, identifier=name, timeout=30) as lock:
                assert lock.token is not None
                tokens.append(lock.token)
                store.write("balance", f"{name}/{turn}", lock.token)
                print(f"{name} holds the lock with token 0x{lock.token:x}")
                await trio.sleep(0.01)


async def main(hosts: str) -> None:
    store = FencedStore()
    tokens: list[int] = []
    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(worker, hosts, f"worker-{i}", store, tokens)
    print(f"tokens grew with every holder: {tokens == sorted(tokens)}")
    try:
        store.write("balance", "stale", tokens[0])
    except StaleTokenError as exc:
        print(f"stale write refused: {exc}")


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2281")
