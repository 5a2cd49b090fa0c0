"""ZabPeer, message by message (etcd raft style): build peers, feed them exact messages
and ticks, and assert on the exact ZabReady that comes out.

`Net` carries messages between peers only when a test says so, so every
interleaving here is chosen on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from coord.server.core.txn import CheckTxn, SetDataTxn, Txn, TxnHeader
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
from coord.server.zab.peer import (
    MAX_EPOCH,
    MAX_EPOCH_LEAP,
    SNAP_PLEASE,
    PersistentState,
    ZabConfig,
    ZabPeer,
    ZabReady,
    make_zxid,
)


def z(epoch: int, counter: int) -> int:
    return make_zxid(epoch, counter)


def txn(epoch: int, counter: int, data: bytes = b"") -> Txn:
    return Txn(TxnHeader(z(epoch, counter), 0, 0, 0), SetDataTxn("/k", data, counter))


def txns(epoch: int, first: int, last: int) -> list[Txn]:
    return [txn(epoch, c) for c in range(first, last + 1)]


def propose(peer: ZabPeer, *xids: int) -> list[Txn]:
    """Order writes of no effect at `peer`, numbered from its next zxid (as a sequencer does)."""
    first = peer.next_zxid()
    txns = [Txn(TxnHeader(first + i, 0, 0, xid), CheckTxn("/w", xid)) for i, xid in enumerate(xids)]
    peer.propose_txns(txns)
    return txns


def make_peer(
    my_id: int,
    voters: Iterable[int] = (1, 2, 3),
    observers: Iterable[int] = (),
    *,
    log: Iterable[Txn] = (),
    epochs: tuple[int, int] = (0, 0),
    history_base: int | None = None,
    **config: Any,
) -> ZabPeer:
    cfg = ZabConfig(my_id, frozenset(voters), frozenset(observers), **config)
    return ZabPeer(cfg, PersistentState(*epochs), list(log), history_base=history_base)


def take(peer: ZabPeer) -> ZabReady:
    """Take the peer's Ready and carry it out at once (advance)."""
    ready = peer.ready()
    peer.advance(ready)
    return ready


def sent(ready: ZabReady, kind: type | None = None, to: int | None = None) -> list:
    return [
        (peer, m)
        for peer, m in ready.messages
        if (kind is None or isinstance(m, kind)) and (to is None or peer == to)
    ]


def only(ready: ZabReady, kind: type, to: int) -> PeerMessage:
    found = [m for _, m in sent(ready, kind, to)]
    assert len(found) == 1, (kind, to, ready.messages)
    return found[0]


class Net:
    """Peers and the messages between them; nothing moves unless a test moves it."""

    def __init__(self, peers: Iterable[ZabPeer]) -> None:
        self.peers = {p.config.my_id: p for p in peers}
        self.queue: list[tuple[int, int, PeerMessage]] = []
        self.readys: dict[int, list[ZabReady]] = {i: [] for i in self.peers}
        for i in self.peers:
            self.flush(i)

    def flush(self, i: int) -> None:
        """Carry out peer i's Readys: its messages join the queue."""
        peer = self.peers[i]
        while peer.has_ready():
            ready = take(peer)
            self.readys[i].append(ready)
            self.queue.extend((i, to, m) for to, m in ready.messages)

    def deliver(self, kinds: tuple[type, ...] = (), *, drop_to: Iterable[int] = ()) -> int:
        """Deliver queued messages (of these kinds, or all) until none is left; return how many."""
        count = 0
        dropped = set(drop_to)
        while True:
            index = next(
                (n for n, (_, _, m) in enumerate(self.queue) if not kinds or isinstance(m, kinds)),
                None,
            )
            if index is None:
                return count
            sender, to, message = self.queue.pop(index)
            if to in dropped or to not in self.peers:
                continue
            self.peers[to].receive(sender, message)
            self.flush(to)
            count += 1

    def tick(self, *ids: int) -> None:
        for i in ids or tuple(self.peers):
            self.peers[i].tick()
            self.flush(i)

    def settle(self, rounds: int = 30) -> None:
        """Deliver everything and tick everyone until a leader serves and everyone synced."""
        for _ in range(rounds):
            self.deliver()
            if all(p.serving for p in self.peers.values()):
                return
            self.tick()
        raise AssertionError("no stable ensemble")

    def leader(self) -> ZabPeer:
        (leader,) = [p for p in self.peers.values() if p.role is Role.LEADING]
        return leader


def ensemble(n: int = 3, observers: int = 0, **config: Any) -> Net:
    voters = range(1, n + 1)
    obs = range(n + 1, n + 1 + observers)
    peers = [make_peer(i, voters, obs, **config) for i in [*voters, *obs]]
    net = Net(peers)
    net.settle()
    return net


# -- election --------------------------------------------------------------------------


def test_a_new_peer_votes_for_itself_and_tells_everyone() -> None:
    peer = make_peer(1)
    ready = peer.ready()
    assert ready.messages == [
        (2, Notification(Vote(0, 0, 1), 1, Role.LOOKING)),
        (3, Notification(Vote(0, 0, 1), 1, Role.LOOKING)),
    ]
    assert peer.role is Role.LOOKING and peer.round == 1


def test_three_peers_elect_by_hand() -> None:
    net = Net(make_peer(i) for i in (1, 2, 3))
    # Round 1: everyone hears everyone's first vote; the best (0, 0, 3) wins the argument.
    net.deliver((Notification,))
    for peer in net.peers.values():
        assert peer.vote == Vote(0, 0, 3), peer.config.my_id
        assert peer.role is Role.LOOKING  # agreement alone decides nothing: a tick must pass
    net.tick()
    assert net.peers[3].role is Role.LEADING
    assert net.peers[1].role is Role.FOLLOWING and net.peers[1].leader_id == 3
    assert net.peers[2].role is Role.FOLLOWING and net.peers[2].leader_id == 3
    # The followers announce themselves to the leader right away.
    assert only(net.readys[1][-1], FollowerInfo, 3) == FollowerInfo(0, 0)
    assert only(net.readys[2][-1], FollowerInfo, 3) == FollowerInfo(0, 0)


