"""ACLs in a replicated ensemble: checked on followers' forwarded writes, replicated,
and kept across failover and restart from snapshot plus log (in-process, virtual time)."""

from __future__ import annotations

import pytest
from trio.testing import MockClock

from coord.client import NoAuthError, make_acl, make_digest_acl
from coord.server.testing import open_test_ensemble

ALICE = [("digest", "alice:secret")]
ALICE_ONLY = [make_digest_acl("alice", "secret", all=True)]
SHARED = [*ALICE_ONLY, make_acl("world", "anyone", read=True)]


async def test_a_follower_forwards_the_writers_ids_and_the_leader_checks_them(
    autojump_clock: MockClock,
) -> None:
    async with open_test_ensemble(3) as ensemble:
        leader = await ensemble.wait_for_leader()
        follower = next(m for m in ensemble.running if m != leader)
        async with (
            ensemble.client([follower], auth=ALICE) as alice,
            ensemble.client([follower]) as stranger,
        ):
            await alice.create("/app", b"v", acl=SHARED)
            await alice.set("/app", b"w")  # forwarded with alice's ids: allowed
            with pytest.raises(NoAuthError):
                await stranger.set("/app", b"x")  # forwarded with none: refused
            with pytest.raises(NoAuthError):
                await stranger.create("/app/child")
            await stranger.add_auth("digest", "alice:secret")
            await stranger.create("/app/child")  # the new id is forwarded too
            assert (await stranger.get("/app"))[0] == b"w"


async def test_acls_survive_failover_and_restart_and_reach_a_member_by_snapshot(
    autojump_clock: MockClock,
) -> None:
    async with open_test_ensemble(3, snapshot_every=5) as ensemble:
        leader = await ensemble.wait_for_leader()
        late = next(m for m in ensemble.running if m != leader)
        await ensemble.kill(late)
        async with ensemble.client(auth=ALICE) as alice:
            await alice.create("/app", acl=SHARED)
            for i in range(12):  # past snapshot_every: snapshots hold ACLs too
                await alice.create(f"/app/n{i}", acl=ALICE_ONLY)
            await alice.set_acls("/app/n0", SHARED)
        await ensemble.kill(leader)
        await ensemble.start(late)
        await ensemble.wait_for_leader()
        await ensemble.restart(leader)
        for member in ensemble.running:
            await ensemble.wait_serving(member)
            async with ensemble.client([member]) as stranger:
                acl, stat = await stranger.get_acls("/app")
                assert [entry.id.scheme for entry in acl] == ["digest", "world"], member
                assert acl[0].id.id == "alice:x"  # read without ADMIN: hidden
                with pytest.raises(NoAuthError):
                    await stranger.get("/app/n5")
                assert (await stranger.get("/app/n0"))[0] == b""
                assert (await stranger.exists("/app/n0")).aversion == 1  # type: ignore[union-attr]
                assert stat.aversion == 0
