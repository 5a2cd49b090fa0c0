"""Two ServerCores wired by hand, as a leader and a follower: forwarding, refusals, sync.

No ZAB here: the test plays the broadcast by handing the leader's proposals to
both cores' apply_committed in order. What is checked is the follower's side
of the request path: writes forwarded with their session and xid, answered
when the txn is applied locally (in FIFO order with the session's reads), a
refusal coming back as the reply, and sync as a no-op txn through the leader.
"""

from __future__ import annotations

from typing import Any

from coord.errors import BadVersionError, ConnectionLossError, MarshallingError, NodeExistsError
from coord.framing import NEED_DATA, FrameDecoder, encode_frame
from coord.messages import PROTOCOL_VERSION, ConnectRequest, OpCode
from coord.server.core.forwarding import ForwardReply, ForwardRequest, SessionTouches
from coord.server.core.output import (
    ClientOutput,
    Connected,
    ConnectRefused,
    Created,
    ErrorReply,
    NodeData,
    Notice,
    Reply,
)
from coord.server.core.replica import CoreConfig, ServerCore
from coord.server.zab.codec import decode_message, encode_message

NOW = 1_000_000
LEADER, FOLLOWER = 1, 2


def _roundtrip(message: Any) -> Any:
    """Through the peer codec and msgpack, as the runtime sends it."""
    decoder = FrameDecoder()
    decoder.receive_data(encode_frame(encode_message(message)))
    frame = decoder.next_frame()
    assert frame is not NEED_DATA
    return decode_message(frame)


class Pair:
    def __init__(self) -> None:
        self.leader = ServerCore(CoreConfig(tick_ms=100, server_id=LEADER, standalone=False))
        self.follower = ServerCore(CoreConfig(tick_ms=100, server_id=FOLLOWER, standalone=False))
        self.leader.become_leader(epoch=1, now_ms=NOW)
        self.follower.follow(LEADER)
        self.frames: dict[int, list[ClientOutput]] = {}
        self.forwarded: list[Any] = []

    def pump(self) -> None:
        """Move everything until quiet: peer messages, proposals (committed at once), frames."""
        while self.leader.has_ready() or self.follower.has_ready():
            for core in (self.follower, self.leader):
                ready = core.ready()
                for conn, frame in ready.messages:
                    self.frames.setdefault(conn, []).append(frame)
                for to, message in ready.peer_messages:
                    message = _roundtrip(message)
                    self.forwarded.append(message)
                    target = self.leader if to == LEADER else self.follower
                    if isinstance(message, ForwardRequest):
                        target.forwarded(message, now_ms=NOW)
                    elif isinstance(message, ForwardReply):
                        target.forward_refused(message)
                    elif isinstance(message, SessionTouches):
                        target.touch_sessions(message, NOW)
                if ready.txns:
                    for member in (self.leader, self.follower):
                        member.apply_committed(ready.txns, now_ms=NOW)

    def connect(self, conn: int) -> Connected:
        request = ConnectRequest(protocol_version=PROTOCOL_VERSION, timeout_ms=1000)
        self.follower.connect(conn, request, now_ms=NOW, password=b"p" * 16)
        self.pump()
        hello = self.frames[conn].pop(0)
        assert isinstance(hello, Connected), hello
        return hello

    def replies(self, conn: int) -> list[Reply | ErrorReply]:
        """The replies `conn` got (and nothing else: no event or notice is expected here)."""
        frames = self.frames.get(conn, [])
        assert all(isinstance(f, Reply | ErrorReply) for f in frames), frames
        return frames  # type: ignore[return-value]

    def send(self, conn: int, xid: int, op: int, body: dict[str, Any]) -> None:
        self.follower.request(conn, xid, op, body, now_ms=NOW)


def test_a_follower_forwards_session_creation_and_writes_and_answers_in_order():
    pair = Pair()
    hello = pair.connect(7)
    assert hello.session_id >> 56 == FOLLOWER
    pair.send(7, 1, OpCode.CREATE, {"path": "/a", "data": b"1"})
    pair.send(7, 2, OpCode.GET_DATA, {"path": "/a"})  # must see the create before it
    pair.send(7, 3, OpCode.SET_DATA, {"path": "/a", "data": b"2", "version": 0})
    pair.send(7, 4, OpCode.GET_DATA, {"path": "/a"})
    pair.pump()
    replies = pair.replies(7)
    assert [r.xid for r in replies] == [1, 2, 3, 4]
    created, first_read, _, second_read = (_result(r) for r in replies)
    assert isinstance(created, Created) and created.path == "/a"
    assert isinstance(first_read, NodeData) and first_read.data == b"1"
    assert isinstance(second_read, NodeData) and second_read.data == b"2"
    assert any(isinstance(m, ForwardRequest) and m.xid == 3 for m in pair.forwarded)
    # The leader's tree and the follower's agree.
    assert pair.leader.tree.get("/a").data == pair.follower.tree.get("/a").data == b"2"


