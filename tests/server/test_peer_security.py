"""Peer messages are checked at the boundary; big ones travel in fragments.

Attack A: a LeaderInfo with an epoch past 32 bits reached the ZAB core, was
saved in the epochs file, and killed the next leader when it proposed. The
codec now refuses it (and every other out-of-range field) before the core sees
it. A LeaderInfo with an epoch in range but absurdly ahead (999999) made a
follower stop taking its leader's messages while it kept serving; now an
epoch that leaps more than MAX_EPOCH_LEAP past what the follower knows is
never saved, and the follower looks for its leader again.
"""

from __future__ import annotations

import logging

import msgpack
import pytest

from coord.server.config import EnsembleSpec, MemberSpec
from coord.server.core.txn import CreateTxn, Txn, TxnHeader
from coord.server.runtime.peers import PeerStream
from coord.server.storage.codec import txn_to_list
from coord.server.testing import open_test_ensemble
from coord.server.zab.codec import (
    FragmentBudget,
    PeerDecodeError,
    Reassembler,
    decode_message,
    encode_message,
    encode_wire,
)
from coord.server.zab.messages import (
    AckEpoch,
    FollowerInfo,
    LeaderInfo,
    Notification,
    Proposal,
    Role,
    Sync,
    SyncMode,
    Vote,
)

MEMBERS = frozenset({1, 2, 3})


def _spec(**kwargs: object) -> EnsembleSpec:
    members = [MemberSpec(id=i, client_port=0, peer_port=0) for i in (1, 2, 3)]
    return EnsembleSpec(member=members, **kwargs)  # type: ignore[arg-type]


def _txn(zxid: int, path: str = "/a", data: bytes | None = b"x") -> list[object]:
    return txn_to_list(Txn(TxnHeader(zxid, 1, 1, 1), CreateTxn(path, data, 0, 0, 0, 1)))  # type: ignore[arg-type]


# -- attack A at the codec ------------------------------------------------------------


def test_a_leader_info_with_an_epoch_past_32_bits_is_refused():
    with pytest.raises(PeerDecodeError, match="epoch"):
        decode_message([3, 2**32 + 5], MEMBERS)
    assert decode_message([3, 2**32 - 1], MEMBERS) == LeaderInfo(2**32 - 1)


@pytest.mark.parametrize(
    "value",
    [
        [3, -1],
        [3, True],  # a bool is not an epoch
        [3, 1.0],
        [3, "1"],
        [3],
        [3, 1, 2],
        [2, 1, 2**64, False],  # a zxid past 64 bits
        [2, 1, 0, 1],  # observer must be a bool
        [4, 1, 1, -2],  # only -1 (SNAP please) is below zero
        [1, 1, 0, 9, 1, "looking", 0],  # a vote for a stranger
        [1, 1, 0, 1, 1, "king", 0],
        [8, 1, [_txn(2 << 32 | 1)]],  # a txn from an epoch after the proposal's
        [8, 1, [_txn(1 << 32 | 2), _txn(1 << 32 | 1)]],  # out of order
        [8, 1, [_txn(1 << 32 | 1, path="a")]],  # not a path
        [8, 1, [_txn(1 << 32 | 1, data=b"x" * (2 << 20))]],  # over the data limit
        [8, 1, [[1 << 32 | 1, 0, 0, 0, [1, "/a", b"", 0, 0, 0, 1, [[31, {}, "x"]]]]]],
        [20, 9, 1, 1, 1, {}, [], 0],  # forwarded "from" a stranger
        [20, 1, 1, 1, -10, "not a session", [], 0],
        [22, [1, "2"]],
        [99, 1],
        "hello",
        [],
        {"hello": 1},
    ],
)
def test_out_of_range_messages_are_refused(value):
    with pytest.raises(PeerDecodeError):
        decode_message(value, MEMBERS)


def test_valid_messages_round_trip():
    messages = [
        Notification(Vote(3, 3 << 32 | 7, 2), 5, Role.LEADING, 3),
        FollowerInfo(4, 4 << 32 | 1, True),
        AckEpoch(5, 4, -1),
        Proposal(5, (Txn(TxnHeader(5 << 32 | 1, 1, 1, 1), CreateTxn("/a", None, 0, 0, 0, 1)),)),  # type: ignore[arg-type]
    ]
    for message in messages:
        wire = msgpack.unpackb(msgpack.packb(encode_message(message)), raw=False)
        assert decode_message(wire, MEMBERS) == message


