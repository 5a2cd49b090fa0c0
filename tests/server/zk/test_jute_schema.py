"""The jute declaring language and its generated code: nesting, mistakes refused at
import, and the named attacks on lengths and counts."""

from __future__ import annotations

import dataclasses
import inspect
import struct
from dataclasses import FrozenInstanceError
from typing import NamedTuple

import pytest

from coord.server.zk import jute
from coord.server.zk.jute import JuteDecodeError, RequestHeader, ZkOp
from coord.server.zk.jute_schema import (
    Bool,
    Buffer,
    Int,
    Long,
    Record,
    TrailingBool,
    UString,
    Vector,
    fixed_format,
    layout,
    record,
)


def _int(value: int) -> bytes:
    return struct.pack(">i", value)


@record
class Point(Record):
    x: Int
    y: Long


@record
class Grid(Record):
    """Vectors of vectors and of records: shapes no ZooKeeper record has, so the
    generator's nesting is tested here."""

    name: UString
    rows: Vector[Vector[Int]]
    points: Vector[Point]
    flag: Bool


@record
class Handshake(Record):
    version: Int
    flag: TrailingBool = None


def test_nested_vectors_round_trip() -> None:
    grid = Grid("g", [[1, 2], [], None, [3]], [Point(1, -2), Point(-3, 4)], True)
    data = grid.to_bytes()
    assert data[:5] == _int(1) + b"g"
    assert Grid.from_bytes(data) == grid
    empty = Grid(None, None, None, False)
    assert Grid.from_bytes(empty.to_bytes()) == empty


def test_an_inner_count_is_bounded_by_the_bytes_left() -> None:
    head = _int(-1) + _int(1)  # no name; one row
    for inner in (2**31 - 1, 10, -2):  # 9 bytes are left
        with pytest.raises(JuteDecodeError, match="vector of"):
            Grid.from_bytes(head + _int(inner) + _int(7) + _int(-1) + b"\x00")
    # A count that fits the bytes but whose items do not: refused at the end, not earlier.
    with pytest.raises(JuteDecodeError, match="ends early"):
        Grid.from_bytes(head + _int(3) + _int(7) + _int(8))


def test_records_stay_frozen_dataclasses() -> None:
    decoded = Point.from_bytes(Point(1, 2).to_bytes())
    with pytest.raises(FrozenInstanceError):
        decoded.x = 5  # type: ignore[misc]
    assert decoded == Point(1, 2) and hash(decoded) == hash(Point(1, 2))


