"""Request bodies and result decoding."""

from __future__ import annotations

import pytest

from coord.client import ops
from coord.errors import (
    BadArgumentsError,
    BadVersionError,
    InvalidPathError,
    InvalidTTLError,
    MalformedFrameError,
    RolledBackError,
)
from coord.messages import CreateMode, OpCode, Stat

STAT = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]


@pytest.mark.parametrize(
    ("flags", "mode"),
    [
        ({}, CreateMode.PERSISTENT),
        ({"sequential": True}, CreateMode.PERSISTENT_SEQUENTIAL),
        ({"ephemeral": True}, CreateMode.EPHEMERAL),
        ({"ephemeral": True, "sequential": True}, CreateMode.EPHEMERAL_SEQUENTIAL),
        ({"container": True}, CreateMode.CONTAINER),
        ({"ttl": 1.5}, CreateMode.PERSISTENT_WITH_TTL),
        ({"ttl": 2, "sequential": True}, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL),
    ],
)
def test_create_modes(flags: dict[str, object], mode: CreateMode) -> None:
    body = ops.create_body("/a", b"x", **flags)  # type: ignore[arg-type]
    assert body["mode"] == mode
    assert ("ttl_ms" in body) == mode.is_ttl


def test_create_body_details() -> None:
    assert ops.create_body("/q/", sequential=True)["path"] == "/q/"
    assert ops.create_body("/a", bytearray(b"hi"), ttl=1.5)["ttl_ms"] == 1500
    with pytest.raises(InvalidPathError):
        ops.create_body("/q/")
    with pytest.raises(InvalidTTLError):
        ops.create_body("/a", ttl=0)
    with pytest.raises(InvalidTTLError):
        ops.create_body("/a", ephemeral=True, ttl=5)
    with pytest.raises(BadArgumentsError):
        ops.create_body("/a", container=True, ephemeral=True)
    with pytest.raises(TypeError):
        ops.create_body("/a", "text")
    with pytest.raises(TypeError):
        ops.delete_body("/a", version="1")  # type: ignore[arg-type]


def test_results() -> None:
    assert ops.parse_create(["/a", STAT]) == ("/a", Stat(*STAT))
    assert ops.parse_exists(None) is None
    assert ops.parse_get([b"v", STAT]) == (b"v", Stat(*STAT))
    assert ops.parse_children([["a"], None]) == (["a"], None)
    for bad in (None, [b"v"], ["str", STAT], [b"v", [1, 2]]):
        with pytest.raises(MalformedFrameError, match="GET_DATA"):
            ops.parse_get(bad)
    with pytest.raises(MalformedFrameError):
        ops.parse_children([[1], None])


def test_multi_results() -> None:
    kinds = [OpCode.CREATE, OpCode.SET_DATA, OpCode.CHECK, OpCode.DELETE]
    ok = ops.parse_multi(kinds, [[0, ["/a", STAT]], [0, STAT], [0, None], [0, None]])
    assert ok == ["/a", Stat(*STAT), True, True]
    failed = ops.parse_multi(
        kinds[:2], [[-203, {"message": "rolled back"}], [-103, {"message": "bad", "path": "/b"}]]
    )
    assert isinstance(failed[0], RolledBackError)
    assert isinstance(failed[1], BadVersionError) and failed[1].path == "/b"
    with pytest.raises(MalformedFrameError):
        ops.parse_multi(kinds, [[0, None]])
