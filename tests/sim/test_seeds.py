"""The simulator over many seeds (VOPR style), a replay hook, and checks of the checkers.

A failing seed prints how to replay it, e.g.

    reproduce with: SIM_SEED=1234 pytest tests/sim -k replay

and `python -m tests.sim.run --seed 1234 --trace` prints its event trace. For
thousands of seeds, see tests/sim/run.py.
"""

from __future__ import annotations

import os

import pytest

from coord.server.core.txn import SetDataTxn, TxnHeader
from coord.server.zab.messages import Role
from coord.server.zab.quorum import Quorum
from tests.linearizability import READ, WRITE, Operation, check
from tests.sim.cluster import Cluster, InvariantViolation
from tests.sim.simulation import SimConfig, run_seed

CI_SEEDS = 500


@pytest.mark.parametrize("seed", range(CI_SEEDS))
def test_seed(seed: int) -> None:
    result = run_seed(seed)
    if not result.ok:
        pytest.fail(result.failure, pytrace=False)
    assert result.acked > 0 or result.writes == 0


def test_replay() -> None:
    """Replay one seed with its trace: SIM_SEED (and SIM_NETWORK, SIM_SYNC_READS) from the
    environment, or seed 0 when none is given (so the replay path itself stays tested)."""
    seed = os.environ.get("SIM_SEED", "0")
    config = SimConfig.from_seed(
        int(seed),
        network=os.environ.get("SIM_NETWORK", "fifo"),
        sync_reads=os.environ.get("SIM_SYNC_READS", "marker"),
    )
    result = run_seed(int(seed), config=config, trace=True)
    if not result.ok:
        tail = "\n".join(result.trace[-150:])
        pytest.fail(f"{config}\n\nlast events:\n{tail}\n\n{result.failure}", pytrace=False)


def test_a_seed_replays_exactly() -> None:
    first = run_seed(7, trace=True)
    second = run_seed(7, trace=True)
    assert first.trace == second.trace
    assert first.stats == second.stats
    assert len(first.trace) > 1000


def test_the_seed_draws_different_worlds() -> None:
    configs = [SimConfig.from_seed(seed) for seed in range(200)]
    assert {c.voters for c in configs} == {3, 5}
    assert {c.observers for c in configs} == {0, 1}
    assert len({c.max_history for c in configs}) > 2
    for fault in ("drop", "crash", "partition", "clock_jump", "slow_disk"):
        values = {getattr(c.faults, fault) for c in configs}
        assert 0.0 in values and len(values) > 2, fault


def test_faults_are_injected() -> None:
    totals = [run_seed(seed).stats for seed in range(20)]
    for name in ("drops", "partitions", "crashes", "restarts", "clock_jumps", "slow_readys"):
        assert sum(getattr(s, name) for s in totals) > 0, name
    assert sum(s.torn_writes + s.partial_sends for s in totals) > 0


def test_a_lone_voter_with_an_observer_commits() -> None:
    cluster = Cluster(1, seed=3, observers=1)
    assert cluster.run_until(lambda: cluster.leader() is not None, 200)
    (proposed,) = cluster.propose(1)
    cluster.run(100)
    for node in cluster.nodes.values():
        assert node.applied[-1] == proposed


# -- the checkers catch what they should -----------------------------------------------


def test_a_commit_without_a_quorum_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break the quorum rule (one ack commits): acknowledged writes are not on a quorum."""
    monkeypatch.setattr(Quorum, "committed", lambda self, acked: max(acked.values(), default=0))
    failures = [run_seed(seed) for seed in range(5)]
    assert all(not r.ok for r in failures)
    assert any("durable only on" in r.failure for r in failures)
    assert all("reproduce with: SIM_SEED=" in r.failure for r in failures)


def test_a_leader_that_never_truncates_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plan every sync as a DIFF: followers keep txns of dead epochs, and histories fork."""
    from coord.server.zab import peer as peer_module
    from coord.server.zab.messages import Sync, SyncMode

    def always_diff(self: peer_module.ZabPeer, their_zxid: int) -> Sync:
        return Sync(self.epoch, SyncMode.DIFF, 0, 0, self._after(their_zxid), self.commit_zxid)

    monkeypatch.setattr(peer_module.ZabPeer, "_plan_sync", always_diff)
    failed = []
    for seed in range(100):
        result = run_seed(seed)
        if not result.ok:
            failed.append(result)
        if len(failed) == 2:
            break
    assert len(failed) == 2, "no seed noticed forked histories"


def test_an_ack_before_the_append_is_durable_is_caught() -> None:
    """The contract: an Ack leaves only once what it acks is on disk. Break it by hand."""
    cluster = Cluster(3, seed=1)
    assert cluster.run_until(lambda: cluster.leader() is not None, 300)
    leader = cluster.leader()
    assert leader is not None
    follower = next(n for n in cluster.nodes.values() if n is not leader)
    assert follower.peer is not None
    from coord.server.zab.messages import Ack

    with pytest.raises(InvariantViolation, match="not on its disk"):
        cluster._emit(
            follower, leader.node_id, Ack(follower.peer.epoch, follower.peer.last_zxid + 1)
        )


def test_reads_at_a_deposed_leader_are_caught() -> None:
    """Why sync reads go through the broadcast: a partitioned leader keeps serving for a
    while, a new leader commits a write, and a read at the old one is stale."""
    cluster = Cluster(3, seed=5)
    assert cluster.run_until(lambda: cluster.leader() is not None, 300)
    old = cluster.leader()
    assert old is not None and old.peer is not None
    history: list[Operation] = []
    clock = iter(range(1, 1000))

    def write(value: int) -> None:
        node = cluster.leader()
        assert node is not None
        invoke = next(clock)
        (txn,) = cluster.propose_bodies(
            node, [(TxnHeader(0, 0, 1, value), SetDataTxn("/x", str(value).encode(), 0))]
        )
        assert cluster.run_until(lambda: any(t == txn for t in node.applied), 200)
        history.append(Operation(value, "/x", WRITE, value, invoke, next(clock)))

    write(1)
    # Cut the old leader off; slow its clock down so it notices late (clocks drift).
    others = frozenset(cluster.ids) - {old.node_id}
    cluster.sides = (frozenset({old.node_id}), others)
    old.tick_rate = 0.01
    assert cluster.run_until(lambda: (new := cluster.leader()) is not None and new is not old, 1000)
    assert old.peer is not None and old.peer.role is Role.LEADING and old.peer.serving
    write(2)
    invoke = next(clock)
    stale = old.kv.get("/x")  # "read the leader's committed state"
    history.append(Operation(99, "/x", READ, int(stale) if stale else None, invoke, next(clock)))
    verdict = check(history)
    assert not verdict.ok, history
    assert "#99" in verdict.explain()


def test_the_history_check_is_wired_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every sync read return nothing: the run must fail its linearizability check."""
    from tests.sim import simulation

    original = simulation.Workload._on_apply

    def forgetful(self: simulation.Workload, node: object, txn: object) -> None:
        original(self, node, txn)  # type: ignore[arg-type]
        for op in self.ops:
            if op.kind == READ and op.complete is not None:
                op.value = None

    monkeypatch.setattr(simulation.Workload, "_on_apply", forgetful)
    result = run_seed(0)
    assert not result.ok
    assert "not linearizable" in result.failure
