"""The native wire's codec: every output the core makes survives the wire, and a frame
that does not fit its layout is refused with ValueError, never half-read."""

from __future__ import annotations

from typing import Any

import pytest

from coord.acl import make_acl
from coord.errors import BadVersionError, NoNodeError, RolledBackError, SessionExpiredError
from coord.framing import NEED_DATA, FrameDecoder
from coord.messages import EventType, OpCode, Stat, WatchedEvent
from coord.server.core.output import (
    Children,
    ClientOutput,
    Connected,
    ConnectRefused,
    Created,
    ErrorReply,
    MultiResults,
    NodeAcl,
    NodeData,
    Notice,
    OpOutcome,
    Reply,
    Result,
)
from coord.server.native.codec import (
    NativeEncoder,
    OverBudget,
    output_from_wire,
    result_from_wire,
    result_to_wire,
    send,
)

STAT = Stat(1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11)
MULTI_OPS = (OpCode.CREATE, OpCode.SET_DATA, OpCode.DELETE)


def _through_the_wire(output: ClientOutput) -> Any:
    decoder = FrameDecoder()
    decoder.receive_data(send(output))
    frame = decoder.next_frame()
    assert frame is not NEED_DATA and decoder.next_frame() is NEED_DATA
    return frame


@pytest.mark.parametrize(
    ("op", "result", "sub_ops"),
    [
        (OpCode.CREATE, Created("/a-0000000001", STAT), ()),
        (OpCode.GET_DATA, NodeData(b"v", STAT), ()),
        (OpCode.GET_DATA, NodeData(None, STAT), ()),
        (OpCode.GET_CHILDREN, Children(["a", "b"], None), ()),
        (OpCode.GET_CHILDREN, Children([], STAT), ()),
        (OpCode.GET_ACL, NodeAcl((make_acl("world", "anyone", read=True),), STAT), ()),
        (OpCode.SET_DATA, STAT, ()),
        (OpCode.EXISTS, STAT, ()),
        (OpCode.EXISTS, None, ()),
        (OpCode.SYNC, "/a", ()),
        (OpCode.GET_ALL_CHILDREN_NUMBER, 7, ()),
        (OpCode.GET_EPHEMERALS, ["/e1", "/e2"], ()),
        (OpCode.DELETE, None, ()),
        (
            OpCode.MULTI,
            MultiResults((OpOutcome(Created("/m", STAT)), OpOutcome(STAT), OpOutcome())),
            MULTI_OPS,
        ),
    ],
)
def test_every_result_reads_back_as_it_was_sent(
    op: int, result: Result, sub_ops: tuple[int, ...]
) -> None:
    frame = _through_the_wire(Reply(5, 0x100000002, result))
    assert output_from_wire(frame, op, sub_ops) == Reply(5, 0x100000002, result)
    assert result_from_wire(op, result_to_wire(result), sub_ops) == result


def test_a_failed_multi_reads_back_with_each_ops_error() -> None:
    failed = MultiResults(
        (
            OpOutcome(error=RolledBackError("rolled back")),
            OpOutcome(error=BadVersionError("bad version", path="/a", expected=3, actual=4)),
            OpOutcome(error=RolledBackError("rolled back")),
        )
    )
    reply = output_from_wire(_through_the_wire(Reply(2, 9, failed)), OpCode.MULTI, MULTI_OPS)
    assert isinstance(reply, Reply) and isinstance(reply.result, MultiResults)
    assert reply.result.failed
    errors = [outcome.error for outcome in reply.result.outcomes]
    assert [type(e) for e in errors] == [RolledBackError, BadVersionError, RolledBackError]
    assert isinstance(errors[1], BadVersionError)
    assert (errors[1].path, errors[1].expected, errors[1].actual) == ("/a", 3, 4)


def test_errors_notices_events_and_handshakes_read_back() -> None:
    error = output_from_wire(_through_the_wire(ErrorReply(3, 8, NoNodeError("gone", path="/x"))))
    assert isinstance(error, ErrorReply) and (error.xid, error.zxid) == (3, 8)
    assert isinstance(error.error, NoNodeError) and error.error.path == "/x"
    notice = output_from_wire(_through_the_wire(Notice(8, SessionExpiredError("expired"))))
    assert isinstance(notice, Notice) and isinstance(notice.error, SessionExpiredError)
    event = WatchedEvent(EventType.CHILD, "/q", 0x100000004)
    assert output_from_wire(_through_the_wire(event)) == event
    hello = Connected(session_id=7, timeout_ms=4000, password=b"p" * 16, zxid=3, server_id=2)
    assert output_from_wire(_through_the_wire(hello)) == hello
    refused = output_from_wire(
        _through_the_wire(ConnectRefused(3, 2, SessionExpiredError("no such session")))
    )
    assert isinstance(refused, ConnectRefused) and (refused.zxid, refused.server_id) == (3, 2)
    assert isinstance(refused.error, SessionExpiredError)
    assert refused.error.message == "no such session"


@pytest.mark.parametrize(
    ("frame", "op"),
    [
        ("nonsense", OpCode.SYNC),
        ([1, 2, 0], OpCode.SYNC),
        (["1", 2, 0, None], OpCode.DELETE),
        ([1, 2, 0, ["/a"]], OpCode.CREATE),
        ([1, 2, 0, ["/a", [1, 2, 3]]], OpCode.CREATE),
        ([1, 2, 0, [5, list(STAT)]], OpCode.CREATE),
        ([1, 2, 0, ["text", list(STAT)]], OpCode.GET_DATA),
        ([1, 2, 0, [["a", 5], None]], OpCode.GET_CHILDREN),
        ([1, 2, 0, [[["not", "an", "acl"]], list(STAT)]], OpCode.GET_ACL),
        ([1, 2, 0, "7"], OpCode.GET_ALL_CHILDREN_NUMBER),
        ([1, 2, 0, "surprise"], OpCode.DELETE),
        ([1, 2, 0, [[0, None]]], OpCode.MULTI),
        ([-1, 2, 0, {"type": 99, "path": "/a"}], 0),
        ([-1, 2, 0, {"type": 1, "path": 5}], 0),
        ([-1, 2, 0, "event"], 0),
        ({"session_id": 1, "timeout_ms": 1, "password": b"", "zxid": 1}, 0),
        ({"session_id": "1", "timeout_ms": 1, "password": b"", "zxid": 1, "server_id": 1}, 0),
        ({"session_id": 1, "timeout_ms": 1, "password": "pw", "zxid": 1, "server_id": 1}, 0),
    ],
)
def test_a_frame_that_does_not_fit_its_layout_is_refused(frame: Any, op: int) -> None:
    with pytest.raises(ValueError):
        output_from_wire(frame, op, (OpCode.CREATE,) if op == OpCode.MULTI else ())


def test_a_batch_is_cut_off_at_its_byte_budget() -> None:
    small = Reply(1, 1, NodeData(b"x" * 100, STAT))
    encoder = NativeEncoder()
    one = encoder.send_within([small], budget=1_000)
    assert one == send(small)
    assert encoder.send_within([small, small], budget=2 * len(one)) == one + one
    with pytest.raises(OverBudget):
        encoder.send_within([small, small], budget=2 * len(one) - 1)