def test_a_longer_history_beats_a_higher_id() -> None:
    peers = [make_peer(1, log=txns(1, 1, 3), epochs=(1, 1)), make_peer(2), make_peer(3)]
    net = Net(peers)
    net.deliver((Notification,))
    net.tick()
    assert net.peers[1].role is Role.LEADING
    assert [net.peers[i].leader_id for i in (2, 3)] == [1, 1]


def test_a_newer_epoch_beats_a_longer_history() -> None:
    peers = [
        make_peer(1, log=txns(1, 1, 9), epochs=(1, 1)),
        make_peer(2, log=[*txns(1, 1, 2), *txns(2, 1, 1)], epochs=(2, 2)),
        make_peer(3),
    ]
    net = Net(peers)
    net.deliver((Notification,))
    net.tick()
    assert net.peers[2].role is Role.LEADING


def test_a_better_vote_arriving_before_the_tick_changes_the_decision() -> None:
    p1 = make_peer(1)
    p1.ready()
    p1.receive(2, Notification(Vote(0, 0, 2), 1, Role.LOOKING))
    assert p1.vote == Vote(0, 0, 2)  # a quorum {1, 2} agrees: decide at the next tick...
    p1.receive(3, Notification(Vote(0, 0, 3), 1, Role.LOOKING))
    assert p1.vote == Vote(0, 0, 3)  # ...but a better vote came first ({1, 3} agree on it)
    assert p1.role is Role.LOOKING
    p1.tick()
    assert p1.role is Role.FOLLOWING and p1.leader_id == 3


def test_no_decision_without_a_quorum_for_the_vote() -> None:
    p1 = make_peer(1, (1, 2, 3, 4, 5))
    p1.ready()
    p1.receive(2, Notification(Vote(0, 0, 2), 1, Role.LOOKING))
    p1.receive(3, Notification(Vote(0, 0, 3), 1, Role.LOOKING))
    for _ in range(5):
        p1.tick()
    assert p1.role is Role.LOOKING  # {1, 3} of five back (0, 0, 3)
    p1.receive(4, Notification(Vote(0, 0, 3), 1, Role.LOOKING))
    p1.tick()
    assert p1.role is Role.FOLLOWING and p1.leader_id == 3


def test_a_lagging_round_is_told_the_current_vote() -> None:
    p1 = make_peer(1)
    p1.ready()
    p1.receive(2, Notification(Vote(0, 0, 2), 5, Role.LOOKING))  # a later round: adopt it
    assert p1.round == 5
    take(p1)
    p1.receive(3, Notification(Vote(0, 0, 3), 2, Role.LOOKING))  # an older round
    ready = take(p1)
    assert sent(ready, Notification, 3) == [(3, Notification(Vote(0, 0, 2), 5, Role.LOOKING))]


def test_a_looking_peer_joins_a_leader_a_quorum_follows() -> None:
    p3 = make_peer(3)
    p3.ready()
    p3.receive(1, Notification(Vote(4, 0, 2), 1, Role.FOLLOWING, sender_epoch=4))
    assert p3.role is Role.LOOKING  # one follower is not enough
    p3.receive(2, Notification(Vote(4, 0, 2), 1, Role.LEADING, sender_epoch=4))
    assert p3.role is Role.FOLLOWING and p3.leader_id == 2
    assert only(p3.ready(), FollowerInfo, 2) == FollowerInfo(0, 0)


def test_a_settled_peer_tells_a_looking_one_who_leads() -> None:
    net = ensemble()
    leader = net.leader()
    leader.receive(1, Notification(Vote(0, 0, 1), 9, Role.LOOKING))
    ready = take(leader)
    note = only(ready, Notification, 1)
    assert isinstance(note, Notification)
    assert note.state is Role.LEADING and note.vote.leader == leader.config.my_id
    assert note.sender_epoch == leader.epoch


def test_observers_do_not_vote() -> None:
    p1 = make_peer(1, observers=(4,))
    p1.ready()
    p1.receive(4, Notification(Vote(0, 0, 4), 1, Role.LOOKING))
    assert p1.vote == Vote(0, 0, 1)  # an observer's vote is ignored
    p1.receive(2, Notification(Vote(0, 0, 2), 1, Role.LOOKING))
    p1.tick()
    assert p1.leader_id == 2


# -- discovery -------------------------------------------------------------------------


def leader_of(voters: Iterable[int] = (1, 2, 3), **kw: Any) -> ZabPeer:
    """Peer 1, elected by 2's vote, LEADING with no FollowerInfo yet."""
    voters = tuple(voters)
    peer = make_peer(1, voters, **kw)
    peer.ready()
    vote = Vote(peer.state.current_epoch, peer.last_zxid, 1)
    for other in voters[1:]:
        peer.receive(other, Notification(vote, 1, Role.LOOKING))
    peer.tick()
    assert peer.role is Role.LEADING
    take(peer)
    return peer


def test_the_leader_picks_an_epoch_above_every_accepted_epoch_once_a_quorum_reported() -> None:
    leader = leader_of((1, 2, 3, 4, 5), epochs=(3, 3))
    leader.receive(2, FollowerInfo(accepted_epoch=5, last_zxid=0))
    assert leader.epoch == 0 and not leader.has_ready()  # {1, 2}: not a quorum of five
    leader.receive(3, FollowerInfo(accepted_epoch=4, last_zxid=0))
    ready = take(leader)
    assert leader.epoch == 6
    assert ready.epochs == PersistentState(accepted_epoch=6, current_epoch=3)
    assert sent(ready, LeaderInfo) == [(2, LeaderInfo(6)), (3, LeaderInfo(6))]
    # A latecomer hears the chosen epoch at once.
    leader.receive(4, FollowerInfo(accepted_epoch=2, last_zxid=0))
    assert take(leader).messages == [(4, LeaderInfo(6))]


