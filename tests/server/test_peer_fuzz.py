"""Generated and mutated peer messages at the boundary: only PeerDecodeError comes out.

Hypothesis builds valid messages (then mutates one field of their wire form)
and arbitrary msgpack values; `decode_message` must either return a message
or raise PeerDecodeError, and a message it returns must encode again to the
same wire value (so what the core sees is exactly what was checked).
The same goes for the byte stream reader (frames, then fragments).
"""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from coord.errors import ProtocolError
from coord.server.config import EnsembleSpec, MemberSpec
from coord.server.runtime.peers import PeerStream
from coord.server.zab.codec import FragmentBudget, PeerDecodeError, decode_message, encode_message

MEMBERS = frozenset({1, 2, 3})
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
member = st.sampled_from([1, 2, 3])
weird = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.sampled_from([2**32, 2**32 + 5, 2**64, -1, 999999, 0, "/", "/a", "looking"]),
)
msgpack_value = st.recursive(
    weird,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=20,
)


def _txn(epoch: int, counter: int) -> list[Any]:
    return [epoch << 32 | counter, 1, 7, 1, [1, f"/n{counter}", b"d", 0, 0, 0, counter]]


valid = st.one_of(
    st.builds(lambda e, z, who, r, s, se: [1, e, z, who, r, s, se], u32, u64, member,
              st.integers(0, 2**40), st.sampled_from(["looking", "following", "leading"]), u32),
    st.builds(lambda e, z, o: [2, e, z, o], u32, u64, st.booleans()),
    st.builds(lambda e: [3, e], u32),
    st.builds(lambda e, c, z: [4, e, c, z], u32, u32, u64),
    st.builds(lambda e, n: [8, e, [_txn(e, i + 1) for i in range(n)]], st.integers(1, 2**32 - 1),
              st.integers(0, 3)),
    st.builds(lambda e, z: [10, e, z], u32, u64),
    st.builds(lambda e, z: [12, e, z], u32, u64),
    st.builds(lambda o, s, p: [20, o, s, 1, 1, {"path": "/x"}, [["digest", "a:b"]], p], member, u64,
              u32),
    st.builds(lambda ids: [22, ids], st.lists(u64, max_size=5)),
)  # fmt: skip


def _mutate(value: list[Any], where: int, what: Any) -> list[Any]:
    out = list(value)
    out[where % len(out)] = what
    return out


def _check(value: Any) -> None:
    try:
        message = decode_message(value, MEMBERS)
    except PeerDecodeError:
        return
    again = msgpack.unpackb(msgpack.packb(encode_message(message)), raw=False)
    assert again == value


@settings(max_examples=400, deadline=None)
@given(valid)
def test_valid_messages_decode_and_round_trip(value):
    message = decode_message(value, MEMBERS)
    assert msgpack.unpackb(msgpack.packb(encode_message(message)), raw=False) == value


@settings(max_examples=1500, deadline=None)
@given(valid, st.integers(0, 10), weird)
def test_mutated_messages_decode_or_raise_the_decode_error(value, where, what):
    _check(_mutate(value, where, what))


@settings(max_examples=800, deadline=None)
@given(msgpack_value)
def test_arbitrary_values_decode_or_raise_the_decode_error(value):
    _check(value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(valid, max_size=3))
def test_a_byte_stream_of_garbage_raises_only_the_boundary_errors(noise, values):
    spec = EnsembleSpec(member=[MemberSpec(id=i, client_port=0, peer_port=0) for i in (1, 2, 3)])
    reader = PeerStream(spec, FragmentBudget(1 << 20))
    stream = b"".join(len(b).to_bytes(4, "big") + b for b in (msgpack.packb(v) for v in values))
    try:
        reader.receive_data(stream + noise)
        reader.messages()
    except (PeerDecodeError, ProtocolError):
        pass
