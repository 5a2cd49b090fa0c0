"""SetPartitioner: every item to exactly one member, re-balanced on change, never shared."""

from __future__ import annotations

import functools
import itertools
import operator

import trio
from trio.testing import MockClock

from coord.client import ClientState, SessionExpiredError
from coord.server.testing import InProcessEnsemble

from .conftest import ConnectFactory, HoldLog, Notifier

ITEMS = [f"q{i}" for i in range(6)]


class Shares(Notifier):
    """Each member's current partition, as its work function sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.current: dict[str, list[str]] = {}

    def covered(self, members: int) -> bool:
        """`members` members work, and between them on every item."""
        items = sorted(functools.reduce(operator.iadd, self.current.values(), []))
        return len(self.current) == members and items == ITEMS


def record(log: HoldLog, member: str, shares: Shares):  # type: ignore[no-untyped-def]
    async def work(partition: list[str]) -> None:
        shares.current[member] = partition
        shares.changed()
        holds = [log.begin(f"{member}:{item}", 1) for item in partition]
        try:
            await trio.sleep_forever()
        finally:
            for hold in holds:
                log.end(hold)
            shares.current.pop(member, None)
            shares.changed()

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


async def test_partition_rebalance_and_expiry(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    log = HoldLog()
    shares = Shares()

    async with (
        connect(session_timeout=2) as a,
        connect(session_timeout=2) as b,
        connect(session_timeout=0.6) as c,
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
                        await part.run(record(log, name, shares))
                    except SessionExpiredError:
                        assert name == "c" and part.failed

            nursery.start_soon(run)
        await shares.wait_until(lambda: shares.covered(3))
        assert all(len(items) == 2 for items in shares.current.values())
        assert await parts["a"].wait_for_acquire(1) and list(parts["a"]) == shares.current["a"]
        scopes["b"].cancel()  # b leaves: a and c share the items
        await shares.wait_until(lambda: shares.covered(2) and "b" not in shares.current)
        await ensemble.expire_session(c)  # c's session expires: a takes everything
        assert c.state is ClientState.LOST
        await shares.wait_until(lambda: shares.covered(1) and "a" in shares.current)
        nursery.cancel_scope.cancel()
    no_item_shared(log)
