"""The ZooKeeper translator in front of a real ServerCore, as the runtime wires them.

Pure and in one thread; the replies are read with the jute codec: what a
ZooKeeper client would see.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

import pytest

from coord.acl import digest_credential
from coord.errors import BadArgumentsError, NoNodeError, NoWatcherError
from coord.framing import NEED_DATA
from coord.messages import PING_XID
from coord.server.core.identity import ConnectionIdentity
from coord.server.core.replica import CoreConfig, ServerCore
from coord.server.zk import jute
from coord.server.zk.jute import (
    ConnectResponse,
    PathWatchRequest,
    Record,
    RequestHeader,
    WatcherEvent,
    ZkOp,
)
from coord.server.zk.translate import CoreRequest, Handshake, ZkConnectionTranslator
from tests.server.zk.jute_client import (
    OPEN_ACL,
    connect_packet,
    parse_reply,
    reply_body,
    split_packets,
)

TICK = 100


class ZkReply(NamedTuple):
    """One reply as a ZooKeeper client reads it: the header's err and the decoded body."""

    err: int
    body: Any
    """The op's response record; None when err is not 0."""


class ZkDriver:
    """A ServerCore with one translator per connection, as the runtime wires them."""

    def __init__(self) -> None:
        self.core = ServerCore(CoreConfig(tick_ms=TICK))
        self.now = 1_000_000
        self.translators: dict[int, ZkConnectionTranslator] = {}
        self.inbox: dict[int, bytearray] = defaultdict(bytearray)
        self.closed: list[int] = []
        self.xids: dict[int, int] = defaultdict(int)

    def run(self) -> None:
        core = self.core
        while core.has_ready():
            ready = core.ready()
            frames: dict[int, list[Any]] = defaultdict(list)
            for conn, frame in ready.messages:
                frames[conn].append(frame)
            for conn, batch in frames.items():
                self.inbox[conn] += self.translators[conn].encode(batch)
            self.closed.extend(ready.closes)
            core.advance(ready, now_ms=self.now)

    def feed(self, conn: int, data: bytes) -> None:
        t = self.translators[conn]
        t.receive_data(data)
        while (event := t.next_event()) is not NEED_DATA:
            if isinstance(event, Handshake):
                identity = ConnectionIdentity(ip=t.client_host)
                self.core.connect(
                    conn, event.request, now_ms=self.now, password=b"p" * 16, identity=identity
                )
            else:
                assert isinstance(event, CoreRequest)
                self.core.request(conn, event.xid, event.op, event.body, now_ms=self.now)
        self.inbox[conn] += t.data_to_send()
        self.run()

    def open(self, conn: int, **fields: Any) -> ConnectResponse | None:
        self.translators[conn] = ZkConnectionTranslator(xid_tag=conn, client_host="127.0.0.1")
        self.feed(conn, connect_packet(**fields))
        packets = self.packets(conn)
        return ConnectResponse.from_bytes(packets[0]) if packets else None

    def packets(self, conn: int) -> list[bytes]:
        data = bytes(self.inbox.pop(conn, b""))
        return split_packets(data)

    def call(self, conn: int, op: int, body: Record | None = None) -> ZkReply:
        """The reply to one request; other packets for `conn` (watch events) are dropped."""
        self.xids[conn] += 1
        xid = self.xids[conn]
        self.feed(conn, jute.encode_request(RequestHeader(xid, op), body))
        replies = [parse_reply(p) for p in self.packets(conn)]
        mine = [(h, r) for h, r in replies if h.xid == xid]
        assert len(mine) == 1, replies
        header, reader = mine[0]
        return ZkReply(header.err, reply_body(op, reader) if header.err == 0 else None)

    def events(self, conn: int) -> list[WatcherEvent]:
        out = []
        for packet in self.packets(conn):
            header, reader = parse_reply(packet)
            assert header.xid == -1, header
            out.append(WatcherEvent.read(reader))
        return out


