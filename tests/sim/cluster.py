"""A deterministic in-process ensemble of ZabPeers: network, disks and time from one seed.

Everything random comes from one `random.Random` built from the seed, and the
simulator never iterates a set or reads a clock, so a run replays exactly.

One `step()` is one unit of simulated time:

1. the network delivers every packet whose delay ran out. Delays are drawn
   per packet. With `Faults.fifo` (TCP-like links, what server/runtime/peers.py
   provides and the ZAB core assumes) a link keeps its order, so packets only
   overtake each other across links; without it (datagrams) they also overtake
   each other on a link and may be duplicated. A packet is lost when its target
   is down or across a partition, or dropped with the drop probability (on a
   FIFO link: the stretch of stream a broken connection loses);
2. each running node ticks at its own steady rate (clocks drift, boundedly),
   and a clock jump hands one node a burst of ticks;
3. slow disks make progress (see below);
4. faults strike: crash, restart, partition, heal, clock jump.

The disk of a node holds its epochs, its log and an installed snapshot. A
node carries out its peer's `ZabReady`s one at a time, in the documented
order: persist (epochs, truncate or snapshot, appends), then send, then apply
the commits, then `advance`; as ZabReady allows and the runtime does, a
leader's proposals leave first, before its own log write. Most Readys are
carried out at once; a "slow" one waits some steps in each stage while the
peer keeps receiving and ticking (the next Ready is taken only after
`advance`). A crash while the writes are under way keeps only a prefix of
them (the last record torn, or the whole unsynced batch lost) and sends none
of the Ready's other messages; a crash while the messages go out sends some
of them.

A restart builds a new ZabPeer from the disk (history_base = the snapshot's
zxid, as the runtime passes it), and the node's tree is the snapshot plus the
whole log, as the real recovery replays it: a recovered node may hold txns
that were never committed until a leader syncs it.

Invariants (failures raise `InvariantViolation` naming the seed and step):
- at most one established (serving) leader per epoch (`check()`, every step);
- accepted_epoch >= current_epoch on every disk (every step, and every save);
- the committed prefix of every node (everything up to the last txn a Ready
  told it to commit) is a prefix of one global chain, zxids strictly rising,
  and once a node has committed a txn it keeps it, through truncations,
  snapshots, crashes and restarts (checked whenever a tree changes);
- every acknowledged write (applied in a commit at the node that proposed it)
  is durable on the disks of a quorum of voters from then on (checked at the
  acknowledgement and whenever a disk loses anything);
- an Ack leaves a node only for a zxid that is already on its disk, a log
  only grows in zxid order, and a truncation never cuts into a snapshot.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from coord.server.core.txn import CheckTxn, SetDataTxn, Txn, TxnBody, TxnHeader
from coord.server.zab.messages import Ack, PeerMessage, Proposal, Role, Sync, SyncMode
from coord.server.zab.peer import PersistentState, ZabConfig, ZabPeer, ZabReady, epoch_of


class InvariantViolation(AssertionError):
    pass


@dataclass
class Disk:
    epochs: PersistentState = field(default_factory=PersistentState)
    log: list[Txn] = field(default_factory=list)
    snapshot: list[Txn] = field(default_factory=list)
    """Txns folded into a snapshot installed from a leader (the tree's history before the log)."""
    snapshot_zxid: int = 0

    def last_zxid(self) -> int:
        if self.log:
            return self.log[-1].zxid
        return self.snapshot_zxid

    def holds(self, txn: Txn) -> bool:
        """Is this exact txn durable here (in the log or the installed snapshot)?"""
        for part in (self.log, self.snapshot):
            index = _find(part, txn.zxid)
            if index is not None and part[index] == txn:
                return True
        return False


@dataclass
class Faults:
    """Fault rates. Probabilities are per packet, per step or per Ready, as named."""

    drop: float = 0.0
    """Per packet: lost on the way."""
    duplicate: float = 0.0
    """Per packet: delivered, and queued once more for later."""
    reorder: bool = False
    """Draw each packet's delay from [1, max_delay] rather than fixing it at 1."""
    fifo: bool = False
    """TCP-like links, the runtime's contract (server/runtime/peers.py): each
    (sender, receiver) link delivers in order and never duplicates; a drop loses
    one message of the stream; what a crashed node had not delivered yet is lost,
    while what others queued for it may reach its next life. Without it the
    network is datagrams: packets overtake each other on a link and repeat."""
    max_delay: int = 3
    crash: float = 0.0
    """Per step and running node."""
    restart: float = 0.0
    """Per step and crashed node."""
    partition: float = 0.0
    """Per step (when whole): split the nodes into two random sides."""
    heal: float = 0.0
    """Per step (when split): heal."""
    clock_jump: float = 0.0
    """Per step: one node gets a burst of ticks."""
    slow_disk: float = 0.0
    """Per Ready: carried out over several steps, stage by stage."""
    slow_steps: int = 3
    """A slow Ready waits up to this many steps in each stage."""
    torn: float = 0.0
    """Per step and node with a slow Ready under way: crash it right then (a power
    cut during an fsync), so that its writes tear or its messages go out in part."""


@dataclass
class Stats:
    steps: int = 0
    delivered: int = 0
    drops: int = 0
    lost: int = 0
    """Packets to a crashed node or across a partition."""
    dups: int = 0
    partitions: int = 0
    heals: int = 0
    crashes: int = 0
    restarts: int = 0
    torn_writes: int = 0
    """Crashes in the middle of a Ready's writes (some or all of them lost)."""
    lost_appends: int = 0
    """Log records lost to those crashes."""
    partial_sends: int = 0
    """Crashes while a Ready's messages were going out (some sent, some not)."""
    clock_jumps: int = 0
    slow_readys: int = 0
    diffs_sent: int = 0
    truncs_sent: int = 0
    snaps_sent: int = 0
    snaps: int = 0
    """Snapshots installed."""
    truncs: int = 0
    """Truncations carried out."""
    leaders: int = 0
    """(epoch, leader) pairs that got established."""

    def add(self, other: Stats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(order=True)
class _Packet:
    at: int
    seq: int
    sender: int = field(compare=False)
    to: int = field(compare=False)
    message: PeerMessage = field(compare=False)
    from_life: int = field(compare=False)
    """The sender's incarnation: a FIFO link loses what a dead sender had queued."""


@dataclass
class _InFlight:
    """A Ready being carried out slowly: which stage, and how long it still waits."""

    ready: ZabReady
    messages: list[tuple[int, PeerMessage]]
    """What is left to send after the writes (the proposals already left)."""
    stage: int = 0
    """0: writing, 1: sending, 2: applying."""
    wait: int = 0
    sent: int = 0


@dataclass
class Node:
    node_id: int
    disk: Disk
    peer: ZabPeer | None = None
    incarnation: int = 0
    applied: list[Txn] = field(default_factory=list)
    """The tree, as the txns that built it (snapshot + log on restart, then commits)."""
    kv: dict[str, bytes] = field(default_factory=dict)
    """The register state the applied txns give (SetDataTxn path -> data)."""
    agreed: int = 0
    """applied[:agreed] is known committed: it matches the global chain."""
    inflight: _InFlight | None = None
    tick_rate: float = 0.25
    """Ticks per step: each node's clock runs at its own, steady rate (bounded drift)."""
    phase: float = 0.0

    @property
    def up(self) -> bool:
        return self.peer is not None


ApplyHook = Callable[["Node", Txn], None]


class Cluster:
    def __init__(
        self,
        size: int = 3,
        *,
        seed: int = 0,
        observers: int = 0,
        faults: Faults | None = None,
        max_history: int = 100_000,
        tick_rate: float = 0.25,
        drift: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.seed = seed
        self.rng = rng or random.Random(seed)
        self.faults = faults or Faults()
        self.voters = frozenset(range(1, size + 1))
        self.observers = frozenset(range(size + 1, size + 1 + observers))
        self.ids = sorted(self.voters | self.observers)
        self.max_history = max_history
        self.stats = Stats()
        self.time = 0
        self._packets: list[_Packet] = []
        self._link_clock: dict[tuple[int, int], int] = {}
        """(sender, to) -> when the link's last packet arrives (FIFO links keep order)."""
        self._packet_seq = 0
        self.sides: tuple[frozenset[int], ...] = ()
        """The partition: empty when the network is whole."""
        self.chain: list[Txn] = []
        """The committed history as the nodes have reported it: one sequence for all."""
        self.acked: list[Txn] = []
        """Acknowledged writes: each must stay on a quorum of disks."""
        self.leaders_by_epoch: dict[int, int] = {}
        self.on_apply: ApplyHook | None = None
        """Called for each committed txn a node applies (the client workload listens)."""
        self.trace: list[str] | None = None
        """When a list, every delivery, drop and fault is recorded in it (for replays)."""
        self.nodes: dict[int, Node] = {}
        for node_id in self.ids:
            rate = tick_rate * (1 + self.rng.uniform(-drift, drift))
            self.nodes[node_id] = Node(node_id, Disk(), tick_rate=rate, phase=self.rng.random())
        for node_id in self.ids:
            self._boot(node_id)

    def _note(self, text: str) -> None:
        if self.trace is not None:
            self.trace.append(f"{self.time} {text}")

    def _fail(self, message: str) -> InvariantViolation:
        return InvariantViolation(f"seed {self.seed}, step {self.time}: {message}")

    # -- nodes ---------------------------------------------------------------------

    def _boot(self, node_id: int) -> None:
        node = self.nodes[node_id]
        config = ZabConfig(node_id, self.voters, self.observers, max_history=self.max_history)
        node.incarnation += 1
        # Recovery applies everything durable: the snapshot and then the log.
        recovered = list(node.disk.snapshot) + list(node.disk.log)
        self._replace_tree(node, recovered, "restart")
        node.inflight = None
        disk = node.disk
        node.peer = ZabPeer(
            config,
            disk.epochs,
            disk.log,
            last_zxid=disk.last_zxid(),
            history_base=disk.snapshot_zxid,
        )
        self._pump(node)

    def crash(self, node_id: int) -> None:
        """The process dies: its peer and any Ready under way are gone; the disk stays."""
        node = self.nodes[node_id]
        if not node.up:
            return
        self.stats.crashes += 1
        self._note(f"crash {node_id}")
        flight = node.inflight
        if flight is not None and flight.stage == 0:
            self._tear(node, flight.ready)
        elif flight is not None and flight.stage == 1 and flight.sent:
            self.stats.partial_sends += 1
        node.inflight = None
        node.peer = None

    def restart(self, node_id: int) -> None:
        if not self.nodes[node_id].up:
            self.stats.restarts += 1
            self._note(f"restart {node_id}")
            self._boot(node_id)

    def _tear(self, node: Node, ready: ZabReady) -> None:
        """A crash during the writes: a prefix of them reached the disk, the rest is lost."""
        disk = node.disk
        writes: list[str | Txn] = []
        if ready.epochs is not None:
            writes.append("epochs")
        if ready.install_snapshot is not None or ready.truncate_after is not None:
            writes.append("cut")
        writes.extend(ready.append)
        if not writes:
            return
        kept = self.rng.randint(0, len(writes) - 1)
        for write in writes[:kept]:
            if write == "epochs":
                assert ready.epochs is not None
                disk.epochs = _copy_epochs(ready.epochs)
            elif write == "cut":
                self._cut_disk(disk, ready)
            else:
                assert isinstance(write, Txn)
                disk.log.append(write)
        self.stats.torn_writes += 1
        self._note(f"torn write at {node.node_id}: kept {kept} of {len(writes)}")
        self.stats.lost_appends += min(len(ready.append), len(writes) - kept)
        self._check_durable_quorum()

    # -- the network -----------------------------------------------------------------

    def can_reach(self, a: int, b: int) -> bool:
        if not self.sides:
            return True
        return any(a in side and b in side for side in self.sides)

    def _send(self, sender: int, to: int, message: PeerMessage) -> None:
        delay = self.rng.randint(1, self.faults.max_delay) if self.faults.reorder else 1
        at = self.time + delay
        if self.faults.fifo:
            at = max(at, self._link_clock.get((sender, to), 0))
            self._link_clock[sender, to] = at
        self._packet_seq += 1
        packet = _Packet(
            at,
            self._packet_seq,
            sender,
            to,
            message,
            self.nodes[sender].incarnation,
        )
        heapq.heappush(self._packets, packet)

    def in_flight(self) -> int:
        return len(self._packets)

    def partition(self) -> None:
        if len(self.ids) < 2:
            return
        ids = list(self.ids)
        self.rng.shuffle(ids)
        cut = self.rng.randint(1, len(ids) - 1)
        self.sides = (frozenset(ids[:cut]), frozenset(ids[cut:]))
        self.stats.partitions += 1
        self._note(f"partition {sorted(self.sides[0])} | {sorted(self.sides[1])}")

    def heal(self) -> None:
        if self.sides:
            self.sides = ()
            self.stats.heals += 1
            self._note("heal")

    def _deliver_due(self) -> None:
        fifo = self.faults.fifo
        while self._packets and self._packets[0].at <= self.time:
            packet = heapq.heappop(self._packets)
            sender, to, message = packet.sender, packet.to, packet.message
            node = self.nodes[to]
            if node.peer is None or not self.can_reach(sender, to):
                self.stats.lost += 1
                continue
            if fifo and packet.from_life != self.nodes[sender].incarnation:
                self.stats.lost += 1  # its sender died, and its send queues with it
                continue
            if self.faults.drop and self.rng.random() < self.faults.drop:
                self.stats.drops += 1
                self._note(f"drop {sender}->{to} {_short(message)}")
                continue
            if self.trace is not None:
                self._note(f"deliver {sender}->{to} {_short(message)}")
            if not fifo and self.faults.duplicate and self.rng.random() < self.faults.duplicate:
                self.stats.dups += 1
                self._send(sender, to, message)
            self.stats.delivered += 1
            node.peer.receive(sender, message)
            self._pump(node)

    # -- carrying out Readys -----------------------------------------------------------

    def _pump(self, node: Node) -> None:
        """Carry out the peer's Readys until it has none, or one is slow."""
        while node.peer is not None and node.inflight is None and node.peer.has_ready():
            ready = node.peer.ready()
            # As the runtime does (the exception ZabReady allows): a leader's proposals
            # leave before its own log write, the rest after.
            late: list[tuple[int, PeerMessage]] = []
            for to, message in ready.messages:
                if isinstance(message, Proposal):
                    self._emit(node, to, message)
                else:
                    late.append((to, message))
            if self.faults.slow_disk and self.rng.random() < self.faults.slow_disk:
                self.stats.slow_readys += 1
                wait = self.rng.randint(1, self.faults.slow_steps)
                node.inflight = _InFlight(ready, late, wait=wait)
                return
            self._write(node, ready)
            for to, message in late:
                self._emit(node, to, message)
            self._apply(node, ready.commit)
            node.peer.advance(ready)

    def _progress(self, node: Node) -> None:
        """One step of a slow Ready."""
        flight = node.inflight
        assert flight is not None and node.peer is not None
        if flight.wait > 0:
            flight.wait -= 1
            return
        ready = flight.ready
        if flight.stage == 0:
            self._write(node, ready)
            flight.stage, flight.wait = 1, self.rng.randint(0, self.faults.slow_steps)
            return
        if flight.stage == 1:
            # The messages go out a few at a time.
            count = self.rng.randint(1, max(1, len(flight.messages)))
            for to, message in flight.messages[flight.sent : flight.sent + count]:
                self._emit(node, to, message)
            flight.sent += count
            if flight.sent < len(flight.messages):
                return
            flight.stage, flight.wait = 2, self.rng.randint(0, self.faults.slow_steps)
            return
        self._apply(node, ready.commit)
        node.inflight = None
        node.peer.advance(ready)
        self._pump(node)

    def _cut_disk(self, disk: Disk, ready: ZabReady) -> None:
        if ready.install_snapshot is not None:
            snapshot = ready.install_snapshot.snapshot
            assert isinstance(snapshot, tuple), "the sender attaches its applied txns"
            disk.snapshot = list(snapshot)
            disk.snapshot_zxid = ready.install_snapshot.snapshot_zxid
            disk.log = []
        elif ready.truncate_after is not None:
            cut = ready.truncate_after
            disk.log = [t for t in disk.log if t.zxid <= cut]

    def _write(self, node: Node, ready: ZabReady) -> None:
        """Persist: epochs, then truncate or install a snapshot, then the appends."""
        disk = node.disk
        if ready.epochs is not None:
            disk.epochs = _copy_epochs(ready.epochs)
            if disk.epochs.accepted_epoch < disk.epochs.current_epoch:
                raise self._fail(f"node {node.node_id} saved epochs {disk.epochs}")
        if ready.install_snapshot is not None:
            self.stats.snaps += 1
            self._cut_disk(disk, ready)
            self._replace_tree(node, list(disk.snapshot), "snapshot")
        elif ready.truncate_after is not None:
            self.stats.truncs += 1
            self._cut_disk(disk, ready)
            cut = ready.truncate_after
            if disk.snapshot and disk.snapshot[-1].zxid > cut:
                raise self._fail(
                    f"node {node.node_id} truncates to {_z(cut)} below its snapshot "
                    f"({_z(disk.snapshot[-1].zxid)})"
                )
            self._replace_tree(node, [t for t in node.applied if t.zxid <= cut], "truncation")
        if ready.append:
            last = disk.last_zxid()
            if ready.append[0].zxid <= last:
                raise self._fail(
                    f"node {node.node_id} appends {_z(ready.append[0].zxid)} after {_z(last)}"
                )
            disk.log.extend(ready.append)
        if ready.install_snapshot is not None or ready.truncate_after is not None:
            self._check_durable_quorum()

    def _emit(self, node: Node, to: int, message: PeerMessage) -> None:
        if isinstance(message, Sync):
            if message.mode is SyncMode.SNAP:
                self.stats.snaps_sent += 1
                if message.snapshot is None:
                    # As the runtime does: attach the tree as it is now, at its own zxid.
                    message = _with_snapshot(message, tuple(node.applied))
            elif message.mode is SyncMode.TRUNC:
                self.stats.truncs_sent += 1
            else:
                self.stats.diffs_sent += 1
        if isinstance(message, Ack) and message.zxid & 0xFFFFFFFF:
            # An Ack says "durable here": it must be.
            disk = node.disk
            if _find(disk.log, message.zxid) is None and _find(disk.snapshot, message.zxid) is None:
                raise self._fail(
                    f"node {node.node_id} acks {_z(message.zxid)} that is not on its disk"
                )
        self._send(node.node_id, to, message)

    def _apply(self, node: Node, commits: list[Txn]) -> None:
        for txn in commits:
            if node.applied and txn.zxid <= node.applied[-1].zxid:
                raise self._fail(
                    f"node {node.node_id} told to commit {_z(txn.zxid)} after applying "
                    f"{_z(node.applied[-1].zxid)}"
                )
            node.applied.append(txn)
            _apply_kv(node.kv, txn)
            # Everything applied so far is committed: it must extend the one chain.
            self._agree(node)
            if self.on_apply is not None:
                self.on_apply(node, txn)

    def _replace_tree(self, node: Node, txns: list[Txn], why: str) -> None:
        """Truncation, snapshot install or recovery: the committed prefix must survive.

        What is new in the tree is checked against the chain at the node's next commit,
        not now: a recovered log, and a snapshot from a leader that is not established
        yet, may hold txns that were never committed.
        """
        old, keep = node.applied, node.agreed
        if txns[:keep] != old[:keep]:
            lost = next(t for i, t in enumerate(old[:keep]) if i >= len(txns) or txns[i] != t)
            raise self._fail(f"node {node.node_id} lost committed txn {_z(lost.zxid)} in a {why}")
        node.applied = txns
        node.kv = {}
        for txn in txns:
            _apply_kv(node.kv, txn)

    def _agree(self, node: Node) -> None:
        applied, chain = node.applied, self.chain
        for i in range(node.agreed, len(applied)):
            txn = applied[i]
            if i > 0 and txn.zxid <= applied[i - 1].zxid:
                raise self._fail(f"node {node.node_id} applied {_z(txn.zxid)} out of order")
            if i < len(chain):
                if chain[i] != txn:
                    raise self._fail(
                        f"node {node.node_id} committed {_z(txn.zxid)} at position {i} "
                        f"where the chain has {_z(chain[i].zxid)}"
                        + ("" if chain[i].zxid != txn.zxid else " (a different txn)")
                    )
            else:
                chain.append(txn)
        node.agreed = len(applied)

    # -- invariants ------------------------------------------------------------------

    def acknowledge(self, txn: Txn) -> None:
        """A client was told this write happened: from now on a quorum must keep it."""
        self.acked.append(txn)
        self._check_durable_quorum([txn])

    def _check_durable_quorum(self, txns: list[Txn] | None = None) -> None:
        need = len(self.voters) // 2 + 1
        for txn in self.acked if txns is None else txns:
            holders = [v for v in sorted(self.voters) if self.nodes[v].disk.holds(txn)]
            if len(holders) < need:
                raise self._fail(f"acknowledged write {_z(txn.zxid)} is durable only on {holders}")

    def check(self) -> None:
        for node in self.nodes.values():
            epochs = node.disk.epochs
            if epochs.accepted_epoch < epochs.current_epoch:
                raise self._fail(f"node {node.node_id} has epochs {epochs} on disk")
            peer = node.peer
            if peer is not None and peer.role is Role.LEADING and peer.serving:
                holder = self.leaders_by_epoch.get(peer.epoch)
                if holder is None:
                    self.leaders_by_epoch[peer.epoch] = node.node_id
                    self.stats.leaders += 1
                    if self.trace is not None:
                        self.trace.append(f"{self.time} node {node.node_id} leads {peer.epoch}")
                elif holder != node.node_id:
                    raise self._fail(
                        f"two established leaders in epoch {peer.epoch}: {holder} and "
                        f"{node.node_id}"
                    )

    # -- the loop ------------------------------------------------------------------

    def step(self) -> None:
        self.time += 1
        self.stats.steps += 1
        self._deliver_due()
        for node_id in self.ids:
            node = self.nodes[node_id]
            node.phase += node.tick_rate
            if node.phase >= 1.0:
                node.phase -= 1.0
                if node.peer is not None:
                    node.peer.tick()
                    self._pump(node)
        for node_id in self.ids:
            node = self.nodes[node_id]
            if node.inflight is not None:
                self._progress(node)
        self._faults()
        self.check()

    def _faults(self) -> None:
        f = self.faults
        for node_id in self.ids:
            node = self.nodes[node_id]
            crash = node.up and f.crash and self.rng.random() < f.crash
            # (a power cut in the middle of a slow Ready: its writes tear)
            torn = node.inflight is not None and f.torn and self.rng.random() < f.torn
            if crash or torn:
                self.crash(node_id)
            elif not node.up and f.restart and self.rng.random() < f.restart:
                self.restart(node_id)
        if not self.sides and f.partition and self.rng.random() < f.partition:
            self.partition()
        elif self.sides and f.heal and self.rng.random() < f.heal:
            self.heal()
        if f.clock_jump and self.rng.random() < f.clock_jump:
            self.clock_jump(self.rng.choice(self.ids), self.rng.randint(3, 12))

    def clock_jump(self, node_id: int, ticks: int) -> None:
        node = self.nodes[node_id]
        if node.peer is None:
            return
        self.stats.clock_jumps += 1
        self._note(f"clock jump {node_id} +{ticks}")
        for _ in range(ticks):
            node.peer.tick()
            self._pump(node)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def run_until(self, condition: Callable[[], bool], steps: int) -> bool:
        for _ in range(steps):
            if condition():
                return True
            self.step()
        return condition()

    # -- views -----------------------------------------------------------------------

    def caught_up(self, node: Node) -> bool:
        """Serving, with every Ready carried out (the runtime serves clients only then)."""
        peer = node.peer
        return peer is not None and peer.serving and node.inflight is None and not peer.has_ready()

    def serving_leaders(self) -> list[Node]:
        return [
            node
            for node in (self.nodes[i] for i in self.ids)
            if self.caught_up(node) and node.peer is not None and node.peer.role is Role.LEADING
        ]

    def leader(self) -> Node | None:
        leaders = self.serving_leaders()
        if not leaders:
            return None
        return max(leaders, key=lambda n: n.peer.epoch if n.peer else 0)

    def serving(self) -> list[Node]:
        return [self.nodes[i] for i in self.ids if self.caught_up(self.nodes[i])]

    def propose(self, count: int = 1, *, at: Node | None = None) -> list[Txn]:
        """Have the serving leader order `count` writes of no effect; returns their txns."""
        node = at or self.leader()
        if node is None:
            return []
        bodies: list[tuple[TxnHeader, TxnBody]] = [
            (TxnHeader(0, self.time, 0, 0), CheckTxn(f"/w{self.time}-{i}", i)) for i in range(count)
        ]
        return self.propose_bodies(node, bodies)

    def propose_bodies(self, node: Node, bodies: list[tuple[TxnHeader, TxnBody]]) -> list[Txn]:
        """Number the writes from the leader's next zxid, as its sequencer does (the headers'
        zxids are ignored), and broadcast them."""
        assert node.peer is not None
        first = node.peer.next_zxid()
        txns = [
            Txn(TxnHeader(first + i, h.time_ms, h.session_id, h.xid), body)
            for i, (h, body) in enumerate(bodies)
        ]
        node.peer.propose_txns(txns)
        self._pump(node)
        return txns

    def describe(self) -> str:
        """One line per node: what a failing seed's report shows."""
        lines = []
        for i in self.ids:
            node = self.nodes[i]
            peer = node.peer
            if peer is None:
                state = "down"
            else:
                state = (
                    f"{peer.role.value} leader={peer.leader_id} epoch={peer.epoch} "
                    f"serving={peer.serving} last={_z(peer.last_zxid)} "
                    f"commit={_z(peer.commit_zxid)}"
                )
            epochs = node.disk.epochs
            lines.append(
                f"  node {i}: {state}; disk epochs=({epochs.accepted_epoch},"
                f"{epochs.current_epoch}) last={_z(node.disk.last_zxid())}; "
                f"applied={len(node.applied)}"
            )
        return "\n".join(lines)


def _z(zxid: int) -> str:
    return f"{epoch_of(zxid)}:{zxid & 0xFFFFFFFF}"


def _find(txns: list[Txn], zxid: int) -> int | None:
    lo, hi = 0, len(txns)
    while lo < hi:
        mid = (lo + hi) // 2
        if txns[mid].zxid < zxid:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(txns) and txns[lo].zxid == zxid:
        return lo
    return None


def _short(message: PeerMessage) -> str:
    text = repr(message)
    return text if len(text) < 200 else text[:200] + "..."


def _copy_epochs(epochs: PersistentState) -> PersistentState:
    return PersistentState(epochs.accepted_epoch, epochs.current_epoch)


def _apply_kv(kv: dict[str, bytes], txn: Txn) -> None:
    body = txn.body
    if isinstance(body, SetDataTxn):
        kv[body.path] = body.data


def _with_snapshot(message: Sync, applied: tuple[Txn, ...]) -> Sync:
    at = applied[-1].zxid if applied else 0
    return Sync(
        message.epoch,
        message.mode,
        message.truncate_to,
        at,
        tuple(t for t in message.txns if t.zxid > at),
        message.commit_zxid,
        snapshot=applied,
    )
