"""One seeded simulation run (VOPR style): a safety phase, a liveness phase, a history check.

`SimConfig.from_seed(seed)` draws everything from the seed: 3 or 5 voters and
maybe an observer, the history window (small ones force SNAP syncs), clock
rates and drift, the network's delay, drop, duplicate and partition rates,
crash and restart rates, slow-disk and clock-jump rates, and the client mix.
Some seeds draw no faults of a kind at all, so each kind is also seen alone.
The network is "fifo" by default: links that keep order and lose messages,
which is what the runtime's TCP links give and what the ZAB core assumes.
"datagram" also reorders and duplicates on a link, beyond that contract, and
"mixed" lets the seed choose; both are there to probe, not for CI.

`run_seed(seed)`:

1. Safety phase: `safety_steps` steps under the drawn faults, with clients
   issuing writes, plain reads and sync reads. The cluster checks its
   invariants after every step (see tests/sim/cluster.py).
2. Liveness phase: heal the network, restart every crashed node, stop the
   faults (delays and slow disks stay, bounded to about a tick, since the
   protocol's timeouts are counted in ticks). Within `liveness_steps` steps a
   leader must serve and a new write must be applied on every node; if the
   write's leader loses its place before that, the write is issued again.
3. The client history (writes and sync reads) must be linearizable
   (tests/linearizability.py).

Clients. Keys are a few registers; a write is SetDataTxn(path=key,
data=<unique value>) proposed at a serving leader (any leader that serves and
has carried out its Readys, as the runtime requires: a deposed leader that has
not noticed yet may take it, and its write then stays "maybe"). A write
completes when the node that proposed it, in the same life, applies it from a
Ready's commit: the moment the runtime would answer the client. A crash
leaves it incomplete.

Sync reads are linearizable reads and are modelled as ZooKeeper's sync made
strict: the reading node (any serving node) forwards a sync to the leader it
follows, which orders a marker txn (a CheckTxn that changes nothing) through
the broadcast like any write; the read completes when the reading node applies
that marker, and returns its value for the key at that point. The marker
commits only through a quorum of the current epoch, so a deposed leader cannot
answer from stale state. The cheaper designs (read the leader's committed state
at once, or wait at a follower for the leader's commit_zxid as of the request)
trust a leader that may already be deposed, since this ensemble has no leader
leases; `sync_reads="leader"` runs the first of them, so that the checker can
show the difference (it is not linearizable under partitions).

Plain reads are sequentially consistent, not linearizable, so the history
check leaves them out; `Result.phantom_reads` counts plain reads that returned
a value no committed write ever wrote.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from coord.server.core.txn import CheckTxn, SetDataTxn, Txn, TxnBody, TxnHeader
from coord.server.zab.messages import Role
from tests.linearizability import READ, WRITE, Operation, check
from tests.sim.cluster import Cluster, Faults, InvariantViolation, Node, Stats

WRITE_SESSION = 1
SYNC_SESSION = 2
SYNC_PATH = "/sync-marker"

SAFETY_STEPS = 2000
LIVENESS_STEPS = 2000
NETWORKS = ("fifo", "datagram", "mixed")


@dataclass
class SimConfig:
    seed: int
    voters: int = 3
    observers: int = 0
    max_history: int = 100_000
    tick_rate: float = 0.25
    drift: float = 0.0
    faults: Faults = field(default_factory=Faults)
    keys: int = 2
    write_rate: float = 0.05
    read_rate: float = 0.03
    sync_rate: float = 0.03
    safety_steps: int = SAFETY_STEPS
    liveness_steps: int = LIVENESS_STEPS
    sync_reads: str = "marker"
    """"marker": strict sync through the broadcast; "leader": read the leader's state."""
    network: str = "fifo"

    @classmethod
    def from_seed(
        cls,
        seed: int,
        *,
        network: str = "fifo",
        sync_reads: str = "marker",
        safety_steps: int = SAFETY_STEPS,
        liveness_steps: int = LIVENESS_STEPS,
    ) -> SimConfig:
        """Draw a run from the seed. `network`: "fifo" (TCP-like links, the runtime's
        contract), "datagram" (reordering and duplicates on a link too) or "mixed"
        (the seed picks)."""
        if network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}")
        rng = random.Random(seed)
        pick = rng.choice
        faults = Faults(
            drop=pick([0.0, 0.0, 0.01, 0.05, 0.15]),
            duplicate=pick([0.0, 0.0, 0.01, 0.05]),
            reorder=rng.random() < 0.85,
            fifo=rng.random() < 0.5 if network == "mixed" else network == "fifo",
            max_delay=rng.randint(1, 8),
            crash=pick([0.0, 0.0005, 0.001, 0.003]),
            restart=pick([0.005, 0.02, 0.08]),
            partition=pick([0.0, 0.001, 0.004]),
            heal=pick([0.005, 0.02, 0.05]),
            clock_jump=pick([0.0, 0.001, 0.005]),
            slow_disk=pick([0.0, 0.05, 0.2, 0.5]),
            slow_steps=rng.randint(1, 6),
            torn=pick([0.0, 0.01, 0.05]),
        )
        return cls(
            seed=seed,
            voters=pick([3, 3, 5]),
            observers=1 if rng.random() < 0.3 else 0,
            max_history=pick([2, 5, 20, 100_000]),
            tick_rate=rng.uniform(0.15, 0.35),
            drift=pick([0.0, 0.05, 0.15]),
            faults=faults,
            keys=rng.randint(1, 3),
            write_rate=rng.uniform(0.02, 0.1),
            read_rate=rng.uniform(0.0, 0.05),
            sync_rate=rng.uniform(0.01, 0.06),
            safety_steps=safety_steps,
            liveness_steps=liveness_steps,
            sync_reads=sync_reads,
            network=network,
        )

    def reproduce(self) -> str:
        env = f"SIM_SEED={self.seed}"
        if self.network != "fifo":
            env += f" SIM_NETWORK={self.network}"
        if self.sync_reads != "marker":
            env += f" SIM_SYNC_READS={self.sync_reads}"
        flags = "" if self.network == "fifo" else f" --network {self.network}"
        flags += "" if self.sync_reads == "marker" else f" --sync-reads {self.sync_reads}"
        return (
            f"reproduce with: {env} pytest tests/sim -k replay"
            f"  (or: python -m tests.sim.run --seed {self.seed}{flags} --trace)"
        )