@pytest.fixture
def zd() -> ZkDriver:
    return ZkDriver()


def _create(path: str, data: bytes = b"", flags: int = 0) -> jute.CreateRequest:
    return jute.CreateRequest(path, data, OPEN_ACL, flags)


def test_session_timeout_is_clamped_to_2_ticks_and_40_seconds(zd: ZkDriver) -> None:
    low = zd.open(1, timeout_ms=10)
    high = zd.open(2, timeout_ms=10_000_000)
    assert low is not None and high is not None
    assert (low.timeout_ms, high.timeout_ms) == (2 * TICK, 40_000)
    assert low.session_id != high.session_id and len(low.password or b"") == 16


def test_exists_no_node_still_sets_the_watch(zd: ZkDriver) -> None:
    zd.open(1)
    zd.open(2)
    assert zd.call(1, ZkOp.EXISTS, PathWatchRequest("/later", True)) == (NoNodeError.code, None)
    err, created = zd.call(2, ZkOp.CREATE, _create("/later"))
    assert err == 0 and created == jute.CreateResponse("/later")
    assert zd.events(1) == [WatcherEvent(1, 3, "/later")]


def test_create_modes_and_the_replies_of_each_create_op(zd: ZkDriver) -> None:
    reply = zd.open(1)
    assert reply is not None
    err, c2 = zd.call(1, ZkOp.CREATE2, _create("/e-", b"x", flags=3))
    assert err == 0 and c2.path == "/e-0000000000" and c2.stat.ephemeral_owner == reply.session_id
    err, container = zd.call(1, ZkOp.CREATE_CONTAINER, _create("/box", flags=4))
    assert err == 0 and container.path == "/box"
    ttl = jute.CreateTTLRequest("/ttl", b"", OPEN_ACL, 5, 60_000)
    assert zd.call(1, ZkOp.CREATE_TTL, ttl).err == 0
    bad_ttl = jute.CreateTTLRequest("/ttl2", b"", OPEN_ACL, 5, 0)
    assert zd.call(1, ZkOp.CREATE_TTL, bad_ttl) == (BadArgumentsError.code, None)
    assert zd.call(1, ZkOp.CREATE, _create("/bad/")) == (BadArgumentsError.code, None)
    assert zd.call(1, ZkOp.CREATE, _create("/no/parent")) == (NoNodeError.code, None)
    assert zd.call(1, ZkOp.CREATE, _create("/x", flags=9)) == (BadArgumentsError.code, None)
    err, eph = zd.call(1, ZkOp.GET_EPHEMERALS, jute.PathRequest("/"))
    assert eph == jute.GetEphemeralsResponse(["/e-0000000000"])
    err, number = zd.call(1, ZkOp.GET_ALL_CHILDREN_NUMBER, jute.PathRequest("/"))
    assert number == jute.GetAllChildrenNumberResponse(3)


def test_multi_and_multi_read_through_the_core(zd: ZkDriver) -> None:
    zd.open(1)
    ok = jute.MultiRequest(
        (
            (ZkOp.CREATE, _create("/m")),
            (ZkOp.CREATE2, _create("/m/a", b"1")),
            (ZkOp.SET_DATA, jute.SetDataRequest("/m/a", b"2", 0)),
            (ZkOp.CHECK, jute.CheckVersionRequest("/m/a", 1)),
            (ZkOp.DELETE, jute.DeleteRequest("/m/a", -1)),
        )
    )
    err, response = zd.call(1, ZkOp.MULTI, ok)
    assert err == 0
    assert [(r.type, r.err) for r in response.results] == [(1, 0), (15, 0), (5, 0), (13, 0), (2, 0)]
    assert response.results[0].body == jute.CreateResponse("/m")
    failing = jute.MultiRequest(
        (
            (ZkOp.CREATE, _create("/n")),
            (ZkOp.DELETE, jute.DeleteRequest("/missing", -1)),
            (ZkOp.CREATE, _create("/o")),
        )
    )
    err, response = zd.call(1, ZkOp.MULTI, failing)
    assert err == 0 and [r.err for r in response.results] == [0, -101, -2]
    assert zd.call(1, ZkOp.EXISTS, PathWatchRequest("/n", False)).err == NoNodeError.code
    reads = jute.MultiRequest(
        (
            (ZkOp.GET_DATA, PathWatchRequest("/m", False)),
            (ZkOp.GET_CHILDREN, PathWatchRequest("/missing", False)),
            (ZkOp.GET_CHILDREN, PathWatchRequest("/", False)),
        )
    )
    err, response = zd.call(1, ZkOp.MULTI_READ, reads)
    assert [(r.type, r.err) for r in response.results] == [(4, 0), (-1, -101), (8, 0)]
    assert response.results[2].body == jute.GetChildrenResponse(["m"])


