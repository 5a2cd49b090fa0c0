"""ZabPeer: one ensemble member's side of the atomic broadcast, as a pure state machine.

Theory of operation. The runtime (or the simulator) feeds the peer events:

    peer.tick()                       a tick of time passed
    peer.receive(sender, message)     a peer message arrived
    peer.propose_txns(txns)           (leader) broadcast writes its sequencer numbered
    peer.ready() -> ZabReady          the work to carry out, then
    peer.advance(ready)               it is carried out

and carries out each `ZabReady` in its stated order: save the epochs, truncate
or install a snapshot, append txns to the log durably, and only then send the
messages and apply the committed txns. Because a message leaves only after the
state it reports is durable, an ACK always means "on disk".

Phases (Zab, DSN 2011), per role:

- LOOKING: fast leader election. Each peer votes for the best (epoch, zxid, id)
  it has heard of in the current round and broadcasts its vote; once a quorum of
  voters agrees with its vote and a tick passes with no better vote, it decides.
  A LOOKING peer that hears a quorum of settled peers (FOLLOWING/LEADING) name a
  leader that says it is LEADING joins that leader.
- Discovery: followers send FollowerInfo(accepted epoch, last zxid); the
  would-be leader waits for a quorum, picks a new epoch above every accepted
  epoch, sends LeaderInfo; followers accept it durably and answer AckEpoch. A
  leader that learns of a follower with a later history than its own steps
  down, so the leader's history is always the longest of a quorum. So does one
  that hears from a learner that accepted a later epoch than its own (which
  could never join it); it then picks its next epoch above that one.
- Sync: the leader sends each follower a DIFF (txns it lacks), a TRUNC (drop
  txns from a dead epoch the leader never had, then DIFF) or a SNAP (far
  behind: the whole tree), then NewLeader. Once a quorum acked NewLeader the
  leader's history is committed and it sends UpToDate; from then on it serves.
  A follower that joins later is synced the same way, into the running epoch.
  One Sync answers one AckEpoch (a repeated AckEpoch is ignored), and
  NewLeader names where the follower's log ends after that Sync; the follower
  acks it with that zxid, so an Ack of an older Sync is never credited to a
  newer one. A follower that gets a NewLeader not matching its log, or any
  broadcast message before its Sync, missed the Sync and asks again. A
  follower told to TRUNC below its snapshot (which may hold txns never
  committed, since a leader's tree can before it is established) cannot drop
  them: it asks for a SNAP instead (AckEpoch with last_zxid -1).
- Broadcast: Proposal (a batch of txns) -> Ack (cumulative: "all up to zxid is
  durable here") -> Commit once a quorum of voters acked. Observers get Inform
  with committed txns and never count toward a quorum.

Liveness: the leader pings every tick; a follower that hears nothing from its
leader (only what a leader sends counts) for `sync_limit` ticks (`init_limit`
while syncing) goes back to LOOKING, and so does a leader that has not heard
from a quorum for `sync_limit` ticks: a member cut off from the quorum stops
serving. A follower whose sync makes no step forward for `init_limit` ticks
(a lost AckEpoch, Sync, NewLeader or UpToDate) asks to be synced again.

The links between two peers are assumed to keep order and may lose messages
(TCP connections that break, as server/runtime/peers.py provides). A lost
proposal shows as a gap, a lost commit is covered by the next one or a ping.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

from coord.server.core.txn import Txn
from coord.server.zab.lease import Leases
from coord.server.zab.messages import (
    Ack,
    AckEpoch,
    Commit,
    FollowerInfo,
    Inform,
    LeaderInfo,
    NewLeader,
    Notification,
    PeerMessage,
    Ping,
    Proposal,
    Role,
    Sync,
    SyncMode,
    UpToDate,
    Vote,
)
from coord.server.zab.quorum import Quorum


def epoch_of(zxid: int) -> int:
    return zxid >> 32


def make_zxid(epoch: int, counter: int) -> int:
    return (epoch << 32) | counter


MAX_EPOCH = (1 << 32) - 1
"""The last epoch a zxid (epoch << 32 | counter, 64 bits) can name."""

MAX_EPOCH_LEAP = 1 << 16
"""How far an announced epoch may run past what this member knows before it is refused.

An honest learner's accepted epoch runs ahead of the epochs in the votes only
by the discovery rounds that failed since, one epoch each; 65,536 of them in a
row do not happen. Without this bound, one FollowerInfo or LeaderInfo naming an
epoch at the top of the 32-bit range would use up the epoch space, and no
leader could be elected again. (It comes from a member that holds the
ensemble's secret: ZAB trusts its members, and this only keeps one message
from wedging the ensemble for good.)
"""

SNAP_PLEASE = -1
"""An AckEpoch's last_zxid from a follower that can take nothing but a SNAP."""