def test_the_leader_leaves_out_a_learner_whose_epoch_leaps_far_past_its_own() -> None:
    leader = leader_of((1, 2, 3), epochs=(3, 3))
    leader.receive(2, FollowerInfo(accepted_epoch=MAX_EPOCH, last_zxid=0))
    assert leader.epoch == 0 and not leader.has_ready()  # not counted toward the quorum
    leader.receive(3, FollowerInfo(accepted_epoch=4, last_zxid=0))
    assert leader.epoch == 5
    assert sent(take(leader), LeaderInfo) == [(3, LeaderInfo(5))]
    # Once the epoch is chosen it does not make the leader start over either.
    leader.receive(2, FollowerInfo(accepted_epoch=5 + MAX_EPOCH_LEAP + 1, last_zxid=0))
    assert leader.role is Role.LEADING and not leader.has_ready()
    assert leader.epoch_leaps_refused == 2


def test_a_follower_saves_the_new_epoch_before_it_acks_it() -> None:
    follower = make_peer(2, epochs=(3, 2), log=txns(2, 1, 4))
    follower.ready()
    follower.receive(1, Notification(Vote(2, z(2, 9), 1), 1, Role.LEADING, sender_epoch=0))
    follower.receive(3, Notification(Vote(2, z(2, 9), 1), 1, Role.FOLLOWING, sender_epoch=0))
    follower.receive(1, Notification(Vote(2, z(2, 9), 1), 1, Role.LEADING, sender_epoch=0))
    assert follower.leader_id == 1
    take(follower)
    follower.receive(1, LeaderInfo(7))
    ready = take(follower)
    assert ready.epochs == PersistentState(accepted_epoch=7, current_epoch=2)
    assert ready.messages == [(1, AckEpoch(7, current_epoch=2, last_zxid=z(2, 4)))]


def following(voters: Iterable[int] = (1, 2, 3), my_id: int = 2, **kw: Any) -> ZabPeer:
    """A peer following 1 that has sent its FollowerInfo (its Ready is taken)."""
    peer = make_peer(my_id, voters, **kw)
    peer.ready()
    vote = Vote(0, 0, 1)
    peer.receive(1, Notification(vote, 1, Role.LEADING, sender_epoch=1))
    others = [v for v in voters if v not in (1, my_id)]
    for other in others:
        peer.receive(other, Notification(vote, 1, Role.FOLLOWING, sender_epoch=1))
    assert peer.role in (Role.FOLLOWING, Role.OBSERVING) and peer.leader_id == 1
    take(peer)
    return peer


def test_a_follower_refuses_an_epoch_older_than_it_accepted() -> None:
    follower = following(epochs=(5, 5))
    follower.receive(1, LeaderInfo(4))
    assert follower.role is Role.LOOKING


def test_a_follower_never_saves_an_epoch_leaping_far_past_every_epoch_it_knows() -> None:
    """One LeaderInfo at the top of the epoch space would leave no epoch to elect with."""
    follower = following(epochs=(5, 5))
    follower.receive(1, LeaderInfo(MAX_EPOCH))
    ready = take(follower)
    assert follower.role is Role.LOOKING
    assert ready.epochs is None and follower.state.accepted_epoch == 5
    assert follower.epoch_leaps_refused == 1


def test_a_follower_takes_the_largest_leap_it_allows() -> None:
    follower = following(epochs=(5, 5))
    follower.receive(1, LeaderInfo(5 + MAX_EPOCH_LEAP))
    ready = take(follower)
    assert ready.epochs == PersistentState(accepted_epoch=5 + MAX_EPOCH_LEAP, current_epoch=5)
    assert follower.role is Role.FOLLOWING and follower.epoch_leaps_refused == 0


def test_a_member_with_an_empty_disk_joins_a_leader_epochs_ahead() -> None:
    """The leap is measured from the leader's epoch in the votes, not from our own."""
    far = 10 * MAX_EPOCH_LEAP
    follower = make_peer(2)
    follower.ready()
    vote = Vote(far, z(far, 40), 1)
    follower.receive(1, Notification(vote, 1, Role.LEADING, sender_epoch=far))
    follower.receive(3, Notification(vote, 1, Role.FOLLOWING, sender_epoch=far))
    assert follower.leader_id == 1
    take(follower)
    follower.receive(1, LeaderInfo(far))
    ready = take(follower)
    assert ready.epochs == PersistentState(accepted_epoch=far, current_epoch=0)
    assert ready.messages == [(1, AckEpoch(far, current_epoch=0, last_zxid=0))]


def synced_follower(**kw: Any) -> ZabPeer:
    """Peer 2 following 1 in epoch 1, synced (UpToDate) with an empty history."""
    follower = following(**kw)
    follower.receive(1, LeaderInfo(1))
    follower.receive(1, Sync(1, SyncMode.DIFF, 0, 0, (), 0))
    take(follower)
    follower.receive(1, NewLeader(1, 0))
    follower.receive(1, UpToDate(1, 0))
    take(follower)
    assert follower.serving
    return follower


