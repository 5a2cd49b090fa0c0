"""The data directory on a real filesystem: segments, recovery, truncation, purge, lock."""

from __future__ import annotations

import logging

import pytest

from coord.messages import CreateMode
from coord.server.runtime.disk import DataDir, DataDirLocked, StorageError
from coord.server.storage.snapshot import snapshot_chunks
from tests.server.treeutil import TxnMaker, tree_state


def _history(count: int) -> TxnMaker:
    maker = TxnMaker()
    maker.open_session(0x42)
    maker.create("/app")
    for i in range(count):
        maker.create(f"/app/n{i}", b"v%d" % i)
        if i % 3 == 0:
            maker.set(f"/app/n{i}", b"w%d" % i)
    maker.create("/app/eph", b"", CreateMode.EPHEMERAL, session_id=0x42)
    return maker


def test_append_then_recover_gives_the_same_tree(tmp_path):
    maker = _history(50)
    disk = DataDir(tmp_path, fsync=True)
    disk.lock()
    for start in range(0, len(maker.log), 7):
        disk.append(maker.log[start : start + 7])
    disk.close()
    recovered = DataDir(tmp_path).recover()
    assert tree_state(recovered.tree) == tree_state(maker.tree)
    assert recovered.replayed == len(maker.log)


def test_read_from_any_zxid_across_segment_boundaries(tmp_path):
    maker = _history(60)
    disk = DataDir(tmp_path, fsync=False, segment_bytes=1024)
    for txn in maker.log:
        disk.append([txn])
    assert len(disk.segments()) > 3
    zxids = [t.zxid for t in maker.log]
    for after in [0, zxids[0], zxids[10], zxids[37], zxids[-2], zxids[-1]]:
        assert [t.zxid for t in disk.read_from(after)] == [z for z in zxids if z > after]


def test_truncate_after_any_zxid(tmp_path):
    maker = _history(40)
    zxids = [t.zxid for t in maker.log]
    for cut in [zxids[0], zxids[15], zxids[-2]]:
        directory = tmp_path / f"cut-{cut:x}"
        disk = DataDir(directory, fsync=False, segment_bytes=512)
        for txn in maker.log:
            disk.append([txn])
        removed = disk.truncate_after(cut)
        assert removed == len([z for z in zxids if z > cut])
        assert [t.zxid for t in disk.read_from(0)] == [z for z in zxids if z <= cut]
        disk.append([maker.log[zxids.index(cut) + 1]])  # the log goes on after a truncate
        assert [t.zxid for t in DataDir(directory).read_from(cut)] == [zxids[zxids.index(cut) + 1]]


def test_torn_tail_is_truncated_with_a_warning(tmp_path, caplog):
    maker = _history(10)
    disk = DataDir(tmp_path, fsync=False)
    disk.append(maker.log[:-1])
    disk.append(maker.log[-1:])
    disk.close()
    (segment,) = [p for _, p in disk.segments()]
    data = segment.read_bytes()
    segment.write_bytes(data[:-5])  # the last record loses its last bytes
    with caplog.at_level(logging.WARNING):
        recovered = DataDir(tmp_path).recover()
    assert "torn tail" in caplog.text and str(segment) in caplog.text
    assert recovered.tree.last_zxid == maker.log[-2].zxid
    assert recovered.truncated_bytes > 0
    assert segment.stat().st_size < len(data) - 5  # the torn record is gone from the file


def test_corrupt_record_in_the_middle_stops_start_up_naming_file_and_offset(tmp_path):
    maker = _history(10)
    disk = DataDir(tmp_path, fsync=False)
    for txn in maker.log:
        disk.append([txn])
    disk.close()
    (segment,) = [p for _, p in disk.segments()]
    data = bytearray(segment.read_bytes())
    data[200] ^= 0x40
    segment.write_bytes(bytes(data))
    with pytest.raises(StorageError) as caught:
        DataDir(tmp_path).recover()
    message = str(caught.value)
    assert str(segment) in message and "offset" in message and "--truncate-corrupt-log" in message
    # The operator may ask to truncate there; the records before it survive.
    recovered = DataDir(tmp_path).recover(truncate_corrupt=True)
    assert 0 < recovered.replayed < len(maker.log)


def test_recovery_uses_the_newest_valid_snapshot_and_replays_after_it(tmp_path):
    maker = _history(30)
    disk = DataDir(tmp_path, fsync=False)
    half = len(maker.log) // 2
    disk.append(maker.log[:half])
    # A snapshot as of the first half: build that tree from its own txns.
    partial = TxnMaker()
    for txn in maker.log[:half]:
        partial.tree.apply(txn)
    temp, handle = disk.begin_snapshot(partial.tree.last_zxid)
    for chunk in snapshot_chunks(partial.tree):
        handle.write(chunk)
    disk.finish_snapshot(partial.tree.last_zxid, temp, handle)
    # A newer snapshot that was never finished must be ignored.
    broken = tmp_path / f"snapshot.{maker.log[-1].zxid:016x}"
    broken.write_bytes(b"".join(list(snapshot_chunks(maker.tree))[:-1]))
    disk.append(maker.log[half:])
    recovered = DataDir(tmp_path).recover()
    assert recovered.snapshot_zxid == partial.tree.last_zxid
    assert recovered.replayed == len(maker.log) - half
    assert tree_state(recovered.tree) == tree_state(maker.tree)


def test_purge_keeps_recent_snapshots_and_the_segments_they_need(tmp_path):
    maker = _history(60)
    disk = DataDir(tmp_path, fsync=False, segment_bytes=600)
    replica = TxnMaker()
    for index, txn in enumerate(maker.log):
        disk.append([txn])
        replica.tree.apply(txn)
        if index % 20 == 19:
            temp, handle = disk.begin_snapshot(txn.zxid)
            for chunk in snapshot_chunks(replica.tree):
                handle.write(chunk)
            disk.finish_snapshot(txn.zxid, temp, handle)
    assert len(disk.snapshots()) >= 4
    disk.purge(keep_snapshots=2)
    assert len(disk.snapshots()) == 2
    recovered = DataDir(tmp_path).recover()
    assert tree_state(recovered.tree) == tree_state(maker.tree)
    oldest = disk.snapshots()[0][0]
    assert [t.zxid for t in disk.read_from(oldest)] == [
        t.zxid for t in maker.log if t.zxid > oldest
    ]


def test_a_second_server_cannot_take_a_held_data_directory(tmp_path):
    first = DataDir(tmp_path)
    first.lock()
    with pytest.raises(DataDirLocked, match="in use by another server"):
        DataDir(tmp_path).lock()
    first.close()
    DataDir(tmp_path).lock()  # free again once the holder closes


def test_empty_or_missing_directory_starts_a_fresh_tree(tmp_path):
    directory = tmp_path / "fresh"
    directory.mkdir()
    recovered = DataDir(directory).recover()
    assert list(recovered.tree.nodes) == ["/"] and recovered.replayed == 0