def test_the_generated_init_is_the_dataclass_one() -> None:
    signature = inspect.signature(jute.ConnectRequest)
    assert list(signature.parameters)[-2:] == ["password", "read_only"]
    assert signature.parameters["read_only"].default is None
    request = jute.ConnectRequest(0, 1, 2, 3, password=b"p")
    assert request.read_only is None and dataclasses.replace(request, read_only=True).read_only
    assert jute.ConnectResponse(0, 1, 2, b"").read_only is False
    with pytest.raises(TypeError):
        jute.ReplyHeader(1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        jute.ReplyHeader(1, 2, 3, 4)  # type: ignore[call-arg]


def test_generated_code_is_there_to_read() -> None:
    source = jute.STAT_LAYOUT.source
    assert "def unpack(data, pos=0):" in source and "def pack(obj, out):" in source
    assert sum("= _unpack" in line for line in source.splitlines()) == 1  # 68 bytes, one call


def test_fixed_format_is_the_struct_of_plain_fixed_records() -> None:
    assert fixed_format(jute.ReplyHeader) == "iqi"
    assert fixed_format(jute.MultiHeader) == "i?i"
    with pytest.raises(TypeError):
        fixed_format(jute.ConnectRequest)  # a buffer, a session id, a trailing bool


def test_a_field_that_is_not_a_jute_type_is_refused_at_import() -> None:
    with pytest.raises(TypeError, match=r"Bad\.count"):

        @record
        class Bad(Record):
            count: int


def test_a_trailing_bool_must_come_last_and_cannot_nest() -> None:
    with pytest.raises(TypeError, match="last field"):

        @record
        class Early(Record):
            flag: TrailingBool
            rest: Int

    with pytest.raises(TypeError, match="cannot nest"):

        @record
        class Outer(Record):
            inner: Handshake


def test_a_layout_names_the_fields_of_its_class_in_order() -> None:
    class Pair(NamedTuple):
        a: int
        b: bytes | None

    codec = layout(Pair, a=Int, b=Buffer)
    out = bytearray()
    codec.pack(Pair(1, b"x"), out)
    assert codec.unpack(bytes(out), 0) == (Pair(1, b"x"), 9)
    with pytest.raises(TypeError, match="is not its fields"):
        layout(Pair, b=Buffer, a=Int)


# -- the named attacks -------------------------------------------------------------


def _request(op: ZkOp, body: bytes) -> bytes:
    return RequestHeader(1, op).to_bytes() + body


@pytest.mark.parametrize("length", [-2, -(2**31), 2**31 - 1, 3])
def test_a_length_that_is_not_null_and_does_not_fit_is_refused(length: int) -> None:
    with pytest.raises(JuteDecodeError, match="buffer length"):
        jute.decode_request(_request(ZkOp.SET_DATA, _int(2) + b"/a" + _int(length) + b"xy"))


@pytest.mark.parametrize("count", [-2, -(2**31), 2**31 - 1, 0xFFFFF])
def test_a_vector_count_over_the_bytes_left_is_refused_before_any_item(count: int) -> None:
    body = struct.pack(">q", 0) + _int(count) + _int(1) + b"/"
    with pytest.raises(JuteDecodeError, match=f"vector of {count} items"):
        jute.decode_request(_request(ZkOp.SET_WATCHES, body))


def test_nulls_are_minus_one_only() -> None:
    _, body = jute.decode_request(_request(ZkOp.SET_WATCHES, struct.pack(">q", 5) + _int(-1) * 3))
    assert body == jute.SetWatches(5, None, None, None)


def test_a_bad_string_deep_in_a_vector_of_records_is_refused() -> None:
    acl = _int(1) + _int(31) + _int(2) + b"\xff\xfe" + _int(6) + b"anyone"
    with pytest.raises(JuteDecodeError, match="UTF-8"):
        jute.decode_request(_request(ZkOp.SET_ACL, _int(2) + b"/a" + acl + _int(-1)))
    too_long = _int(1) + _int(31) + _int(50) + b"world"
    with pytest.raises(JuteDecodeError, match="buffer length 50"):
        jute.decode_request(_request(ZkOp.SET_ACL, _int(2) + b"/a" + too_long))


def test_a_whole_packet_of_items_that_run_out_costs_one_pass() -> None:
    # A count equal to the bytes left is allowed up front; the items then run out.
    left = jute.MAX_PACKET - 8 - 12
    body = struct.pack(">q", 0) + _int(left) + bytes(left)
    with pytest.raises(JuteDecodeError, match="ends early"):
        jute.decode_request(_request(ZkOp.SET_WATCHES, body))


def test_a_multi_without_its_end_marker_is_refused() -> None:
    one = jute.MultiHeader(ZkOp.DELETE, False, -1).to_bytes() + _int(2) + b"/a" + _int(-1)
    with pytest.raises(JuteDecodeError, match="multi ends early"):
        jute.decode_request(_request(ZkOp.MULTI, one * 3))


def test_byte_like_input_gives_bytes_fields() -> None:
    data = jute.GetDataResponse(b"v", jute.STAT_LAYOUT.cls(*range(11))).to_bytes()
    for raw in (bytearray(data), memoryview(data)):
        decoded = jute.GetDataResponse.from_bytes(raw)
        assert type(decoded.data) is bytes and decoded.data == b"v"
    reader = jute.Reader(bytearray(jute.PathRequest("/p").to_bytes() * 2))
    assert [jute.PathRequest.read(reader) for _ in range(2)] == [jute.PathRequest("/p")] * 2
    assert reader.remaining == 0
