"""A read whose reply would not fit one frame is refused, not sent to break the client."""

from __future__ import annotations

from coord.errors import ReplyTooLargeError
from coord.framing import MAX_DATA_SIZE
from coord.messages import CreateMode, OpCode
from coord.server.core.reads import REPLY_BUDGET
from tests.server.coredriver import Driver, error_of, ok


def _get(path: str) -> list[object]:
    return [int(OpCode.GET_DATA), {"path": path, "watch": False}]


def test_a_multi_read_of_big_nodes_that_would_not_fit_is_refused_whole() -> None:
    d = Driver()
    d.connect(1)
    for name in ("a", "b"):
        ok(d.create(1, f"/{name}", b"x" * (MAX_DATA_SIZE - 1024)))
    (one,) = ok(d.call(1, OpCode.MULTI_READ, {"ops": [_get("/a")]})).outcomes
    assert one.error is None  # one big node fits
    assert one.result.data == b"x" * (MAX_DATA_SIZE - 1024)
    error = error_of(d.call(1, OpCode.MULTI_READ, {"ops": [_get("/a"), _get("/b")]}))
    assert isinstance(error, ReplyTooLargeError) and error.code == -208
    assert "ask for less" in error.message


def test_the_ephemerals_of_a_session_that_owns_very_many_are_refused_with_a_hint() -> None:
    d = Driver()
    d.connect(1)
    long = "n" * 3900
    for parent in range(2):
        ok(d.create(1, f"/p{parent}"))
        for i in range(150):  # under each parent's child-list bound
            ok(d.create(1, f"/p{parent}/{i}-{long}", mode=int(CreateMode.EPHEMERAL)))
    error = error_of(d.call(1, OpCode.GET_EPHEMERALS, {"prefix": "/"}))
    assert isinstance(error, ReplyTooLargeError) and error.actual > REPLY_BUDGET
    assert len(ok(d.call(1, OpCode.GET_EPHEMERALS, {"prefix": "/p1/1"}))) < 150  # a narrower prefix