def test_watch_ops_through_the_core(zd: ZkDriver) -> None:
    zd.open(1)
    zd.open(2)
    zd.call(1, ZkOp.CREATE, _create("/w"))
    check = jute.WatchesRequest("/w", 2)
    assert zd.call(1, ZkOp.CHECK_WATCHES, check) == (NoWatcherError.code, None)
    zd.call(1, ZkOp.GET_DATA, PathWatchRequest("/w", True))
    assert zd.call(1, ZkOp.CHECK_WATCHES, check) == (0, None)
    assert zd.call(1, ZkOp.REMOVE_WATCHES, check) == (0, None)
    assert zd.call(1, ZkOp.CHECK_WATCHES, check) == (NoWatcherError.code, None)
    assert zd.call(1, ZkOp.ADD_WATCH, jute.AddWatchRequest("/w", 1)) == (0, None)
    zd.call(2, ZkOp.CREATE, _create("/w/deep"))
    zd.call(2, ZkOp.SET_DATA, jute.SetDataRequest("/w/deep", b"1", -1))
    assert zd.events(1) == [WatcherEvent(1, 3, "/w/deep"), WatcherEvent(3, 3, "/w/deep")]


def test_set_watches_fires_what_changed_since(zd: ZkDriver) -> None:
    zd.open(1)
    zd.call(1, ZkOp.CREATE, _create("/s"))
    _err, stat = zd.call(1, ZkOp.EXISTS, PathWatchRequest("/s", False))
    zd.call(1, ZkOp.SET_DATA, jute.SetDataRequest("/s", b"1", -1))
    zd.open(2)
    watches = jute.SetWatches(stat.stat.mzxid, ["/s"], ["/gone"], [])
    zd.feed(2, jute.encode_request(RequestHeader(-8, ZkOp.SET_WATCHES), watches))
    (event, event_body), (reply, _) = [parse_reply(p) for p in zd.packets(2)]
    assert (event.xid, reply.xid) == (-1, -8)
    assert WatcherEvent.read(event_body) == WatcherEvent(3, 3, "/s")
    zd.call(1, ZkOp.CREATE, _create("/gone"))
    assert zd.events(2) == [WatcherEvent(1, 3, "/gone")]


def test_acl_ops_answer_open_acl_and_check_versions(zd: ZkDriver) -> None:
    zd.open(1)
    zd.call(1, ZkOp.CREATE, _create("/acl"))
    err, acl = zd.call(1, ZkOp.GET_ACL, jute.PathRequest("/acl"))
    assert err == 0 and acl.acl == OPEN_ACL and acl.stat.aversion == 0
    assert zd.call(1, ZkOp.SET_ACL, jute.SetACLRequest("/acl", OPEN_ACL, 0)).err == 0
    assert zd.call(1, ZkOp.SET_ACL, jute.SetACLRequest("/acl", OPEN_ACL, 3)).err == -103
    assert zd.call(1, ZkOp.SET_ACL, jute.SetACLRequest("/none", OPEN_ACL, -1)).err == -101
    assert zd.call(1, ZkOp.GET_ACL, jute.PathRequest("/none")).err == -101


