"""Election: one leader at a time, tokens grow, fail-over on expiry, restarts survived."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from coord.client import ClientState
from coord.client.recipes import LeadershipLostError
from coord.server.testing import InProcessEnsemble

from .conftest import (
    ConnectFactory,
    HoldLog,
    followers,
    restart_member_of,
    until_cancelled,
    wait_children,
)

PATH = "/election/svc"


async def test_leader_contenders_step_down_and_tokens(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    async with connect(session_timeout=2) as a, connect(session_timeout=2) as b:
        ea, eb = a.Election(PATH, "a"), b.Election(PATH, "b")
        assert await ea.leader() is None
        async with ea.lead() as term:
            first = term.token
            assert ea.is_leader and ea.token == first
            async with trio.open_nursery() as nursery:

                async def campaign() -> None:
                    async with eb.lead() as term_b:
                        assert term_b.token is not None and first is not None
                        assert term_b.token > first
                        assert await eb.leader() == "b"
                        term_b.step_down()
                        await until_cancelled()  # by step_down: no error

                nursery.start_soon(campaign)
                await wait_children(a, PATH, lambda names: len(names) == 2)
                assert await ea.contenders() == ["a", "b"]
                assert await eb.leader() == "a"
                term.step_down()
                await until_cancelled()  # by step_down: no error
        assert not ea.is_leader and ea.token is None
        assert await ea.contenders() == []


async def test_run_returns_the_result_and_cancel_withdraws(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    async with connect(session_timeout=2) as a, connect(session_timeout=2) as b:
        ea, eb = a.Election(PATH, "a"), b.Election(PATH, "b")

        async def lead() -> str:
            return f"led with {ea.token}"

        assert (await ea.run(lead)).startswith("led with")
        async with ea.lead():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(eb.run, pytest.fail)
                await wait_children(a, PATH, lambda names: len(names) == 2)
                eb.cancel()
            await a.sync(PATH)
            assert await ea.contenders() == ["a"]


async def test_race_of_four_candidates(autojump_clock: MockClock, connect: ConnectFactory) -> None:
    log = HoldLog()

    async def candidate(i: int) -> None:
        async with connect(session_timeout=2) as zk:
            election = zk.Election(PATH, f"c{i}")
            for _ in range(3):

                async def lead(i: int = i, election=election) -> None:  # type: ignore[no-untyped-def]
                    hold = log.begin(f"c{i}", election.token)
                    await trio.sleep(0.003)  # lead a while (virtual): overlaps would show
                    log.end(hold)

                await election.run(lead)

    async with trio.open_nursery() as nursery:
        for i in range(4):
            nursery.start_soon(candidate, i)
    assert len(log.holds) == 12
    log.check()


async def test_fail_over_when_the_leaders_session_expires(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    timeout = 0.6
    log = HoldLog()
    async with connect(session_timeout=timeout) as a, connect(session_timeout=2) as b:
        leading = trio.Event()
        a_election, b_election = a.Election(PATH, "a"), b.Election(PATH, "b")

        async def old_leader() -> None:
            async def lead() -> None:
                hold = log.begin("a", a_election.token)
                leading.set()
                try:
                    await trio.sleep_forever()
                finally:
                    log.end(hold)

            with pytest.raises(LeadershipLostError):
                await a_election.run(lead)

        async def new_leader() -> None:
            await leading.wait()

            async def lead() -> None:
                log.end(log.begin("b", b_election.token))

            await b_election.run(lead)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(old_leader)
            nursery.start_soon(new_leader)
            await leading.wait()
            await wait_children(b, PATH, lambda names: len(names) == 2)  # b stands
            await ensemble.expire_session(a)
        assert a.state is ClientState.LOST
    log.check()
    assert [h.who for h in sorted(log.holds, key=lambda h: h.start)] == ["a", "b"]


async def test_leader_survives_a_restart_of_its_server(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    timeout = 2.0
    async with (
        connect(session_timeout=timeout, members=await followers(ensemble)) as a,
        connect(session_timeout=timeout) as b,
    ):
        election = a.Election(PATH, "a")
        async with election.lead() as term:
            token = term.token
            await restart_member_of(ensemble, a)  # a loses its connection, reconnects
            await trio.sleep(timeout)  # past when the term would lapse without renewal
            assert b.state is ClientState.CONNECTED
            assert await b.Election(PATH, "b").leader() == "a"
            assert term.is_acquired and term.is_trusted() and term.token == token
        assert term.lost is None