@dataclass
class Result:
    seed: int
    ok: bool
    failure: str = ""
    stats: Stats = field(default_factory=Stats)
    writes: int = 0
    acked: int = 0
    sync_reads: int = 0
    sync_reads_done: int = 0
    plain_reads: int = 0
    phantom_reads: int = 0
    liveness_steps: int = 0
    """Steps the liveness phase needed."""
    trace: list[str] = field(default_factory=list)


@dataclass
class _Op:
    op_id: int
    key: str
    kind: str
    value: int | None
    invoke: int
    complete: int | None = None
    node: int = 0
    incarnation: int = 0


class Workload:
    """Simulated clients: writes, plain reads and sync reads, with an event clock."""

    def __init__(self, cluster: Cluster, config: SimConfig, rng: random.Random) -> None:
        self.cluster = cluster
        self.config = config
        self.rng = rng
        self.keys = [f"/k{i}" for i in range(config.keys)]
        self.clock = 0
        """Orders invocations and completions: one tick per client event."""
        self.ops: list[_Op] = []
        self._writes: dict[tuple[int, int, int], _Op] = {}
        """(node, incarnation, xid) -> the write that node took."""
        self._syncs: dict[int, _Op] = {}
        """xid of the marker -> the sync read waiting for it."""
        self.plain_reads: list[tuple[str, int | None]] = []
        cluster.on_apply = self._on_apply

    def _now(self) -> int:
        self.clock += 1
        return self.clock

    # -- issuing ---------------------------------------------------------------------

    def step(self) -> None:
        c = self.config
        roll = self.rng.random()
        if roll < c.write_rate:
            self.write()
        elif roll < c.write_rate + c.sync_rate:
            self.sync_read()
        elif roll < c.write_rate + c.sync_rate + c.read_rate:
            self.plain_read()

    def write(self, key: str | None = None, *, at: Node | None = None) -> _Op | None:
        leaders = self.cluster.serving_leaders()
        if not leaders:
            return None  # the client finds no server to take it: nothing invoked
        node = at or self.rng.choice(leaders)
        op = _Op(len(self.ops) + 1, key or self.rng.choice(self.keys), WRITE, None, self._now())
        op.value = op.op_id
        self.ops.append(op)
        self._writes[(node.node_id, node.incarnation, op.op_id)] = op
        body = SetDataTxn(op.key, str(op.value).encode(), 0)
        self._propose(node, op, WRITE_SESSION, body)  # (a lone voter commits right here)
        return op

    def sync_read(self) -> None:
        readers = self.cluster.serving()
        if not readers:
            return
        reader = self.rng.choice(readers)
        assert reader.peer is not None
        key = self.rng.choice(self.keys)
        if self.config.sync_reads == "leader":
            self._leader_read(reader, key)
            return
        leader = self._leader_of(reader)
        if leader is None:
            return  # the sync fails at once: nothing invoked
        op = _Op(len(self.ops) + 1, key, READ, None, self._now(), None, reader.node_id)
        op.incarnation = reader.incarnation
        self.ops.append(op)
        self._syncs[op.op_id] = op
        self._propose(leader, op, SYNC_SESSION, CheckTxn(SYNC_PATH, op.op_id))

    def _leader_read(self, reader: Node, key: str) -> None:
        leader = self._leader_of(reader)
        if leader is None:
            return
        op = _Op(len(self.ops) + 1, key, READ, None, self._now())
        value = leader.kv.get(key)
        op.value = None if value is None else int(value)
        op.complete = self._now()
        self.ops.append(op)

    def _leader_of(self, reader: Node) -> Node | None:
        peer = reader.peer
        assert peer is not None
        if peer.role is Role.LEADING:
            return reader
        if peer.leader_id is None:
            return None
        leader = self.cluster.nodes[peer.leader_id]
        if not self.cluster.caught_up(leader):
            return None
        assert leader.peer is not None
        if leader.peer.role is not Role.LEADING:
            return None
        if not self.cluster.can_reach(reader.node_id, leader.node_id):
            return None
        return leader

    def plain_read(self) -> None:
        readers = self.cluster.serving()
        if not readers:
            return
        reader = self.rng.choice(readers)
        key = self.rng.choice(self.keys)
        value = reader.kv.get(key)
        self.plain_reads.append((key, None if value is None else int(value)))

    def _propose(self, node: Node, op: _Op, session: int, body: TxnBody) -> None:
        header = TxnHeader(0, self.cluster.time, session, op.op_id)
        self.cluster.propose_bodies(node, [(header, body)])

    # -- completions -----------------------------------------------------------------

    def _on_apply(self, node: Node, txn: Txn) -> None:
        header = txn.header
        if header.session_id == WRITE_SESSION:
            op = self._writes.pop((node.node_id, node.incarnation, header.xid), None)
            if op is not None:
                op.complete = self._now()
                self.cluster.acknowledge(txn)
        elif header.session_id == SYNC_SESSION:
            op = self._syncs.get(header.xid)
            if op is not None and (op.node, op.incarnation) == (node.node_id, node.incarnation):
                del self._syncs[header.xid]
                value = node.kv.get(op.key)
                op.value = None if value is None else int(value)
                op.complete = self._now()

    def history(self) -> list[Operation]:
        return [
            Operation(op.op_id, op.key, op.kind, op.value, op.invoke, op.complete)
            for op in self.ops
        ]


