"""ZkConnectionTranslator: jute in, native calls out; native frames in, jute out.

The first half drives the translator alone (what it asks the core, what bytes
it writes for a given native frame). The second half puts it in front of a
real ServerCore, pure and in one thread, as the runtime does, and reads the
replies with the jute codec: what a ZooKeeper client would see.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from coord.errors import (
    BadArgumentsError,
    InvalidPathError,
    NoNodeError,
    NoWatcherError,
    RolledBackError,
    SessionExpiredError,
)
from coord.framing import NEED_DATA
from coord.messages import PING_XID, PROTOCOL_VERSION, OpCode, Stat
from server.core import CoreConfig, ServerCore
from server.zk import jute
from server.zk.jute import (
    ConnectRequest,
    ConnectResponse,
    KeeperState,
    PathWatchRequest,
    Record,
    ReplyHeader,
    RequestHeader,
    WatcherEvent,
    ZkOp,
)
from server.zk.translate import (
    CoreRequest,
    FourLetterWord,
    Handshake,
    ZkConnectionTranslator,
    digest_id,
    zk_error_code,
)
from tests.server.zk.jute_client import OPEN_ACL, parse_reply, reply_body, split_packets

STAT = Stat(1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11)


def _connect_packet(**fields: Any) -> bytes:
    values: dict[str, Any] = {
        "protocol_version": 0,
        "last_zxid_seen": 0,
        "timeout_ms": 4000,
        "session_id": 0,
        "password": bytes(16),
        "read_only": False,
    }
    values.update(fields)
    return jute.frame(ConnectRequest(**values).to_bytes())


def _opened(tag: int = 1) -> ZkConnectionTranslator:
    t = ZkConnectionTranslator(xid_tag=tag, client_host="10.1.2.3")
    t.receive_data(_connect_packet())
    assert isinstance(t.next_event(), Handshake)
    return t


def _request(t: ZkConnectionTranslator, op: int, body: Record | None = None, xid: int = 1) -> Any:
    t.receive_data(jute.encode_request(RequestHeader(xid, op), body))
    return t.next_event()


# -- the translator alone ------------------------------------------------------------


def test_handshake_becomes_a_native_connect() -> None:
    t = ZkConnectionTranslator(xid_tag=1)
    packet = _connect_packet(last_zxid_seen=0x100000007, timeout_ms=9000, read_only=True)
    t.receive_data(packet[:10])
    assert t.next_event() is NEED_DATA
    t.receive_data(packet[10:])
    event = t.next_event()
    assert isinstance(event, Handshake) and event.read_only
    assert event.request.protocol_version == PROTOCOL_VERSION
    assert (event.request.last_zxid_seen, event.request.timeout_ms) == (0x100000007, 9000)
    assert event.request.session_id == 0


def test_four_letter_word_is_a_command_not_a_packet() -> None:
    t = ZkConnectionTranslator(xid_tag=1)
    t.receive_data(b"ru")
    assert t.next_event() is NEED_DATA
    t.receive_data(b"ok")
    assert t.next_event() == FourLetterWord("ruok")
    assert t.next_event() is NEED_DATA


OPEN = list(jute.OPEN_ACL_UNSAFE)


@pytest.mark.parametrize(
    ("op", "body", "native_op", "native_body"),
    [
        (
            ZkOp.CREATE,
            jute.CreateRequest("/a", b"d", OPEN, 3),
            OpCode.CREATE,
            {"path": "/a", "data": b"d", "mode": 3, "ttl_ms": 0},
        ),
        (
            ZkOp.CREATE_CONTAINER,
            jute.CreateRequest("/c", None, OPEN, 4),
            OpCode.CREATE,
            {"path": "/c", "data": b"", "mode": 4, "ttl_ms": 0},
        ),
        (
            ZkOp.CREATE_TTL,
            jute.CreateTTLRequest("/t", b"", OPEN, 5, 500),
            OpCode.CREATE,
            {"path": "/t", "data": b"", "mode": 5, "ttl_ms": 500},
        ),
        (ZkOp.DELETE, jute.DeleteRequest("/a", 2), OpCode.DELETE, {"path": "/a", "version": 2}),
        (
            ZkOp.EXISTS,
            PathWatchRequest("/a", True),
            OpCode.EXISTS,
            {"path": "/a", "watch": True},
        ),
        (
            ZkOp.GET_CHILDREN2,
            PathWatchRequest("/a", False),
            OpCode.GET_CHILDREN,
            {"path": "/a", "watch": False, "include_stat": True},
        ),
        (
            ZkOp.SET_DATA,
            jute.SetDataRequest("/a", b"x", -1),
            OpCode.SET_DATA,
            {"path": "/a", "data": b"x", "version": -1},
        ),
        (ZkOp.SYNC, jute.PathRequest("/a"), OpCode.SYNC, {"path": "/a"}),
        (ZkOp.GET_ACL, jute.PathRequest("/a"), OpCode.GET_ACL, {"path": "/a"}),
        (
            ZkOp.SET_ACL,
            jute.SetACLRequest("/a", OPEN, 0),
            OpCode.SET_ACL,
            {"path": "/a", "acl": [[31, "world", "anyone"]], "version": 0},
        ),
        (ZkOp.GET_EPHEMERALS, jute.PathRequest(""), OpCode.GET_EPHEMERALS, {"prefix": "/"}),
        (
            ZkOp.GET_ALL_CHILDREN_NUMBER,
            jute.PathRequest("/a"),
            OpCode.GET_ALL_CHILDREN_NUMBER,
            {"path": "/a"},
        ),
        (
            ZkOp.CHECK_WATCHES,
            jute.WatchesRequest("/a", 2),
            OpCode.CHECK_WATCHES,
            {"path": "/a", "watcher_type": 2},
        ),
        (
            ZkOp.ADD_WATCH,
            jute.AddWatchRequest("/a", 1),
            OpCode.ADD_WATCH,
            {"path": "/a", "mode": 1},
        ),
        (
            ZkOp.SET_WATCHES2,
            jute.SetWatches2(7, ["/d"], None, ["/c"], ["/p"], []),
            OpCode.SET_WATCHES,
            {
                "relative_zxid": 7,
                "data": ["/d"],
                "exist": [],
                "child": ["/c"],
                "persistent": ["/p"],
                "persistent_recursive": [],
            },
        ),
        (
            ZkOp.MULTI,
            jute.MultiRequest(
                (
                    (ZkOp.CREATE2, jute.CreateRequest("/m", b"", OPEN, 0)),
                    (ZkOp.CHECK, jute.CheckVersionRequest("/x", 1)),
                    (ZkOp.DELETE, jute.DeleteRequest("/y", -1)),
                )
            ),
            OpCode.MULTI,
            {
                "ops": [
                    [OpCode.CREATE, {"path": "/m", "data": b"", "mode": 0, "ttl_ms": 0}],
                    [OpCode.CHECK, {"path": "/x", "version": 1}],
                    [OpCode.DELETE, {"path": "/y", "version": -1}],
                ]
            },
        ),
        (ZkOp.CLOSE_SESSION, None, OpCode.CLOSE_SESSION, {}),
    ],
    ids=lambda v: v.name if isinstance(v, ZkOp) else "",
)
def test_requests_become_native_calls(
    op: int, body: Record | None, native_op: int, native_body: dict[str, Any]
) -> None:
    event = _request(_opened(), op, body)
    assert isinstance(event, CoreRequest)
    assert (event.op, event.body) == (native_op, native_body)
    assert event.xid < -(1 << 32)


def test_native_xids_are_negative_unique_and_not_the_clients() -> None:
    one, two = _opened(tag=1), _opened(tag=2)
    xids = [_request(one, ZkOp.SYNC, jute.PathRequest("/"), xid=1).xid for _ in range(3)]
    xids.append(_request(two, ZkOp.SYNC, jute.PathRequest("/"), xid=1).xid)
    assert len(set(xids)) == 4 and all(x < -(1 << 32) for x in xids)
    ping = _request(one, ZkOp.PING, xid=PING_XID)
    assert ping == CoreRequest(PING_XID, OpCode.PING, {})


def test_replies_are_encoded_for_the_op_that_was_asked() -> None:
    t = _opened()
    asked = [
        (ZkOp.CREATE, jute.CreateRequest("/a", b"", OPEN, 0), ["/a", STAT]),
        (ZkOp.CREATE2, jute.CreateRequest("/b", b"", OPEN, 0), ["/b", STAT]),
        (ZkOp.GET_CHILDREN, PathWatchRequest("/", False), [["a", "b"], None]),
        (ZkOp.GET_CHILDREN2, PathWatchRequest("/", False), [["a", "b"], list(STAT)]),
        (ZkOp.GET_DATA, PathWatchRequest("/a", False), [b"v", STAT]),
        (ZkOp.EXISTS, PathWatchRequest("/a", False), STAT),
    ]
    frames = []
    for index, (op, body, result) in enumerate(asked, start=1):
        event = _request(t, op, body, xid=index)
        frames.append([event.xid, 0x100000009, 0, result])
    replies = [parse_reply(p) for p in split_packets(t.encode(frames))]
    assert [h for h, _ in replies] == [ReplyHeader(i, 0x100000009, 0) for i in range(1, 7)]
    bodies = [reply_body(op, r) for (op, _, _), (_, r) in zip(asked, replies, strict=True)]
    assert bodies == [
        jute.CreateResponse("/a"),
        jute.Create2Response("/b", STAT),
        jute.GetChildrenResponse(["a", "b"]),
        jute.GetChildren2Response(["a", "b"], STAT),
        jute.GetDataResponse(b"v", STAT),
        jute.StatResponse(STAT),
    ]


def test_exists_on_a_missing_node_is_no_node() -> None:
    t = _opened()
    event = _request(t, ZkOp.EXISTS, PathWatchRequest("/nope", True), xid=4)
    [packet] = split_packets(t.encode([[event.xid, 9, 0, None]]))
    assert parse_reply(packet)[0] == ReplyHeader(4, 9, NoNodeError.code)


@pytest.mark.parametrize(
    ("native", "zk"),
    [
        (InvalidPathError.code, BadArgumentsError.code),
        (-202, -8),
        (-205, -8),
        (RolledBackError.code, -2),
        (-204, SessionExpiredError.code),
        (-299, -1),
        (-110, -110),
        (-101, -101),
        (-6, -6),
    ],
)
def test_error_codes_are_zookeepers(native: int, zk: int) -> None:
    assert zk_error_code(native) == zk
    t = _opened()
    event = _request(t, ZkOp.SET_DATA, jute.SetDataRequest("/x", b"", -1), xid=3)
    [packet] = split_packets(t.encode([[event.xid, 5, native, {"message": "m"}]]))
    header, reader = parse_reply(packet)
    assert header == ReplyHeader(3, 5, zk) and reader.remaining == 0


@pytest.mark.parametrize(
    ("op", "body", "err"),
    [
        (ZkOp.EXISTS, PathWatchRequest("/a/", True), -101),
        (ZkOp.GET_CHILDREN, PathWatchRequest("/a/", False), -101),
        (ZkOp.DELETE, jute.DeleteRequest("/a/.", -1), -101),
        (ZkOp.REMOVE_WATCHES, jute.WatchesRequest("/a/", 3), -121),
        (ZkOp.ADD_WATCH, jute.AddWatchRequest("/a/", 0), 0),
        (ZkOp.SYNC, jute.PathRequest("/a/"), 0),
        (ZkOp.SET_DATA, jute.SetDataRequest("/a/", b"", -1), -8),
        (ZkOp.CREATE, jute.CreateRequest("/a/", b"", OPEN, 0), -8),
    ],
    ids=lambda v: v.name if isinstance(v, ZkOp) else "",
)
def test_an_invalid_path_is_answered_as_zookeeper_does(op: int, body: Record, err: int) -> None:
    # ZooKeeper looks read paths up without validating them: they just do not exist.
    t = _opened()
    event = _request(t, op, body, xid=3)
    [packet] = split_packets(t.encode([[event.xid, 5, InvalidPathError.code, {}]]))
    header, reader = parse_reply(packet)
    assert header == ReplyHeader(3, 5, err)
    if op == ZkOp.SYNC:
        assert jute.PathResponse.read(reader) == jute.PathResponse("/a/")
    if op == ZkOp.ADD_WATCH:
        assert jute.ErrorResponse.read(reader) == jute.ErrorResponse(0)


def test_set_watches_leaves_out_paths_that_cannot_exist() -> None:
    event = _request(_opened(), ZkOp.SET_WATCHES, jute.SetWatches(1, ["/ok", "/bad/"], [], []))
    assert event.body["data"] == ["/ok"]


def test_a_failed_multi_reports_zookeepers_convention() -> None:
    t = _opened()
    body = jute.MultiRequest(
        (
            (ZkOp.CREATE, jute.CreateRequest("/a", b"", OPEN, 0)),
            (ZkOp.DELETE, jute.DeleteRequest("/missing", -1)),
            (ZkOp.SET_DATA, jute.SetDataRequest("/a", b"", -1)),
        )
    )
    event = _request(t, ZkOp.MULTI, body, xid=2)
    failed = [[-203, {}], [-101, {"message": "no node"}], [-203, {}]]
    [packet] = split_packets(t.encode([[event.xid, 5, 0, failed]]))
    header, reader = parse_reply(packet)
    assert header.err == 0
    results = jute.MultiResponse.read(reader).results
    assert [(r.type, r.err) for r in results] == [(-1, 0), (-1, -101), (-1, -2)]


def test_watch_events_have_zxid_minus_one_and_sync_connected() -> None:
    t = _opened()
    [packet] = split_packets(t.encode([[-1, 0x100000003, 0, {"type": 3, "path": "/w"}]]))
    header, reader = parse_reply(packet)
    assert header == ReplyHeader(-1, -1, 0)
    assert WatcherEvent.read(reader) == WatcherEvent(3, KeeperState.SYNC_CONNECTED, "/w")


def test_connect_responses() -> None:
    t = _opened()
    ok = {"session_id": 5, "timeout_ms": 4000, "password": b"p" * 16, "zxid": 3}
    assert ConnectResponse.from_bytes(split_packets(t.encode([ok]))[0]) == ConnectResponse(
        0, 4000, 5, b"p" * 16, False
    )
    expired = {"session_id": 0, "timeout_ms": 0, "password": b"", "error": -112, "zxid": 3}
    t = _opened()
    assert ConnectResponse.from_bytes(split_packets(t.encode([expired]))[0]) == ConnectResponse(
        0, 0, 0, bytes(16), False
    )
    refused = {"session_id": 0, "timeout_ms": 0, "password": b"", "error": -1, "zxid": 3}
    assert _opened().encode([refused]) == b""


def test_local_replies_wait_behind_requests_at_the_core() -> None:
    t = _opened()
    event = _request(t, ZkOp.GET_DATA, PathWatchRequest("/a", False), xid=1)
    assert _request(t, 999, xid=2) is NEED_DATA  # unknown op: answered here
    assert _request(t, ZkOp.WHO_AM_I, xid=3) is NEED_DATA
    assert t.data_to_send() == b""  # not before the reply to xid 1
    packets = split_packets(t.encode([[event.xid, 7, 0, [b"v", STAT]]]))
    headers = [parse_reply(p)[0] for p in packets]
    assert [(h.xid, h.err) for h in headers] == [(1, 0), (2, -6), (3, 0)]
    who = jute.WhoAmIResponse.read(parse_reply(packets[2])[1])
    assert who.client_info == [jute.ClientInfo("ip", "10.1.2.3")]
    # With nothing at the core, a local reply may go at once.
    assert _request(t, 998, xid=4) is NEED_DATA
    assert parse_reply(split_packets(t.data_to_send())[0])[0].err == -6


def test_auth_digest_is_remembered_and_unknown_schemes_fail_and_close() -> None:
    t = _opened()
    body = jute.AuthPacket(0, "digest", b"alice:secret")
    assert _request(t, ZkOp.AUTH, body, xid=-4) is NEED_DATA
    assert parse_reply(split_packets(t.data_to_send())[0])[0].err == 0
    assert _request(t, ZkOp.WHO_AM_I, xid=1) is NEED_DATA
    who = jute.WhoAmIResponse.read(parse_reply(split_packets(t.data_to_send())[0])[1])
    # ZooKeeper reports a digest identity by its user name.
    assert who.client_info == [
        jute.ClientInfo("ip", "10.1.2.3"),
        jute.ClientInfo("digest", "alice"),
    ]
    # The id ZooKeeper's digest provider would record (its documented super:admin example).
    assert digest_id(b"super:admin") == "super:xQJmxLMiHGwaqBvst5y6rkB6HQs="
    assert _request(t, ZkOp.AUTH, jute.AuthPacket(0, "kerberos", b"x"), xid=-4) is NEED_DATA
    assert parse_reply(split_packets(t.data_to_send())[0])[0].err == -115
    assert t.finished
    assert _request(t, ZkOp.GET_DATA, PathWatchRequest("/", False), xid=9) is NEED_DATA


def test_create_with_an_empty_acl_is_invalid_acl_and_reconfig_is_disabled() -> None:
    t = _opened()
    assert _request(t, ZkOp.CREATE, jute.CreateRequest("/a", b"", [], 0), xid=1) is NEED_DATA
    assert _request(t, ZkOp.RECONFIG, jute.ReconfigRequest("", "", "", -1), xid=2) is NEED_DATA
    headers = [parse_reply(p)[0] for p in split_packets(t.data_to_send())]
    assert [h.err for h in headers] == [-114, -123]


# -- in front of a real core ------------------------------------------------------------

TICK = 100


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
                self.core.connect(conn, event.request, now_ms=self.now, password=b"p" * 16)
            else:
                assert isinstance(event, CoreRequest)
                self.core.request(conn, event.xid, event.op, event.body, now_ms=self.now)
        self.inbox[conn] += t.data_to_send()
        self.run()

    def open(self, conn: int, **fields: Any) -> ConnectResponse | None:
        self.translators[conn] = ZkConnectionTranslator(xid_tag=conn, client_host="127.0.0.1")
        self.feed(conn, _connect_packet(**fields))
        packets = self.packets(conn)
        return ConnectResponse.from_bytes(packets[0]) if packets else None

    def packets(self, conn: int) -> list[bytes]:
        data = bytes(self.inbox.pop(conn, b""))
        return split_packets(data)

    def call(self, conn: int, op: int, body: Record | None = None) -> tuple[int, Any]:
        """(err, decoded body) of one request's reply; watch events go to `events`."""
        self.xids[conn] += 1
        xid = self.xids[conn]
        self.feed(conn, jute.encode_request(RequestHeader(xid, op), body))
        replies = [parse_reply(p) for p in self.packets(conn)]
        mine = [(h, r) for h, r in replies if h.xid == xid]
        assert len(mine) == 1, replies
        header, reader = mine[0]
        return header.err, (reply_body(op, reader) if header.err == 0 else None)

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


