"""A crash halfway through any disk call loses nothing that was acknowledged.

Each disk (DataDir on real files, MemoryDataDir on a MemoryDisk) runs one seeded
workload: batches of appends that roll segments, snapshots, purges. Around every
call the files are captured before and after; a crash during the call leaves
what lies between, byte by byte: an append's bytes cut at every offset (the new
segment's magic included) or followed by zeros, a snapshot's `.tmp` at every
stage, a purge with only some of its files gone. From each such state a new
server recovers: it must hold every txn of the calls that completed (they were
acknowledged), nothing that was not in the history, and a log that goes on
taking appends and recovers again to the whole history.

Then the same debris on the disks of a whole in-process ensemble, restarted.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from trio.testing import MockClock

from coord.server.core.tree import DataTree
from coord.server.core.txn import Txn
from coord.server.runtime.disk import DataDir, Storage
from coord.server.storage.records import LOG_MAGIC
from coord.server.storage.recovery import snapshot_name
from coord.server.storage.snapshot import SNAP_MAGIC, snapshot_chunks
from coord.server.testing import open_test_ensemble
from coord.server.testing.memory_disk import MemoryDataDir, MemoryDisk
from tests.server.treeutil import TxnMaker, tree_state

SEED = 20260510
SEGMENT_BYTES = 300
STRIDE = 7

Files = dict[str, bytes]


def _history() -> list[Txn]:
    maker = TxnMaker()
    maker.open_session(0x42)
    maker.create("/app")
    for i in range(16):
        maker.create(f"/app/n{i}", b"v%d" % i)
        if i % 4 == 0:
            maker.set("/app", b"w%d" % i)
        if i % 7 == 6:
            maker.delete(f"/app/n{i - 1}")
    return maker.log


HISTORY = _history()


def _trees() -> list[dict[str, Any]]:
    """tree_state after each prefix of HISTORY."""
    tree, out = DataTree(), [tree_state(DataTree())]
    for txn in HISTORY:
        tree.apply(txn)
        out.append(tree_state(tree))
    return out


TREES = _trees()


@dataclass
class Device:
    """One kind of disk: make a storage on some files, and read its files back."""

    name: str
    open: Callable[[Files], Storage]
    files: Callable[[Storage], Files]


class RealDevice:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = itertools.count()

    def open(self, files: Files) -> Storage:
        path = self.root / f"d{next(self.count)}"
        path.mkdir()
        for name, data in files.items():
            (path / name).write_bytes(data)
        return DataDir(path, fsync=False, segment_bytes=SEGMENT_BYTES)

    @staticmethod
    def files(storage: Storage) -> Files:
        assert isinstance(storage, DataDir)
        return {p.name: p.read_bytes() for p in storage.path.iterdir() if p.name != "LOCK"}


class MemoryDevice:
    @staticmethod
    def open(files: Files) -> Storage:
        return MemoryDataDir(MemoryDisk.from_files("d", files), segment_bytes=SEGMENT_BYTES)

    @staticmethod
    def files(storage: Storage) -> Files:
        assert isinstance(storage, MemoryDataDir)
        return storage.disk.files()


@pytest.fixture(params=["real", "memory"])
def device(request: pytest.FixtureRequest, tmp_path: Path) -> Device:
    if request.param == "real":
        real = RealDevice(tmp_path)
        return Device("real", real.open, real.files)
    return Device("memory", MemoryDevice.open, MemoryDevice.files)


@dataclass
class CrashPoint:
    what: str
    files: Files
    acknowledged: int
    """How many txns of HISTORY the calls completed before the crash had appended."""


def _cut_append(before: Files, after: Files, acked: int, what: str) -> Iterator[CrashPoint]:
    """An append interrupted at each byte of a new segment's magic and of the first record's
    header, then at every STRIDE-th byte; kept as it was cut, and with the rest as zeros."""
    (name,) = [n for n in after if before.get(n) != after[n]]
    old, new = before.get(name, b""), after[name]
    assert new.startswith(old)
    added = len(new) - len(old)
    strided = {*range(0, added, STRIDE), added - 1}
    for keep in sorted(strided | set(range(min(added, 20)))):
        cut = new[: len(old) + keep]
        yield CrashPoint(f"{what}, {name} cut at {len(cut)}", {**before, name: cut}, acked)
        if keep in strided:
            zeros = {**before, name: cut + b"\0" * (added - keep)}
            yield CrashPoint(f"{what}, {name} zeros from {len(cut)}", zeros, acked)


def _workload(device: Device) -> Iterator[CrashPoint]:
    """Run the workload on a new disk of `device`, yielding the crash points of each call."""
    rng = random.Random(SEED)
    storage = device.open({})
    storage.lock()
    replica = DataTree()
    done = 0
    while done < len(HISTORY):
        batch = HISTORY[done : done + rng.randint(1, 4)]
        before = device.files(storage)
        storage.append(batch)
        after = device.files(storage)
        yield from _cut_append(before, after, done, f"append #{done}")
        for txn in batch:
            replica.apply(txn)
        done += len(batch)
        if rng.random() < 0.3:
            yield from _snapshot(device, storage, replica, done)
    storage.close()
    yield CrashPoint("the end", device.files(storage), done)


def _snapshot(device: Device, storage: Storage, tree: DataTree, acked: int) -> Iterator[CrashPoint]:
    """A snapshot, then a purge, each interrupted at every stage."""
    zxid = tree.last_zxid
    data = b"".join(snapshot_chunks(tree))
    before = device.files(storage)
    temp, handle = storage.begin_snapshot(zxid)
    for keep in sorted({0, 1, len(data) // 2, len(data) - 1, len(data)}):
        files = {**before, temp.name: data[:keep]}
        yield CrashPoint(f"snapshot {zxid:#x} .tmp at {keep}", files, acked)
    handle.write(data)
    storage.finish_snapshot(zxid, temp, handle)
    written = device.files(storage)
    assert temp.name not in written and snapshot_name(zxid) in written
    removed = storage.purge(keep_snapshots=1)
    for count in range(len(removed) + 1):
        files = {n: d for n, d in written.items() if n not in {p.name for p in removed[:count]}}
        yield CrashPoint(f"purge after {zxid:#x}, {count} files gone", files, acked)


def test_a_crash_halfway_through_any_call_loses_nothing_acknowledged(device: Device) -> None:
    points = list(_workload(device))
    assert len({p.what.split(",")[0] for p in points}) > 20, "the workload rolls and snapshots"
    assert any(".tmp" in p.what for p in points) and any("gone" in p.what for p in points)
    half_made = [n for p in points for n, d in p.files.items() if len(d) < len(LOG_MAGIC)]
    assert any(name.startswith("log.") for name in half_made), "a segment's magic is cut"
    for point in points:
        storage = device.open(point.files)
        recovered = storage.recover()
        kept = len([t for t in HISTORY if t.zxid <= recovered.tree.last_zxid])
        assert kept >= point.acknowledged, point.what
        assert tree_state(recovered.tree) == TREES[kept], point.what
        assert not [n for n in device.files(storage) if n.endswith(".tmp")], point.what
        # The log goes on from what recovery kept, and a restart finds all of it.
        storage.append(HISTORY[kept:])
        again = device.open(device.files(storage)).recover()
        assert tree_state(again.tree) == TREES[-1], point.what


async def test_an_ensemble_restarts_over_crash_debris_with_every_write(
    autojump_clock: MockClock,
) -> None:
    """Every member dies mid-roll, mid-snapshot and mid-append; all acknowledged writes stay."""
    async with open_test_ensemble(3, snapshot_every=9) as ensemble:
        async with ensemble.client() as zk:
            for i in range(25):
                await zk.create(f"/kept-{i}", b"%d" % i)
        for member_id in ensemble.ids:
            await ensemble.kill(member_id)
        first, second, third = ensemble.ids
        for member_id in ensemble.ids:  # each was writing a snapshot
            last = ensemble.disk(member_id).last_zxid()
            ensemble.disk(member_id).temp_files[snapshot_name(last) + ".tmp"] = SNAP_MAGIC
        segments = ensemble.disk(first).segments  # an append torn by the crash
        segments[max(segments)] += b"\x00\x00\x01\x00\xde\xad"
        segments = ensemble.disk(second).segments  # an append cut short, then zeros
        segments[max(segments)] += b"\x00\x00\x00\x30\x12\x34" + b"\x00" * 100
        disk = ensemble.disk(third)  # a new segment whose magic was never whole
        disk.segments[disk.last_zxid() + 1] = bytearray(LOG_MAGIC[:4])
        for member_id in ensemble.ids:
            await ensemble.restart(member_id)
        await ensemble.wait_serving()
        async with ensemble.client() as zk:
            await zk.sync("/")
            assert {f"kept-{i}" for i in range(25)} <= set(await zk.get_children("/"))
            data, _stat = await zk.get("/kept-24")
            assert data == b"24"
        for member_id in ensemble.ids:
            disk = ensemble.disk(member_id)
            assert not disk.temp_files
            assert all(data.startswith(LOG_MAGIC) for data in disk.segments.values())
