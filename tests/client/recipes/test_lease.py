"""NonBlockingLease: one holder per duration by the server's clock, renewals, restarts."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from coord.client.recipes import LockLostError
from coord.server.testing import InProcessEnsemble

from .conftest import ConnectFactory, followers, restart_member_of, until_cancelled


async def test_one_holder_until_the_duration_passes(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as zk2:
        lease = zk.NonBlockingLease("/lease/job", 0.4, identifier="a")
        assert await lease.obtain() and lease
        other = zk2.NonBlockingLease("/lease/job", 0.4, identifier="b")
        assert not await other.obtain() and not other
        assert await lease.obtain()  # the holder renews
        first = lease.token
        await trio.sleep(0.45)  # past the lease's duration (virtual time)
        assert not lease  # by the holder's own clock it is over
        assert await other.obtain()
        assert other.token is not None and first is not None and other.token > first
        assert not await lease.obtain()


async def test_race_gives_one_holder(autojump_clock: MockClock, connect: ConnectFactory) -> None:
    winners: list[str] = []

    async def contender(i: int) -> None:
        async with connect(session_timeout=2) as zk:
            if await zk.NonBlockingLease("/lease/race", 5, identifier=f"c{i}").obtain():
                winners.append(f"c{i}")

    async with trio.open_nursery() as nursery:
        for i in range(6):
            nursery.start_soon(contender, i)
    assert len(winners) == 1


async def test_body_is_cancelled_when_the_lease_runs_out_and_a_restart_keeps_it(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    duration, margin = 0.5, 0.05  # the default margin: a tenth of the duration
    async with (
        connect(session_timeout=2, members=await followers(ensemble)) as zk,
        connect(session_timeout=2) as zk2,
    ):
        lease = zk.MultiNonBlockingLease(2, "/lease/multi", duration, identifier="a")
        assert await lease.obtain()
        assert await zk2.MultiNonBlockingLease(2, "/lease/multi", duration, identifier="b").obtain()
        assert not await zk2.MultiNonBlockingLease(2, "/lease/multi", duration, "c").obtain()
        single = zk.NonBlockingLease("/lease/body", duration, identifier="a")
        start = trio.current_time()
        with pytest.raises(LockLostError, match="time is up"):
            async with single:
                await restart_member_of(ensemble, zk)  # the lease is replicated data
                assert not await zk2.NonBlockingLease("/lease/body", duration, "b").obtain()
                await until_cancelled()
        assert trio.current_time() - start == pytest.approx(duration - margin)
        await single.release()