def test_session_timeout_is_clamped_to_2_and_20_ticks(zd: ZkDriver) -> None:
    low = zd.open(1, timeout_ms=10)
    high = zd.open(2, timeout_ms=10_000_000)
    assert low is not None and high is not None
    assert (low.timeout_ms, high.timeout_ms) == (2 * TICK, 20 * TICK)
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
    assert zd.call(1, ZkOp.CREATE_TTL, ttl)[0] == 0
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
    assert zd.call(1, ZkOp.EXISTS, PathWatchRequest("/n", False))[0] == NoNodeError.code
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
    packets = [parse_reply(p) for p in zd.packets(2)]
    assert [h.xid for h, _ in packets] == [-1, -8]
    assert WatcherEvent.read(packets[0][1]) == WatcherEvent(3, 3, "/s")
    zd.call(1, ZkOp.CREATE, _create("/gone"))
    assert zd.events(2) == [WatcherEvent(1, 3, "/gone")]


def test_acl_ops_answer_open_acl_and_check_versions(zd: ZkDriver) -> None:
    zd.open(1)
    zd.call(1, ZkOp.CREATE, _create("/acl"))
    err, acl = zd.call(1, ZkOp.GET_ACL, jute.PathRequest("/acl"))
    assert err == 0 and acl.acl == OPEN_ACL and acl.stat.aversion == 0
    assert zd.call(1, ZkOp.SET_ACL, jute.SetACLRequest("/acl", OPEN_ACL, 0))[0] == 0
    assert zd.call(1, ZkOp.SET_ACL, jute.SetACLRequest("/acl", OPEN_ACL, 3))[0] == -103
    assert zd.call(1, ZkOp.SET_ACL, jute.SetACLRequest("/none", OPEN_ACL, -1))[0] == -101
    assert zd.call(1, ZkOp.GET_ACL, jute.PathRequest("/none"))[0] == -101


def test_client_xids_reused_on_a_new_connection_are_not_taken_for_retries(zd: ZkDriver) -> None:
    first = zd.open(1)
    assert first is not None
    assert zd.call(1, ZkOp.CREATE, _create("/one")) == (0, jute.CreateResponse("/one"))
    zd.core.connection_lost(1)
    again = zd.open(2, session_id=first.session_id, password=first.password)
    assert again is not None and again.session_id == first.session_id
    # kazoo starts again at xid 1 on every connection: this is a new create, not a retry.
    assert zd.call(2, ZkOp.CREATE, _create("/two")) == (0, jute.CreateResponse("/two"))
    assert zd.call(2, ZkOp.EXISTS, PathWatchRequest("/two", False))[0] == 0


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
    assert zd.call(2, ZkOp.EXISTS, PathWatchRequest("/eph", False))[0] == NoNodeError.code


def test_ping_is_answered_with_its_reserved_xid(zd: ZkDriver) -> None:
    zd.open(1)
    zd.feed(1, jute.encode_request(RequestHeader(PING_XID, ZkOp.PING)))
    [packet] = zd.packets(1)
    header, _ = parse_reply(packet)
    assert (header.xid, header.err) == (PING_XID, 0)
