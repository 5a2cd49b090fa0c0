"""The pure storage formats: records, txn codec, snapshots (including fuzzy ones)."""

from __future__ import annotations

import random

import pytest

from coord.messages import CreateMode
from coord.server.core.txn import (
    CheckTxn,
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    DeleteTxn,
    MultiTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)
from coord.server.storage.codec import TxnDecodeError, decode_txn, encode_txn, peek_zxid
from coord.server.storage.records import LOG_MAGIC, ScanEnd, encode_record, scan
from coord.server.storage.snapshot import (
    FuzzySnapshot,
    SnapshotError,
    load_snapshot,
    snapshot_chunks,
)
from tests.server.treeutil import TxnMaker, tree_state

ALL_BODIES = [
    CreateTxn("/a", b"\x00data", CreateMode.EPHEMERAL_SEQUENTIAL, 77, 0, 3),
    CreateTxn("/t", b"", CreateMode.PERSISTENT_WITH_TTL, 0, 5000, 1),
    DeleteTxn("/a", 4),
    SetDataTxn("/a", b"v", 9),
    CheckTxn("/a", 2),
    MultiTxn((CheckTxn("/a", 1), SetDataTxn("/a", b"x", 2), DeleteTxn("/b", 7))),
    CreateSessionTxn(0x1234, 4000, b"k" * 16),
    CloseSessionTxn(0x1234, True, (DeleteTxn("/e1", 3), DeleteTxn("/e2", 4))),
]


@pytest.mark.parametrize("body", ALL_BODIES, ids=lambda b: type(b).__name__)
def test_every_txn_kind_round_trips(body):
    txn = Txn(TxnHeader((5 << 32) | 17, 1_700_000_000_000, 0xABC, 42), body)
    assert decode_txn(encode_txn(txn)) == txn


def test_garbage_is_a_decode_error():
    with pytest.raises(TxnDecodeError):
        decode_txn(b"\xc1")
    with pytest.raises(TxnDecodeError):
        decode_txn(encode_record(b"x"))


def _log_bytes(payloads: list[bytes]) -> bytes:
    return LOG_MAGIC + b"".join(encode_record(p) for p in payloads)


def test_records_round_trip():
    payloads = [b"", b"a", b"x" * 70000, bytes(range(256))]
    result = scan(_log_bytes(payloads), len(LOG_MAGIC))
    assert result.end is ScanEnd.CLEAN
    assert [p for _, p in result.records] == payloads


def test_torn_tail_at_every_byte_offset_of_the_last_record():
    payloads = [b"first record", b"second", b"the last record, cut anywhere"]
    data = _log_bytes(payloads)
    last_start = len(data) - len(encode_record(payloads[-1]))
    for cut in range(last_start + 1, len(data)):
        result = scan(data[:cut], len(LOG_MAGIC))
        assert result.end is ScanEnd.TORN, cut
        assert result.offset == last_start, cut
        assert [p for _, p in result.records] == payloads[:-1]
    assert scan(data[:last_start], len(LOG_MAGIC)).end is ScanEnd.CLEAN


def test_zero_filled_tail_is_torn_not_corrupt():
    data = _log_bytes([b"one", b"two"])
    result = scan(data + b"\x00" * 4096, len(LOG_MAGIC))
    assert result.end is ScanEnd.TORN and result.offset == len(data)


def test_an_append_cut_anywhere_then_zero_filled_is_torn_at_its_first_damaged_record():
    """A crash can leave the file grown by the whole append with only a prefix of its
    bytes on the disk: the rest reads as zeros."""
    synced = [b"acknowledged"]
    batch = [b"second", b"the third record", b"x" * 300]
    before = _log_bytes(synced)
    data = _log_bytes(synced + batch)
    starts = [len(_log_bytes(synced + batch[:i])) for i in range(len(batch))]
    for cut in range(len(before), len(data)):
        zeroed = data[:cut] + b"\x00" * (len(data) - cut)
        result = scan(zeroed, len(LOG_MAGIC))
        assert result.end is ScanEnd.TORN, cut
        whole = [p for _, p in result.records]
        assert whole == (synced + batch)[: len(whole)] and len(whole) >= len(synced), cut
        assert result.offset == ([*starts, len(data)])[len(whole) - len(synced)], cut


def test_a_crc_flip_in_the_last_record_is_corrupt_unless_zeros_end_it():
    data = bytearray(_log_bytes([b"one", b"two!"]))
    data[-2] ^= 0x01  # bit rot, not a crash: the record still ends in a non-zero byte
    assert scan(bytes(data), len(LOG_MAGIC)).end is ScanEnd.CORRUPT
    data[-1] = 0
    assert scan(bytes(data + b"\x00" * 9), len(LOG_MAGIC)).end is ScanEnd.TORN
    assert scan(bytes(data + b"\x00\x01"), len(LOG_MAGIC)).end is ScanEnd.CORRUPT


