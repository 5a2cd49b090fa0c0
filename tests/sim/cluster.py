"""A deterministic in-process ensemble of ZabPeers: network, disks and time from one seed.

Each simulated node has a durable log and epochs (its "disk"), the txns it has
applied (its "tree", kept as the list of applied zxids and bodies), and a
ZabPeer. The network holds messages in flight; a step delivers one of them or
ticks a node, as the seeded random generator chooses, so any run replays
exactly from its seed. Faults are switched on by the scenario: drops,
duplicates, reordering, partitions, crashes (the peer and everything not yet
durable are lost) and restarts (a new peer from the disk).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from server.txn import CheckTxn, Txn, TxnHeader
from server.zab.messages import PeerMessage, Role, Sync
from server.zab.peer import PersistentState, ZabConfig, ZabPeer, ZabReady


@dataclass
class Disk:
    epochs: PersistentState = field(default_factory=PersistentState)
    log: list[Txn] = field(default_factory=list)
    snapshot: list[Txn] = field(default_factory=list)
    """Txns folded into a snapshot installed from a leader (the tree's history before the log)."""

    def last_zxid(self) -> int:
        if self.log:
            return self.log[-1].zxid
        return self.snapshot[-1].zxid if self.snapshot else 0


@dataclass
class Node:
    node_id: int
    disk: Disk
    peer: ZabPeer | None
    applied: list[Txn] = field(default_factory=list)

    @property
    def up(self) -> bool:
        return self.peer is not None


@dataclass
class Faults:
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: bool = False
    crash: float = 0.0
    restart: float = 0.0


class Cluster:
    def __init__(
        self,
        size: int = 3,
        *,
        seed: int = 0,
        observers: int = 0,
        faults: Faults | None = None,
        max_history: int = 100_000,
    ) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.faults = faults or Faults()
        self.voters = frozenset(range(1, size + 1))
        self.observers = frozenset(range(size + 1, size + 1 + observers))
        self.max_history = max_history
        self.network: list[tuple[int, int, PeerMessage]] = []
        self.partition: list[frozenset[int]] = []
        self.time = 0
        self.committed: dict[int, Txn] = {}
        """Every txn any node applied, by zxid (for agreement checks)."""
        self.leaders_by_epoch: dict[int, int] = {}
        self.nodes: dict[int, Node] = {}
        for node_id in sorted(self.voters | self.observers):
            self.nodes[node_id] = Node(node_id, Disk(), None)
            self._boot(node_id)

    # -- nodes ---------------------------------------------------------------------

    def _boot(self, node_id: int) -> None:
        node = self.nodes[node_id]
        config = ZabConfig(
            node_id,
            self.voters,
            self.observers,
            max_history=self.max_history,
        )
        # Recovery applies everything durable: the snapshot and then the log.
        node.applied = list(node.disk.snapshot) + list(node.disk.log)
        node.peer = ZabPeer(
            config,
            node.disk.epochs,
            node.disk.log,
            last_zxid=node.disk.last_zxid(),
        )
        self._drain(node)

    def crash(self, node_id: int) -> None:
        """The process dies: its peer and whatever it had in flight are gone; the disk stays."""
        node = self.nodes[node_id]
        node.peer = None
        self.network = [m for m in self.network if m[0] != node_id and m[1] != node_id]

    def restart(self, node_id: int) -> None:
        if not self.nodes[node_id].up:
            self._boot(node_id)

    def can_reach(self, a: int, b: int) -> bool:
        if not self.partition:
            return True
        return any(a in side and b in side for side in self.partition)

    # -- the loop ------------------------------------------------------------------

    def _drain(self, node: Node) -> None:
        peer = node.peer
        assert peer is not None
        while peer.has_ready():
            ready = peer.ready()
            self._carry_out(node, ready)
            peer.advance(ready)

    def _carry_out(self, node: Node, ready: ZabReady) -> None:
        disk = node.disk
        if ready.epochs is not None:
            disk.epochs = PersistentState(ready.epochs.accepted_epoch, ready.epochs.current_epoch)
        if ready.install_snapshot is not None:
            snap = ready.install_snapshot.snapshot
            assert isinstance(snap, list), "the sender attaches its applied txns"
            disk.snapshot = list(snap)
            disk.log = []
            node.applied = list(snap)
        elif ready.truncate_after is not None:
            cut = ready.truncate_after
            disk.log = [t for t in disk.log if t.zxid <= cut]
            if node.applied and node.applied[-1].zxid > cut:
                node.applied = [t for t in node.applied if t.zxid <= cut]
        disk.log.extend(ready.append)
        for to, message in ready.messages:
            if (
                isinstance(message, Sync)
                and message.snapshot is None
                and message.mode.value == "snap"
            ):
                upto = message.snapshot_zxid
                message = _with_snapshot(message, [t for t in node.applied if t.zxid <= upto])
            self.network.append((node.node_id, to, message))
        for txn in ready.commit:
            if node.applied and txn.zxid <= node.applied[-1].zxid:
                continue
            node.applied.append(txn)
            self.committed.setdefault(txn.zxid, txn)

    def step(self) -> None:
        self.time += 1
        if self.network and self.rng.random() < 0.97:
            index = self.rng.randrange(len(self.network)) if self.faults.reorder else 0
            sender, to, message = self.network.pop(index)
            target = self.nodes.get(to)
            if target is None or not target.up or not self.can_reach(sender, to):
                return
            if self.rng.random() < self.faults.drop:
                return
            if self.rng.random() < self.faults.duplicate:
                self.network.append((sender, to, message))
            assert target.peer is not None
            target.peer.receive(sender, message)
            self._drain(target)
        else:
            # Time passes for every node at once: clocks run at the same rate.
            for node in [self.nodes[i] for i in sorted(self.nodes)]:
                if node.peer is None:
                    if self.rng.random() < self.faults.restart:
                        self.restart(node.node_id)
                    continue
                if self.rng.random() < self.faults.crash:
                    self.crash(node.node_id)
                    continue
                node.peer.tick()
                self._drain(node)
        self._note_leaders()

    def _note_leaders(self) -> None:
        for node in self.nodes.values():
            peer = node.peer
            if peer is not None and peer.role is Role.LEADING and peer.serving:
                holder = self.leaders_by_epoch.setdefault(peer.epoch, node.node_id)
                assert holder == node.node_id, (
                    f"seed {self.seed}: two leaders in epoch {peer.epoch}: {holder} and "
                    f"{node.node_id}"
                )

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def leader(self) -> Node | None:
        for node in self.nodes.values():
            if node.peer is not None and node.peer.role is Role.LEADING and node.peer.serving:
                return node
        return None

    def propose(self, count: int = 1) -> list[Txn]:
        node = self.leader()
        if node is None:
            return []
        assert node.peer is not None
        bodies = [
            (TxnHeader(0, self.time, 0, 0), CheckTxn(f"/w{self.time}-{i}", i)) for i in range(count)
        ]
        txns = node.peer.propose(bodies)
        self._drain(node)
        return txns


def _with_snapshot(message: Sync, applied: list[Txn]) -> Sync:
    return Sync(
        message.epoch,
        message.mode,
        message.truncate_to,
        message.snapshot_zxid,
        message.txns,
        message.commit_zxid,
        snapshot=applied,
    )
