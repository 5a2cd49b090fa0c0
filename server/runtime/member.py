"""The trio runtime of an ensemble member: the standalone runtime plus a ZabPeer and peer links.

What it adds to StandaloneServer (whose client listener, connection handling
and snapshots it reuses):

- the ZabPeer (coord.server.zab.peer), fed peer messages and ticks;
- the Ready loop, which takes the ServerCore's proposals to the ZabPeer, then
  carries out the ZabPeer's Ready in its stated order (epochs, snapshot
  install or truncation, log append with one fsync, messages, commits), and
  after every step lines the core's role up with the peer's: established
  leader -> the core sequences writes; synced follower or observer -> the core
  forwards writes to the leader; neither -> the core drops its clients;
- every tick, a follower reports the sessions it heard from to the leader.

Decisions stay in the pure cores; this module only moves messages, files and
time between them.
"""

from __future__ import annotations

import functools
import logging

import trio

from coord.server.config import EnsembleSpec, ServerConfig
from coord.server.core.forwarding import ForwardReply, ForwardRequest, SessionTouches
from coord.server.core.replica import CoreConfig, ServerCore
from coord.server.runtime.peers import PeerNetwork, PeerTransport, PeerTransportFactory
from coord.server.runtime.standalone import Clock, DiskFactory, StandaloneServer
from coord.server.storage.snapshot import SnapshotError, snapshot_chunks
from coord.server.zab.codec import WireMessage
from coord.server.zab.messages import Proposal, Role, Sync, SyncMode
from coord.server.zab.peer import PersistentState, ZabConfig, ZabPeer, ZabReady

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
        self.zab: ZabPeer | None = None
        self.peers: PeerTransport | None = None
        self.role_changes: list[tuple[Role, int | None, int]] = []

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
            write_results=self._replayed_write_results(),
        )
        self.zab = await self._zab_from_disk(accepted, current, tree.last_zxid)
        self.peers = self._peer_network_factory(config.server_id, self.spec, self._deliver)
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
        assert self.disk is not None and self.core is not None
        log.error("refusing the leader's snapshot (%s): recovering from disk, rejoining", error)
        self.stats.snapshots_refused += 1
        disk = self.disk
        self.recovered = await self._offload(
            functools.partial(disk.recover, truncate_corrupt=False)
        )
        self.core.reset_tree(self.recovered.tree)
        accepted, current = await self._offload(disk.load_epochs)
        self.zab = await self._zab_from_disk(accepted, current, self.recovered.tree.last_zxid)

    # -- inputs from other members -----------------------------------------------------

    def _deliver(self, sender: int, message: WireMessage) -> None:
        assert self.zab is not None and self.core is not None and self.clock is not None
        if isinstance(message, ForwardRequest):
            self.core.forwarded(message, now_ms=self.clock.now_ms())
        elif isinstance(message, ForwardReply):
            self.core.forward_refused(message)
        elif isinstance(message, SessionTouches):
            self.core.touch_sessions(message, self.clock.now_ms())
        else:
            refused = self.zab.epoch_leaps_refused
            self.zab.receive(sender, message)
            if self.zab.epoch_leaps_refused != refused:
                log.warning(
                    "ignored %s from member %d: its epoch leaps too far past ours",
                    type(message).__name__,
                    sender,
                )
        self._kick()

    async def _tick(self) -> None:
        assert self.zab is not None and self.core is not None and self.clock is not None
        interval = self.config.tick_ms / 1000.0
        while True:
            await trio.sleep(interval)
            self.zab.tick()
            self.core.tick(self.clock.now_ms())
            if self.core.sequencer is None and self.core.leader_id is not None:
                touches = self.core.take_touches()
                if touches is not None:
                    assert self.peers is not None
                    self.peers.send(self.core.leader_id, touches)
            self._kick()

    # -- the Ready loop ------------------------------------------------------------------

    async def _drive(self) -> None:
        assert self.zab is not None and self.core is not None and self.peers is not None
        core, peers = self.core, self.peers
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            zab = self.zab
            while core.has_ready() or zab.has_ready():
                self._line_up_roles()
                ready = core.ready()
                if ready.txns:
                    if zab.role is Role.LEADING and zab.serving:
                        zab.propose_txns(ready.txns)
                    else:  # leadership ended between prepare and propose: drop them
                        log.info("dropping %d proposals: no longer leading", len(ready.txns))
                self._dispatch(ready.messages, ready.closes)
                for member, message in ready.peer_messages:
                    peers.send(member, message)
                while zab.has_ready():
                    zready = zab.ready()
                    try:
                        await self._carry_out(zready)
                    except SnapshotError as exc:  # the rest of this Ready is void
                        await self._refuse_snapshot(exc)
                        zab = self.zab
                        zab.start_election()
                        continue
                    zab.advance(zready)
                    self._line_up_roles()
                    self.stats.batches += 1

    async def _carry_out(self, ready: ZabReady) -> None:
        """The ZabReady contract: persist, then send, then apply."""
        assert self.disk is not None and self.core is not None and self.clock is not None
        assert self.peers is not None
        disk = self.disk
        early = [(m, msg) for m, msg in ready.messages if isinstance(msg, Proposal)]
        for target, proposal in early:  # followers write while we do (see ZabReady)
            self.peers.send(target, proposal)
        if ready.epochs is not None:
            epochs = ready.epochs
            await self._offload(disk.save_epochs, epochs.accepted_epoch, epochs.current_epoch)
        if ready.install_snapshot is not None:
            await self.wait_snapshot_idle()
            sync = ready.install_snapshot
            assert isinstance(sync.snapshot, bytes), "a SNAP sync carries the leader's snapshot"
            loaded = await self._offload(disk.install_snapshot, sync.snapshot_zxid, sync.snapshot)
            self.core.reset_tree(loaded.tree)
            log.info("installed the leader's snapshot at zxid %#x", sync.snapshot_zxid)
        elif ready.truncate_after is not None:
            await self.wait_snapshot_idle()
            cut = ready.truncate_after
            removed = await self._offload(disk.truncate_after, cut)
            log.info("truncated %d txns after zxid %#x (a dead epoch's)", removed, cut)
            if self.core.tree.last_zxid > cut:
                recovered = await self._offload(
                    functools.partial(disk.recover, truncate_corrupt=False)
                )
                self.core.reset_tree(recovered.tree)
        if ready.append:
            await self._offload(disk.append, ready.append)
            self._note_appended(len(ready.append))
            self.stats.txns += len(ready.append)
        for member, message in ready.messages:
            if isinstance(message, Proposal):
                continue  # already sent
            if isinstance(message, Sync) and message.mode is SyncMode.SNAP:
                message = self._attach_snapshot(message)
            self.peers.send(member, message)
        if ready.commit:
            self.core.apply_committed(ready.commit, now_ms=self.clock.now_ms())

    def _attach_snapshot(self, sync: Sync) -> Sync:
        assert self.core is not None
        tree = self.core.tree
        if tree.last_zxid != sync.snapshot_zxid:
            log.warning(
                "snapshot for a follower is at %#x, the sync said %#x",
                tree.last_zxid,
                sync.snapshot_zxid,
            )
        data = b"".join(snapshot_chunks(tree))
        return Sync(
            sync.epoch,
            sync.mode,
            sync.truncate_to,
            tree.last_zxid,
            tuple(t for t in sync.txns if t.zxid > tree.last_zxid),
            sync.commit_zxid,
            snapshot=data,
        )

    def _snapshot_written(self, zxid: int) -> None:
        assert self.zab is not None
        self.zab.snapshot_taken(zxid)

    def _line_up_roles(self) -> None:
        """Make the core's role match the peer's: sequence, forward, or stop serving."""
        assert self.zab is not None and self.core is not None and self.clock is not None
        zab, core = self.zab, self.core
        if zab.has_ready():
            return  # commits not yet applied: the tree is not caught up
        if zab.serving and zab.role is Role.LEADING:
            if core.sequencer is None:
                core.become_leader(zab.epoch, self.clock.now_ms())
                self._note_role()
        elif zab.serving and zab.leader_id is not None:
            if core.leader_id != zab.leader_id or core.sequencer is not None:
                core.follow(zab.leader_id)
                self._note_role()
        elif core.serving:
            core.stop_serving()
            self._note_role()

    def _note_role(self) -> None:
        assert self.zab is not None
        zab = self.zab
        self.role_changes.append((zab.role, zab.leader_id, zab.epoch))
        log.info(
            "member %d is %s (leader %s, epoch %d, zxid %#x)",
            self.config.server_id,
            zab.role.value if zab.serving else "not serving",
            zab.leader_id,
            zab.epoch,
            zab.last_zxid,
        )
