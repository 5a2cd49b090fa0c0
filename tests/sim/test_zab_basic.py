"""First checks of the ZAB core in the simulator: election, broadcast, agreement."""

from __future__ import annotations

import pytest

from coord.server.zab.messages import Role
from tests.sim.cluster import Cluster


def _agree(cluster: Cluster) -> None:
    """Applied histories are prefixes of one another, with no gaps or reordering."""
    histories = [[t.zxid for t in n.applied] for n in cluster.nodes.values()]
    longest = max(histories, key=len)
    for history in histories:
        assert history == longest[: len(history)], (cluster.seed, history, longest)
    assert longest == sorted(set(longest))


@pytest.mark.parametrize("seed", range(20))
def test_a_leader_is_elected_and_writes_commit_everywhere(seed: int) -> None:
    cluster = Cluster(3, seed=seed)
    for _ in range(400):
        cluster.step()
        if cluster.leader() is not None:
            break
    leader = cluster.leader()
    assert leader is not None, f"seed {seed}: no leader"
    proposed = cluster.propose(5)
    cluster.run(400)
    for node in cluster.nodes.values():
        assert [t.zxid for t in node.applied][-5:] == [t.zxid for t in proposed], (seed, node)
        assert node.peer is not None and node.peer.role in (Role.LEADING, Role.FOLLOWING)
    _agree(cluster)


@pytest.mark.parametrize("seed", range(20))
def test_leader_crash_then_new_leader_keeps_committed_writes(seed: int) -> None:
    cluster = Cluster(3, seed=seed)
    cluster.run(400)
    first = cluster.leader()
    assert first is not None
    proposed = cluster.propose(3)
    cluster.run(300)
    cluster.crash(first.node_id)
    for _ in range(3000):
        cluster.step()
        new = cluster.leader()
        if new is not None and new.node_id != first.node_id:
            break
    new = cluster.leader()
    assert new is not None and new.node_id != first.node_id, f"seed {seed}"
    more = cluster.propose(2)
    cluster.restart(first.node_id)
    cluster.run(1500)
    for node in cluster.nodes.values():
        zxids = [t.zxid for t in node.applied]
        for txn in proposed + more:
            assert txn.zxid in zxids, (seed, node.node_id)
    _agree(cluster)