def run_seed(seed: int, *, trace: bool = False, config: SimConfig | None = None) -> Result:
    """Run one seed; a protocol failure does not raise, it comes back in the Result."""
    config = config or SimConfig.from_seed(seed)
    rng = random.Random(seed ^ 0x5EED_CAFE)
    cluster = Cluster(
        config.voters,
        seed=seed,
        observers=config.observers,
        faults=config.faults,
        max_history=config.max_history,
        tick_rate=config.tick_rate,
        drift=config.drift,
        rng=random.Random(rng.getrandbits(64)),
    )
    if trace:
        cluster.trace = []
    workload = Workload(cluster, config, random.Random(rng.getrandbits(64)))
    result = Result(seed, True, stats=cluster.stats)
    try:
        for _ in range(config.safety_steps):
            cluster.step()
            workload.step()
        result.liveness_steps = _liveness(cluster, workload, config)
        verdict = check(workload.history())
        if not verdict.ok:
            raise InvariantViolation(
                f"seed {seed}: the history is not linearizable\n{verdict.explain()}"
            )
    except InvariantViolation as failure:
        result.ok = False
        result.failure = f"{failure}\n{cluster.describe()}\n{config.reproduce()}"
    result.writes = sum(1 for op in workload.ops if op.kind == WRITE)
    result.acked = len(cluster.acked)
    result.sync_reads = sum(1 for op in workload.ops if op.kind == READ)
    result.sync_reads_done = sum(
        1 for op in workload.ops if op.kind == READ and op.complete is not None
    )
    result.plain_reads = len(workload.plain_reads)
    committed = {int(t.body.data) for t in cluster.chain if isinstance(t.body, SetDataTxn)}
    result.phantom_reads = sum(
        1 for _, value in workload.plain_reads if value is not None and value not in committed
    )
    if cluster.trace is not None:
        result.trace = cluster.trace
    return result


