"""Lock and Election on a 3-member ensemble whose leader is killed while they run.

The ensemble is the real server code in-process (coord.server.testing) under a
MockClock, so leader elections and session timeouts take virtual time. Each
client is connected to some member; killing the leader moves clients and
elects a new one. The hold log proves that no two holders overlapped, on any
member, and that fencing tokens only grew.
"""

from __future__ import annotations

import trio
import trio.testing

from coord.client.recipes import LeadershipLostError, LockLostError
from coord.server.testing import open_test_ensemble
from tests.client.recipes.conftest import HoldLog


async def test_lock_mutual_exclusion_across_a_leader_kill(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log = HoldLog()
    async with open_test_ensemble(3, tick_ms=100) as ensemble:

        async def worker(name: str, rounds: int) -> None:
            async with ensemble.client(session_timeout=2) as zk:
                done = 0
                while done < rounds:
                    try:
                        async with zk.Lock("/locks/db", identifier=name) as lock:
                            hold = log.begin(name, lock.token)
                            try:
                                await trio.sleep(0.05)
                            finally:
                                log.end(hold)
                        done += 1
                    except LockLostError:
                        continue

        async with trio.open_nursery() as nursery:
            for index in range(3):
                nursery.start_soon(worker, f"w{index}", 15)
            await trio.sleep(0.4)
            leader = await ensemble.wait_for_leader()
            killed_at = trio.current_time()
            await ensemble.kill(leader)
            await trio.sleep(3)
            await ensemble.restart(leader)
    assert len(log.holds) >= 45
    assert any(h.start < killed_at for h in log.holds)
    assert any(h.start > killed_at for h in log.holds), "no hold after the leader died"
    log.check()


async def test_election_has_one_leader_at_a_time_across_a_leader_kill(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log = HoldLog()
    async with open_test_ensemble(3, tick_ms=100) as ensemble:

        async def candidate(name: str, terms: int) -> None:
            async with ensemble.client(session_timeout=2) as zk:
                for _ in range(terms):
                    election = zk.Election("/election", identifier=name)

                    async def lead(election=election) -> None:
                        hold = log.begin(name, election.token)
                        try:
                            await trio.sleep(0.1)
                        finally:
                            log.end(hold)

                    try:
                        await election.run(lead)
                    except LeadershipLostError:  # lost mid-term: stand again
                        continue

        async with trio.open_nursery() as nursery:
            for index in range(3):
                nursery.start_soon(candidate, f"c{index}", 6)
            await trio.sleep(0.5)
            leader = await ensemble.wait_for_leader()
            killed_at = trio.current_time()
            await ensemble.kill(leader)
    assert len(log.holds) >= 10
    assert any(h.start > killed_at for h in log.holds), "no term after the leader died"
    log.check()
