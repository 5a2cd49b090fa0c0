"""Party: members join and leave, expired members vanish, restarts survived."""

from __future__ import annotations

import trio
from trio.testing import MockClock

from coord.client import ClientState
from coord.server.testing import InProcessEnsemble

from .conftest import ConnectFactory, restart_member_of, wait_state


async def test_join_leave_members_and_watch(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=1.0) as short:
        party = zk.Party("/party/w", "a")
        async with party.watch() as members:
            with trio.fail_after(5):
                assert await members.__anext__() == []
                async with party:
                    assert await members.__anext__() == ["a"]
                    other = short.Party("/party/w", "b")
                    await other.join()
                    await other.join()  # idempotent
                    assert sorted(await members.__anext__()) == ["a", "b"]
                    assert await party.count() == 2
                    await restart_member_of(ensemble, zk)
                    await wait_state(zk, ClientState.CONNECTED)
                    assert sorted(await party.members()) == ["a", "b"]
                    await ensemble.expire_session(short)  # b leaves by itself
                    assert await members.__anext__() == ["a"]
                assert await members.__anext__() == []


async def test_race_of_joins(autojump_clock: MockClock, connect: ConnectFactory) -> None:
    async with connect(session_timeout=2) as zk, trio.open_nursery() as nursery:
        parties = [zk.Party("/party/r", f"m{i}") for i in range(10)]
        for party in parties:
            nursery.start_soon(party.join)
    async with connect(session_timeout=2) as zk2:
        await zk2.sync("/party/r")
        assert await zk2.Party("/party/r").count() == 0  # closed session: all left