# -- fragments ------------------------------------------------------------------------


def test_a_snapshot_bigger_than_a_frame_travels_in_fragments_and_comes_back_whole():
    snapshot = bytes(range(256)) * (12 * 4096)  # 12 MiB
    sync = Sync(7, SyncMode.SNAP, 0, 7 << 32 | 3, (), 7 << 32 | 3, snapshot)
    spec = _spec(peer_max_frame_bytes=1 << 20)
    frames = encode_wire(sync, spec.peer_max_frame_bytes)
    assert len(frames) >= 12
    assert all(len(frame) - 4 <= spec.peer_max_frame_bytes for frame in frames)
    reader = PeerStream(spec, FragmentBudget(spec.peer_max_message_bytes))
    got = []
    for frame in frames:
        reader.receive_data(frame)
        got.extend(reader.messages())
    assert got == [sync]


def test_fragments_over_the_budget_are_refused_and_their_bytes_given_back():
    budget = FragmentBudget(3 << 20)
    frames = encode_wire(LeaderInfo(1), 1 << 20)
    assert len(frames) == 1
    big = Sync(1, SyncMode.SNAP, 0, 0, (), 0, b"\0" * (5 << 20))
    reassembler = Reassembler(budget)
    with pytest.raises(PeerDecodeError, match="budget"):
        for frame in encode_wire(big, 1 << 20):
            reassembler.add(msgpack.unpackb(frame[4:], raw=False))
    assert budget.used == 0


def test_fragments_out_of_order_are_refused():
    frames = encode_wire(Sync(1, SyncMode.SNAP, 0, 0, (), 0, b"\0" * (3 << 20)), 1 << 20)
    reassembler = Reassembler(FragmentBudget(1 << 30))
    with pytest.raises(PeerDecodeError, match="expected 0"):
        reassembler.add(msgpack.unpackb(frames[1][4:], raw=False))


async def test_a_follower_far_behind_gets_a_snapshot_bigger_than_a_frame(autojump_clock, caplog):
    caplog.set_level(logging.INFO)
    async with open_test_ensemble(3, snapshot_every=4) as ensemble:
        leader = await ensemble.wait_for_leader()
        behind = next(m for m in ensemble.ids if m != leader)
        others = [m for m in ensemble.ids if m != behind]
        await ensemble.kill(behind)
        async with ensemble.client(others) as zk:
            for i in range(12):  # 12 MiB of data: over the 8 MiB frame limit
                await zk.create(f"/big-{i}", bytes([i]) * ((1 << 20) - 64))
        # Restarted from their snapshots, the others' history windows start after
        # everything `behind` lacks: it can only be synced with a SNAP.
        for member in others:
            await ensemble.kill(member)
        for member in others:
            await ensemble.start(member)
        await ensemble.wait_for_leader()
        await ensemble.start(behind)
        await ensemble.wait_serving(behind)
        async with ensemble.client([behind]) as zk:
            for i in (0, 11):
                data, _ = await zk.get(f"/big-{i}")
                assert data == bytes([i]) * ((1 << 20) - 64)
    assert any("installed the leader's snapshot" in r.getMessage() for r in caplog.records)


# -- the absurd epoch -----------------------------------------------------------------


async def test_a_leader_info_far_ahead_does_not_wedge_a_follower(autojump_clock):
    async with open_test_ensemble(3) as ensemble:
        leader = await ensemble.wait_for_leader()
        follower = next(m for m in ensemble.ids if m != leader)
        zab = ensemble.member(follower).zab
        assert zab is not None
        zab.receive(leader, LeaderInfo(999999))  # as a forged hello made it arrive
        assert not zab.serving
        assert zab.epoch_leaps_refused == 1  # never saved: it looks for a leader again
        await ensemble.wait_serving(follower)
        zab = ensemble.member(follower).zab
        assert zab is not None and zab.state.accepted_epoch < 999999
        async with ensemble.client([follower]) as zk:
            await zk.create("/after", b"ok")
            assert (await zk.get("/after", linearizable=True))[0] == b"ok"