def test_a_refused_forwarded_write_comes_back_as_its_reply():
    pair = Pair()
    pair.connect(7)
    pair.send(7, 1, OpCode.CREATE, {"path": "/a", "data": b""})
    pair.send(7, 2, OpCode.CREATE, {"path": "/a", "data": b""})
    pair.send(7, 3, OpCode.SET_DATA, {"path": "/a", "data": b"x", "version": 5})
    pair.pump()
    replies = pair.replies(7)
    assert [r.xid for r in replies] == [1, 2, 3]
    assert isinstance(_error(replies[1]), NodeExistsError)
    refused = _error(replies[2])
    assert isinstance(refused, BadVersionError) and refused.expected == 5
    assert any(isinstance(m, ForwardReply) for m in pair.forwarded)


def test_sync_goes_through_the_leader_as_a_txn():
    pair = Pair()
    pair.connect(7)
    pair.send(7, 1, OpCode.SYNC, {"path": "/"})
    pair.pump()
    (reply,) = pair.replies(7)
    assert reply.xid == 1 and _result(reply) == "/"
    assert any(isinstance(m, ForwardRequest) and m.op == OpCode.SYNC for m in pair.forwarded)
    assert reply.zxid == pair.follower.tree.last_zxid  # answered once the no-op txn applied


def test_follower_touches_renew_leases_at_the_leader():
    pair = Pair()
    hello = pair.connect(7)
    pair.send(7, 1, OpCode.EXISTS, {"path": "/"})
    touches = pair.follower.take_touches()
    assert touches is not None and hello.session_id in touches.session_ids
    assert pair.follower.take_touches() is None  # reported once
    session = pair.leader.sessions.get(hello.session_id)
    assert session is not None
    before = session.deadline_ms
    pair.leader.touch_sessions(touches, NOW + 5_000)
    assert session.deadline_ms > before


def test_losing_the_leader_drops_the_clients():
    pair = Pair()
    pair.connect(7)
    pair.follower.stop_serving()
    ready = pair.follower.ready()
    assert 7 in ready.closes
    refused = ServerCore(CoreConfig(tick_ms=100, server_id=3, standalone=False))
    refused.connect(
        9,
        ConnectRequest(protocol_version=PROTOCOL_VERSION, timeout_ms=1000),
        now_ms=NOW,
        password=b"p" * 16,
    )
    response = refused.ready().messages[0][1]
    assert isinstance(response, ConnectRefused) and "not serving" in str(response.error)


def _resume(pair: Pair, conn: int, hello: Connected) -> None:
    request = ConnectRequest(
        protocol_version=PROTOCOL_VERSION,
        timeout_ms=1000,
        session_id=hello.session_id,
        password=hello.password,
    )
    pair.follower.connect(conn, request, now_ms=NOW, password=b"x" * 16)
    pair.pump()
    assert isinstance(pair.frames[conn].pop(0), Connected)


def _result(reply: ClientOutput) -> Any:
    assert isinstance(reply, Reply), reply
    return reply.result


def _error(reply: ClientOutput) -> Exception:
    assert isinstance(reply, ErrorReply), reply
    return reply.error


def test_a_retried_write_is_applied_once_and_answered_with_its_first_result():
    pair = Pair()
    hello = pair.connect(7)
    pair.send(7, 1, OpCode.CREATE, {"path": "/q-", "data": b"", "mode": 2})
    pair.pump()
    first = _result(pair.frames[7].pop(0))
    assert first.path == "/q-0000000000"
    txns_before = pair.leader.tree.last_zxid
    # The connection drops; the client resumes on a new one and resends xid 1.
    pair.follower.connection_lost(7)
    _resume(pair, 8, hello)
    pair.send(8, 1, OpCode.CREATE, {"path": "/q-", "data": b"", "mode": 2})
    pair.pump()
    (retry,) = pair.replies(8)
    assert retry.xid == 1
    # The original result: the same name (not a second node) and the same stat.
    assert _result(retry) == first
    assert pair.leader.tree.last_zxid == txns_before  # nothing new was applied
    assert pair.follower.tree.children_of("/") == ["q-0000000000"]


