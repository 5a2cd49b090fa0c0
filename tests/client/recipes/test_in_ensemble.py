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
from coord.server.testing import InProcessEnsemble

from .conftest import ConnectFactory, HoldLog


async def kill_the_leader_midway(
    ensemble: InProcessEnsemble, log: HoldLog, *, before: int, after: int
) -> tuple[int, float]:
    """Once `before` holds have started, kill the leader; return (its id, when) once
    `after` more have started without it (the others elected a new one meanwhile)."""
    await log.wait_until(lambda holds: len(holds) >= before)
    leader = await ensemble.wait_for_leader()
    killed_at = trio.current_time()
    await ensemble.kill(leader)
    await log.wait_until(lambda holds: sum(h.start > killed_at for h in holds) >= after)
    return leader, killed_at


async def test_lock_mutual_exclusion_across_a_leader_kill(
    autojump_clock: trio.testing.MockClock, ensemble: InProcessEnsemble, connect: ConnectFactory
) -> None:
    log = HoldLog()

    async def worker(name: str, rounds: int) -> None:
        async with connect(session_timeout=2) as zk:
            done = 0
            while done < rounds:
                try:
                    async with zk.Lock("/locks/db", identifier=name) as lock:
                        hold = log.begin(name, lock.token)
                        try:
                            await trio.sleep(0.05)  # hold it a while (virtual)
                        finally:
                            log.end(hold)
                    done += 1
                except LockLostError:
                    continue

    async with trio.open_nursery() as nursery:
        for index in range(3):
            nursery.start_soon(worker, f"w{index}", 15)
        leader, killed_at = await kill_the_leader_midway(ensemble, log, before=6, after=3)
        await ensemble.restart(leader)
    assert len(log.holds) >= 45
    assert any(h.start < killed_at for h in log.holds)
    log.check()


async def test_election_has_one_leader_at_a_time_across_a_leader_kill(
    autojump_clock: trio.testing.MockClock, ensemble: InProcessEnsemble, connect: ConnectFactory
) -> None:
    log = HoldLog()

    async def candidate(name: str, terms: int) -> None:
        async with connect(session_timeout=2) as zk:
            for _ in range(terms):
                election = zk.Election("/election", identifier=name)

                async def lead(election=election) -> None:  # type: ignore[no-untyped-def]
                    hold = log.begin(name, election.token)
                    try:
                        await trio.sleep(0.1)  # lead a while (virtual)
                    finally:
                        log.end(hold)

                try:
                    await election.run(lead)
                except LeadershipLostError:  # lost mid-term: stand again
                    continue

    async with trio.open_nursery() as nursery:
        for index in range(3):
            nursery.start_soon(candidate, f"c{index}", 6)
        await kill_the_leader_midway(ensemble, log, before=3, after=1)
    assert len(log.holds) >= 10
    log.check()