def _liveness(cluster: Cluster, workload: Workload, config: SimConfig) -> int:
    """Heal everything; a leader must serve and a new write reach every node in time."""
    f = config.faults
    # Delays and slow disks stay, bounded by about a tick each: the timeouts are
    # counted in ticks (init_limit, sync_limit), and progress needs them to cover
    # a round trip.
    tick = max(1, int(1 / config.tick_rate))
    cluster.faults = Faults(
        reorder=f.reorder,
        fifo=f.fifo,
        max_delay=min(f.max_delay, tick),
        slow_disk=f.slow_disk,
        slow_steps=min(f.slow_steps, max(1, tick // 2)),
    )
    cluster.heal()
    for node_id in cluster.ids:
        cluster.restart(node_id)
    start = cluster.time
    deadline = start + config.liveness_steps
    op: _Op | None = None
    proposer: tuple[int, int, int] | None = None
    while cluster.time < deadline:
        if op is not None and op.complete is not None and _applied_everywhere(cluster, op):
            return cluster.time - start
        leader = cluster.leader()
        if leader is not None and leader.peer is not None:
            current = (leader.node_id, leader.incarnation, leader.peer.epoch)
            if op is None or (op.complete is None and proposer != current):
                op = workload.write(at=leader)
                proposer = current
        cluster.step()
    lines = [
        f"seed {config.seed}: liveness: no write committed on every node in "
        f"{config.liveness_steps} steps"
    ]
    if op is not None:
        lines.append(f"last write #{op.op_id}: complete={op.complete}")
    raise InvariantViolation("\n".join(lines))


def _applied_everywhere(cluster: Cluster, op: _Op) -> bool:
    value = str(op.value).encode()
    for node in cluster.nodes.values():
        if not any(
            isinstance(t.body, SetDataTxn) and t.body.data == value and t.body.path == op.key
            for t in node.applied[-50:]
        ):
            return False
    return True
