"""Counter: exact totals under races, server kills and connection losses."""

from __future__ import annotations

import pytest
import trio

from .conftest import ConnectFactory, Net, RestartableServer


async def test_int_and_float_counters(connect: ConnectFactory) -> None:
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


async def test_race_of_five_clients_adds_up(connect: ConnectFactory) -> None:
    async def adder() -> None:
        async with connect(session_timeout=2) as zk:
            counter = zk.Counter("/count/race")
            for _ in range(20):
                await counter.add(1)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(adder)
    async with connect(session_timeout=2) as zk:
        assert await zk.Counter("/count/race").get() == 100


async def test_adds_are_exact_across_server_kills_and_lost_connections(
    connect: ConnectFactory, server: RestartableServer
) -> None:
    nets = [Net() for _ in range(3)]
    done = 0

    async def adder(net: Net) -> None:
        nonlocal done
        async with connect(session_timeout=2, net=net) as zk:
            counter = zk.Counter("/count/chaos", 0.0)
            for _ in range(30):
                await counter.add(0.5)
        done += 1

    async with trio.open_nursery() as nursery:
        for net in nets:
            nursery.start_soon(adder, net)
        for round_ in range(4):
            await trio.sleep(0.02)
            if round_ % 2:
                await server.restart()
            else:
                for net in nets:  # cut while requests are in flight: outcomes unknown
                    await net.cut()
                    net.heal()
    assert done == 3
    async with connect(session_timeout=2) as zk:
        assert await zk.Counter("/count/chaos", 0.0).get() == 45.0
