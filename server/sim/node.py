"""One simulated member: its disk, its MemberCore, and the carrying out of its Readys.

The disk holds what the runtime's data directory holds: the epochs, the log
(after the snapshot it starts from), and a snapshot installed from a leader.
A restart recovers as the runtime does: the snapshot's tree, the log
replayed over it, the client writes of that replay remembered for
deduplicating resends, and a ZabPeer built from the epochs and the log.

A Ready is carried out in MemberReady's order. Most are carried out at once;
a slow one (a slow fsync) waits some steps before its writes are durable,
while the member keeps receiving and ticking (the runtime takes the next
Ready only after `advance`). A crash during the writes keeps a prefix of
them: the torn tail of a log write, or a whole unsynced batch lost.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

from coord.server.core.member import MemberCore, MemberReady
from coord.server.core.replica import CoreConfig, ServerCore
from coord.server.core.results import remember_write
from coord.server.core.tree import DataTree
from coord.server.core.txn import Txn
from coord.server.storage.snapshot import load_snapshot
from coord.server.zab.codec import WireMessage
from coord.server.zab.peer import PersistentState, ZabConfig, ZabPeer

TICK_MS = 100
MIN_SESSION_MS = 2 * TICK_MS
MAX_SESSION_MS = 40 * TICK_MS
FORWARD_TIMEOUT_MS = 20 * TICK_MS


@dataclass
class SimDisk:
    epochs: PersistentState = field(default_factory=PersistentState)
    log: list[Txn] = field(default_factory=list)
    snapshot: bytes | None = None
    snapshot_zxid: int = 0

    def recover(self) -> DataTree:
        """The tree (with its dedupe table) a restart rebuilds from this disk."""
        tree = load_snapshot(self.snapshot).tree if self.snapshot is not None else DataTree()
        for txn in self.log:
            if txn.zxid <= tree.last_zxid:
                continue
            applied = tree.apply(txn)
            if txn.header.xid > 0:
                remember_write(tree.write_results, txn, applied)
        return tree

    def last_zxid(self) -> int:
        return self.log[-1].zxid if self.log else self.snapshot_zxid

    def holds(self, zxid: int) -> bool:
        """Is the txn at `zxid` durable here (in the log, or under the installed snapshot)?"""
        if self.snapshot is not None and zxid <= self.snapshot_zxid:
            return True
        index = bisect_left(self.log, zxid, key=_zxid)
        return index < len(self.log) and self.log[index].zxid == zxid


def _zxid(txn: Txn) -> int:
    return txn.zxid


Send = Callable[[int, WireMessage], None]
"""Hand a peer message to the network: (target, message)."""
Deliver = Callable[[list[tuple[int, object]], list[int]], None]
"""Hand client frames and closes to the client links: ([(conn, frame)], [conn])."""


@dataclass
class _Slow:
    ready: MemberReady
    wait: int


class SimMember:
    """A member's process: up (a MemberCore) or down (only the disk is left)."""

    def __init__(
        self,
        member_id: int,
        voters: frozenset[int],
        observers: frozenset[int],
        rng: random.Random,
        *,
        max_history: int,
        on_commit: Callable[[int, list[Txn]], None],
        clock_rate: float,
    ) -> None:
        self.member_id = member_id
        self.voters = voters
        self.observers = observers
        self.rng = rng
        self.max_history = max_history
        self.on_commit = on_commit
        """Told of every commit before it is applied (the checkers keep the chain)."""
        self.disk = SimDisk()
        self.core: MemberCore | None = None
        self.incarnation = 0
        self.clock_ms = 0.0
        """This member's own clock: it runs at `clock_rate` and may jump."""
        self.clock_rate = clock_rate
        self.next_tick_ms = TICK_MS
        self._slow: _Slow | None = None
        self.torn_writes = 0
        self.lost_appends = 0
        self.snapshots_installed = 0
        self.truncations = 0

    @property
    def up(self) -> bool:
        return self.core is not None

    @property
    def now_ms(self) -> int:
        return int(self.clock_ms)

    @property
    def busy(self) -> bool:
        """A Ready is under way (slowly): the next one waits for it."""
        return self._slow is not None

    def boot(self) -> None:
        tree = self.disk.recover()
        now = self.now_ms
        replica = ServerCore(
            CoreConfig(
                tick_ms=TICK_MS,
                min_session_timeout_ms=MIN_SESSION_MS,
                max_session_timeout_ms=MAX_SESSION_MS,
                server_id=self.member_id,
                session_id_base=(self.member_id << 56) | ((self.incarnation + 1) << 40),
                standalone=False,
                forward_timeout_ms=FORWARD_TIMEOUT_MS,
            ),
            tree=tree,
        )
        disk = self.disk
        zab = ZabPeer(
            ZabConfig(
                self.member_id,
                self.voters,
                self.observers,
                max_history=self.max_history,
                tick_ms=TICK_MS,
            ),
            PersistentState(disk.epochs.accepted_epoch, disk.epochs.current_epoch),
            list(disk.log),
            last_zxid=max(disk.last_zxid(), tree.last_zxid),
            history_base=disk.snapshot_zxid,
        )
        self.core = MemberCore(replica, zab)
        self.incarnation += 1
        self.next_tick_ms = now + TICK_MS
        self._slow = None

    def crash(self) -> None:
        """The process dies; a Ready whose writes were under way tears."""
        if self._slow is not None:
            self._tear(self._slow.ready)
        self._slow = None
        self.core = None

    # -- time ----------------------------------------------------------------------

    def advance_clock(self, step_ms: float) -> None:
        self.clock_ms += step_ms * self.clock_rate

    def jump_clock(self, ms: int) -> None:
        self.clock_ms += ms

    def due_ticks(self) -> int:
        """Ticks whose time has come on this member's clock (a jump brings several)."""
        count = 0
        while self.next_tick_ms <= self.now_ms:
            self.next_tick_ms += TICK_MS
            count += 1
        return count

    # -- carrying out Readys ---------------------------------------------------------

    def pump(self, send: Send, deliver: Deliver, slow_disk: float, slow_steps: int) -> None:
        """Carry out Readys until there is none, or one is slow (it finishes in `progress`)."""
        core = self.core
        while core is not None and self._slow is None and core.has_ready():
            ready = core.ready(self.now_ms)
            deliver(ready.client_messages, ready.client_closes)
            for target, message in (*ready.peer_now, *ready.early):
                send(target, message)
            if slow_disk and (ready.append or ready.epochs) and self.rng.random() < slow_disk:
                self._slow = _Slow(ready, self.rng.randint(1, slow_steps))
                return
            self._finish(ready, send)

    def progress(self, send: Send) -> None:
        """One step of a slow Ready; its writes become durable when its wait is over."""
        slow = self._slow
        if slow is None:
            return
        slow.wait -= 1
        if slow.wait <= 0:
            self._slow = None
            self._finish(slow.ready, send)

    def _finish(self, ready: MemberReady, send: Send) -> None:
        assert self.core is not None
        tree = self._write(ready)
        for target, message in ready.late:
            send(target, message)
        if ready.commit:
            self.on_commit(self.member_id, ready.commit)
        self.core.advance(ready, self.now_ms, tree)

    def _write(self, ready: MemberReady) -> DataTree | None:
        disk = self.disk
        tree: DataTree | None = None
        if ready.epochs is not None:
            disk.epochs = PersistentState(ready.epochs.accepted_epoch, ready.epochs.current_epoch)
        if ready.install_snapshot is not None:
            sync = ready.install_snapshot
            assert isinstance(sync.snapshot, bytes)
            tree = load_snapshot(sync.snapshot).tree
            disk.snapshot, disk.snapshot_zxid, disk.log = sync.snapshot, sync.snapshot_zxid, []
            self.snapshots_installed += 1
        elif ready.truncate_after is not None:
            cut = ready.truncate_after
            disk.log = [t for t in disk.log if t.zxid <= cut]
            self.truncations += 1
            if ready.rebuild_tree:
                tree = disk.recover()
        disk.log.extend(ready.append)
        return tree

    def _tear(self, ready: MemberReady) -> None:
        """A crash during the writes: a prefix of them reached the disk."""
        steps: list[str | Txn] = []
        if ready.epochs is not None:
            steps.append("epochs")
        if ready.install_snapshot is not None or ready.truncate_after is not None:
            steps.append("cut")
        steps.extend(ready.append)
        kept = self.rng.randint(0, max(len(steps) - 1, 0))
        disk = self.disk
        for write in steps[:kept]:
            if write == "epochs":
                assert ready.epochs is not None
                disk.epochs = PersistentState(
                    ready.epochs.accepted_epoch, ready.epochs.current_epoch
                )
            elif write == "cut":
                partial = MemberReady(
                    install_snapshot=ready.install_snapshot, truncate_after=ready.truncate_after
                )
                self._write(partial)
            else:
                assert isinstance(write, Txn)
                disk.log.append(write)
        self.torn_writes += 1
        self.lost_appends += len(steps) - kept
