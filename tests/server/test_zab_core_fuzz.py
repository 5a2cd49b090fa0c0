"""Generated peer messages at the member cores of a running ensemble: it still commits.

The codec's checks keep everything out of range away from the ZAB core; this
test is about what passes them. From a seed, it builds plausible messages of
every kind (epochs around the current one and random 32-bit ones, zxids
around the members', txns, votes in every state), keeps those the boundary
accepts, and hands them to random members as if from random other members,
between client writes. Afterwards the ensemble must elect a leader, serve on
every member and commit a write. A failing seed replays: run the test with it.

Epochs up to the top of the 32-bit range are generated for every message but
votes: one such FollowerInfo or LeaderInfo is refused by the epoch-leap bound
(MAX_EPOCH_LEAP). Votes keep to 31 bits: a vote for a member with an epoch at
the top, followed by that member's LeaderInfo, is two messages a member that
holds the ensemble's secret could send on purpose, and ZAB trusts its members.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from coord.server.testing import open_test_ensemble
from coord.server.zab.codec import PeerDecodeError, decode_message
from coord.server.zab.peer import MAX_EPOCH

MEMBERS = frozenset({1, 2, 3})


def _plausible(rng: random.Random, epoch: int, zxid: int) -> list[Any]:
    vote_epoch = rng.choice([epoch, epoch + 1, max(epoch - 1, 0), rng.getrandbits(31)])
    top = MAX_EPOCH - rng.getrandbits(8)
    e = rng.choice([vote_epoch, vote_epoch, top, rng.getrandbits(32)])
    z = rng.choice([zxid, zxid + 1, (e << 32) | rng.getrandbits(8), rng.getrandbits(63)])
    vote_zxid = min(z, (vote_epoch << 32) | 0xFFFFFFFF)

    def txn(i: int) -> list[Any]:
        return [(e << 32) | (i + 1 + (z & 0xFFFF)), 1, 7, 1, [1, f"/f{i}", b"d", 0, 0, 0, i]]

    kinds = [
        lambda: [1, vote_epoch, vote_zxid, rng.choice([1, 2, 3]), rng.getrandbits(20),
                 rng.choice(["looking", "following", "leading"]), vote_epoch],
        lambda: [2, e, z, rng.random() < 0.2],
        lambda: [3, e],
        lambda: [4, e, rng.getrandbits(31), z],
        lambda: [8, e, [txn(i) for i in range(rng.randint(0, 3))]],
        lambda: [10, e, z],
        lambda: [12, e, z],
        lambda: [22, [rng.getrandbits(63) for _ in range(rng.randint(0, 3))]],
    ]  # fmt: skip
    return rng.choice(kinds)()


@pytest.mark.parametrize("seed", range(40))
async def test_generated_messages_at_member_cores_leave_an_ensemble_that_commits(
    autojump_clock: MockClock, seed: int
) -> None:
    rng = random.Random(seed)
    delivered = 0
    async with open_test_ensemble(3) as ensemble:
        await ensemble.wait_for_leader()
        async with ensemble.client() as zk:
            for i in range(20):
                await zk.create(f"/before-{i}", b"x")
        for step in range(300):
            target = rng.choice(ensemble.running)
            zab = ensemble.member(target).zab
            assert zab is not None
            sender = rng.choice([m for m in MEMBERS if m != target])
            try:
                message = decode_message(_plausible(rng, zab.epoch, zab.last_zxid), MEMBERS)
            except PeerDecodeError:
                continue
            zab.receive(sender, message)
            delivered += 1
            if step % 10 == 0:
                await trio.sleep(rng.random())
        assert delivered > 200
        await ensemble.wait_for_leader(timeout=120)
        for member in ensemble.running:
            await ensemble.wait_serving(member, timeout=120)
        async with ensemble.client() as zk:
            await zk.create("/after", b"ok")
            assert (await zk.get("/after", linearizable=True))[0] == b"ok"