def test_client_xids_reused_on_a_new_connection_are_not_taken_for_retries(zd: ZkDriver) -> None:
    first = zd.open(1)
    assert first is not None
    assert zd.call(1, ZkOp.CREATE, _create("/one")) == (0, jute.CreateResponse("/one"))
    zd.core.connection_lost(1)
    again = zd.open(2, session_id=first.session_id, password=first.password)
    assert again is not None and again.session_id == first.session_id
    # kazoo starts again at xid 1 on every connection: this is a new create, not a retry.
    assert zd.call(2, ZkOp.CREATE, _create("/two")) == (0, jute.CreateResponse("/two"))
    assert zd.call(2, ZkOp.EXISTS, PathWatchRequest("/two", False)).err == 0


def test_expired_session_answers_timeout_zero_and_newer_zxid_is_refused(zd: ZkDriver) -> None:
    expired = zd.open(1, session_id=12345, password=b"x" * 16)
    assert expired == ConnectResponse(0, 0, 0, bytes(16), False)
    assert 1 in zd.closed
    assert zd.open(2, last_zxid_seen=1 << 40) is None
    assert 2 in zd.closed


def test_close_session_answers_then_closes_and_ephemerals_go(zd: ZkDriver) -> None:
    zd.open(1)
    zd.open(2)
    zd.call(1, ZkOp.CREATE, _create("/eph", flags=1))
    assert zd.call(1, ZkOp.CLOSE_SESSION) == (0, None)
    assert 1 in zd.closed
    assert zd.call(2, ZkOp.EXISTS, PathWatchRequest("/eph", False)).err == NoNodeError.code


def test_ping_is_answered_with_its_reserved_xid(zd: ZkDriver) -> None:
    zd.open(1)
    zd.feed(1, jute.encode_request(RequestHeader(PING_XID, ZkOp.PING)))
    [packet] = zd.packets(1)
    header, _ = parse_reply(packet)
    assert (header.xid, header.err) == (PING_XID, 0)


def _auth(zd: ZkDriver, conn: int, scheme: str, credential: bytes) -> int:
    """The error code of an auth packet (xid -4, as ZooKeeper's clients send it)."""
    packet = jute.encode_request(
        RequestHeader(-4, ZkOp.AUTH), jute.AuthPacket(0, scheme, credential)
    )
    zd.feed(conn, packet)
    (header, _), *_ = [parse_reply(p) for p in zd.packets(conn)]
    assert header.xid == -4, header
    return header.err


def test_digest_auth_is_the_cores_and_who_am_i_reports_it(zd: ZkDriver) -> None:
    zd.open(1)
    assert _auth(zd, 1, "digest", b"alice:secret") == 0
    err, who = zd.call(1, ZkOp.WHO_AM_I)
    # ZooKeeper reports a digest identity by its user name.
    assert err == 0 and who.client_info == [
        jute.ClientInfo("ip", "127.0.0.1"),
        jute.ClientInfo("digest", "alice"),
    ]
    alice_only = [jute.ACL(31, jute.Id("digest", digest_credential(b"alice:secret")))]
    assert zd.call(1, ZkOp.CREATE, jute.CreateRequest("/mine", b"", alice_only, 0)).err == 0
    zd.open(2)
    assert zd.call(2, ZkOp.GET_DATA, PathWatchRequest("/mine", False)).err == -102
    assert _auth(zd, 2, "digest", b"alice:wrong") == 0  # a wrong password is just another id
    assert zd.call(2, ZkOp.GET_DATA, PathWatchRequest("/mine", False)).err == -102


def test_a_malformed_or_unknown_auth_fails_and_closes_as_zookeeper_does(zd: ZkDriver) -> None:
    zd.open(1)
    assert _auth(zd, 1, "kerberos", b"x") == -115
    assert zd.translators[1].finished
    zd.open(2)
    assert _auth(zd, 2, "digest", b"no-colon") == -115
    assert zd.translators[2].finished