def _zxid_of(txn: Txn) -> int:
    return txn.zxid


@dataclass(slots=True)
class ZabConfig:
    my_id: int
    voters: frozenset[int]
    observers: frozenset[int] = frozenset()
    election_ticks: int = 2
    """Ticks between re-broadcasts of a LOOKING peer's vote."""
    init_limit: int = 10
    """Ticks allowed for discovery and sync."""
    sync_limit: int = 5
    """Ticks of silence after which a follower or a leader gives up on the other side."""
    tick_ms: int = 0
    """The tick's length. With it (and the time given to `observe_time`), the limits are
    leases in time as well (coord.server.zab.lease); 0: ticks alone."""
    max_history: int = 100_000
    """Txns kept in memory for DIFF; a follower further behind gets a SNAP. Txns not
    yet applied stay in memory whatever their number (commits are taken from there)."""


@dataclass(slots=True)
class PersistentState:
    """What must survive a restart besides the log: Zab's acceptedEpoch and currentEpoch."""

    accepted_epoch: int = 0
    current_epoch: int = 0


@dataclass(slots=True)
class ZabReady:
    """One batch of work. Carry it out in this order, then call `advance(ready)`.

    1. `epochs`, if set, is saved durably.
    2. `install_snapshot`, if set (a SYNC in SNAP mode), replaces the tree and
       the log with the attached snapshot; else `truncate_after`, if set, drops
       every logged txn after that zxid (and the tree is rebuilt from what stays).
    3. `append` is written to the log durably, in order.
    4. `messages` are sent, in order.
    5. `commit` is applied to the tree, in order.

    One exception is allowed, and the runtime takes it: a leader's Proposal
    messages may be sent before step 3, so that the followers write to their
    disks while the leader writes to its own. That is safe because the leader
    counts its own log toward a quorum only in `advance`, after its append is
    durable; every other message (above all a follower's Ack) waits.
    """

    epochs: PersistentState | None = None
    install_snapshot: Sync | None = None
    truncate_after: int | None = None
    append: list[Txn] = field(default_factory=list)
    messages: list[tuple[int, PeerMessage]] = field(default_factory=list)
    commit: list[Txn] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.epochs
            or self.install_snapshot
            or self.truncate_after is not None
            or self.append
            or self.messages
            or self.commit
        )


@dataclass(slots=True)
class _FollowerLink:
    """The leader's view of one learner."""

    peer: int
    observer: bool
    acked_zxid: int = 0
    sent_sync: bool = False
    """A Sync went out: from now on it gets every proposal (or inform) too, in order."""
    sync_point: int = 0
    """Our last zxid when its Sync went out: what it holds once it acks NewLeader."""
    synced: bool = False
    """It acked NewLeader: its acks count toward commits."""
    silent_ticks: int = 0