def test_a_retry_of_a_write_still_in_flight_joins_it():
    """Standalone: the write is prepared but not yet durable when the connection drops."""
    core = ServerCore(CoreConfig(tick_ms=100))
    request = ConnectRequest(protocol_version=PROTOCOL_VERSION, timeout_ms=1000)
    core.connect(1, request, now_ms=NOW, password=b"p" * 16)
    ready = core.ready()
    core.advance(ready, now_ms=NOW)
    hello = core.ready().messages[0][1]
    assert isinstance(hello, Connected)
    core.request(1, 5, OpCode.CREATE, {"path": "/once", "data": b""}, now_ms=NOW)
    in_flight = core.ready()
    assert len(in_flight.txns) == 1
    core.connection_lost(1)
    resume = ConnectRequest(
        protocol_version=PROTOCOL_VERSION,
        timeout_ms=1000,
        session_id=hello.session_id,
        password=hello.password,
    )
    core.connect(2, resume, now_ms=NOW, password=b"x" * 16)
    core.request(2, 5, OpCode.CREATE, {"path": "/once", "data": b""}, now_ms=NOW)
    assert core.ready().txns == []  # joined, not proposed again
    core.advance(in_flight, now_ms=NOW)
    replies = [frame for conn, frame in core.ready().messages if conn == 2]
    assert replies[-1].xid == 5 and _result(replies[-1]).path == "/once"


# -- found by the whole-member simulator --------------------------------------------------


def test_a_retry_answered_from_the_table_never_carries_a_zxid_older_than_the_connection_saw():
    pair = Pair()
    hello = pair.connect(7)
    pair.send(7, 1, OpCode.CREATE, {"path": "/a", "data": b""})
    pair.pump()
    first_zxid = pair.replies(7).pop(0).zxid
    pair.connect(9)  # another session's writes move the tree on
    for xid in (1, 2, 3):
        pair.send(9, xid, OpCode.CREATE, {"path": f"/b{xid}", "data": b""})
    pair.pump()
    pair.follower.connection_lost(7)
    _resume(pair, 8, hello)  # the connect response says the tree's zxid, beyond first_zxid
    pair.send(8, 1, OpCode.CREATE, {"path": "/a", "data": b""})
    pair.pump()
    (retry,) = pair.replies(8)
    assert isinstance(retry, Reply) and retry.xid == 1
    assert retry.zxid == pair.follower.tree.last_zxid > first_zxid


def test_a_resent_sync_is_not_answered_by_the_marker_of_the_first():
    """The first sync's marker may be ordered before writes acknowledged since: a read
    after the resent sync must wait for a marker the leader ordered after the resend."""
    pair = Pair()
    hello = pair.connect(7)
    pair.send(7, 5, OpCode.SYNC, {"path": "/"})
    ready = pair.follower.ready()
    ((_, first),) = ready.peer_messages
    assert isinstance(first, ForwardRequest) and first.op == OpCode.SYNC
    assert first.xid != 5  # the follower's own xid for this marker
    # The leader orders the first sync's marker; it reaches the follower late.
    pair.leader.forwarded(_roundtrip(first), now_ms=NOW)
    old_marker = pair.leader.ready().txns
    pair.follower.connection_lost(7)
    _resume(pair, 8, hello)
    pair.send(8, 5, OpCode.SYNC, {"path": "/"})  # resent with the same client xid
    pair.follower.apply_committed(old_marker, now_ms=NOW)
    ready = pair.follower.ready()
    assert not [frame for conn, frame in ready.messages if conn == 8]  # still waiting
    ((_, resent),) = ready.peer_messages
    assert resent.xid not in (5, first.xid)
    pair.leader.forwarded(_roundtrip(resent), now_ms=NOW)
    pair.pump()  # the resent sync's own marker is ordered and applied
    assert [reply.xid for reply in pair.replies(8)] == [5]


def test_a_forwarded_write_whose_predecessor_was_lost_is_refused_and_its_connection_closed():
    pair = Pair()
    pair.connect(7)
    pair.send(7, 1, OpCode.CREATE, {"path": "/first", "data": b""})
    pair.send(7, 2, OpCode.CREATE, {"path": "/second", "data": b""})
    ready = pair.follower.ready()
    first, second = (m for _, m in ready.peer_messages)
    assert (first.prev_xid, second.prev_xid) == (0, 1)
    pair.leader.forwarded(_roundtrip(second), now_ms=NOW)  # the first was lost on the link
    ((_, refusal),) = pair.leader.ready().peer_messages
    assert isinstance(refusal, ForwardReply) and refusal.err == ConnectionLossError.code
    assert pair.leader.tree.get("/second") is None
    pair.follower.forward_refused(_roundtrip(refusal))
    out = pair.follower.ready()
    assert 7 in out.closes
    (notice,) = [f for c, f in out.messages if c == 7]
    assert isinstance(notice, Notice) and isinstance(notice.error, ConnectionLossError)


