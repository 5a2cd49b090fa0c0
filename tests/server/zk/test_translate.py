"""ZkConnectionTranslator: jute in, native calls out; native frames in, jute out.

The translator alone: what it asks the core, and what bytes it writes for a
given native frame. test_translate_core.py puts it in front of a real core.
"""

from __future__ import annotations

from typing import Any

import pytest

from coord.errors import (
    BadArgumentsError,
    InvalidPathError,
    KeeperError,
    NoNodeError,
    RolledBackError,
    ServerSystemError,
    SessionExpiredError,
)
from coord.framing import NEED_DATA
from coord.messages import PING_XID, PROTOCOL_VERSION, EventType, OpCode, Stat, WatchedEvent
from coord.server.core.output import (
    Children,
    Connected,
    ConnectRefused,
    Created,
    ErrorReply,
    MultiResults,
    NodeData,
    OpOutcome,
    Reply,
)
from coord.server.zk import jute
from coord.server.zk.jute import (
    ConnectResponse,
    KeeperState,
    PathWatchRequest,
    Record,
    ReplyHeader,
    RequestHeader,
    WatcherEvent,
    ZkOp,
)
from coord.server.zk.replies import zk_error_code
from coord.server.zk.translate import (
    CoreRequest,
    FourLetterWord,
    Handshake,
    ZkConnectionTranslator,
)
from tests.server.zk.jute_client import (
    connect_packet,
    parse_reply,
    reply_body,
    split_packets,
)

STAT = Stat(1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11)


def _opened(tag: int = 1) -> ZkConnectionTranslator:
    t = ZkConnectionTranslator(xid_tag=tag, client_host="10.1.2.3")
    t.receive_data(connect_packet())
    assert isinstance(t.next_event(), Handshake)
    return t


def _request(t: ZkConnectionTranslator, op: int, body: Record | None = None, xid: int = 1) -> Any:
    t.receive_data(jute.encode_request(RequestHeader(xid, op), body))
    return t.next_event()


# -- the translator alone ------------------------------------------------------------


def test_handshake_becomes_a_native_connect() -> None:
    t = ZkConnectionTranslator(xid_tag=1)
    packet = connect_packet(last_zxid_seen=0x100000007, timeout_ms=9000, read_only=True)
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
            {"path": "/a", "data": b"d", "mode": 3, "ttl_ms": 0, "acl": [[31, "world", "anyone"]]},
        ),
        (
            ZkOp.CREATE_CONTAINER,
            jute.CreateRequest("/c", None, OPEN, 4),
            OpCode.CREATE,
            {"path": "/c", "data": None, "mode": 4, "ttl_ms": 0, "acl": [[31, "world", "anyone"]]},
        ),
        (
            ZkOp.CREATE_TTL,
            jute.CreateTTLRequest("/t", b"", OPEN, 5, 500),
            OpCode.CREATE,
            {"path": "/t", "data": b"", "mode": 5, "ttl_ms": 500, "acl": [[31, "world", "anyone"]]},
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
                    [
                        OpCode.CREATE,
                        {
                            "path": "/m",
                            "data": b"",
                            "mode": 0,
                            "ttl_ms": 0,
                            "acl": [[31, "world", "anyone"]],
                        },
                    ],
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
        (ZkOp.CREATE, jute.CreateRequest("/a", b"", OPEN, 0), Created("/a", STAT)),
        (ZkOp.CREATE2, jute.CreateRequest("/b", b"", OPEN, 0), Created("/b", STAT)),
        (ZkOp.GET_CHILDREN, PathWatchRequest("/", False), Children(["a", "b"], None)),
        (ZkOp.GET_CHILDREN2, PathWatchRequest("/", False), Children(["a", "b"], STAT)),
        (ZkOp.GET_DATA, PathWatchRequest("/a", False), NodeData(b"v", STAT)),
        (ZkOp.EXISTS, PathWatchRequest("/a", False), STAT),
    ]
    frames = []
    for index, (op, body, result) in enumerate(asked, start=1):
        event = _request(t, op, body, xid=index)
        frames.append(Reply(event.xid, 0x100000009, result))
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
    [packet] = split_packets(t.encode([Reply(event.xid, 9, None)]))
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
    [packet] = split_packets(
        t.encode([ErrorReply(event.xid, 5, KeeperError.from_wire(native, {"message": "m"}))])
    )
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
    [packet] = split_packets(t.encode([ErrorReply(event.xid, 5, InvalidPathError("bad"))]))
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
    rolled_back = OpOutcome(error=RolledBackError("rolled back"))
    failed = MultiResults((rolled_back, OpOutcome(error=NoNodeError("no node")), rolled_back))
    [packet] = split_packets(t.encode([Reply(event.xid, 5, failed)]))
    header, reader = parse_reply(packet)
    assert header.err == 0
    results = jute.MultiResponse.read(reader).results
    assert [(r.type, r.err) for r in results] == [(-1, 0), (-1, -101), (-1, -2)]


