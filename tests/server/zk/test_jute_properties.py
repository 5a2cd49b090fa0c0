"""Properties of every declared jute record: round trip, ZooKeeper's bytes, hostile input.

The values are drawn from each record's own declaration (its field list), so a
record added to jute_records is covered here without a line more. The bytes are
checked against `reference`, a plain field-by-field encoder written here from
the jute rules alone: a reader and writer that agree with each other but not
with the wire (two fields swapped in both) would still fail. Hostile input:
every strict prefix of a record, and mutated or random bytes, give
JuteDecodeError or a record, never another exception.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coord.messages import Stat
from coord.server.zk import jute
from coord.server.zk.jute import (
    MULTI_REQUEST_BODIES,
    MULTI_RESULT_BODIES,
    REQUEST_BODIES,
    JuteDecodeError,
    MultiRequest,
    MultiResponse,
    OpResult,
    RequestHeader,
)
from coord.server.zk.jute_codegen import (
    TRAILING_BOOL,
    Bytes,
    Codec,
    Fixed,
    JuteType,
    Nested,
    VectorOf,
)
from coord.server.zk.jute_schema import declared

CODECS = [
    c for c in declared() if c.cls.__module__ in ("coord.server.zk.jute_records", "coord.messages")
]
BY_CLASS = {c.cls: c for c in CODECS}
HOSTILE_INTS = [-1, -2, -(2**31), 2**31 - 1, 0, 1, 0x7F, 0xFFFFF, 0x100000]


def strategy(kind: JuteType) -> st.SearchStrategy[Any]:
    """Values of one jute type (short strings and vectors: the shapes matter, not the size)."""
    if isinstance(kind, Fixed):
        if kind.code == "?":
            return st.booleans()
        if kind.unsigned:
            return st.integers(0, 2**64 - 1)
        bits = 32 if kind.code == "i" else 64
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if isinstance(kind, Bytes):
        return st.none() | (st.text(max_size=12) if kind.text else st.binary(max_size=24))
    if isinstance(kind, VectorOf):
        return st.none() | st.lists(strategy(kind.item), max_size=4)
    if isinstance(kind, Nested):
        return record_strategy(kind.codec)
    assert kind is TRAILING_BOOL
    return st.none() | st.booleans()


def record_strategy(codec: Codec) -> st.SearchStrategy[Any]:
    return st.builds(codec.cls, *[strategy(kind) for _, kind in codec.fields])


def reference(kind: JuteType, value: Any) -> bytes:
    """The jute bytes of `value`, one primitive at a time (the oracle for the generated writers)."""
    if isinstance(kind, Fixed):
        return struct.pack(">" + kind.code, jute.to_signed64(value) if kind.unsigned else value)
    if isinstance(kind, Bytes):
        if value is None:
            return struct.pack(">i", -1)
        raw = value.encode("utf-8") if kind.text else value
        return struct.pack(">i", len(raw)) + raw
    if isinstance(kind, VectorOf):
        if value is None:
            return struct.pack(">i", -1)
        return struct.pack(">i", len(value)) + b"".join(reference(kind.item, v) for v in value)
    if isinstance(kind, Nested):
        return reference_record(kind.codec, value)
    return b"" if value is None else struct.pack(">?", value)


def reference_record(codec: Codec, value: Any) -> bytes:
    return b"".join(reference(kind, getattr(value, name)) for name, kind in codec.fields)


def encode(codec: Codec, value: Any) -> bytes:
    out = bytearray()
    codec.pack(value, out)
    return bytes(out)


def optional_end(codec: Codec, value: Any) -> bool:
    """True when the record's last field is a TrailingBool that is present."""
    name, kind = codec.fields[-1]
    return kind is TRAILING_BOOL and getattr(value, name) is not None


def ops_of(table: dict[int, Any]) -> st.SearchStrategy[int]:
    return st.sampled_from(sorted(table))


multi_request = st.lists(
    ops_of(MULTI_REQUEST_BODIES).flatmap(
        lambda op: record_strategy(BY_CLASS[MULTI_REQUEST_BODIES[op]]).map(lambda b: (op, b))
    ),
    max_size=4,
).map(lambda ops: MultiRequest(tuple(ops)))


def _result(op: int) -> st.SearchStrategy[OpResult]:
    body = MULTI_RESULT_BODIES[op]
    bodies = st.none() if body is None else record_strategy(BY_CLASS[body])
    return st.builds(OpResult, st.just(op), st.integers(-(2**31), 2**31 - 1), bodies)


multi_response = st.lists(ops_of(MULTI_RESULT_BODIES).flatmap(_result), max_size=4).map(
    lambda results: MultiResponse(tuple(results))
)


