"""Start-up recovery as one pure function: every case of coord.server.storage.recovery, as a table.

Each row is a data directory (file name -> bytes) and what `plan_recovery` must
decide for it: the snapshot, the txns replayed after it, the files truncated or
deleted, the files it must not even read, or the error that stops start-up. The
same rows then run through both disks (real files, and the in-memory disk of the
test ensemble): they must come out with the same tree and the same files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coord.messages import CreateMode
from coord.server.core.tree import DataTree
from coord.server.core.txn import CreateTxn, Txn, TxnHeader
from coord.server.runtime.disk import DataDir, StorageError
from coord.server.storage.codec import encode_txn
from coord.server.storage.records import HEADER, LOG_MAGIC, MAX_RECORD_SIZE, encode_record
from coord.server.storage.recovery import (
    DiskFiles,
    plan_recovery,
    replay,
    segment_name,
    snapshot_name,
    zxid_in_name,
)
from coord.server.storage.snapshot import snapshot_chunks
from coord.server.testing.memory_disk import MemoryDataDir, MemoryDisk
from tests.server.treeutil import tree_state


def _zxid(epoch: int, counter: int) -> int:
    return epoch << 32 | counter


def _txn(zxid: int, xid: int = 0) -> Txn:
    return Txn(
        TxnHeader(zxid, 1000, 0x42 if xid else 0, xid),
        CreateTxn(f"/n{zxid:x}", b"v", CreateMode.PERSISTENT, 0, 0, 1),
    )


Z = [_zxid(1, counter) for counter in range(1, 13)]
"""Twelve txns of epoch 1: the history most rows store."""


def _records(zxids: list[int]) -> bytes:
    return b"".join(encode_record(encode_txn(_txn(z))) for z in zxids)


def _segment(zxids: list[int], tail: bytes = b"") -> bytes:
    return LOG_MAGIC + _records(zxids) + tail


def _snapshot(zxids: list[int], *, finished: bool = True) -> bytes:
    tree = DataTree()
    for zxid in zxids:
        tree.apply(_txn(zxid))
    chunks = list(snapshot_chunks(tree))
    return b"".join(chunks if finished else chunks[:-1])


def _offset_of(zxids: list[int], index: int) -> int:
    """Where the record of zxids[index] starts in _segment(zxids)."""
    return len(LOG_MAGIC) + len(_records(zxids[:index]))


A, B, C = Z[0:4], Z[4:8], Z[8:12]
LOG = {segment_name(A[0]): _segment(A), segment_name(B[0]): _segment(B),
       segment_name(C[0]): _segment(C)}  # fmt: skip
A_NAME, B_NAME, C_NAME = (segment_name(s[0]) for s in (A, B, C))
NEXT = segment_name(_zxid(1, 13))
"""A segment being created after the twelve."""
SNAP5, SNAP9 = snapshot_name(Z[5]), snapshot_name(Z[9])


def _flipped(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x40
    return bytes(out)


@dataclass
class Case:
    id: str
    files: dict[str, bytes]
    replayed: list[int] = field(default_factory=list)
    snapshot: str | None = None
    changes: dict[str, int | None] = field(default_factory=dict)
    """name -> the size it is truncated to, or None: deleted."""
    lost: int = 0
    forced: bool = False
    not_read: set[str] = field(default_factory=set)
    skipped: int = 0
    truncate_corrupt: bool = False
    error: str | None = None


C_TORN = _segment(C)[:-3]
C_FLIPPED = _flipped(_segment(C), _offset_of(C, 1) + HEADER.size + 2)
C_LAST = _offset_of(C, 3)
C_ZEROED = _segment(C)[: C_LAST + HEADER.size + 3] + bytes(
    len(_segment(C)) - C_LAST - HEADER.size - 3
)
OVERSIZED = HEADER.pack(MAX_RECORD_SIZE + 1, 0) + b"x" * 20

CASES = [
    Case("an empty directory starts the empty tree", {}),
    Case("one segment replays whole", {A_NAME: _segment(Z)}, replayed=Z),
    Case("three segments replay in order", dict(LOG), replayed=Z),
    Case("a snapshot, then the log after it; a segment wholly before it is not read",
         {SNAP5: _snapshot(Z[:6]), **LOG}, snapshot=SNAP5, replayed=Z[6:], not_read={A_NAME}),
    Case("a snapshot newer than the whole log: the last segment is still read",
         {snapshot_name(Z[11]): _snapshot(Z), **LOG}, snapshot=snapshot_name(Z[11]),
         not_read={A_NAME, B_NAME}),
    Case("the log before the snapshot was purged", {SNAP5: _snapshot(Z[:6]),
         B_NAME: _segment(B), C_NAME: _segment(C)}, snapshot=SNAP5, replayed=Z[6:]),
    Case("an unfinished newest snapshot: the one before it is used",
         {SNAP5: _snapshot(Z[:6]), SNAP9: _snapshot(Z[:10], finished=False), **LOG},
         snapshot=SNAP5, replayed=Z[6:], skipped=1),
    Case("a snapshot that says another zxid than its name is skipped",
         {SNAP9: _snapshot(Z[:6]), **LOG}, replayed=Z, skipped=1),
    Case("leftover .tmp files are deleted unread",
         {snapshot_name(Z[9]) + ".tmp": b"half a snapshot", "epochs.tmp": b"3", **LOG},
         replayed=Z, changes={snapshot_name(Z[9]) + ".tmp": None, "epochs.tmp": None},
         not_read={snapshot_name(Z[9]) + ".tmp", "epochs.tmp"}),
    Case("other files are left alone and unread",
         {"LOCK": b"123", "epochs": b"1 1\n", "log.bak": b"?", "snapshot.old": b"?", **LOG},
         replayed=Z, not_read={"LOCK", "epochs", "log.bak", "snapshot.old"}),
    Case("a torn tail in the last segment is cut at its last whole record",
         {**LOG, C_NAME: C_TORN}, replayed=Z[:11], changes={C_NAME: _offset_of(C, 3)},
         lost=len(C_TORN) - _offset_of(C, 3)),
    Case("a zero-filled tail is torn, not corrupt",
         {**LOG, C_NAME: _segment(C, b"\0" * 100)}, replayed=Z,
         changes={C_NAME: len(_segment(C))}, lost=100),
    *(
        Case(f"a new segment whose magic was never whole is deleted ({what})",
             {**LOG, NEXT: data}, replayed=Z, changes={NEXT: None}, lost=len(data))
        for what, data in [
            ("empty", b""),
            ("a few bytes", LOG_MAGIC[:5]),
            ("all but its last byte", LOG_MAGIC[:-1]),
            ("a prefix, then zeros", LOG_MAGIC[:3] + b"\0" * 7),
            ("zero-filled", b"\0" * 4096),
        ]
    ),
    Case("a half-written magic in an earlier segment stops start-up",
         {**LOG, B_NAME: LOG_MAGIC[:5]}, error="bad magic at offset 0"),
    Case("a last segment that is not a log stops start-up",
         {**LOG, NEXT: b"this is not a log segment"}, error="not a log segment"),
    Case("an empty segment (its one record torn and cut) before later ones is fine",
         {**LOG, segment_name(_zxid(2, 1)): LOG_MAGIC,
          segment_name(_zxid(3, 1)): _segment([_zxid(3, 1)])}, replayed=[*Z, _zxid(3, 1)]),
    Case("a torn tail in an earlier segment is corruption",
         {**LOG, B_NAME: _segment(B)[:-3]}, error="--truncate-corrupt-log"),
    Case("... which the operator may truncate: the log ends there",
         {**LOG, B_NAME: _segment(B)[:-3]}, truncate_corrupt=True, replayed=Z[:7],
         changes={B_NAME: _offset_of(B, 3), C_NAME: None}, forced=True,
         lost=len(_segment(B)) - 3 - _offset_of(B, 3) + len(_segment(C))),
    Case("an append only partly on the disk (the rest zeros) is a torn tail",
         {**LOG, C_NAME: C_ZEROED}, replayed=Z[:11], changes={C_NAME: C_LAST},
         lost=len(C_ZEROED) - C_LAST),
    Case("a bad CRC in the last record, ending in a non-zero byte, is corruption",
         {**LOG, C_NAME: _flipped(_segment(C), C_LAST + HEADER.size + 2)}, error="CRC mismatch"),
    Case("a bad CRC with records after it stops start-up, naming file and offset",
         {**LOG, C_NAME: C_FLIPPED}, error=rf"{C_NAME} at offset {_offset_of(C, 1)}: CRC"),
    Case("... which the operator may truncate",
         {**LOG, C_NAME: C_FLIPPED}, truncate_corrupt=True, replayed=Z[:9],
         changes={C_NAME: _offset_of(C, 1)}, forced=True,
         lost=len(C_FLIPPED) - _offset_of(C, 1)),
    Case("a record length over the limit is corrupt",
         {**LOG, C_NAME: _segment(C, OVERSIZED)}, error="over the limit"),
    Case("a txn that does not decode stops start-up even when truncation is allowed",
         {**LOG, C_NAME: _segment(C, encode_record(b"\xc1"))}, truncate_corrupt=True,
         error="undecodable txn"),
    Case("a missing middle segment is a gap",
         {A_NAME: _segment(A), C_NAME: _segment(C)}, error=r"does not follow .* missing"),
    Case("a log that starts after the empty tree is a gap",
         {B_NAME: _segment(B), C_NAME: _segment(C)}, error="missing from the log"),
    Case("the only snapshot is damaged and the log before it was purged: a gap",
         {SNAP5: _snapshot(Z[:6], finished=False), B_NAME: _segment(B),
          C_NAME: _segment(C)}, error="missing from the log"),
    Case("a later epoch begins at counter 1",
         {**LOG, segment_name(_zxid(2, 1)): _segment([_zxid(2, 1), _zxid(2, 2)])},
         replayed=[*Z, _zxid(2, 1), _zxid(2, 2)]),
    Case("a later epoch that begins past counter 1 is a gap",
         {**LOG, segment_name(_zxid(2, 2)): _segment([_zxid(2, 2)])},
         error="missing from the log"),
    Case("a segment named after another txn than its first",
         {A_NAME: _segment(A), segment_name(Z[3]): _segment(B)}, error="its name says"),
    Case("a log that goes back is out of order",
         {**LOG, C_NAME: _segment([*C, C[2]])}, error="out of order"),
    Case("epoch-0 zxids (no fast peek) over a snapshot",
         {snapshot_name(3): _snapshot([1, 2, 3]), segment_name(1): _segment([1, 2, 3, 4, 5])},
         snapshot=snapshot_name(3), replayed=[4, 5]),
]  # fmt: skip


class ReadRecorder(Mapping[str, bytes]):
    """A case's files, noting which ones recovery reads."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> bytes:
        self.read.add(name)
        return self.files[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_plan(case: Case) -> None:
    files = ReadRecorder(case.files)
    if case.error is not None:
        with pytest.raises(StorageError, match=case.error):
            plan_recovery(files, truncate_corrupt=case.truncate_corrupt)
        return
    plan = plan_recovery(files, truncate_corrupt=case.truncate_corrupt)
    assert plan.snapshot_name == case.snapshot
    assert plan.snapshot.zxid == _snapshot_zxid(case)
    assert [txn.zxid for txn in plan.txns] == case.replayed
    assert {change.name: change.size for change in plan.changes} == case.changes
    assert plan.truncated_bytes == case.lost
    assert all(change.forced == case.forced for change in plan.changes if change.lost)
    assert len(plan.skipped_snapshots) == case.skipped
    assert not files.read & case.not_read


def test_replay_builds_the_tree_and_its_table_of_client_writes() -> None:
    files = {segment_name(Z[0]): LOG_MAGIC + b"".join(
        encode_record(encode_txn(_txn(z, xid=index % 2))) for index, z in enumerate(Z[:4])
    )}  # fmt: skip
    recovered = replay(plan_recovery(files))
    assert recovered.tree.last_zxid == Z[3] and recovered.replayed == 4
    assert {f"/n{z:x}" for z in Z[:4]} <= set(recovered.tree.nodes)
    recorded = recovered.tree.write_results.get(0x42, 1)  # xid 1 at Z[1], then again at Z[3]
    assert recorded is not None and recorded[0] == Z[3] and len(recovered.tree.write_results) == 1
    assert recovered.snapshot_zxid == 0 and recovered.truncated_bytes == 0


def test_disk_files_reads_only_what_is_asked_for() -> None:
    reads: list[str] = []
    files = DiskFiles(["b", "a", "a"], lambda name: reads.append(name) or name.encode())
    assert list(files) == ["a", "b"] and len(files) == 2 and reads == []
    assert files["b"] == b"b" and reads == ["b"]
    with pytest.raises(KeyError):
        files["c"]


@pytest.mark.parametrize(
    ("name", "prefix", "zxid"),
    [("log.00000001000000ff", "log.", 0x1000000FF), ("log.", "log.", None),
     ("log.1.tmp", "log.", None), ("snapshot.ff", "log.", None), ("log.-1", "log.", None),
     ("log. 1", "log.", None), ("snapshot.0a", "snapshot.", 10)],
)  # fmt: skip
def test_zxid_in_name(name: str, prefix: str, zxid: int | None) -> None:
    assert zxid_in_name(name, prefix) == zxid


# -- the same rows through both disks ------------------------------------------------------


def _held(name: str) -> bool:
    """Whether a memory disk can hold a file of this name (it has no LOCK or notes)."""
    return name.endswith(".tmp") or any(
        zxid_in_name(name, p) is not None for p in ("log.", "snapshot.")
    )


def _real_files(path: Path) -> dict[str, bytes]:
    return {entry.name: entry.read_bytes() for entry in path.iterdir()}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_both_disks_carry_out_the_same_plan(case: Case, tmp_path: Path) -> None:
    for name, data in case.files.items():
        (tmp_path / name).write_bytes(data)
    memory = MemoryDisk.from_files("d", {n: d for n, d in case.files.items() if _held(n)})
    representable = memory.files()
    real_disk, memory_disk = DataDir(tmp_path, fsync=False), MemoryDataDir(memory)
    if case.error is not None:
        for storage in (real_disk, memory_disk):
            with pytest.raises(StorageError, match=case.error):
                storage.recover(truncate_corrupt=case.truncate_corrupt)
        assert _real_files(tmp_path) == case.files, "a failed start-up changes nothing"
        assert memory.files() == representable
        return
    real = real_disk.recover(truncate_corrupt=case.truncate_corrupt)
    virtual = memory_disk.recover(truncate_corrupt=case.truncate_corrupt)
    assert tree_state(real.tree) == tree_state(virtual.tree)
    assert real.tree.last_zxid == (case.replayed[-1] if case.replayed else _snapshot_zxid(case))
    assert (real.replayed, real.truncated_bytes) == (len(case.replayed), case.lost)
    assert (virtual.replayed, virtual.truncated_bytes) == (len(case.replayed), case.lost)
    expected = _files_after(case)
    assert _real_files(tmp_path) == expected
    assert memory.files() == {n: d for n, d in expected.items() if n in representable}


def _snapshot_zxid(case: Case) -> int:
    return zxid_in_name(case.snapshot, "snapshot.") or 0 if case.snapshot else 0


def _files_after(case: Case) -> dict[str, bytes]:
    """The case's files once its changes are made."""
    out = {}
    for name, data in case.files.items():
        if name not in case.changes:
            out[name] = data
        elif (size := case.changes[name]) is not None:
            out[name] = data[:size]
    return out
