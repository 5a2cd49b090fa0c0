"""The sans-IO protocol object: frames in, watch dispatch and replies, frames out."""

from __future__ import annotations

import logging

import pytest

from coord.client.pending import Call
from coord.client.protocol import PING_FRAME, ClientProtocol, NoticeReceived
from coord.client.watches import WatchKind
from coord.errors import ConnectionLossError, MalformedFrameError, NoNodeError, SessionExpiredError
from coord.messages import (
    NOTICE_XID,
    PING_XID,
    WATCH_XID,
    EventType,
    OpCode,
    WatchedEvent,
)


def test_event_is_dispatched_before_the_reply_in_the_next_frame() -> None:
    protocol = ClientProtocol()
    log: list[str] = []
    protocol.watches.add(WatchKind.DATA, "/a", lambda e: log.append(f"event {e.zxid}"))
    get = Call(OpCode.GET_DATA, {"path": "/a"}, path="/a")
    get.notify = lambda: log.append("reply")
    protocol.requests.enqueue(get)
    assert protocol.take_frames() == [[1, OpCode.GET_DATA, {"path": "/a"}]]
    protocol.receive_frame([WATCH_XID, 7, 0, {"type": 3, "path": "/a"}])
    protocol.receive_frame([1, 7, 0, [b"x", None]])
    assert log == ["event 7", "reply"]
    assert protocol.last_zxid == 7


def test_reply_hook_runs_before_the_caller_wakes_and_not_for_abandoned() -> None:
    protocol = ClientProtocol()
    order: list[str] = []
    first = Call(OpCode.EXISTS, {}, on_reply=lambda err, res: order.append(f"hook {err}"))
    first.notify = lambda: order.append("wake")
    gone = Call(OpCode.EXISTS, {}, on_reply=lambda err, res: order.append("never"))
    for c in (first, gone):
        protocol.requests.enqueue(c)
    protocol.take_frames()
    gone.abandoned = True
    protocol.receive_frame([1, 0, 0, None])
    protocol.receive_frame([2, 0, 0, None])
    assert order == ["hook 0", "wake"]
    assert gone.done


def test_hook_error_fails_the_call_but_keeps_the_stream() -> None:
    protocol = ClientProtocol()

    def hook(err: int, result: object) -> None:
        raise MalformedFrameError("bad result")

    c = Call(OpCode.GET_DATA, {}, on_reply=hook)
    protocol.requests.enqueue(c)
    protocol.take_frames()
    protocol.receive_frame([1, 0, 0, "junk"])
    with pytest.raises(MalformedFrameError):
        c.outcome()


def test_error_reply_and_zxid_tracking() -> None:
    protocol = ClientProtocol(last_zxid=50)
    c = Call(OpCode.DELETE, {"path": "/a"}, path="/a")
    protocol.requests.enqueue(c)
    protocol.take_frames()
    protocol.receive_frame([1, 40, NoNodeError.code, {"message": "no", "path": "/a"}])
    assert protocol.last_zxid == 50  # never goes back
    with pytest.raises(NoNodeError):
        c.outcome()
    protocol.receive_frame([PING_XID, 60, 0, None])
    assert protocol.last_zxid == 50  # a ping's zxid may be ahead of events not sent yet
    assert protocol.frames_received == 2
    read = Call(OpCode.EXISTS, {"path": "/a"}, path="/a")
    protocol.requests.enqueue(read)
    protocol.take_frames()
    protocol.receive_frame([2, 70, 0, None])
    assert protocol.last_zxid == 70  # a reply's zxid: the state the session has seen


def test_events_and_notices_leave_last_zxid_alone() -> None:
    """After a reconnect, SET_WATCHES asks for every change after last_zxid: counting an
    event's or a notice's zxid could skip the events of watches not re-registered yet."""
    protocol = ClientProtocol(last_zxid=50)
    protocol.receive_frame([WATCH_XID, 90, 0, {"type": 3, "path": "/a"}])
    with pytest.raises(NoticeReceived):
        protocol.receive_frame([NOTICE_XID, 95, ConnectionLossError.code, {"message": "bye"}])
    assert protocol.last_zxid == 50


def test_notice_raises_with_the_error() -> None:
    protocol = ClientProtocol()
    with pytest.raises(NoticeReceived) as info:
        protocol.receive_frame([NOTICE_XID, 9, SessionExpiredError.code, {"message": "gone"}])
    assert isinstance(info.value.error, SessionExpiredError)


@pytest.mark.parametrize(
    "frame",
    [
        {"not": "a list"},
        [1, 2, 3],
        [1, "zxid", 0, None],
        [True, 0, 0, None],
        [WATCH_XID, 1, 0, {"type": 99, "path": "/a"}],
        [WATCH_XID, 1, 0, {"path": "/a"}],
        [WATCH_XID, 1, 0, {"type": 1, "path": 5}],
        [5, 1, 0, None],  # a reply with nothing in flight
    ],
)
def test_malformed_frames(frame: object) -> None:
    with pytest.raises(MalformedFrameError):
        ClientProtocol().receive_frame(frame)


def test_watcher_exceptions_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    protocol = ClientProtocol()
    got: list[WatchedEvent] = []

    def broken(event: WatchedEvent) -> None:
        raise ValueError("oops")

    protocol.watches.add(WatchKind.CHILD, "/a", broken)
    protocol.watches.add(WatchKind.CHILD, "/a", got.append)
    with caplog.at_level(logging.ERROR):
        protocol.receive_frame([WATCH_XID, 3, 0, {"type": 4, "path": "/a"}])
    assert got == [WatchedEvent(EventType.CHILD, "/a", 3)]
    assert "oops" in caplog.text


def test_ping_frame_shape() -> None:
    assert PING_FRAME == [PING_XID, 11, {}]