def test_a_quorum_of_ack_epochs_begins_the_epoch_and_syncs_those_who_acked() -> None:
    leader = leader_of(log=txns(1, 1, 2), epochs=(1, 1))
    leader.receive(2, FollowerInfo(1, z(1, 2)))
    take(leader)
    leader.receive(2, AckEpoch(2, current_epoch=1, last_zxid=z(1, 2)))
    ready = take(leader)
    assert ready.epochs == PersistentState(accepted_epoch=2, current_epoch=2)
    assert ready.messages == [
        (2, Sync(2, SyncMode.DIFF, 0, 0, (), z(1, 2))),
        (2, NewLeader(2, z(1, 2))),
    ]
    assert not leader.serving  # established only once a quorum acked NewLeader
    leader.receive(2, Ack(2, z(1, 2)))
    assert leader.serving
    assert take(leader).messages == [(2, UpToDate(2, z(1, 2)))]


def test_a_follower_with_a_later_history_makes_the_leader_step_down() -> None:
    leader = leader_of(log=txns(1, 1, 2), epochs=(2, 1))
    leader.receive(2, FollowerInfo(2, z(2, 3)))
    take(leader)
    assert leader.epoch == 3
    leader.receive(2, AckEpoch(3, current_epoch=2, last_zxid=z(2, 3)))
    assert leader.role is Role.LOOKING
    assert leader.vote == Vote(1, z(1, 2), 1)  # it votes anew, for itself at first


def test_an_observer_with_a_later_history_does_not_unseat_the_leader() -> None:
    leader = leader_of(observers=(4,), log=txns(1, 1, 2), epochs=(1, 1))
    leader.receive(2, FollowerInfo(1, z(1, 2)))
    leader.receive(4, FollowerInfo(1, z(1, 9), observer=True))
    take(leader)
    leader.receive(4, AckEpoch(2, current_epoch=1, last_zxid=z(1, 9)))
    assert leader.role is Role.LEADING


def test_a_repeated_ack_epoch_does_not_sync_again() -> None:
    leader = leader_of()
    leader.receive(2, FollowerInfo(0, 0))
    leader.receive(2, AckEpoch(1, 0, 0))
    first = take(leader)
    assert len(sent(first, Sync, 2)) == 1
    leader.receive(2, AckEpoch(1, 0, 0))  # it got LeaderInfo twice and answered both
    assert sent(take(leader), Sync) == []


# -- sync planning ---------------------------------------------------------------------


def plan(leader_log: list[Txn], their_zxid: int, **config: Any) -> tuple[ZabPeer, Sync, NewLeader]:
    """The Sync and NewLeader a leader with `leader_log` (epochs (e, e)) sends follower 2."""
    epoch = leader_log[-1].zxid >> 32 if leader_log else 0
    leader = leader_of(log=leader_log, epochs=(epoch, epoch), **config)
    leader.receive(2, FollowerInfo(epoch, their_zxid))
    take(leader)
    leader.receive(2, AckEpoch(leader.epoch, current_epoch=min(epoch, their_zxid >> 32),
                               last_zxid=their_zxid))  # fmt: skip
    ready = take(leader)
    sync = only(ready, Sync, 2)
    new_leader = only(ready, NewLeader, 2)
    assert isinstance(sync, Sync) and isinstance(new_leader, NewLeader)
    assert ready.messages.index((2, sync)) + 1 == ready.messages.index((2, new_leader))
    return leader, sync, new_leader


def test_sync_is_an_empty_diff_for_an_equal_follower() -> None:
    _, sync, new_leader = plan(txns(1, 1, 5), z(1, 5))
    assert (sync.mode, sync.txns) == (SyncMode.DIFF, ())
    assert new_leader.zxid == z(1, 5)


def test_sync_is_a_diff_when_the_follower_is_behind_inside_the_window() -> None:
    _, sync, new_leader = plan(txns(1, 1, 5), z(1, 3))
    assert sync.mode is SyncMode.DIFF
    assert sync.txns == tuple(txns(1, 4, 5))
    assert new_leader.zxid == z(1, 5)


def test_sync_is_a_diff_from_the_window_edge() -> None:
    # A window of 3 over a log of 5: the base is 1:2, so a follower at 1:2 gets a DIFF.
    _, sync, _ = plan(txns(1, 1, 5), z(1, 2), max_history=3)
    assert (sync.mode, sync.txns) == (SyncMode.DIFF, tuple(txns(1, 3, 5)))


def test_sync_is_a_trunc_when_the_follower_has_txns_from_a_dead_epoch() -> None:
    log = [*txns(1, 1, 2), *txns(2, 1, 2)]
    _, sync, new_leader = plan(log, z(1, 4))  # 1:3 and 1:4 died with epoch 1
    assert sync.mode is SyncMode.TRUNC
    assert sync.truncate_to == z(1, 2)
    assert sync.txns == tuple(txns(2, 1, 2))
    assert new_leader.zxid == z(2, 2)


def test_sync_truncates_to_nothing_when_the_leader_shares_nothing() -> None:
    # (history_base=0: the leader's log reaches back to the very first txn.)
    _, sync, _ = plan(txns(2, 1, 2), z(1, 4), history_base=0)
    assert (sync.mode, sync.truncate_to, sync.txns) == (SyncMode.TRUNC, 0, tuple(txns(2, 1, 2)))


def test_sync_is_a_snap_when_the_leaders_log_may_not_reach_back_far_enough() -> None:
    # Without history_base the window's edge is just below its first txn, 2:0.
    _, sync, _ = plan(txns(2, 1, 2), z(1, 4))
    assert sync.mode is SyncMode.SNAP


def test_sync_is_a_snap_when_the_follower_is_behind_the_window() -> None:
    leader, sync, new_leader = plan(txns(1, 1, 6), z(1, 1), max_history=2)
    assert sync.mode is SyncMode.SNAP
    assert sync.snapshot_zxid == z(1, 6) == leader.applied_zxid
    assert sync.txns == ()
    assert new_leader.zxid == z(1, 6)


