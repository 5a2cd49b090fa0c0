"""Counter: exact totals under races, member restarts and lost connections."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from coord.server.testing import InProcessEnsemble

from .conftest import ConnectFactory, Notifier


async def test_int_and_float_counters(autojump_clock: MockClock, connect: ConnectFactory) -> None:
    async with connect(session_timeout=2) as zk:
        counter = zk.Counter("/count/a")
        assert await counter.get() == 0
        assert await counter.add(5) == 5
        assert await counter.subtract(2) == 3
        assert (counter.pre_value, counter.post_value) == (5, 3)
        floats = zk.Counter("/count/f", 0.5)
        assert await floats.add(0.25) == 0.75
        assert isinstance(await floats.get(), float)
        with pytest.raises(TypeError):
            zk.Counter("/count/x", "0")  # type: ignore[type-var]


async def test_race_of_five_clients_adds_up(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    async def adder() -> None:
        async with connect(session_timeout=2) as zk:
            counter = zk.Counter("/count/race")
            for _ in range(20):
                await counter.add(1)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(adder)
    async with connect(session_timeout=2) as zk:
        await zk.sync("/count/race")
        assert await zk.Counter("/count/race").get() == 100


async def test_adds_are_exact_across_member_restarts_and_lost_connections(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    """Faults land while adds are in flight: after every 15 adds (of 90), the
    leader restarts or every client's connection breaks, so some replies are
    lost and the counter must find out whether its write happened."""
    clients = [connect(session_timeout=2) for _ in range(3)]
    added = 0
    progress = Notifier()

    async def adder(index: int) -> None:
        nonlocal added
        async with clients[index] as zk:
            counter = zk.Counter("/count/chaos", 0.0)
            for _ in range(30):
                await counter.add(0.5)
                added += 1
                progress.changed()

    async with trio.open_nursery() as nursery:
        for index in range(3):
            nursery.start_soon(adder, index)
        for round_ in range(4):
            await progress.wait_until(lambda round_=round_: added >= 15 * (round_ + 1), 30)
            if round_ % 2:
                await ensemble.restart(await ensemble.wait_for_leader())
            else:
                for zk in clients:  # cut while requests are in flight: outcomes unknown
                    ensemble.disconnect(zk)
    assert added == 90
    async with connect(session_timeout=2) as zk:
        await zk.sync("/count/chaos")
        assert await zk.Counter("/count/chaos", 0.0).get() == 45.0