def test_watch_events_have_zxid_minus_one_and_sync_connected() -> None:
    t = _opened()
    [packet] = split_packets(t.encode([WatchedEvent(EventType.CHANGED, "/w", 0x100000003)]))
    header, reader = parse_reply(packet)
    assert header == ReplyHeader(-1, -1, 0)
    assert WatcherEvent.read(reader) == WatcherEvent(3, KeeperState.SYNC_CONNECTED, "/w")


def test_connect_responses() -> None:
    t = _opened()
    ok = Connected(session_id=5, timeout_ms=4000, password=b"p" * 16, zxid=3, server_id=1)
    assert ConnectResponse.from_bytes(split_packets(t.encode([ok]))[0]) == ConnectResponse(
        0, 4000, 5, b"p" * 16, False
    )
    expired = ConnectRefused(zxid=3, server_id=1, error=SessionExpiredError("expired"))
    t = _opened()
    assert ConnectResponse.from_bytes(split_packets(t.encode([expired]))[0]) == ConnectResponse(
        0, 0, 0, bytes(16), False
    )
    refused = ConnectRefused(zxid=3, server_id=1, error=KeeperError.from_wire(-1, {}))
    assert _opened().encode([refused]) == b""


def test_local_replies_wait_behind_requests_at_the_core() -> None:
    t = _opened()
    event = _request(t, ZkOp.GET_DATA, PathWatchRequest("/a", False), xid=1)
    assert _request(t, 999, xid=2) is NEED_DATA  # unknown op: answered here
    assert _request(t, ZkOp.WHO_AM_I, xid=3) is NEED_DATA
    assert t.data_to_send() == b""  # not before the reply to xid 1
    packets = split_packets(t.encode([Reply(event.xid, 7, NodeData(b"v", STAT))]))
    headers = [parse_reply(p)[0] for p in packets]
    assert [(h.xid, h.err) for h in headers] == [(1, 0), (2, -6), (3, 0)]
    who = jute.WhoAmIResponse.read(parse_reply(packets[2])[1])
    assert who.client_info == [jute.ClientInfo("ip", "10.1.2.3")]
    # With nothing at the core, a local reply may go at once.
    assert _request(t, 998, xid=4) is NEED_DATA
    assert parse_reply(split_packets(t.data_to_send())[0])[0].err == -6


def test_create_with_an_empty_acl_is_invalid_acl_and_reconfig_is_disabled() -> None:
    t = _opened()
    assert _request(t, ZkOp.CREATE, jute.CreateRequest("/a", b"", [], 0), xid=1) is NEED_DATA
    assert _request(t, ZkOp.RECONFIG, jute.ReconfigRequest("", "", "", -1), xid=2) is NEED_DATA
    headers = [parse_reply(p)[0] for p in split_packets(t.data_to_send())]
    assert [h.err for h in headers] == [-114, -123]


def test_a_result_that_does_not_fit_the_op_fails_that_request_only() -> None:
    t = _opened()
    mismatched = _request(t, ZkOp.GET_DATA, PathWatchRequest("/a", False), xid=1)
    fine = _request(t, ZkOp.EXISTS, PathWatchRequest("/a", False), xid=2)
    packets = split_packets(t.encode([Reply(mismatched.xid, 7, STAT), Reply(fine.xid, 7, STAT)]))
    headers = [parse_reply(p)[0] for p in packets]
    assert headers == [ReplyHeader(1, 7, ServerSystemError.code), ReplyHeader(2, 7, 0)]