def test_a_trimmed_window_is_not_taken_for_the_whole_log() -> None:
    """A log longer than the window, with a history_base below it (from the runtime's
    snapshot): the window's edge is where it was trimmed, so a dead-epoch follower below
    it gets a SNAP, not a TRUNC to the snapshot point."""
    config = ZabConfig(1, frozenset({1, 2, 3}), max_history=2)
    peer = ZabPeer(config, PersistentState(2, 2), txns(2, 1, 6), history_base=0)
    assert [t.zxid for t in peer.history] == [z(2, 5), z(2, 6)]
    peer.ready()
    peer.receive(2, Notification(Vote(2, z(2, 6), 1), 1, Role.LOOKING))
    peer.tick()
    take(peer)
    peer.receive(2, FollowerInfo(2, z(1, 9)))
    take(peer)
    peer.receive(2, AckEpoch(3, 1, z(1, 9)))
    sync = only(take(peer), Sync, 2)
    assert isinstance(sync, Sync) and sync.mode is SyncMode.SNAP


@pytest.mark.parametrize(
    ("sync", "expect"),
    [
        (Sync(1, SyncMode.DIFF, 0, 0, tuple(txns(1, 1, 2)), z(1, 1)), "append"),
        (Sync(1, SyncMode.TRUNC, z(0, 0), 0, tuple(txns(1, 1, 2)), z(1, 1)), "truncate"),
        (Sync(1, SyncMode.SNAP, 0, z(1, 1), tuple(txns(1, 2, 2)), z(1, 1)), "snapshot"),
    ],
)
def test_a_follower_carries_out_each_kind_of_sync(sync: Sync, expect: str) -> None:
    follower = following(log=txns(0, 1, 3))  # (epoch-0 txns: they predate everything)
    follower.receive(1, LeaderInfo(1))
    take(follower)
    follower.receive(1, sync)
    ready = take(follower)
    assert (ready.truncate_after is not None) == (expect == "truncate")
    assert (ready.install_snapshot is sync) == (expect == "snapshot")
    if expect == "append":
        assert ready.append == txns(1, 1, 2)
    if expect == "truncate":
        assert ready.truncate_after == 0 and ready.append == txns(1, 1, 2)
    if expect == "snapshot":
        assert ready.append == txns(1, 2, 2)
    assert follower.last_zxid == z(1, 2)
    assert ready.commit == []  # nothing is applied before UpToDate


# -- the sync handshake: order and loss -------------------------------------------------


def test_new_leader_waits_for_the_ready_after_the_syncs_log_writes() -> None:
    """A Ready saves epochs before it logs: the new current epoch must not share a Ready
    with the history it stands for, or a crash between the two would claim the epoch
    without the history."""
    follower = following()
    follower.receive(1, LeaderInfo(1))
    take(follower)
    follower.receive(1, Sync(1, SyncMode.DIFF, 0, 0, tuple(txns(0, 1, 2)), 0))
    follower.receive(1, NewLeader(1, z(0, 2)))
    follower.receive(1, UpToDate(1, z(0, 2)))
    first = take(follower)
    assert first.append == txns(0, 1, 2)
    assert first.epochs is None and first.messages == [] and first.commit == []
    second = take(follower)
    assert second.epochs == PersistentState(1, 1)
    assert second.messages == [(1, Ack(1, z(0, 2)))]
    assert second.commit == txns(0, 1, 2)  # UpToDate came after NewLeader: same order
    assert follower.serving


def test_a_new_leader_that_does_not_match_the_log_asks_for_a_sync_again() -> None:
    follower = following()
    follower.receive(1, LeaderInfo(1))
    follower.receive(1, Sync(1, SyncMode.DIFF, 0, 0, tuple(txns(1, 1, 2)), 0))
    take(follower)
    follower.receive(1, NewLeader(1, z(1, 5)))  # it follows a Sync we never got
    ready = take(follower)
    assert ready.epochs is None
    assert ready.messages == [(1, FollowerInfo(1, z(1, 2)))]
    assert follower.epoch == 0


@pytest.mark.parametrize(
    "message",
    [NewLeader(1, 0), UpToDate(1, 0), Proposal(1, (txn(1, 1),)), Commit(1, z(1, 1))],
    ids=lambda m: type(m).__name__,
)
def test_a_broadcast_message_before_the_sync_means_the_sync_was_lost(
    message: PeerMessage,
) -> None:
    follower = following()
    follower.receive(1, LeaderInfo(1))
    take(follower)
    follower.receive(1, Ping(1, 0))  # pings may come before the Sync
    assert sent(take(follower), FollowerInfo) == []
    follower.receive(1, message)
    ready = take(follower)
    assert ready.append == [] and ready.epochs is None
    assert ready.messages == [(1, FollowerInfo(1, 0))]


def test_a_sync_undoes_what_the_ready_being_built_still_holds() -> None:
    """The runtime takes messages while it writes the previous Ready, so a Ready may
    hold appends and commits from before a Sync; it truncates (or installs) first and
    appends after, so what the Sync drops must leave the Ready too."""
    follower = synced_follower()
    follower.receive(1, Proposal(1, tuple(txns(1, 1, 2))))
    follower.receive(1, Commit(1, z(1, 1)))
    follower.receive(1, Proposal(1, (txn(1, 4),)))  # a gap: it asks to be synced again
    follower.receive(1, LeaderInfo(1))
    other = txn(1, 2, b"the leader's 1:2")
    follower.receive(1, Sync(1, SyncMode.TRUNC, z(1, 1), 0, (other,), z(1, 1)))
    ready = take(follower)
    assert ready.truncate_after == z(1, 1)
    assert ready.append == [txn(1, 1), other]  # 1:1 stays; the old 1:2 is gone
    assert ready.commit == [txn(1, 1)]
    # One Sync answers one AckEpoch: a second one is ignored.
    follower.receive(1, Sync(1, SyncMode.SNAP, 0, z(1, 2), (), z(1, 2)))
    assert not follower.has_ready()


