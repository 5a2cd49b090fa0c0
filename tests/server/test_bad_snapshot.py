"""A SNAP whose snapshot does not load: the follower keeps its own state and rejoins.

`load_snapshot` checks the leader's snapshot before anything is written, so
nothing of it reaches the disk; the member then throws away what its ZAB peer
believed about the sync, recovers from its own disk as after a restart, and
looks for a leader again, instead of stopping.
"""

from __future__ import annotations

from trio.testing import MockClock

from coord.server.testing import open_test_ensemble
from coord.server.zab.messages import LeaderInfo, Sync, SyncMode


async def test_a_snapshot_that_does_not_load_is_refused_and_the_follower_rejoins(
    autojump_clock: MockClock,
) -> None:
    async with open_test_ensemble(3) as ensemble:
        leader = await ensemble.wait_for_leader()
        follower = next(m for m in ensemble.ids if m != leader)
        async with ensemble.client() as zk:
            for i in range(5):
                await zk.create(f"/n{i}", b"x")
        zab = ensemble.member(follower).zab
        assert zab is not None
        epoch = zab.epoch
        zxid = (epoch << 32) | 1000
        # as a leader would send them, back to back: a new round, then a SNAP of garbage
        zab.receive(leader, LeaderInfo(epoch))
        zab.receive(leader, Sync(epoch, SyncMode.SNAP, 0, zxid, (), zxid, snapshot=b"garbage"))
        await ensemble.wait_serving(follower)
        async with ensemble.client([follower]) as zk:
            await zk.create("/after", b"ok")
            assert (await zk.get("/after", linearizable=True))[0] == b"ok"
            assert sorted(await zk.get_children("/")) == ["after", *(f"n{i}" for i in range(5))]
        assert ensemble.member(follower).stats.snapshots_refused == 1
