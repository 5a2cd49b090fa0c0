"""MemberCore, driven by hand: three members, no trio, no disk, every Ready carried out at once.

`Net` carries out each MemberReady in its stated order: client frames into
per-connection inboxes, peer messages through the real peer codec (encoded,
then checked and decoded as a receiving member would) into a queue that
`deliver` empties when the test says, a snapshot install by loading the
snapshot's bytes. Time moves only when `tick` is called.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from coord.framing import NEED_DATA, FrameDecoder, encode_frames
from coord.messages import PROTOCOL_VERSION, ConnectRequest, OpCode
from coord.server.core.forwarding import ForwardRequest, SessionTouches
from coord.server.core.member import INFO, WARNING, MemberCore, MemberReady
from coord.server.core.output import ClientOutput, Connected, Created, Reply
from coord.server.core.replica import CoreConfig, ServerCore
from coord.server.core.tree import DataTree
from coord.server.storage.snapshot import load_snapshot
from coord.server.zab.codec import WireMessage, decode_message, encode_message
from coord.server.zab.messages import LeaderInfo, Proposal, Role, Sync, SyncMode
from coord.server.zab.peer import MAX_EPOCH, PersistentState, ZabConfig, ZabPeer

TICK = 100


MEMBERS = (1, 2, 3)


def make_member(my_id: int, **zab: Any) -> MemberCore:
    replica = ServerCore(CoreConfig(tick_ms=TICK, server_id=my_id, standalone=False))
    peer = ZabPeer(ZabConfig(my_id, frozenset(MEMBERS), **zab), PersistentState(), [])
    return MemberCore(replica, peer)


def frames_of(data: list[Any]) -> list[Any]:
    decoder = FrameDecoder()
    decoder.receive_data(encode_frames(data))
    out = []
    while (frame := decoder.next_frame()) is not NEED_DATA:
        out.append(frame)
    return out


class Net:
    def __init__(self, **zab: Any) -> None:
        self.members = {i: make_member(i, **zab) for i in MEMBERS}
        self.now = 1_000_000
        self.queue: list[tuple[int, int, WireMessage]] = []
        self.cut: set[int] = set()
        """Members whose messages, both ways, are dropped."""
        self.inbox: dict[tuple[int, int], list[ClientOutput]] = defaultdict(list)
        self.readies: dict[int, list[MemberReady]] = defaultdict(list)

    def carry_out(self, member_id: int) -> None:
        member = self.members[member_id]
        while member.has_ready():
            ready = member.ready(self.now)
            self.readies[member_id].append(ready)
            for conn, output in ready.client_messages:
                self.inbox[(member_id, conn)].append(output)
            for target, message in (*ready.peer_now, *ready.early, *ready.late):
                self.send(member_id, target, message)
            tree: DataTree | None = None
            if ready.install_snapshot is not None:
                assert isinstance(ready.install_snapshot.snapshot, bytes)
                tree = load_snapshot(ready.install_snapshot.snapshot).tree
            member.advance(ready, self.now, tree)

    def send(self, sender: int, target: int, message: WireMessage) -> None:
        if sender in self.cut or target in self.cut:
            return
        (value,) = frames_of([encode_message(message)])  # through msgpack, as on a link
        self.queue.append((sender, target, decode_message(value, MEMBERS)))

    def settle(self, rounds: int = 50) -> None:
        """Carry out every Ready and deliver every message until nothing moves."""
        for _ in range(rounds):
            for member_id in MEMBERS:
                self.carry_out(member_id)
            if not self.queue:
                return
            queue, self.queue = self.queue, []
            for sender, target, message in queue:
                self.members[target].receive(sender, message, self.now)
        raise AssertionError("the members never settled")

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            self.now += TICK
            for member in self.members.values():
                member.tick(self.now)
            self.settle()

    def elect(self) -> int:
        for member in self.members.values():
            member.zab.start_election()
        self.tick(10)
        leaders = [i for i, m in self.members.items() if m.replica.sequencer is not None]
        assert len(leaders) == 1
        return leaders[0]

    def connect(self, member_id: int, conn: int) -> int:
        member = self.members[member_id]
        member.replica.connect(
            conn,
            ConnectRequest(
                protocol_version=PROTOCOL_VERSION,
                last_zxid_seen=0,
                timeout_ms=4_000,
                session_id=0,
                password=b"",
            ),
            now_ms=self.now,
            password=b"p" * 16,
        )
        self.settle()
        (reply,) = self.inbox.pop((member_id, conn))
        assert isinstance(reply, Connected), reply
        return reply.session_id

    def call(self, member_id: int, conn: int, xid: int, op: OpCode, body: dict[str, Any]) -> Reply:
        self.members[member_id].replica.request(conn, xid, op, body, now_ms=self.now)
        self.settle()
        (reply,) = self.inbox.pop((member_id, conn))
        assert isinstance(reply, Reply) and reply.xid == xid, reply
        return reply


def test_three_member_cores_elect_one_leader_and_line_up_their_replica_cores() -> None:
    net = Net()
    leader = net.elect()
    for member_id, member in net.members.items():
        last = member.role_changes[-1]
        assert last.serving and last.leader_id == leader
        assert last.role is (Role.LEADING if member_id == leader else Role.FOLLOWING)
        assert member.replica.leader_id == leader


def test_a_write_on_a_follower_is_forwarded_committed_and_applied_on_every_member() -> None:
    net = Net()
    leader = net.elect()
    follower = next(m for m in MEMBERS if m != leader)
    net.connect(follower, conn=7)
    reply = net.call(follower, 7, 1, OpCode.CREATE, {"path": "/a", "data": b"x"})
    assert isinstance(reply.result, Created)
    assert (reply.result.path, reply.result.stat.czxid) == ("/a", reply.zxid)
    forwarded = [
        message
        for ready in net.readies[follower]
        for target, message in ready.peer_now
        if target == leader and isinstance(message, ForwardRequest) and message.op == OpCode.CREATE
    ]
    assert [(f.xid, f.body["path"]) for f in forwarded] == [(1, "/a")]
    for member in net.members.values():
        assert member.replica.tree.get("/a").data == b"x"
        assert member.replica.tree.last_zxid == reply.zxid


def test_a_leaders_proposals_go_out_before_its_own_append_and_acks_only_after() -> None:
    net = Net()
    leader = net.elect()
    net.connect(leader, conn=1)
    net.members[leader].replica.request(1, 1, OpCode.CREATE, {"path": "/p"}, now_ms=net.now)
    ready = net.members[leader].ready(net.now)
    assert [type(m) for _, m in ready.early] == [Proposal, Proposal]
    assert [t.zxid for t in ready.append] == [ready.early[0][1].txns[-1].zxid]
    assert not any(isinstance(m, Proposal) for _, m in ready.late)


def test_writes_prepared_under_a_leadership_that_ended_are_dropped_and_clients_closed() -> None:
    net = Net()
    leader = net.elect()
    net.connect(leader, conn=1)
    member = net.members[leader]
    member.replica.request(1, 1, OpCode.CREATE, {"path": "/late"}, now_ms=net.now)
    member.zab.start_election()  # leadership ends between prepare and propose
    ready = member.ready(net.now)
    assert ready.append == [] and ready.early == []
    assert any(level == INFO and "is not serving" in text for level, text in ready.log)
    assert [closed for closed in ready.client_closes] == [1]


def test_an_epoch_leap_is_refused_and_said_in_the_log() -> None:
    net = Net()
    leader = net.elect()
    follower = net.members[next(m for m in MEMBERS if m != leader)]
    follower.receive(leader, LeaderInfo(MAX_EPOCH), net.now)
    ready = follower.ready(net.now)
    assert ready.epochs is None
    assert any(level == WARNING and "LeaderInfo" in line for level, line in ready.log)


def test_a_follower_reports_its_sessions_to_the_leader_every_tick() -> None:
    net = Net()
    leader = net.elect()
    follower = next(m for m in MEMBERS if m != leader)
    session = net.connect(follower, conn=3)
    net.call(follower, 3, 1, OpCode.EXISTS, {"path": "/"})
    net.tick()
    touches = [
        message
        for ready in net.readies[follower]
        for target, message in ready.peer_now
        if target == leader and isinstance(message, SessionTouches)
    ]
    assert session in touches[-1].session_ids


def test_a_learner_far_behind_gets_a_snap_sync_carrying_the_leaders_tree() -> None:
    net = Net(max_history=4)
    leader = net.elect()
    behind = next(m for m in MEMBERS if m != leader)
    net.cut.add(behind)
    net.tick(2 * 5 + 2)  # it stops hearing its leader and goes looking
    net.connect(leader, conn=1)
    for i in range(10):
        net.call(leader, 1, i + 1, OpCode.CREATE, {"path": f"/n{i}", "data": bytes([i])})
    net.cut.clear()
    net.tick(20)
    snaps = [
        message
        for ready in net.readies[leader]
        for target, message in ready.late
        if target == behind and isinstance(message, Sync) and message.mode is SyncMode.SNAP
    ]
    assert snaps and isinstance(snaps[-1].snapshot, bytes)
    tree = net.members[behind].replica.tree
    assert [tree.get(f"/n{i}").data for i in range(10)] == [bytes([i]) for i in range(10)]
    assert net.members[behind].role_changes[-1].leader_id == leader