def test_only_the_first_sync_after_an_ack_epoch_is_taken() -> None:
    follower = following()
    follower.receive(1, LeaderInfo(1))
    follower.receive(1, Sync(1, SyncMode.DIFF, 0, 0, tuple(txns(1, 1, 2)), 0))
    take(follower)
    follower.receive(1, Sync(1, SyncMode.TRUNC, 0, 0, (), 0))
    assert not follower.has_ready() and follower.last_zxid == z(1, 2)


def test_an_ack_of_an_older_sync_is_not_credited_to_a_newer_one() -> None:
    leader = leader_of((1, 2, 3, 4, 5))
    for i in (2, 3):
        leader.receive(i, FollowerInfo(0, 0))
    for i in (2, 3):
        leader.receive(i, AckEpoch(1, 0, 0))
    for i in (2, 3):
        leader.receive(i, Ack(1, 0))
    assert leader.serving
    take(leader)
    propose(leader, 1, 2)
    take(leader)
    # Follower 2 asks again (it saw a gap) and is synced up to 1:2.
    leader.receive(2, FollowerInfo(1, 0))
    leader.receive(2, AckEpoch(1, 1, 0))
    assert only(take(leader), NewLeader, 2) == NewLeader(1, z(1, 2))
    leader.receive(2, Ack(1, 0))  # the Ack of its first NewLeader, still on its way
    leader.receive(3, Ack(1, z(1, 2)))
    assert leader.commit_zxid == 0  # 2's old Ack says nothing of 1:1 and 1:2
    leader.receive(2, Ack(1, z(1, 2)))
    assert leader.commit_zxid == z(1, 2)


# -- broadcast -------------------------------------------------------------------------


def test_a_follower_acks_a_proposal_in_the_ready_that_logs_it() -> None:
    follower = synced_follower()
    follower.receive(1, Proposal(1, tuple(txns(1, 1, 2))))
    ready = take(follower)
    assert ready.append == txns(1, 1, 2)
    assert ready.messages == [(1, Ack(1, z(1, 2)))]  # sent only after the append is durable
    assert ready.commit == []


def test_a_duplicate_proposal_is_ignored_and_a_gap_asks_for_a_sync() -> None:
    follower = synced_follower()
    follower.receive(1, Proposal(1, (txn(1, 1),)))
    take(follower)
    follower.receive(1, Proposal(1, (txn(1, 1),)))
    assert not follower.has_ready()
    follower.receive(1, Proposal(1, (txn(1, 3),)))  # 1:2 was lost
    ready = take(follower)
    assert ready.append == []
    assert ready.messages == [(1, FollowerInfo(1, z(1, 1)))]
    assert not follower.serving


def test_a_follower_applies_on_commit_and_never_beyond_its_log() -> None:
    follower = synced_follower()
    follower.receive(1, Proposal(1, tuple(txns(1, 1, 3))))
    take(follower)
    follower.receive(1, Commit(1, z(1, 2)))
    assert take(follower).commit == txns(1, 1, 2)
    follower.receive(1, Commit(1, z(1, 9)))
    assert take(follower).commit == [txn(1, 3)]
    follower.receive(1, Ping(1, z(1, 9)))
    ready = take(follower)
    assert ready.commit == [] and ready.messages == [(1, Ping(1, z(1, 3)))]


def established(voters: Iterable[int] = (1, 2, 3, 4, 5), observers: Iterable[int] = ()) -> ZabPeer:
    """Leader 1, established in epoch 1 with every other member synced (empty history)."""
    voters, observers = tuple(voters), tuple(observers)
    leader = leader_of(voters, observers=observers)
    for i in (*voters[1:], *observers):
        leader.receive(i, FollowerInfo(0, 0, observer=i in observers))
    for i in (*voters[1:], *observers):
        leader.receive(i, AckEpoch(1, 0, 0))
    for i in (*voters[1:], *observers):
        leader.receive(i, Ack(1, 0))
    assert leader.serving and leader.epoch == 1
    take(leader)
    return leader


def test_a_proposal_commits_only_at_a_quorum() -> None:
    leader = established()
    proposed = propose(leader, 1)
    ready = take(leader)  # the leader's own append is durable now
    assert ready.append == proposed
    assert {to for to, _ in sent(ready, Proposal)} == {2, 3, 4, 5}
    leader.receive(2, Ack(1, z(1, 1)))
    assert leader.commit_zxid == 0 and not leader.has_ready()  # {1, 2} of five
    leader.receive(3, Ack(1, z(1, 1)))
    ready = take(leader)
    assert ready.commit == proposed
    assert sent(ready, Commit) == [(i, Commit(1, z(1, 1))) for i in (2, 3, 4, 5)]


def test_a_batch_that_skips_a_zxid_is_refused_whole() -> None:
    """The sequencer numbers zxids; the peer refuses a batch that does not continue them."""
    leader = established((1, 2, 3))
    first = leader.next_zxid()
    batch = [Txn(TxnHeader(first + skip, 0, 0, 0), CheckTxn("/w", 0)) for skip in (0, 2)]
    with pytest.raises(ValueError, match="not the next one"):
        leader.propose_txns(batch)
    assert leader.next_zxid() == first and not take(leader).append
    assert propose(leader, 1)[0].zxid == first


def test_acks_are_cumulative() -> None:
    leader = established((1, 2, 3))
    proposed = propose(leader, 1) + propose(leader, 2) + propose(leader, 3)
    take(leader)
    leader.receive(2, Ack(1, z(1, 3)))  # one Ack for all three
    assert take(leader).commit == proposed


