"""The trio runtime of an ensemble member: the standalone runtime plus peer links and MemberCore.

What it adds to StandaloneServer (whose client listener, connection handling
and snapshots it reuses): a MemberCore (coord.server.core.member), which
makes every decision of the member, fed peer messages and ticks; peer links;
and the Ready loop, which carries out each MemberReady in its stated order
(client replies, then a leader's proposals, epochs, snapshot install or
truncation, log append with one fsync, the other peer messages) and hands it
back. This module only moves messages, files and time.
"""

from __future__ import annotations

import functools
import logging

import trio

from coord.server.config import EnsembleSpec, ServerConfig
from coord.server.core.member import MemberCore, MemberReady
from coord.server.core.replica import CoreConfig, ServerCore
from coord.server.core.tree import DataTree
from coord.server.runtime.clock import Clock
from coord.server.runtime.peers import PeerNetwork, PeerTransport, PeerTransportFactory
from coord.server.runtime.standalone import DiskFactory, StandaloneServer
from coord.server.storage.snapshot import SnapshotError
from coord.server.zab.codec import WireMessage
from coord.server.zab.messages import Role
from coord.server.zab.peer import PersistentState, ZabConfig, ZabPeer

log = logging.getLogger(__name__)


class EnsembleMember(StandaloneServer):
    """One member of an ensemble: serves clients, and replicates through ZAB.

    `peer_network_factory` (like the base class's `disk_factory` and `clock`)
    is for in-process tests: links between members that are not TCP. By
    default the member links to the others with `PeerNetwork`.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        disk_factory: DiskFactory | None = None,
        peer_network_factory: PeerTransportFactory | None = None,
        clock: Clock | None = None,
    ) -> None:
        if config.ensemble is None:
            raise ValueError("an ensemble member needs an ensemble description")
        super().__init__(config, disk_factory=disk_factory, clock=clock)
        self.spec: EnsembleSpec = config.ensemble
        self._peer_network_factory: PeerTransportFactory = peer_network_factory or PeerNetwork
        self.member: MemberCore | None = None
        self.peers: PeerTransport | None = None

    @property
    def zab(self) -> ZabPeer | None:
        """The member's ZAB peer (for tests and inspection; the MemberCore drives it)."""
        return self.member.zab if self.member is not None else None

    @property
    def role_changes(self) -> list[tuple[Role, int | None, int]]:
        """(role, leader, epoch) each time the replica core changed role, oldest first."""
        if self.member is None:
            return []
        return [(c.role, c.leader_id, c.epoch) for c in self.member.role_changes]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.clock = self._given_clock or Clock()
        config = self.config
        tree = await self._open_storage()
        assert self.disk is not None and self.recovered is not None
        disk = self.disk
        accepted, current = await self._offload(disk.load_epochs)
        now = self.clock.now_ms()
        self.core = ServerCore(
            CoreConfig(
                tick_ms=config.tick_ms,
                min_session_timeout_ms=config.min_session_timeout_ms,
                max_session_timeout_ms=config.max_session_timeout_ms,
                server_id=config.server_id,
                session_id_base=(config.server_id << 56) | ((now << 24) & ((1 << 56) - 1)),
                super_digest=config.super_digest,
                max_watches_per_session=config.max_watches_per_session,
                standalone=False,
            ),
            tree=tree,
        )
        zab = await self._zab_from_disk(accepted, current, tree.last_zxid)
        self.member = MemberCore(self.core, zab)
        self.peers = self._peer_network_factory(
            config.server_id, self.spec, self._deliver, self._link_lost
        )
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.peers.serve)
                nursery.start_soon(self._drive)
                nursery.start_soon(self._tick)
                self._kick()
                task_status.started()
        finally:
            disk.close()

    async def _zab_from_disk(self, accepted: int, current: int, last_zxid: int) -> ZabPeer:
        """A ZabPeer for what the disk holds: its epochs, and the log after its snapshot."""
        assert self.disk is not None and self.recovered is not None
        disk, base = self.disk, self.recovered.snapshot_zxid
        history = await self._offload(lambda: list(disk.read_from(base)))
        return ZabPeer(
            ZabConfig(
                self.config.server_id,
                self.spec.voters,
                self.spec.observers,
                init_limit=self.spec.init_limit,
                sync_limit=self.spec.sync_limit,
                tick_ms=self.spec.tick_ms if self.spec.time_leases else 0,
            ),
            PersistentState(accepted, current),
            history,
            last_zxid=last_zxid,
            history_base=base,
        )

    async def _refuse_snapshot(self, error: SnapshotError) -> None:
        """The leader's snapshot did not load (nothing of it was written): forget what our
        ZabPeer took from that sync, recover from our own disk as a restart would, and
        look for a leader again."""
        assert self.disk is not None and self.member is not None
        log.error("refusing the leader's snapshot (%s): recovering from disk, rejoining", error)
        self.stats.snapshots_refused += 1
        disk = self.disk
        self.recovered = await self._offload(
            functools.partial(disk.recover, truncate_corrupt=False)
        )
        accepted, current = await self._offload(disk.load_epochs)
        zab = await self._zab_from_disk(accepted, current, self.recovered.tree.last_zxid)
        self.member.restart(self.recovered.tree, zab)

    # -- inputs from other members -----------------------------------------------------

    def _deliver(self, sender: int, message: WireMessage) -> None:
        assert self.member is not None and self.clock is not None
        self.member.receive(sender, message, self.clock.now_ms())
        self._kick()

    def _link_lost(self, member_id: int) -> None:
        assert self.member is not None and self.clock is not None
        self.member.link_lost(member_id, self.clock.now_ms())
        self._kick()

    async def _tick(self) -> None:
        assert self.member is not None and self.clock is not None
        interval = self.config.tick_ms / 1000.0
        while True:
            await trio.sleep(interval)
            self.member.tick(self.clock.now_ms())
            self.clients.flush_warnings()
            self._kick()

    # -- the Ready loop ------------------------------------------------------------------

    async def _drive(self) -> None:
        assert self.member is not None and self.clock is not None
        member, clock = self.member, self.clock
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            while member.has_ready():
                ready = member.ready(clock.now_ms())
                for level, line in ready.log:
                    log.log(level, line)
                try:
                    tree = await self._carry_out(ready)
                except SnapshotError as exc:  # the rest of this Ready is void
                    await self._refuse_snapshot(exc)
                    continue
                member.advance(ready, clock.now_ms(), tree)
                if ready.peer_ready is not None:
                    self.stats.batches += 1

    async def _carry_out(self, ready: MemberReady) -> DataTree | None:
        """The MemberReady contract, steps 1 to 4; returns the tree the disk rebuilt, if any."""
        assert self.disk is not None and self.peers is not None
        disk, peers = self.disk, self.peers
        self._dispatch(ready.client_messages, ready.client_closes)
        for target, message in (*ready.peer_now, *ready.early):
            peers.send(target, message)
        tree: DataTree | None = None
        if ready.epochs is not None:
            epochs = ready.epochs
            await self._offload(disk.save_epochs, epochs.accepted_epoch, epochs.current_epoch)
        if ready.install_snapshot is not None:
            await self.wait_snapshot_idle()
            sync = ready.install_snapshot
            assert isinstance(sync.snapshot, bytes), "a SNAP sync carries the leader's snapshot"
            tree = (
                await self._offload(disk.install_snapshot, sync.snapshot_zxid, sync.snapshot)
            ).tree
            log.info("installed the leader's snapshot at zxid %#x", sync.snapshot_zxid)
        elif ready.truncate_after is not None:
            await self.wait_snapshot_idle()
            cut = ready.truncate_after
            removed = await self._offload(disk.truncate_after, cut)
            log.info("truncated %d txns after zxid %#x (a dead epoch's)", removed, cut)
            if ready.rebuild_tree:
                recover = functools.partial(disk.recover, truncate_corrupt=False)
                tree = (await self._offload(recover)).tree
        if ready.append:
            await self._offload(disk.append, ready.append)
            self._note_appended(len(ready.append))
            self.stats.txns += len(ready.append)
        for target, message in ready.late:
            peers.send(target, message)
        return tree

    def _snapshot_written(self, zxid: int) -> None:
        assert self.member is not None
        self.member.snapshot_taken(zxid)
