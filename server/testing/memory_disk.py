"""An in-memory data directory, for running real members inside one trio test.

`MemoryDisk` is the device: the bytes a member has made durable (log segments,
snapshots, the epochs). It outlives the servers that use it, so a test can
crash a member and start a new one on the same disk. `MemoryDataDir` is the
server's view of it, with `DataDir`'s methods and meaning (coord.server.runtime.disk),
and it never blocks: the runtime calls it inline, not in a worker thread,
which is what lets a trio MockClock drive a whole ensemble.

The bytes are the real formats (coord.server.storage: records with CRCs, the txn
codec, snapshots), written and read back by the same rules as on a real disk:
recovery loads the newest valid snapshot and replays the segments after it,
a torn tail is cut, a corrupt record stops start-up. So a restart in a test
goes through the real decoding, and a bug in an encoding shows up there.

What a crash keeps. A call either completes or never started (the runtime
sees a cancellation only between calls), and a completed call is durable, as
`append`'s fsync makes it on a real disk. A snapshot being written lives only
in its handle until `finish_snapshot`, as a `.tmp` file that start-up deletes.
Lost unsynced writes and torn records are the simulator's business (tests/sim),
not this one's: here a crash is a process dying on a machine that stays up.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from coord.server.core.tree import ApplyResult, DataTree
from coord.server.core.txn import Txn
from coord.server.runtime.disk import DataDirLocked, Recovered, StorageError
from coord.server.storage.codec import TxnDecodeError, decode_txn, encode_txn, peek_zxid
from coord.server.storage.records import LOG_MAGIC, ScanEnd, encode_record, scan
from coord.server.storage.snapshot import LoadedSnapshot, SnapshotError, load_snapshot

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 1024 * 1024
"""Smaller than a real segment, so that tests roll segments and purge them."""


@dataclass(eq=False)
class MemoryDisk:
    """The durable bytes of one member: what survives its crash."""

    name: str
    segments: dict[int, bytearray] = field(default_factory=dict)
    """First zxid -> the segment's bytes (LOG_MAGIC, then records)."""
    snapshots: dict[int, bytes] = field(default_factory=dict)
    """zxid -> a finished snapshot's bytes."""
    epochs: tuple[int, int] | None = None
    """Zab's (acceptedEpoch, currentEpoch) once saved."""
    locked: bool = False
    """Held by the running server; a crash releases it, as the OS releases a flock."""

    def last_zxid(self) -> int:
        """The last txn held, in the log or (with an empty log) in the newest snapshot."""
        for _, data in sorted(self.segments.items(), reverse=True):
            records = scan(bytes(data), len(LOG_MAGIC)).records
            if records:
                return decode_txn(records[-1][1]).zxid
        return max(self.snapshots, default=0)