def test_the_leaders_own_log_counts_only_after_advance() -> None:
    leader = established((1, 2, 3))
    proposed = propose(leader, 1)
    ready = leader.ready()  # taken, not yet carried out
    leader.receive(2, Ack(1, z(1, 1)))
    assert leader.commit_zxid == 0 and not leader.has_ready()  # 1's own append is not durable
    leader.advance(ready)
    assert take(leader).commit == proposed


def test_an_observer_gets_informed_of_commits_and_never_counts() -> None:
    leader = established((1, 2, 3), observers=(4,))
    proposed = propose(leader, 1)
    ready = take(leader)
    assert {to for to, _ in sent(ready, Proposal)} == {2, 3}  # not the observer
    leader.receive(4, Ack(1, z(1, 1)))
    assert leader.commit_zxid == 0
    leader.receive(3, Ack(1, z(1, 1)))
    ready = take(leader)
    assert ready.commit == proposed
    assert sent(ready, Inform) == [(4, Inform(1, tuple(proposed)))]
    assert sent(ready, Commit, 4) == []


def test_an_observer_logs_and_applies_an_inform_at_once() -> None:
    observer = synced_follower(my_id=4, observers=(4,))
    observer.receive(1, Inform(1, tuple(txns(1, 1, 2))))
    ready = take(observer)
    assert ready.append == txns(1, 1, 2) and ready.commit == txns(1, 1, 2)
    assert ready.messages == []  # observers never ack


def test_history_not_yet_applied_is_kept_beyond_max_history() -> None:
    follower = synced_follower(max_history=2)
    for c in range(1, 6):
        follower.receive(1, Proposal(1, (txn(1, c),)))
    take(follower)
    assert len(follower.history) == 5  # none of it is applied yet
    follower.receive(1, Commit(1, z(1, 5)))
    assert take(follower).commit == txns(1, 1, 5)
    follower.receive(1, Proposal(1, (txn(1, 6),)))
    take(follower)
    assert [t.zxid for t in follower.history] == [z(1, 5), z(1, 6)]


# -- liveness --------------------------------------------------------------------------


def test_a_follower_that_hears_nothing_for_sync_limit_ticks_goes_looking() -> None:
    follower = synced_follower(sync_limit=3)
    for _ in range(3):
        follower.tick()
        assert follower.role is Role.FOLLOWING
    follower.tick()
    assert follower.role is Role.LOOKING and not follower.serving


def test_a_ping_keeps_a_follower_following() -> None:
    follower = synced_follower(sync_limit=3)
    for _ in range(10):
        follower.tick()
        follower.receive(1, Ping(1, 0))
    assert follower.role is Role.FOLLOWING


def test_only_what_a_leader_sends_keeps_a_follower_waiting() -> None:
    """Two peers that chose each other hear only FollowerInfos from each other."""
    follower = following(init_limit=4)
    for _ in range(4):
        follower.tick()
        follower.receive(1, FollowerInfo(0, 0))
    follower.tick()
    assert follower.role is Role.LOOKING


def test_a_follower_stuck_unsynced_asks_again_after_init_limit_ticks() -> None:
    follower = following(init_limit=4)
    follower.receive(1, LeaderInfo(1))
    follower.receive(1, Sync(1, SyncMode.DIFF, 0, 0, (), 0))
    follower.receive(1, NewLeader(1, 0))
    take(follower)  # ... and the UpToDate is lost
    for _ in range(4):
        follower.tick()
        follower.receive(1, Ping(1, 0))
        assert sent(take(follower), FollowerInfo) == []
    follower.tick()
    assert sent(take(follower), FollowerInfo) == [(1, FollowerInfo(1, 0))]
    assert follower.role is Role.FOLLOWING  # still the same leader: just synced again


def test_a_leader_that_loses_its_quorum_steps_down_and_stops_serving() -> None:
    leader = established((1, 2, 3))
    limit = leader.config.sync_limit
    for _ in range(3 * limit):
        leader.tick()
        leader.receive(3, Ping(1, 0))  # 3 keeps talking (2 went silent): {1, 3} is a quorum
    assert leader.serving
    for _ in range(limit):
        leader.tick()  # now nobody talks: 3 is still taken for alive for sync_limit ticks
        assert leader.serving
    leader.tick()
    assert leader.role is Role.LOOKING and not leader.serving
    with pytest.raises(RuntimeError):
        propose(leader, 0)


def test_a_leader_that_cannot_gather_a_quorum_gives_up_after_init_limit_ticks() -> None:
    leader = leader_of(init_limit=4)
    for _ in range(4):
        leader.tick()
        assert leader.role is Role.LEADING  # nobody has answered yet: it waits...
    leader.tick()
    assert leader.role is Role.LOOKING  # ...init_limit ticks, then votes again


def test_a_lone_voter_elects_itself_and_commits_alone() -> None:
    peer = make_peer(1, (1,))
    peer.ready()
    peer.tick()
    assert peer.role is Role.LEADING and peer.serving and peer.epoch == 1
    take(peer)
    proposed = propose(peer, 1)
    ready = take(peer)
    assert ready.append == proposed and ready.commit == []  # durable first...
    assert take(peer).commit == proposed  # ...then committed


def test_an_ensemble_settles_with_an_observer_and_broadcasts() -> None:
    net = ensemble(3, observers=1)
    leader = net.leader()
    (proposed,) = propose(leader, 7)
    net.flush(leader.config.my_id)
    net.deliver()
    for peer in net.peers.values():
        assert peer.commit_zxid == proposed.zxid, peer.config.my_id
    assert net.peers[4].role is Role.OBSERVING


# -- snapshots that may hold uncommitted txns, and promises of later epochs -------------