def test_crc_flip_in_the_middle_is_corrupt_and_names_the_offset():
    payloads = [b"one", b"two", b"three"]
    data = bytearray(_log_bytes(payloads))
    second = len(LOG_MAGIC) + len(encode_record(b"one"))
    data[second + 8] ^= 0x01  # flip a bit of the second record's payload
    result = scan(bytes(data), len(LOG_MAGIC))
    assert result.end is ScanEnd.CORRUPT
    assert result.offset == second
    assert "CRC mismatch" in result.reason
    assert [p for _, p in result.records] == [b"one"]


def _sample_tree() -> TxnMaker:
    maker = TxnMaker()
    maker.open_session(0x99)
    maker.create("/app", b"root")
    maker.create("/app/cfg", b"x" * 100)
    maker.create("/app/eph", b"", CreateMode.EPHEMERAL, session_id=0x99)
    maker.create("/app/seq-", b"", CreateMode.PERSISTENT_SEQUENTIAL)
    maker.create("/box", b"", CreateMode.CONTAINER)
    maker.create("/ttl", b"", CreateMode.PERSISTENT_WITH_TTL, ttl_ms=1000)
    maker.set("/app/cfg", b"y")
    return maker


def test_snapshot_round_trip():
    tree = _sample_tree().tree
    loaded = load_snapshot(b"".join(snapshot_chunks(tree, batch=2)))
    assert tree_state(loaded.tree) == tree_state(tree)
    assert loaded.zxid == tree.last_zxid


def test_unfinished_or_damaged_snapshot_is_refused():
    data = b"".join(snapshot_chunks(_sample_tree().tree, batch=2))
    with pytest.raises(SnapshotError, match="footer"):
        # drop the footer record entirely
        chunks = list(snapshot_chunks(_sample_tree().tree, batch=2))
        load_snapshot(b"".join(chunks[:-1]))
    with pytest.raises(SnapshotError, match="torn"):
        load_snapshot(data[:-3])
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    with pytest.raises(SnapshotError):
        load_snapshot(bytes(damaged))


@pytest.mark.parametrize("seed", range(30))
def test_fuzzy_snapshot_plus_replay_equals_the_live_tree(seed):
    """Writes run between the snapshot's batches; replaying the log after its zxid fixes it."""
    rng = random.Random(seed)
    maker = TxnMaker()
    names = [f"/n{i}" for i in range(12)]
    maker.create("/n0")

    def mutate() -> None:
        for _ in range(rng.randint(1, 6)):
            existing = [p for p in maker.tree.nodes if p != "/"]
            choice = rng.random()
            if choice < 0.4:
                parent = rng.choice(["/", *existing])
                path = (parent.rstrip("/") + "/" + rng.choice(names)[1:])[:60]
                if path not in maker.tree.nodes and path.count("/") <= 4:
                    maker.create(path, rng.randbytes(3))
            elif choice < 0.7 and existing:
                maker.set(rng.choice(existing), rng.randbytes(4))
            elif existing:
                leaves = [p for p in existing if not maker.tree.nodes[p].children]
                if leaves:
                    maker.delete(rng.choice(leaves))

    for _ in range(20):
        mutate()
    snapshot = FuzzySnapshot(maker.tree, batch=2)
    start_zxid = snapshot.zxid
    parts = []
    for chunk in snapshot.chunks():
        mutate()
        parts.append(chunk)
    loaded = load_snapshot(b"".join(parts))
    assert loaded.zxid == start_zxid
    for txn in maker.log:
        if txn.zxid > start_zxid:
            loaded.tree.apply(txn)
    assert tree_state(loaded.tree) == tree_state(maker.tree)


def test_session_close_replayed_over_a_snapshot_that_already_holds_it():
    maker = _sample_tree()
    before = maker.tree.last_zxid
    maker.close_session(0x99)
    loaded = load_snapshot(b"".join(snapshot_chunks(maker.tree)))
    loaded.tree.last_zxid = before  # pretend the snapshot started before the close
    for txn in maker.log:
        if txn.zxid > before:
            loaded.tree.apply(txn)
    assert tree_state(loaded.tree) == tree_state(maker.tree)


def test_peek_zxid_agrees_with_a_full_decode():
    for body in ALL_BODIES:
        for zxid in [(1 << 32) | 1, (7 << 32) | 123456, (1 << 62) + 5]:
            txn = Txn(TxnHeader(zxid, 1, 2, 3), body)
            assert peek_zxid(encode_txn(txn)) == zxid
    assert peek_zxid(b"\x01") is None