class ZabPeer:
    """One member of the ensemble. See the module docstring for the protocol."""

    def __init__(
        self,
        config: ZabConfig,
        state: PersistentState,
        log: Iterable[Txn] = (),
        *,
        last_zxid: int | None = None,
        applied_zxid: int | None = None,
        history_base: int | None = None,
    ) -> None:
        self.config = config
        self.state = PersistentState(state.accepted_epoch, state.current_epoch)
        self.quorum = Quorum(config.voters)
        txns = list(log)
        trimmed = max(0, len(txns) - config.max_history)
        self.history: list[Txn] = txns[trimmed:]
        self.last_zxid = last_zxid if last_zxid is not None else (
            self.history[-1].zxid if self.history else 0
        )  # fmt: skip
        self.applied_zxid = self.last_zxid if applied_zxid is None else applied_zxid
        """Everything up to here was handed out in a Ready's commit (or applied before start)."""
        self.commit_zxid = self.applied_zxid
        self.role = Role.LOOKING
        self.leader_id: int | None = None
        self.epoch = 0
        """The epoch of the leader we follow or are (0 while looking)."""
        self.serving = False
        """True in the broadcast phase: synced, so clients may be served."""
        self._out = ZabReady()
        self._silent_ticks = 0
        self.leases = Leases(config.tick_ms, config.sync_limit)
        # election
        self.round = 0
        self.vote = Vote(0, 0, config.my_id)
        self._votes: dict[int, Vote] = {}
        self._settled: dict[int, tuple[Vote, Role, int]] = {}
        self._leader_epoch_seen = 0
        """The epoch the votes gave the leader we follow: its LeaderInfo may not leap past it."""
        self.epoch_leaps_refused = 0
        self.lease_expiries = 0
        self.links_lost = 0
        """Times the link from our leader closed and we looked for a new one at once."""
        """Times a lease in time ran out before the tick count did (see observe_time)."""
        """FollowerInfos and LeaderInfos ignored for an epoch past MAX_EPOCH_LEAP (see there)."""
        self._decide_at_tick = False
        self._ticks_since_broadcast = 0
        # leading
        self._links: dict[int, _FollowerLink] = {}
        self._infos: dict[int, FollowerInfo] = {}
        self._epoch_acks: dict[int, AckEpoch] = {}
        self._next_counter = 1
        self._epoch_floor = 0
        """The highest epoch a learner told us it accepted after we had chosen ours."""
        self._epoch_begun = False
        self._established = False
        self._durable_zxid = self.last_zxid
        self._snapshot_zxid = history_base or 0
        """Where our newest snapshot is: we cannot truncate below it."""
        self._need_snap = False
        if trimmed:  # the window starts later than the log it was given
            history_base = txns[trimmed - 1].zxid
        elif history_base is None:
            history_base = self.history[0].zxid - 1 if self.history else self.last_zxid
        self._history_base = history_base
        """Every txn after this zxid is in `history` (the window's lower edge)."""
        # following
        self._synced = False
        self._got_sync = False
        """The Sync answering our latest AckEpoch arrived (until then only Pings may come)."""
        self._unsynced_ticks = 0
        self._held: list[PeerMessage] = []
        """Leader messages waiting for the next Ready (see NewLeader in _learner_receive)."""
        self._pending_commit = 0
        self.start_election()

    # -- inputs ------------------------------------------------------------------

    @property
    def is_voter(self) -> bool:
        return self.config.my_id in self.config.voters

    def tick(self) -> None:
        if self.role is Role.LOOKING:
            self._election_tick()
        elif self.role is Role.LEADING:
            self._leader_tick()
        else:
            self._silent_ticks += 1
            limit = self.config.sync_limit if self._synced else self.config.init_limit
            if self._silent_ticks > limit:
                self.start_election()
            elif not self.epoch and self.leader_id is not None:
                self._send(self.leader_id, self._follower_info())  # not heard back yet
            elif not self._synced:
                # Pings keep coming, but a lost AckEpoch, Sync, NewLeader or UpToDate
                # would leave us unsynced for good: after init_limit ticks without a
                # step forward (LeaderInfo, Sync), start over.
                self._unsynced_ticks += 1
                if self._unsynced_ticks > self.config.init_limit:
                    self._resync()

    def observe_time(self, now_ms: int) -> None:
        """The runtime's clock, before each input: end a lease that ran out (see lease.py).

        A serving leader without a quorum heard within its lease, or a serving follower
        that has not heard its leader within the limit, goes back to LOOKING at once.
        """
        leases = self.leases
        if now_ms == leases.now_ms:
            return  # (many inputs come within one millisecond: it was just checked)
        leases.now_ms = now_ms
        if not self.serving:
            return  # syncing takes as long as it takes (init_limit ticks); no client waits
        if self.role is Role.LEADING:
            lapsed = leases.leader_lost(self.config.my_id, self.quorum, self.config.voters)
        else:
            lapsed = self.leader_id is not None and leases.leader_silent(self.leader_id)
        if lapsed:
            self.lease_expiries += 1
            self.start_election()

    def link_lost(self, member_id: int) -> None:
        """The runtime's link from `member_id` closed. A serving follower or observer whose
        leader that is goes back to LOOKING at once (as ZooKeeper's learners do when their
        socket to the leader breaks); anyone else waits for the usual limits."""
        if self.role in (Role.FOLLOWING, Role.OBSERVING) and member_id == self.leader_id:
            self.links_lost += 1
            self.start_election()

    def receive(self, sender: int, message: PeerMessage) -> None:
        if isinstance(message, Notification):
            self._on_notification(sender, message)
        elif self.role is Role.LEADING:
            self._leader_receive(sender, message)
        elif self.role in (Role.FOLLOWING, Role.OBSERVING) and sender == self.leader_id:
            if not isinstance(message, FollowerInfo | AckEpoch | Ack):
                # Only what a leader sends shows it leads: two peers that chose each
                # other would otherwise keep each other waiting forever.
                self._silent_ticks = 0
                self.leases.heard(sender)
            if self._held:
                self._held.append(message)  # keep the leader's order
            else:
                self._learner_receive(message)

    def propose_txns(self, txns: list[Txn]) -> None:
        """(Leader, serving) Broadcast txns whose zxids the leader's sequencer already chose.

        The sequencer (coord.server.core.sequencer) is the one place that numbers
        zxids; the peer only checks that the batch continues this epoch's sequence
        without a gap (see `next_zxid`) and refuses it whole, logging nothing, if not.
        """
        if not (self.role is Role.LEADING and self._established):
            raise RuntimeError(f"peer {self.config.my_id} is not an established leader")
        for offset, txn in enumerate(txns):
            expected = make_zxid(self.epoch, self._next_counter + offset)
            if txn.zxid != expected:
                raise ValueError(f"proposal zxid {txn.zxid:#x} is not the next one, {expected:#x}")
        self._next_counter += len(txns)
        self._log(list(txns))
        message = Proposal(self.epoch, tuple(txns))
        for link in self._links.values():
            if link.sent_sync and not link.observer:
                self._send(link.peer, message)

    def snapshot_taken(self, zxid: int) -> None:
        """The runtime wrote a snapshot of the tree at `zxid`.

        A snapshot may hold txns that were never committed (a restarted
        member's tree holds its whole log), and storage cannot truncate into
        it; from now on a TRUNC below it makes us ask for a SNAP instead.
        """
        self._snapshot_zxid = max(self._snapshot_zxid, zxid)

    def next_zxid(self) -> int:
        """The zxid the next proposed txn must have (what the leader's sequencer starts from)."""
        return make_zxid(self.epoch, self._next_counter)

    def ready(self) -> ZabReady:
        out = self._out
        self._out = ZabReady()
        if self._held:  # their turn has come: this Ready's log writes come first
            held, self._held = self._held, []
            for message in held:
                if self._held:
                    self._held.append(message)
                elif self.role in (Role.FOLLOWING, Role.OBSERVING):
                    self._learner_receive(message)
        return out

    def has_ready(self) -> bool:
        return bool(self._out)

    def advance(self, ready: ZabReady) -> None:
        """The batch is carried out: what was appended is durable; the commits applied.

        Readys are carried out one at a time, in the order they were taken.
        """
        if ready.commit and self._out.install_snapshot is None:
            # (With a snapshot waiting to replace the tree, these were applied to the old one.)
            self.applied_zxid = max(self.applied_zxid, ready.commit[-1].zxid)
        if ready.install_snapshot is not None or ready.truncate_after is not None:
            self._durable_zxid = min(self._durable_zxid, self.last_zxid)
        if ready.append:
            self._durable_zxid = ready.append[-1].zxid
            if self.role is Role.LEADING:
                self._maybe_commit()

    # -- election ----------------------------------------------------------------

    def start_election(self) -> None:
        self._become(Role.LOOKING, leader=None, epoch=0)
        self.round += 1
        self.vote = Vote(self.state.current_epoch, self.last_zxid, self.config.my_id)
        self._votes = {}
        self._settled = {}
        if self.is_voter:
            self._votes[self.config.my_id] = self.vote
        self._broadcast_vote()
        if self._vote_has_quorum():  # a lone voter is its own quorum
            self._decide_at_tick = True

    def _broadcast_vote(self) -> None:
        self._ticks_since_broadcast = 0
        note = Notification(self.vote, self.round, Role.LOOKING)
        for peer in self._all_peers():
            self._send(peer, note)

    def _election_tick(self) -> None:
        if self._decide_at_tick:
            self._decide_at_tick = False
            if self._vote_has_quorum():
                self._decide(self.vote.leader, self.vote.epoch)
                return
        self._ticks_since_broadcast += 1
        if self._ticks_since_broadcast >= self.config.election_ticks:
            self._broadcast_vote()

    def _vote_has_quorum(self) -> bool:
        supporters = {peer for peer, vote in self._votes.items() if vote == self.vote}
        return self.quorum.is_quorum(supporters)

    def _on_notification(self, sender: int, note: Notification) -> None:
        sender_is_voter = sender in self.config.voters
        if self.role is not Role.LOOKING:
            if note.state is Role.LOOKING:
                # Tell a looking peer who leads, so it can join.
                vote = Vote(self.epoch, self.last_zxid, self.leader_id or 0)
                self._send(sender, Notification(vote, self.round, self.role, self.epoch))
            return
        if note.state is Role.LOOKING:
            if not sender_is_voter:
                return
            if note.round > self.round:
                self.round = note.round
                self._votes = {}
                if self.is_voter:
                    self._votes[self.config.my_id] = self.vote
                self.vote = max(self.vote, note.vote, self._own_vote())
                if self.is_voter:
                    self._votes[self.config.my_id] = self.vote
                self._broadcast_vote()
            elif note.round < self.round:
                self._send(sender, Notification(self.vote, self.round, Role.LOOKING))
                return
            elif note.vote > self.vote and self.is_voter:
                self.vote = note.vote
                self._votes[self.config.my_id] = self.vote
                self._broadcast_vote()
            elif note.vote > self.vote:
                self.vote = note.vote
            self._votes[sender] = note.vote
            if self._vote_has_quorum():
                self._decide_at_tick = True
            return
        # A settled peer (following or leading) told us who leads.
        if sender_is_voter:
            self._settled[sender] = (note.vote, note.state, note.sender_epoch)
        leader = note.vote.leader
        backers = {
            peer
            for peer, (vote, _, epoch) in self._settled.items()
            if vote.leader == leader and epoch == note.sender_epoch
        }
        leader_says = self._settled.get(leader)
        if (
            leader_says is not None
            and leader_says[1] is Role.LEADING
            and leader_says[2] == note.sender_epoch
            and self.quorum.is_quorum(backers)
        ):
            self._decide(leader, note.sender_epoch)

    def _own_vote(self) -> Vote:
        return Vote(self.state.current_epoch, self.last_zxid, self.config.my_id)

    def _decide(self, leader: int, leader_epoch: int) -> None:
        """Lead, or follow `leader`, whose epoch the votes said was `leader_epoch`."""
        self._leader_epoch_seen = leader_epoch
        if leader == self.config.my_id and self.is_voter:
            self._become(Role.LEADING, leader=leader, epoch=0)
            self._infos = {
                self.config.my_id: FollowerInfo(self.state.accepted_epoch, self.last_zxid)
            }
            self._epoch_acks = {}
            self._links = {}
            self._epoch_begun = False
            self._established = False
            self._maybe_choose_epoch()
        else:
            role = Role.FOLLOWING if self.is_voter else Role.OBSERVING
            self._become(role, leader=leader, epoch=0)
            self._synced = False
            self._got_sync = False
            self._unsynced_ticks = 0
            self._send(leader, self._follower_info())

    def _become(self, role: Role, *, leader: int | None, epoch: int) -> None:
        self.role = role
        self.leader_id = leader
        self.epoch = epoch
        self.serving = False
        self._silent_ticks = 0
        self.leases.start()
        self._decide_at_tick = False
        self._held = []

    # -- leading -----------------------------------------------------------------

    def _leader_tick(self) -> None:
        for link in self._links.values():
            link.silent_ticks += 1
        alive = {self.config.my_id} | {
            link.peer
            for link in self._links.values()
            if link.silent_ticks <= self.config.sync_limit and not link.observer
        }
        self._silent_ticks = 0 if self.quorum.is_quorum(alive) else self._silent_ticks + 1
        # Established, a link is dead after sync_limit silent ticks, so a quorum of them
        # lost is already sync_limit ticks of silence: step down now, not that much later.
        limit = 0 if self._established else self.config.init_limit
        if self._silent_ticks > limit:
            self.start_election()
            return
        if self.epoch:
            ping = Ping(self.epoch, self.commit_zxid)
            for link in self._links.values():
                self._send(link.peer, ping)

    def _leader_receive(self, sender: int, message: PeerMessage) -> None:
        link = self._links.get(sender)
        if link is not None:
            link.silent_ticks = 0
            self.leases.heard(sender)
        if isinstance(message, FollowerInfo):
            self._on_follower_info(sender, message)
        elif isinstance(message, AckEpoch):
            self._on_ack_epoch(sender, message)
        elif isinstance(message, Ack) and link is not None and message.epoch == self.epoch:
            self._on_ack(link, message.zxid)
        # Pings from learners only refresh silent_ticks.

    def _on_follower_info(self, sender: int, info: FollowerInfo) -> None:
        if info.accepted_epoch > self.state.accepted_epoch + MAX_EPOCH_LEAP:
            self.epoch_leaps_refused += 1  # it stays out; its unsynced limit ends its wait
            return
        if self.epoch and info.accepted_epoch > self.epoch:
            # It promised a later epoch (it tried to lead, or followed one who did) and
            # can never take ours: it would stay out for good. Start over, and pick an
            # epoch above its promise next time.
            self._epoch_floor = max(self._epoch_floor, info.accepted_epoch)
            self.start_election()
            return
        self._links[sender] = _FollowerLink(sender, info.observer)
        if self.epoch:  # the epoch is already chosen: tell the newcomer
            self._send(sender, LeaderInfo(self.epoch))
            return
        self._infos[sender] = info
        self._maybe_choose_epoch()

    def _maybe_choose_epoch(self) -> None:
        """Once a quorum reported its accepted epoch, take a newer one and announce it."""
        voters = {peer for peer, i in self._infos.items() if not i.observer}
        if self.epoch or not self.quorum.is_quorum(voters):
            return
        new_epoch = max(self._epoch_floor, *(i.accepted_epoch for i in self._infos.values())) + 1
        if new_epoch > MAX_EPOCH:  # a zxid has 32 bits for it: never lead past that
            self.start_election()
            return
        self.epoch = new_epoch
        self.state.accepted_epoch = new_epoch
        self._save_epochs()
        for peer in self._links:
            self._send(peer, LeaderInfo(new_epoch))
        if self.quorum.is_quorum({self.config.my_id}):
            self._begin_epoch()  # a lone voter needs nobody's AckEpoch

    def _on_ack_epoch(self, sender: int, ack: AckEpoch) -> None:
        if ack.epoch != self.epoch or sender not in self._links:
            return
        if self._links[sender].sent_sync:
            # A repeat (it got our LeaderInfo twice): syncing it again would credit
            # its Ack of the first NewLeader with the second Sync's txns.
            return
        mine = (self.state.current_epoch, self.last_zxid)
        if (ack.current_epoch, ack.last_zxid) > mine and not self._links[sender].observer:
            # A follower has a later history than ours: we must not lead.
            self.start_election()
            return
        self._epoch_acks[sender] = ack
        if not self._epoch_begun:
            voters = {p for p in self._epoch_acks if not self._links[p].observer}
            if self.quorum.is_quorum(voters | {self.config.my_id}):
                self._begin_epoch()
            return
        self._sync_learner(sender, ack.last_zxid)

    def _begin_epoch(self) -> None:
        """A quorum acked the epoch: adopt it and sync everyone who acked."""
        self._epoch_begun = True
        self.state.current_epoch = self.epoch
        self._save_epochs()
        self._next_counter = 1
        me = _FollowerLink(self.config.my_id, False, self._durable_zxid)
        me.sent_sync = me.synced = True
        self._links[self.config.my_id] = me
        for peer, ack in self._epoch_acks.items():
            self._sync_learner(peer, ack.last_zxid)
        self._maybe_establish()

    def _sync_learner(self, peer: int, their_zxid: int) -> None:
        link = self._links[peer]
        link.synced = False
        link.sent_sync = True
        link.sync_point = self.last_zxid
        self._send(peer, self._plan_sync(their_zxid))
        self._send(peer, NewLeader(self.epoch, link.sync_point))

    def _plan_sync(self, their_zxid: int) -> Sync:
        """DIFF if our window covers what they lack, TRUNC if they diverge, else SNAP."""
        if their_zxid == self.last_zxid:
            return Sync(self.epoch, SyncMode.DIFF, 0, 0, (), self.commit_zxid)
        if their_zxid == self._history_base or self._index(their_zxid) is not None:
            return Sync(self.epoch, SyncMode.DIFF, 0, 0, self._after(their_zxid), self.commit_zxid)
        if their_zxid > self._history_base:
            # They hold txns we never had (from a dead epoch): drop those, then DIFF.
            kept = len(self.history) - len(self._after(their_zxid))
            base = self.history[kept - 1].zxid if kept else self._history_base
            if base >= self._history_base and (kept or base == 0):
                return Sync(
                    self.epoch, SyncMode.TRUNC, base, 0, self._after(base), self.commit_zxid
                )
        return Sync(
            self.epoch,
            SyncMode.SNAP,
            0,
            self.applied_zxid,
            self._after(self.applied_zxid),
            self.commit_zxid,
        )

    def _index(self, zxid: int) -> int | None:
        history = self.history
        lo, hi = 0, len(history)
        while lo < hi:
            mid = (lo + hi) // 2
            if history[mid].zxid < zxid:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(history) and history[lo].zxid == zxid:
            return lo
        return None

    def _after(self, zxid: int) -> tuple[Txn, ...]:
        history = self.history
        lo, hi = 0, len(history)
        while lo < hi:
            mid = (lo + hi) // 2
            if history[mid].zxid <= zxid:
                lo = mid + 1
            else:
                hi = mid
        return tuple(history[lo:])

    def _on_ack(self, link: _FollowerLink, zxid: int) -> None:
        # The Ack of a NewLeader names the end of the Sync it followed: only the
        # latest Sync's counts (an Ack of an older one may still be on its way).
        if zxid == link.sync_point and link.sent_sync and not link.synced:
            link.synced = True
            link.acked_zxid = max(link.acked_zxid, link.sync_point)
            if self._established:
                self._send(link.peer, UpToDate(self.epoch, self.commit_zxid))
            else:
                self._maybe_establish()
            self._maybe_commit()
            return
        if link.synced:
            link.acked_zxid = max(link.acked_zxid, zxid)
            self._maybe_commit()

    def _maybe_establish(self) -> None:
        synced = {p for p, link in self._links.items() if link.synced and not link.observer}
        if self._established or not self.quorum.is_quorum(synced):
            return
        self._established = True
        self.serving = True
        self._maybe_commit(force_to=self.last_zxid)
        for peer, link in self._links.items():
            if link.synced and peer != self.config.my_id:
                self._send(peer, UpToDate(self.epoch, self.commit_zxid))

    def _maybe_commit(self, force_to: int = 0) -> None:
        if not self._established and not force_to:
            return
        me = self._links.get(self.config.my_id)
        if me is not None:
            me.acked_zxid = self._durable_zxid
        acks = {
            link.peer: link.acked_zxid
            for link in self._links.values()
            if link.synced and not link.observer
        }
        target = max(force_to, self.quorum.committed(acks))
        if target <= self.commit_zxid:
            return
        newly = [txn for txn in self._after(self.commit_zxid) if txn.zxid <= target]
        self.commit_zxid = target
        self._out.commit.extend(newly)
        for link in self._links.values():
            if link.peer == self.config.my_id or not link.sent_sync:
                continue
            if link.observer:
                if newly:
                    self._send(link.peer, Inform(self.epoch, tuple(newly)))
            else:
                self._send(link.peer, Commit(self.epoch, target))

    # -- following and observing ---------------------------------------------------

    def _learner_receive(self, message: PeerMessage) -> None:
        if isinstance(message, LeaderInfo):
            if message.epoch < self.state.accepted_epoch:
                self.start_election()
                return
            known = max(self.state.accepted_epoch, self._leader_epoch_seen)
            if message.epoch > known + MAX_EPOCH_LEAP:
                self.epoch_leaps_refused += 1  # never saved: look for a leader again
                self.start_election()
                return
            # A new discovery round: until its Sync we are not synced (a LeaderInfo
            # for an epoch the leader is not in would otherwise leave us serving,
            # deaf to its proposals, for good; now the unsynced limit ends it).
            self._synced = False
            self.serving = False
            if message.epoch > self.state.accepted_epoch:
                self.state.accepted_epoch = message.epoch
                self._save_epochs()
            self.epoch = message.epoch
            self._got_sync = False
            self._unsynced_ticks = 0
            last = SNAP_PLEASE if self._need_snap else self.last_zxid
            self._send(
                self.leader_id,  # type: ignore[arg-type]
                AckEpoch(message.epoch, self.state.current_epoch, last),
            )
            return
        if getattr(message, "epoch", None) != self.epoch or not self.epoch:
            return
        if isinstance(message, Sync):
            if not self._got_sync:  # one Sync answers one AckEpoch
                self._got_sync = True
                self._unsynced_ticks = 0
                self._on_sync(message)
            return
        if not self._got_sync and not isinstance(message, Ping):
            # The leader sends these only after our Sync, on the same ordered link:
            # the Sync was lost. Taking them on an unsynced log could fork it.
            self._resync()
            return
        if isinstance(message, NewLeader):
            if message.zxid != self.last_zxid:
                self._resync()  # not the Sync we took: the one it follows was lost
                return
            if (
                self._out.append
                or self._out.truncate_after is not None
                or (self._out.install_snapshot is not None)
            ):
                # The Sync's history is in the Ready being built, and a Ready saves its
                # epochs before its log: a crash in between would leave us claiming the
                # new epoch with the old history. Take this (and what follows) in the
                # next Ready.
                self._held.append(message)
                return
            self.state.current_epoch = message.epoch
            self._save_epochs()
            self._send(self.leader_id, Ack(self.epoch, message.zxid))  # type: ignore[arg-type]
        elif isinstance(message, UpToDate):
            self._synced = True
            self.serving = True
            self._commit_to(message.commit_zxid)
        elif isinstance(message, Proposal):
            self._on_proposal(message)
        elif isinstance(message, Commit):
            self._commit_to(message.zxid)
        elif isinstance(message, Inform):
            fresh = [txn for txn in message.txns if txn.zxid > self.last_zxid]
            if fresh and fresh[0].zxid != self._expected_next(fresh[0].zxid):
                self._resync()
                return
            self._log(fresh)
            self._commit_to(message.txns[-1].zxid if message.txns else 0)
        elif isinstance(message, Ping):
            self._send(self.leader_id, Ping(self.epoch, self.last_zxid))  # type: ignore[arg-type]
            if self._synced:
                self._commit_to(message.commit_zxid)

    def _on_sync(self, sync: Sync) -> None:
        out = self._out
        # The Ready being built may already hold appends and commits from before this
        # Sync. The runtime carries out a Ready's snapshot or truncation before its
        # appends and commits, so drop what the Sync undoes.
        if sync.mode is SyncMode.TRUNC and sync.truncate_to < self._snapshot_zxid:
            # Txns in our snapshot cannot be dropped (it may hold some that were never
            # committed: a leader's tree can, before it is established). Ask for a SNAP.
            self._need_snap = True
            self._resync()
            return
        if sync.mode is SyncMode.SNAP:
            self._snapshot_zxid = sync.snapshot_zxid
            self._need_snap = False
            out.install_snapshot = sync
            out.truncate_after = None
            out.append = []
            out.commit = []
            self.history = []
            self._history_base = sync.snapshot_zxid
            self.last_zxid = sync.snapshot_zxid
            self.applied_zxid = sync.snapshot_zxid
            self.commit_zxid = sync.snapshot_zxid
        elif sync.mode is SyncMode.TRUNC:
            cut = sync.truncate_to
            out.append = [txn for txn in out.append if txn.zxid <= cut]
            out.commit = [txn for txn in out.commit if txn.zxid <= cut]
            if out.install_snapshot is None:
                previous = out.truncate_after
                out.truncate_after = cut if previous is None else min(previous, cut)
            self.history = [txn for txn in self.history if txn.zxid <= sync.truncate_to]
            self._history_base = min(self._history_base, sync.truncate_to)
            self.last_zxid = sync.truncate_to
            if self.applied_zxid > sync.truncate_to:
                self.applied_zxid = sync.truncate_to  # the runtime rebuilds the tree
            self.commit_zxid = min(self.commit_zxid, sync.truncate_to)
        self._log([txn for txn in sync.txns if txn.zxid > self.last_zxid])
        self._pending_commit = sync.commit_zxid

    def _on_proposal(self, proposal: Proposal) -> None:
        fresh = [txn for txn in proposal.txns if txn.zxid > self.last_zxid]
        if not fresh:
            return  # a duplicate
        if fresh[0].zxid != self._expected_next(fresh[0].zxid):
            self._resync()  # a gap: we missed a proposal
            return
        self._log(fresh)
        self._send(self.leader_id, Ack(self.epoch, self.last_zxid))  # type: ignore[arg-type]

    def _expected_next(self, zxid: int) -> int:
        """What the next txn's zxid must be for the log to have no gap."""
        if epoch_of(zxid) != epoch_of(self.last_zxid):
            return make_zxid(epoch_of(zxid), 1)
        return self.last_zxid + 1

    def _resync(self) -> None:
        """Something was lost on the way: ask the leader to sync us again."""
        self._synced = False
        self._got_sync = False
        self._unsynced_ticks = 0
        self._held = []
        self.serving = False
        self.epoch = 0
        self._send(self.leader_id, self._follower_info())  # type: ignore[arg-type]

    def _follower_info(self) -> FollowerInfo:
        return FollowerInfo(self.state.accepted_epoch, self.last_zxid, observer=not self.is_voter)

    def _commit_to(self, zxid: int) -> None:
        zxid = min(zxid, self.last_zxid)
        if not self._synced:
            self._pending_commit = max(self._pending_commit, zxid)
            return
        zxid = max(zxid, self._pending_commit)
        self._pending_commit = 0
        if zxid <= self.commit_zxid:
            return
        start = max(self.commit_zxid, self.applied_zxid)
        newly = [txn for txn in self._after(start) if txn.zxid <= zxid]
        self.commit_zxid = zxid
        self._out.commit.extend(newly)

    # -- shared --------------------------------------------------------------------

    def _log(self, txns: list[Txn]) -> None:
        if not txns:
            return
        self.history.extend(txns)
        excess = len(self.history) - self.config.max_history
        if excess > 0:
            # Commits are handed out from the window: keep what is not applied yet.
            done = min(self.applied_zxid, self.commit_zxid)
            excess = min(excess, bisect_right(self.history, done, key=_zxid_of))
        if excess > 0:
            self._history_base = self.history[excess - 1].zxid
            del self.history[:excess]
        self.last_zxid = txns[-1].zxid
        self._out.append.extend(txns)

    def _save_epochs(self) -> None:
        self._out.epochs = PersistentState(self.state.accepted_epoch, self.state.current_epoch)

    def _send(self, peer: int, message: PeerMessage) -> None:
        if peer != self.config.my_id:
            self._out.messages.append((peer, message))

    def _all_peers(self) -> list[int]:
        return sorted((self.config.voters | self.config.observers) - {self.config.my_id})