def test_a_leader_not_yet_established_may_snap_txns_that_were_never_committed() -> None:
    """A restarted leader recovered its whole log (1:4..1:6 never reached a quorum) and
    SNAPs a follower with that tree before it is established. This is allowed, so the
    follower must cope when a later leader has to take those txns back (next test)."""
    leader = leader_of(log=txns(1, 1, 6), epochs=(1, 1), max_history=2)
    leader.receive(2, FollowerInfo(1, z(1, 3)))
    take(leader)
    leader.receive(2, AckEpoch(2, current_epoch=1, last_zxid=z(1, 3)))
    sync = only(take(leader), Sync, 2)
    assert isinstance(sync, Sync)
    assert (sync.mode, sync.snapshot_zxid) == (SyncMode.SNAP, z(1, 6))


def test_a_trunc_into_the_snapshot_asks_for_a_snap_instead() -> None:
    follower = following()
    follower.receive(1, LeaderInfo(2))
    take(follower)
    snap = Sync(2, SyncMode.SNAP, 0, z(1, 6), (), z(1, 3))
    follower.receive(1, snap)
    take(follower)
    # Epoch 2 never got established; the leader of epoch 3 lacks 1:4..1:6.
    follower.receive(1, LeaderInfo(3))
    take(follower)
    follower.receive(1, Sync(3, SyncMode.TRUNC, z(1, 3), 0, tuple(txns(3, 1, 1)), 0))
    ready = take(follower)
    assert ready.truncate_after is None and ready.append == []
    assert ready.messages == [(1, FollowerInfo(3, z(1, 6)))]
    follower.receive(1, LeaderInfo(3))
    assert take(follower).messages == [(1, AckEpoch(3, current_epoch=0, last_zxid=-1))]
    follower.receive(1, Sync(3, SyncMode.SNAP, 0, z(3, 1), (), z(3, 1)))
    ready = take(follower)
    assert ready.install_snapshot is not None and follower.last_zxid == z(3, 1)
    follower.receive(1, LeaderInfo(3))  # asked again later: a DIFF or TRUNC will do now
    assert take(follower).messages == [(1, AckEpoch(3, current_epoch=0, last_zxid=z(3, 1)))]


def test_a_follower_restarted_on_a_snapshot_will_not_truncate_below_it() -> None:
    follower = following(log=txns(1, 5, 6), history_base=z(1, 4))  # a snapshot at 1:4
    follower.receive(1, LeaderInfo(2))
    take(follower)
    follower.receive(1, Sync(2, SyncMode.TRUNC, z(1, 4), 0, (), 0))  # at the snapshot: fine
    assert take(follower).truncate_after == z(1, 4)
    follower = following(log=txns(1, 5, 6), history_base=z(1, 4))
    follower.receive(1, LeaderInfo(2))
    take(follower)
    follower.receive(1, Sync(2, SyncMode.TRUNC, z(1, 3), 0, (), 0))  # below it: no
    ready = take(follower)
    assert ready.truncate_after is None
    assert sent(ready, FollowerInfo) == [(1, FollowerInfo(2, z(1, 6)))]


def test_a_follower_that_can_only_take_a_snap_gets_one() -> None:
    leader = leader_of(log=txns(1, 1, 3), epochs=(1, 1), history_base=0)
    leader.receive(2, FollowerInfo(1, z(1, 3)))
    take(leader)
    leader.receive(2, AckEpoch(2, current_epoch=1, last_zxid=-1))
    sync = only(take(leader), Sync, 2)
    assert isinstance(sync, Sync) and sync.mode is SyncMode.SNAP


def test_a_learner_that_promised_a_later_epoch_makes_the_leader_start_over() -> None:
    """A peer that accepted epoch 9 (a failed bid to lead) can never take epoch 7: the
    leader of epoch 7 steps down and bids above 9 next time."""
    net = ensemble(3)
    leader = net.leader()
    epoch = leader.epoch
    leader.receive(2, FollowerInfo(accepted_epoch=epoch + 2, last_zxid=leader.last_zxid))
    assert leader.role is Role.LOOKING and not leader.serving
    take(leader)
    vote = Vote(leader.state.current_epoch, leader.last_zxid, leader.config.my_id)
    leader.receive(2, Notification(vote, leader.round, Role.LOOKING))
    leader.tick()
    assert leader.role is Role.LEADING
    take(leader)
    leader.receive(1, FollowerInfo(epoch, leader.last_zxid))
    assert leader.epoch == epoch + 3
    assert sent(take(leader), LeaderInfo) == [(1, LeaderInfo(epoch + 3))]


def test_a_learner_that_accepted_our_own_epoch_joins() -> None:
    leader = established((1, 2, 3))
    leader.receive(2, FollowerInfo(accepted_epoch=1, last_zxid=0))
    assert leader.role is Role.LEADING
    assert take(leader).messages == [(2, LeaderInfo(1))]


def test_a_snapshot_the_runtime_took_is_never_truncated_into() -> None:
    """After snapshot_taken(z), a TRUNC below z is refused: the follower asks for a SNAP."""
    history = [Txn(TxnHeader(make_zxid(1, n), 0, 0, 0), CheckTxn("/x", -1)) for n in range(1, 6)]
    peer = ZabPeer(ZabConfig(2, frozenset({1, 2, 3})), PersistentState(1, 1), history)
    peer.snapshot_taken(history[-1].zxid)
    peer.start_election()
    peer._decide(1, 1)  # follow member 1, of epoch 1 (as an election would)
    peer.ready()
    peer.receive(1, LeaderInfo(2))
    peer.ready()
    peer.receive(1, Sync(2, SyncMode.TRUNC, history[1].zxid, 0, (), history[1].zxid))
    sent = [m for _, m in peer.ready().messages]
    peer.receive(1, LeaderInfo(2))
    sent += [m for _, m in peer.ready().messages]
    acks = [m for m in sent if isinstance(m, AckEpoch)]
    assert acks and acks[-1].last_zxid == SNAP_PLEASE
