"""MemberCore: one ensemble member's decisions, as one pure state machine.

It joins the replica core (ServerCore: clients, sessions, reads, watches, the
sequencer) and the ZAB peer (ZabPeer: election, sync, broadcast) and owns
what used to be decided between them in the runtime:

- routing: a peer message is a forwarded write, a refusal of one, a report of
  session touches (all for the replica core) or a ZAB message (for the peer);
- roles: after every step, the replica core's role is lined up with the
  peer's (an established leader sequences writes; a synced follower or
  observer forwards them to its leader; anyone else drops its clients), but
  never while the peer still has commits the tree has not applied;
- proposals: the writes the sequencer prepared go to the broadcast only while
  this member leads and serves; prepared under a leadership that has just
  ended, they are dropped (their clients hear from the next leader);
- a SNAP sync for a learner gets the snapshot of the tree it names;
- every tick, a follower reports the sessions it heard from to its leader;
- leases in time: every input comes with the time, and a lapsed lease on
  leadership or followership (coord.server.zab.lease) ends serving first.

The runtime feeds it inputs (peer messages, ticks, and the clients' inputs
through `replica`, with the time as an argument) and carries out one
`MemberReady` at a time, then calls `advance`. Nothing here does IO or reads
a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coord.server.core.forwarding import ForwardReply, ForwardRequest, SessionTouches
from coord.server.core.replica import ServerCore
from coord.server.core.tree import DataTree
from coord.server.core.txn import Txn
from coord.server.storage.snapshot import snapshot_chunks
from coord.server.zab.codec import WireMessage
from coord.server.zab.messages import Proposal, Role, Sync, SyncMode
from coord.server.zab.peer import PersistentState, ZabPeer, ZabReady


@dataclass(frozen=True, slots=True)
class RoleChange:
    """What the replica core became: `role` and `serving` are the peer's at that moment."""

    role: Role
    serving: bool
    leader_id: int | None
    epoch: int
    last_zxid: int


@dataclass(slots=True)
class MemberReady:
    """One batch of a member's work. Carry it out in this order, then call `advance`.

    1. `client_messages` are sent, in order, and then `client_closes` closed;
       `peer_now` (forwarded writes, refusals, session touches) are sent. None
       of these waits for the disk: they follow from what is already applied.
    2. `early` (a leader's Proposals) may be sent before step 3, so that the
       followers write while the leader does. That is safe because the leader
       counts its own log toward a quorum only in `advance`.
    3. `epochs`, if set, is saved durably. Then `install_snapshot`, if set,
       replaces the tree and the log with its snapshot (the runtime loads it
       and hands the tree to `advance`); else `truncate_after`, if set, drops
       every logged txn after that zxid and, if `rebuild_tree`, the runtime
       rebuilds the tree from what the disk keeps and hands it to `advance`
       (the applied tree was past the cut). Then `append` is written to the
       log durably, in order.
    4. `late` peer messages are sent, in order: they tell other members what
       step 3 made durable (an Ack, a NewLeader, a Commit).
    5. `advance(ready, tree)` applies `commit` to the tree and moves the
       peer on. `log` lines are for the operator, (level, message).
    """

    client_messages: list[tuple[int, Any]] = field(default_factory=list)
    client_closes: list[int] = field(default_factory=list)
    peer_now: list[tuple[int, WireMessage]] = field(default_factory=list)
    early: list[tuple[int, WireMessage]] = field(default_factory=list)
    epochs: PersistentState | None = None
    install_snapshot: Sync | None = None
    truncate_after: int | None = None
    rebuild_tree: bool = False
    append: list[Txn] = field(default_factory=list)
    late: list[tuple[int, WireMessage]] = field(default_factory=list)
    commit: list[Txn] = field(default_factory=list)
    log: list[tuple[int, str]] = field(default_factory=list)
    peer_ready: ZabReady | None = None
    """The peer's Ready this batch carries out; `advance` hands it back to the peer."""


INFO, WARNING = 20, 30
"""Log levels of `MemberReady.log` (the logging module's numbers)."""