def mutate(data: st.DataObject, encoded: bytes) -> bytes:
    """`encoded` with one hostile change: a byte, an int put in, bytes in or out, or noise."""
    buf = bytearray(encoded)
    index = data.draw(st.integers(0, len(buf)), label="index")
    how = data.draw(st.sampled_from(["byte", "int", "insert", "delete", "noise"]), label="how")
    if how == "byte" and buf:
        buf[min(index, len(buf) - 1)] = data.draw(st.integers(0, 255))
    elif how == "int":
        value = data.draw(st.sampled_from(HOSTILE_INTS) | st.integers(-(2**31), 2**31 - 1))
        buf[index : index + 4] = struct.pack(">i", value)
    elif how == "insert":
        buf[index:index] = data.draw(st.binary(min_size=1, max_size=8))
    elif how == "delete":
        del buf[index : index + data.draw(st.integers(1, 8))]
    else:
        return bytes(data.draw(st.binary(max_size=200)))
    return bytes(buf)


def test_every_record_jute_exports_is_covered() -> None:
    records = {v for v in vars(jute).values() if isinstance(v, type) and issubclass(v, jute.Record)}
    assert records - {jute.Record, MultiRequest, MultiResponse} <= set(BY_CLASS)
    assert jute.CreateTTLRequest in BY_CLASS and Stat in BY_CLASS


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.cls.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_declared_record_round_trips_and_its_prefixes_are_refused(
    codec: Codec, data: st.DataObject
) -> None:
    value = data.draw(record_strategy(codec))
    encoded = encode(codec, value)
    assert encoded == reference_record(codec, value)
    assert codec.unpack(b"\x00\x01prefix" + encoded, 8) == (value, 8 + len(encoded))
    if isinstance(value, jute.Record):
        assert value.to_bytes() == encoded
        decoded = type(value).from_bytes(bytearray(encoded))
        assert decoded == value and repr(decoded) == repr(value)
        if not any(isinstance(getattr(value, name), list) for name, _ in codec.fields):
            assert hash(decoded) == hash(value)  # built through the slots, the same value
    for cut in range(len(encoded)):
        if cut == len(encoded) - 1 and optional_end(codec, value):
            decoded, end = codec.unpack(encoded[:cut], 0)  # an old client's handshake
            assert end == cut and getattr(decoded, codec.fields[-1][0]) is None
            continue
        with pytest.raises(JuteDecodeError):
            codec.unpack(encoded[:cut], 0)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.cls.__name__)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_mutated_bytes_give_a_record_or_a_decode_error(codec: Codec, data: st.DataObject) -> None:
    hostile = mutate(data, encode(codec, data.draw(record_strategy(codec))))
    try:
        decoded, end = codec.unpack(hostile, 0)
    except JuteDecodeError:
        return
    assert 0 < end <= len(hostile)
    again = encode(codec, decoded)  # what was read is a record like any other
    assert codec.unpack(again, 0) == (decoded, len(again))


multis = st.one_of(multi_request, multi_response)


@settings(max_examples=100, deadline=None)
@given(multis)
def test_multis_round_trip_in_zookeepers_bytes_and_every_prefix_is_refused(
    multi: MultiRequest | MultiResponse,
) -> None:
    encoded = multi.to_bytes()
    assert type(multi).unpack_from(encoded) == (multi, len(encoded))
    assert encoded.endswith(struct.pack(">i?i", -1, True, -1))  # the end marker
    if isinstance(multi, MultiRequest):
        first = [(struct.pack(">i?i", op, False, -1), body) for op, body in multi.ops]
    else:
        first = [(struct.pack(">i?i", r.type, False, r.err), r.body) for r in multi.results]
    assert b"".join(h + (b.to_bytes() if b else b"") for h, b in first) == encoded[:-9]
    for cut in range(len(encoded)):
        with pytest.raises(JuteDecodeError):
            type(multi).unpack_from(encoded[:cut])


@settings(max_examples=120, deadline=None)
@given(multis, st.data())
def test_mutated_multis_give_a_multi_or_a_decode_error(
    multi: MultiRequest | MultiResponse, data: st.DataObject
) -> None:
    try:
        decoded, _ = type(multi).unpack_from(mutate(data, multi.to_bytes()))
    except JuteDecodeError:
        return
    assert type(multi).from_bytes(decoded.to_bytes()) == decoded


def _request(op: int) -> st.SearchStrategy[bytes]:
    body = REQUEST_BODIES[op]
    if body is None:
        bodies: st.SearchStrategy[Any] = st.none()
    elif body is MultiRequest:
        bodies = multi_request
    else:
        bodies = record_strategy(BY_CLASS[body])

    def packet(xid: int, body: Any) -> bytes:
        return jute.encode_request(RequestHeader(xid, op), body)[4:]

    return st.builds(packet, st.integers(-(2**31), 2**31 - 1), bodies)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_requests_decode_by_op_code_and_hostile_ones_raise_a_decode_error(
    data: st.DataObject,
) -> None:
    op = data.draw(ops_of(REQUEST_BODIES))
    packet = data.draw(_request(op))
    header, body = jute.decode_request(packet)
    assert header.type == op
    assert (body is None) == (REQUEST_BODIES[op] is None)
    hostile = mutate(data, packet)
    try:
        header, body = jute.decode_request(hostile)
    except JuteDecodeError:
        return
    assert body is None or isinstance(body, jute.Record)