class MemoryDataDir:
    """A server's view of a `MemoryDisk`, with the methods and guarantees of `DataDir`."""

    blocking = False
    """No call blocks: the runtime runs them inline (no thread, so MockClock works)."""

    def __init__(self, disk: MemoryDisk, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        self.disk = disk
        self.path = Path(f"memory:{disk.name}")
        """For log messages only: nothing is ever opened there."""
        self.segment_bytes = segment_bytes
        self._owner = False
        self._segment: int | None = None
        """The segment appends go to (None: the next append starts a new one)."""
        self.last_zxid = 0
        self.appends = 0
        self.appended_txns = 0

    # -- ownership -----------------------------------------------------------------

    def lock(self) -> None:
        if self.disk.locked:
            raise DataDirLocked(f"{self.path} is in use by another server")
        self.disk.locked = True
        self._owner = True

    def close(self) -> None:
        self._segment = None
        if self._owner:
            self.disk.locked = False
            self._owner = False

    # -- listing -------------------------------------------------------------------

    def segments(self) -> list[tuple[int, Path]]:
        return [(zxid, self.path / f"log.{zxid:016x}") for zxid in sorted(self.disk.segments)]

    def snapshots(self) -> list[tuple[int, Path]]:
        return [(zxid, self.path / f"snapshot.{zxid:016x}") for zxid in sorted(self.disk.snapshots)]

    # -- start-up ------------------------------------------------------------------

    def recover(self, *, truncate_corrupt: bool = False) -> Recovered:
        """Load the newest valid snapshot and replay the log after it (DataDir's rules)."""
        loaded = self._newest_snapshot()
        tree = loaded.tree
        replayed = 0
        truncated = 0
        writes: list[tuple[Txn, ApplyResult]] = []
        firsts = sorted(self.disk.segments)
        for index, first in enumerate(firsts):
            is_last = index == len(firsts) - 1
            if not is_last and firsts[index + 1] <= tree.last_zxid + 1:
                continue  # the snapshot already holds every txn in this segment
            txns, cut = self._read_segment(first, is_last, truncate_corrupt, tree.last_zxid)
            truncated += cut
            for txn in txns:
                if txn.zxid > tree.last_zxid:
                    result = tree.apply(txn)
                    if txn.header.xid > 0:
                        writes.append((txn, result))
                    replayed += 1
        self.last_zxid = tree.last_zxid
        return Recovered(tree, loaded.zxid, loaded.node_count, replayed, truncated, writes)

    def _newest_snapshot(self) -> LoadedSnapshot:
        for zxid in sorted(self.disk.snapshots, reverse=True):
            name = f"{self.path}/snapshot.{zxid:016x}"
            try:
                loaded = load_snapshot(self.disk.snapshots[zxid], name=name)
            except SnapshotError as exc:
                log.warning("skipping snapshot: %s", exc)
                continue
            if loaded.zxid != zxid:
                log.warning("skipping %s: it says zxid %#x", name, loaded.zxid)
                continue
            return loaded
        return LoadedSnapshot(DataTree(), 0, 1)

    def _read_segment(
        self, first: int, is_last: bool, truncate_corrupt: bool, after_zxid: int
    ) -> tuple[list[Txn], int]:
        """The segment's txns after `after_zxid`, and how many torn/corrupt bytes were cut."""
        data = self.disk.segments[first]
        name = f"{self.path}/log.{first:016x}"
        if not data.startswith(LOG_MAGIC):
            raise StorageError(f"{name}: not a log segment (bad magic at offset 0)")
        result = scan(bytes(data), len(LOG_MAGIC))
        txns = []
        for offset, payload in result.records:
            peeked = peek_zxid(payload)
            if peeked is not None and peeked <= after_zxid:
                continue
            try:
                txns.append(decode_txn(payload))
            except TxnDecodeError as exc:
                raise StorageError(f"{name}: undecodable txn at offset {offset}: {exc}") from None
        cut = 0
        if result.end is ScanEnd.TORN and is_last:
            cut = len(data) - result.offset
            log.warning("%s: torn tail at offset %d; truncating %d bytes", name, result.offset, cut)
            del data[result.offset :]
        elif result.end is not ScanEnd.CLEAN:
            where = f"{name} at offset {result.offset}: {result.reason}"
            if not truncate_corrupt:
                raise StorageError(f"corrupt log record in {where}")
            cut = len(data) - result.offset
            log.error("truncating corrupt log %s (%d bytes lost, as asked)", where, cut)
            del data[result.offset :]
        return txns, cut

    # -- appending -----------------------------------------------------------------

    def append(self, txns: list[Txn]) -> None:
        """Add a batch of txns to the log; durable when this returns."""
        if not txns:
            return
        segment = self.disk.segments.get(self._segment) if self._segment is not None else None
        if segment is None or len(segment) >= self.segment_bytes:
            self._segment = txns[0].zxid
            segment = self.disk.segments.setdefault(self._segment, bytearray(LOG_MAGIC))
        segment += b"".join(encode_record(encode_txn(txn)) for txn in txns)
        self.last_zxid = txns[-1].zxid
        self.appends += 1
        self.appended_txns += len(txns)

    # -- reading and truncating ------------------------------------------------------

    def read_from(self, zxid: int) -> Iterator[Txn]:
        """Every logged txn with a zxid greater than `zxid`, in order."""
        firsts = sorted(self.disk.segments)
        for index, first in enumerate(firsts):
            following = firsts[index + 1] if index + 1 < len(firsts) else None
            if following is not None and following <= zxid + 1:
                continue
            for _, payload in scan(bytes(self.disk.segments[first]), len(LOG_MAGIC)).records:
                txn = decode_txn(payload)
                if txn.zxid > zxid:
                    yield txn

    def truncate_after(self, zxid: int) -> int:
        """Remove every logged txn after `zxid`; return how many were removed."""
        self._segment = None
        removed = 0
        for first in sorted(self.disk.segments, reverse=True):
            data = self.disk.segments[first]
            records = scan(bytes(data), len(LOG_MAGIC)).records
            if first > zxid:
                removed += len(records)
                del self.disk.segments[first]
                continue
            for index, (offset, payload) in enumerate(records):
                if decode_txn(payload).zxid > zxid:
                    removed += len(records) - index
                    del data[offset:]
                    break
            break
        self.last_zxid = min(self.last_zxid, zxid)
        return removed

    # -- epochs and snapshot installs --------------------------------------------------

    def load_epochs(self) -> tuple[int, int]:
        return self.disk.epochs if self.disk.epochs is not None else (0, 0)

    def save_epochs(self, accepted: int, current: int) -> None:
        self.disk.epochs = (accepted, current)

    def install_snapshot(self, zxid: int, data: bytes) -> LoadedSnapshot:
        """Replace everything with a leader's snapshot: keep it, drop every log segment."""
        loaded = load_snapshot(data, name=f"snapshot from the leader at {zxid:#x}")
        self.disk.snapshots[zxid] = bytes(data)
        self._segment = None
        self.disk.segments.clear()
        for snap_zxid in [z for z in self.disk.snapshots if z > zxid]:
            del self.disk.snapshots[snap_zxid]
        self.last_zxid = zxid
        return loaded

    # -- snapshots -----------------------------------------------------------------

    def begin_snapshot(self, zxid: int) -> tuple[Path, BinaryIO]:
        """A snapshot in the making lives in its handle only: a crash loses it, as it should."""
        return self.path / f"snapshot.{zxid:016x}.tmp", io.BytesIO()

    def finish_snapshot(self, zxid: int, temp: Path, handle: BinaryIO) -> Path:
        assert isinstance(handle, io.BytesIO), "a handle from begin_snapshot"
        self.disk.snapshots[zxid] = handle.getvalue()
        handle.close()
        return self.path / f"snapshot.{zxid:016x}"

    def purge(self, keep_snapshots: int) -> list[Path]:
        """Drop snapshots beyond the newest `keep_snapshots`, and log segments none needs."""
        zxids = sorted(self.disk.snapshots)
        if len(zxids) <= keep_snapshots or keep_snapshots < 1:
            return []
        removed = []
        for zxid in zxids[:-keep_snapshots]:
            del self.disk.snapshots[zxid]
            removed.append(self.path / f"snapshot.{zxid:016x}")
        oldest_kept = zxids[-keep_snapshots]
        firsts = sorted(self.disk.segments)
        for index, first in enumerate(firsts):
            following = firsts[index + 1] if index + 1 < len(firsts) else None
            if following is not None and following <= oldest_kept + 1:
                del self.disk.segments[first]
                if self._segment == first:
                    self._segment = None
                removed.append(self.path / f"log.{first:016x}")
        return removed