class MemberCore:
    """One member: the replica core and the ZAB peer behind one Ready."""

    def __init__(self, replica: ServerCore, zab: ZabPeer) -> None:
        self.replica = replica
        self.zab = zab
        self.role_changes: list[RoleChange] = []
        self._peer_out: list[tuple[int, WireMessage]] = []
        self._log: list[tuple[int, str]] = []

    # -- inputs -------------------------------------------------------------------------

    def receive(self, sender: int, message: WireMessage, now_ms: int) -> None:
        """A message from member `sender`, already checked at the boundary."""
        self._observe_time(now_ms)
        if isinstance(message, ForwardRequest):
            self.replica.forwarded(message, now_ms=now_ms)
        elif isinstance(message, ForwardReply):
            self.replica.forward_refused(message)
        elif isinstance(message, SessionTouches):
            self.replica.touch_sessions(message, now_ms)
        else:
            refused = self.zab.epoch_leaps_refused
            self.zab.receive(sender, message)
            if self.zab.epoch_leaps_refused != refused:
                self._log.append(
                    (
                        WARNING,
                        f"ignored {type(message).__name__} from member {sender}: "
                        "its epoch leaps too far past ours",
                    )
                )

    def link_lost(self, member_id: int, now_ms: int) -> None:
        """The link from `member_id` closed: if it is our leader, it is most likely gone
        (a process that dies closes its sockets), so look for a new one now rather than
        wait out the silence."""
        self._observe_time(now_ms)
        self.zab.link_lost(member_id)
        self._stop_unless_serving()

    def tick(self, now_ms: int) -> None:
        """One tick of the ensemble's clock; a follower reports its sessions' touches."""
        self._observe_time(now_ms)
        self.zab.tick()
        self.replica.tick(now_ms)
        replica = self.replica
        if replica.sequencer is None and replica.leader_id is not None:
            touches = replica.take_touches()
            if touches is not None:
                self._peer_out.append((replica.leader_id, touches))

    def snapshot_taken(self, zxid: int) -> None:
        """The runtime wrote a snapshot of the tree at `zxid`: the log may not be cut below it."""
        self.zab.snapshot_taken(zxid)

    def restart(self, tree: DataTree, zab: ZabPeer) -> None:
        """Start over from what the disk holds (a leader's snapshot did not load)."""
        self.replica.reset_tree(tree)
        self.zab = zab
        zab.start_election()

    # -- output -------------------------------------------------------------------------

    def has_ready(self) -> bool:
        return bool(self._peer_out or self._log or self.replica.has_ready() or self.zab.has_ready())

    def ready(self, now_ms: int) -> MemberReady:
        """Take the next batch (see MemberReady for the order to carry it out in)."""
        self._observe_time(now_ms)
        self._line_up_roles(now_ms)
        replica, zab = self.replica, self.zab
        core = replica.ready()
        if core.txns:
            if zab.role is Role.LEADING and zab.serving:
                zab.propose_txns(core.txns)
            else:
                self._log.append((INFO, f"dropping {len(core.txns)} proposals: no longer leading"))
        out = MemberReady(
            client_messages=core.messages,
            client_closes=core.closes,
            peer_now=[*self._peer_out, *core.peer_messages],
        )
        self._peer_out = []
        if zab.has_ready():
            zready = zab.ready()
            out.peer_ready = zready
            out.epochs = zready.epochs
            out.install_snapshot = zready.install_snapshot
            out.truncate_after = zready.truncate_after
            out.rebuild_tree = (
                zready.truncate_after is not None and replica.tree.last_zxid > zready.truncate_after
            )
            out.append = zready.append
            out.commit = zready.commit
            for target, message in zready.messages:
                if isinstance(message, Proposal):
                    out.early.append((target, message))
                elif isinstance(message, Sync) and message.mode is SyncMode.SNAP:
                    out.late.append((target, self._attach_snapshot(message)))
                else:
                    out.late.append((target, message))
        out.log = self._log
        self._log = []
        return out

    def advance(self, ready: MemberReady, now_ms: int, tree: DataTree | None = None) -> None:
        """`ready` was carried out; `tree` is the one the disk rebuilt, if it rebuilt one."""
        if tree is not None:
            self.replica.reset_tree(tree)
        if ready.commit:
            self.replica.apply_committed(ready.commit, now_ms=now_ms)
        if ready.peer_ready is not None:
            self.zab.advance(ready.peer_ready)
        self._line_up_roles(now_ms)

    # -- decisions ----------------------------------------------------------------------

    def _observe_time(self, now_ms: int) -> None:
        """End a lease that ran out before anything else is done with this input.

        After a pause the first input comes with a clock that jumped: a leader whose
        lease lapsed stops serving before it reads a stale message, answers a client or
        expires a session on its own (which would tell the live sessions the real
        leader kept that they expired).
        """
        self.zab.observe_time(now_ms)
        self._stop_unless_serving()

    def _stop_unless_serving(self) -> None:
        """The peer stopped serving: drop the clients now, not at the next Ready."""
        if not self.zab.serving and self.replica.serving:
            self.replica.stop_serving()
            self._note_role()

    def _line_up_roles(self, now_ms: int) -> None:
        """Make the replica core's role match the peer's: sequence, forward, or stop serving."""
        zab, replica = self.zab, self.replica
        if zab.has_ready():
            return  # commits not yet applied: the tree is not caught up
        if zab.serving and zab.role is Role.LEADING:
            if replica.sequencer is None:
                replica.become_leader(zab.epoch, now_ms)
                self._note_role()
        elif zab.serving and zab.leader_id is not None:
            if replica.leader_id != zab.leader_id or replica.sequencer is not None:
                replica.follow(zab.leader_id)
                self._note_role()
        elif replica.serving:
            replica.stop_serving()
            self._note_role()

    def _note_role(self) -> None:
        zab = self.zab
        change = RoleChange(zab.role, zab.serving, zab.leader_id, zab.epoch, zab.last_zxid)
        self.role_changes.append(change)
        self._log.append(
            (
                INFO,
                f"member {zab.config.my_id} is "
                f"{zab.role.value if zab.serving else 'not serving'} "
                f"(leader {zab.leader_id}, epoch {zab.epoch}, zxid {zab.last_zxid:#x})",
            )
        )

    def _attach_snapshot(self, sync: Sync) -> Sync:
        """A SNAP sync carries the snapshot of our tree (the txns after it ride along)."""
        tree = self.replica.tree
        if tree.last_zxid != sync.snapshot_zxid:
            self._log.append(
                (
                    WARNING,
                    f"snapshot for a follower is at {tree.last_zxid:#x}, "
                    f"the sync said {sync.snapshot_zxid:#x}",
                )
            )
        return Sync(
            sync.epoch,
            sync.mode,
            sync.truncate_to,
            tree.last_zxid,
            tuple(t for t in sync.txns if t.zxid > tree.last_zxid),
            sync.commit_zxid,
            snapshot=b"".join(snapshot_chunks(tree)),
        )
