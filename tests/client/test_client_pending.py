"""The pure request table: xids, FIFO replies, abandoned calls, failing in bulk."""

from __future__ import annotations

import pytest

from coord.client.pending import Call, RequestTable
from coord.errors import ConnectionLossError, MalformedFrameError, NoNodeError
from coord.messages import MAX_XID, OpCode


def call(path: str = "/a", op: int = OpCode.GET_DATA) -> Call:
    return Call(op, {"path": path}, path=path)


def test_xids_increase_in_wire_order_and_wrap() -> None:
    table = RequestTable()
    first, second, third = call("/1"), call("/2"), call("/3")
    table.enqueue(first)
    table.enqueue(second)
    table.enqueue(third, first=True)
    assert [c.path for c in table.take_batch()] == ["/3", "/1", "/2"]
    assert [third.xid, first.xid, second.xid] == [1, 2, 3]
    table._last_xid = MAX_XID - 1
    assert table.next_xid() == MAX_XID
    assert table.next_xid() == 1


def test_take_batch_limit_and_skips_abandoned() -> None:
    table = RequestTable()
    calls = [call(f"/{i}") for i in range(5)]
    for c in calls:
        table.enqueue(c)
    calls[1].abandoned = True
    assert table.take_batch(limit=2) == [calls[0], calls[2]]
    assert table.statistics() == {"queued": 2, "in_flight": 2}
    assert table.take_batch() == [calls[3], calls[4]]
    assert not table.has_outgoing


def test_replies_must_come_in_order() -> None:
    table = RequestTable()
    a, b = call("/a"), call("/b")
    table.enqueue(a)
    table.enqueue(b)
    table.take_batch()
    with pytest.raises(MalformedFrameError, match="out of order"):
        table.pop_reply(b.xid)
    assert table.pop_reply(a.xid) is a
    assert table.pop_reply(b.xid) is b
    with pytest.raises(MalformedFrameError, match="no request is in flight"):
        table.pop_reply(99)


def test_resolve_and_outcome() -> None:
    woken: list[str] = []
    ok, bad = call("/ok"), call("/bad")
    ok.notify = lambda: woken.append("ok")
    ok.resolve(0, "result")
    assert ok.done and ok.outcome() == "result"
    bad.resolve(NoNodeError.code, {"message": "gone", "path": "/bad"})
    with pytest.raises(NoNodeError, match="gone"):
        bad.outcome()
    ok.fail(RuntimeError("late"))  # the first outcome sticks
    assert ok.outcome() == "result"
    assert woken == ["ok"]
    assert call("/x").describe() == "GET_DATA '/x'"
    assert Call(999, {}).describe() == "op 999"


def test_fail_in_flight_keeps_the_outbox_fail_all_does_not() -> None:
    table = RequestTable()
    sent, waiting = call("/sent"), call("/waiting")
    table.enqueue(sent)
    table.take_batch()
    table.enqueue(waiting)
    assert table.fail_in_flight(lambda c: ConnectionLossError(c.describe())) == 1
    assert isinstance(sent.error, ConnectionLossError)
    assert not waiting.done and table.queued == 1
    assert table.fail_all(lambda c: ConnectionLossError("over")) == 1
    assert waiting.done and table.queued == 0


def test_requeue_keeps_writes_with_their_xids_ahead_of_later_calls():
    table = RequestTable()
    write = Call(OpCode.SET_DATA, {"path": "/w"})
    read = Call(OpCode.GET_DATA, {"path": "/r"})
    later = Call(OpCode.EXISTS, {"path": "/later"})
    for call in (write, read):
        table.enqueue(call)
    assert [c.xid for c in table.take_batch()] == [1, 2]
    table.enqueue(later)
    kept = table.requeue_in_flight(
        lambda c: c.op == OpCode.SET_DATA, lambda c: ConnectionLossError(c.describe())
    )
    assert kept == 1
    assert isinstance(read.error, ConnectionLossError)
    assert not write.done
    resent = table.take_batch()
    assert resent == [write, later]
    assert [c.xid for c in resent] == [1, 3]  # the write keeps xid 1; new calls go on from 2
