"""SetPartitioner: every item to exactly one member, re-balanced on change, never shared."""

from __future__ import annotations

import functools
import itertools
import operator

import trio

from coord.client import ClientState, SessionExpiredError

from .conftest import ConnectFactory, HoldLog, Net, wait_state

ITEMS = [f"q{i}" for i in range(6)]


def record(log: HoldLog, member: str, current: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def work(partition: list[str]) -> None:
        current[member] = partition
        holds = [log.begin(f"{member}:{item}", 1) for item in partition]
        try:
            await trio.sleep_forever()
        finally:
            for hold in holds:
                log.end(hold)
            current.pop(member, None)

    return work


def no_item_shared(log: HoldLog) -> None:
    """No item is worked on by two members at once."""
    by_item: dict[str, list] = {}
    for hold in log.holds:
        by_item.setdefault(hold.who.split(":")[1], []).append(hold)
    for holds in by_item.values():
        holds.sort(key=lambda h: h.start)
        for a, b in itertools.pairwise(holds):
            assert a.end <= b.start, f"{a} and {b} overlap"


async def until(predicate, timeout: float = 8.0) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def test_partition_rebalance_and_expiry(connect: ConnectFactory) -> None:
    log = HoldLog()
    current: dict[str, list[str]] = {}
    net = Net()

    def covered(members: int) -> bool:
        items = sorted(functools.reduce(operator.iadd, current.values(), []))
        return len(current) == members and items == ITEMS

    async with (
        connect(session_timeout=2) as a,
        connect(session_timeout=2) as b,
        connect(session_timeout=0.6, net=net) as c,
        trio.open_nursery() as nursery,
    ):
        parts = {
            name: zk.SetPartitioner("/part/q", ITEMS, identifier=name, time_boundary=0.1)
            for name, zk in (("a", a), ("b", b), ("c", c))
        }
        scopes = {}
        for name, part in parts.items():
            scopes[name] = trio.CancelScope()

            async def run(part=part, name=name) -> None:  # type: ignore[no-untyped-def]
                with scopes[name]:
                    try:
                        await part.run(record(log, name, current))
                    except SessionExpiredError:
                        assert name == "c" and part.failed

            nursery.start_soon(run)
        await until(lambda: covered(3))
        assert all(len(items) == 2 for items in current.values())
        assert await parts["a"].wait_for_acquire(1) and list(parts["a"]) == current["a"]
        scopes["b"].cancel()  # b leaves: a and c share the items
        await until(lambda: covered(2))
        await net.cut()  # c's session expires: a takes everything
        await until(lambda: covered(1) and "a" in current)
        await wait_state(c, ClientState.LOST)
        nursery.cancel_scope.cancel()
    no_item_shared(log)
