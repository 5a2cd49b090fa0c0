"""Transactions: several writes that happen all together or not at all.

    python examples/transaction.py 127.0.0.1:2281

The first transaction moves a job from /examples/txn/todo to
/examples/txn/done and bumps a counter, guarded by a check of the counter's
version: no reader ever sees the job in both places or in neither. The
second reuses the stale version, so it fails as a whole: the failing op
carries its own error (BadVersionError) and every other op RolledBackError,
and nothing was applied.
"""

from __future__ import annotations

import sys

import trio

from coord.client import Client

ROOT = "/examples/txn"


async def main(hosts: str) -> None:
    async with Client(hosts, session_timeout=10) as zk:
        if await zk.exists(ROOT):  # left over from an interrupted run
            await zk.delete(ROOT, recursive=True)
        await zk.create(f"{ROOT}/todo/job-1", b"payload", makepath=True)
        await zk.create(f"{ROOT}/done", b"")
        await zk.create(f"{ROOT}/counter", b"0")
        _, counter = await zk.get(f"{ROOT}/counter")

        t = zk.transaction()
        t.check(f"{ROOT}/counter", counter.version)
        t.delete(f"{ROOT}/todo/job-1")
        t.create(f"{ROOT}/done/job-1", b"payload")
        t.set_data(f"{ROOT}/counter", b"1", version=counter.version)
        results = await t.commit()
        print("first transaction:")
        for op, result in zip(["check", "delete", "create", "set"], results, strict=True):
            shown = f"version {result.version}" if op == "set" else repr(result)
            print(f"  {op}: {shown}")
        print(f"todo: {await zk.get_children(f'{ROOT}/todo')}")
        print(f"done: {await zk.get_children(f'{ROOT}/done')}")

        # The same guard again: the counter has moved on, so nothing happens.
        t = zk.transaction()
        t.check(f"{ROOT}/counter", counter.version)
        t.create(f"{ROOT}/done/job-2", b"payload")
        results = await t.commit()
        print("second transaction (stale version):")
        for op, result in zip(["check", "create"], results, strict=True):
            print(f"  {op}: {type(result).__name__}: {result}")
        print(f"done: {await zk.get_children(f'{ROOT}/done')}")

        await zk.delete(ROOT, recursive=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2281")
