"""Leases in time: a member whose clock jumped past its lease stops serving at its first
input, before it reads a stale message, answers a client or expires a session.

Three MemberCores driven by hand (tests/server/test_member_core.py's `Net`), their
ZAB peers given the tick's length so the limits are kept in time as well as ticks.
"""

from __future__ import annotations

from coord.errors import ConnectionLossError, SessionExpiredError
from coord.messages import OpCode
from coord.server.core.output import ErrorReply, Notice
from coord.server.zab.lease import Leases
from coord.server.zab.messages import Ping, Role
from coord.server.zab.quorum import Quorum
from tests.server.test_member_core import MEMBERS, TICK, Net

SYNC_LIMIT = 5


def test_a_leader_paused_past_its_lease_stops_serving_at_its_first_input() -> None:
    net = Net(tick_ms=TICK, sync_limit=SYNC_LIMIT)
    leader_id = net.elect()
    leader = net.members[leader_id]
    net.connect(leader_id, conn=1)
    net.now += 10_000  # the process was frozen for ten seconds; its clock ran on
    follower = next(m for m in MEMBERS if m != leader_id)
    leader.receive(follower, Ping(leader.zab.epoch, 0), net.now)  # a stale Ping, read late
    assert leader.zab.role is Role.LOOKING and leader.zab.lease_expiries == 1
    leader.replica.request(1, 1, OpCode.GET_DATA, {"path": "/"}, now_ms=net.now)
    ready = leader.ready(net.now)
    frames = [frame for conn, frame in ready.client_messages if conn == 1]
    assert [type(f) for f in frames] == [Notice]  # not served, and not told it expired
    assert isinstance(frames[0], Notice) and isinstance(frames[0].error, ConnectionLossError)
    assert ready.client_closes == [1] and leader.replica.sequencer is None


def test_a_leader_cut_off_steps_down_within_its_lease_before_its_followers_give_up() -> None:
    net = Net(tick_ms=TICK, sync_limit=SYNC_LIMIT)
    leader_id = net.elect()
    net.cut = {leader_id}
    leader = net.members[leader_id]
    followers = [net.members[m] for m in MEMBERS if m != leader_id]
    ticks = 0
    while leader.replica.serving:
        net.tick()
        ticks += 1
        assert ticks <= SYNC_LIMIT, "the leader kept serving past its lease"
    assert all(f.zab.role is Role.FOLLOWING for f in followers)  # still waiting for it


def test_a_follower_that_hears_nothing_for_the_limit_looks_for_a_new_leader() -> None:
    net = Net(tick_ms=TICK, sync_limit=SYNC_LIMIT)
    leader_id = net.elect()
    follower_id = next(m for m in MEMBERS if m != leader_id)
    follower = net.members[follower_id]
    net.now += SYNC_LIMIT * TICK + 1  # frozen just past the limit
    follower.tick(net.now)
    assert follower.zab.role is Role.LOOKING and not follower.replica.serving


def test_a_paused_leader_never_tells_a_live_session_it_expired() -> None:
    """Its own tracker would expire every session on resume; it steps down first."""
    net = Net(tick_ms=TICK, sync_limit=SYNC_LIMIT)
    leader_id = net.elect()
    leader = net.members[leader_id]
    net.connect(leader_id, conn=1)
    net.now += 60_000  # far past the session's 4 s timeout
    leader.tick(net.now)
    ready = leader.ready(net.now)
    told = [f.error for _, f in ready.client_messages if isinstance(f, Notice | ErrorReply)]
    assert told and not any(isinstance(e, SessionExpiredError) for e in told)
    assert ready.append == [] and ready.early == []  # and no close was proposed


def test_the_leaders_lease_counts_a_quorum_of_voters_heard() -> None:
    leases = Leases(tick_ms=100, sync_limit=5)
    quorum = Quorum({1, 2, 3})
    leases.now_ms = 1_000
    leases.start()
    leases.heard(2)
    leases.now_ms = 1_400  # 400 ms: the leader's lease (a tick short of the follower's)
    assert not leases.leader_lost(1, quorum, quorum.voters)
    leases.now_ms = 1_401
    assert leases.leader_lost(1, quorum, quorum.voters)
    leases.heard(3)  # one voter heard now: with the leader, a quorum again
    assert not leases.leader_lost(1, quorum, quorum.voters)
    assert not leases.leader_silent(3) and leases.leader_silent(2) is False
    leases.now_ms = 1_000 + 501
    assert leases.leader_silent(2)


def test_without_the_ticks_length_there_are_no_time_leases() -> None:
    leases = Leases(tick_ms=0, sync_limit=5)
    quorum = Quorum({1, 2, 3})
    leases.now_ms = 10**9
    assert not leases.leader_lost(1, quorum, quorum.voters) and not leases.leader_silent(2)


def test_a_follower_whose_link_from_the_leader_closes_looks_for_a_new_one_at_once() -> None:
    """A leader that dies closes its sockets: no need to wait out the silence."""
    net = Net(tick_ms=TICK, sync_limit=SYNC_LIMIT)
    leader_id = net.elect()
    follower_id, other_id = (m for m in MEMBERS if m != leader_id)
    follower = net.members[follower_id]
    follower.link_lost(other_id, net.now)  # not its leader: nothing changes
    assert follower.zab.role is Role.FOLLOWING and follower.replica.serving
    follower.link_lost(leader_id, net.now)
    assert follower.zab.role is Role.LOOKING and not follower.replica.serving
    assert follower.zab.links_lost == 1