def test_a_forwarded_write_the_leader_never_answers_closes_its_connection_in_time():
    """Lost on the link with nothing after it: without a deadline the write and every read
    queued behind it would wait for good, while pings kept the session alive."""
    pair = Pair()
    pair.connect(7)
    pair.send(7, 1, OpCode.CREATE, {"path": "/lost", "data": b""})
    pair.send(7, 2, OpCode.GET_DATA, {"path": "/"})
    pair.follower.ready()  # the ForwardRequest is lost: the leader never sees it
    limit = pair.follower.config.forward_timeout_ms
    pair.follower.tick(NOW + limit - 1)
    assert not pair.follower.ready().closes
    pair.follower.tick(NOW + limit)
    out = pair.follower.ready()
    assert out.closes == [7]
    ((_, notice),) = out.messages
    assert isinstance(notice, Notice) and isinstance(notice.error, ConnectionLossError)


def test_a_follower_forwards_the_body_it_validated_as_the_client_sent_it():
    """No dump of the parsed model: the leader gets the client's own body, and refuses it
    just as a client's if it does not validate (peer bytes are hostile too)."""
    pair = Pair()
    pair.connect(7)
    body = {"path": "/a", "data": b"1", "mode": 0}
    pair.send(7, 1, OpCode.CREATE, body)
    ((_, forward),) = pair.follower.ready().peer_messages
    assert isinstance(forward, ForwardRequest) and forward.body is body
    forged = ForwardRequest(FOLLOWER, forward.session_id, 2, OpCode.CREATE, {"path": 5}, (), 0)
    pair.leader.forwarded(forged, now_ms=NOW)
    ((_, refusal),) = pair.leader.ready().peer_messages
    assert isinstance(refusal, ForwardReply) and refusal.err == MarshallingError.code
    assert pair.leader.tree.get("/a") is None


# -- a refusal waits for the pending txns it was decided against ---------------------------
#
# The leader refuses a write against its pending state: txns it has proposed but
# not yet committed. Answered at once, a refusal could tell of a state that never
# was: a create refused because another client's create of the same node is
# pending, and that create lost with the leader's crash, leaves its client told
# NodeExists of a node that never existed (the simulator's failed-write check
# found this). So a refusal is held until those txns are applied.


def test_a_leaders_own_client_is_refused_only_once_the_txn_it_depends_on_is_applied():
    leader = ServerCore(CoreConfig(tick_ms=100, server_id=LEADER, standalone=False))
    leader.become_leader(epoch=1, now_ms=NOW)
    request = ConnectRequest(protocol_version=PROTOCOL_VERSION, timeout_ms=1000)
    for conn in (5, 6):
        leader.connect(conn, request, now_ms=NOW, password=b"p" * 16)
    leader.apply_committed(leader.ready().txns, now_ms=NOW)  # the two sessions
    leader.ready()  # (their connect responses)
    leader.request(5, 1, OpCode.CREATE, {"path": "/a", "data": b""}, now_ms=NOW)
    leader.request(6, 1, OpCode.CREATE, {"path": "/a", "data": b""}, now_ms=NOW)
    pending = leader.ready()
    assert [conn for conn, _ in pending.messages] == []  # conn 6's NodeExists waits
    assert len(pending.txns) == 1
    leader.apply_committed(pending.txns, now_ms=NOW)
    answered = dict(leader.ready().messages)
    assert isinstance(_result(answered[5]), Created)
    assert isinstance(_error(answered[6]), NodeExistsError)
    assert answered[6].zxid == pending.txns[0].zxid  # it shows the state it was judged by


def test_a_forwarded_write_is_refused_only_once_the_txn_it_depends_on_is_applied():
    pair = Pair()
    pair.connect(7)
    pair.connect(8)
    pair.send(7, 1, OpCode.CREATE, {"path": "/a", "data": b""})
    pair.send(8, 1, OpCode.CREATE, {"path": "/a", "data": b""})
    for _, message in pair.follower.ready().peer_messages:
        message = _roundtrip(message)
        if isinstance(message, ForwardRequest):
            pair.leader.forwarded(message, now_ms=NOW)
    pending = pair.leader.ready()
    assert not [m for _, m in pending.peer_messages if isinstance(m, ForwardReply)]
    assert len(pending.txns) == 1
    for member in (pair.leader, pair.follower):
        member.apply_committed(pending.txns, now_ms=NOW)
    refusals = [m for _, m in pair.leader.ready().peer_messages if isinstance(m, ForwardReply)]
    assert [(r.xid, r.err) for r in refusals] == [(1, NodeExistsError.code)]
    pair.follower.forward_refused(_roundtrip(refusals[0]))
    pair.pump()
    assert isinstance(_result(pair.replies(7)[0]), Created)
    assert isinstance(_error(pair.replies(8)[0]), NodeExistsError)
