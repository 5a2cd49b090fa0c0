"""An in-memory data directory, for running real members inside one trio test.

`MemoryDisk` is the device: the bytes a member has made durable (log segments,
snapshots, the epochs). It outlives the servers that use it, so a test can
crash a member and start a new one on the same disk. `MemoryDataDir` is the
server's view of it, with `DataDir`'s methods and meaning (coord.server.runtime.disk),
and it never blocks: the runtime calls it inline, not in a worker thread,
which is what lets a trio MockClock drive a whole ensemble.

The bytes are the real formats (coord.server.storage: records with CRCs, the txn
codec, snapshots), and start-up follows the very plan a real disk follows
(coord.server.storage.recovery): the disk shows its contents as the files a data
directory would hold, and carries out the changes the plan asks for. So a
restart in a test goes through the real decoding, and a bug in an encoding
or in recovery shows up there.

What a crash keeps. A call either completes or never started (the runtime
sees a cancellation only between calls), and a completed call is durable, as
`append`'s fsync makes it on a real disk. A snapshot being written leaves a
`.tmp` file from `begin_snapshot` to `finish_snapshot`, which start-up
deletes if a crash came in between. A test (or a fault injector) may also
leave on the disk what a power cut leaves on a real one, a torn tail or a
segment whose magic was never whole: recovery then cuts it as DataDir does.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from coord.server.core.txn import Txn
from coord.server.runtime.disk import DataDirLocked
from coord.server.storage.codec import decode_txn, encode_txn
from coord.server.storage.records import LOG_MAGIC, encode_record, scan
from coord.server.storage.recovery import (
    SEGMENT_PREFIX,
    SNAPSHOT_PREFIX,
    TEMP_SUFFIX,
    DiskFiles,
    FileChange,
    Recovered,
    plan_recovery,
    replay,
    segment_name,
    snapshot_name,
    zxid_in_name,
)
from coord.server.storage.snapshot import LoadedSnapshot, load_snapshot

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
    temp_files: dict[str, bytes] = field(default_factory=dict)
    """`*.tmp` file name -> its bytes: a snapshot being written, which start-up deletes.
    A snapshot's bytes stay in its handle until it is finished, so here they are empty:
    recovery deletes a `.tmp` whatever it holds."""
    epochs: tuple[int, int] | None = None
    """Zab's (acceptedEpoch, currentEpoch) once saved."""
    locked: bool = False
    """Held by the running server; a crash releases it, as the OS releases a flock."""

    @classmethod
    def from_files(cls, name: str, files: Mapping[str, bytes]) -> MemoryDisk:
        """A disk holding `files`, by the names DataDir gives them: segments, snapshots and
        `*.tmp`. A test can so set up any state a real data directory can be left in."""
        disk = cls(name)
        for file_name, data in files.items():
            if file_name.endswith(TEMP_SUFFIX):
                disk.temp_files[file_name] = data
            elif (first := zxid_in_name(file_name, SEGMENT_PREFIX)) is not None:
                disk.segments[first] = bytearray(data)
            elif (zxid := zxid_in_name(file_name, SNAPSHOT_PREFIX)) is not None:
                disk.snapshots[zxid] = data
            else:
                raise ValueError(f"a memory disk holds no file named {file_name!r}")
        return disk

    def files(self) -> dict[str, bytes]:
        """The disk as the files a data directory would hold (the epochs aside)."""
        out = {segment_name(first): bytes(data) for first, data in self.segments.items()}
        out.update((snapshot_name(zxid), data) for zxid, data in self.snapshots.items())
        out.update(self.temp_files)
        return out

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
        return [(zxid, self.path / segment_name(zxid)) for zxid in sorted(self.disk.segments)]

    def snapshots(self) -> list[tuple[int, Path]]:
        return [(zxid, self.path / snapshot_name(zxid)) for zxid in sorted(self.disk.snapshots)]

    # -- start-up ------------------------------------------------------------------

    def recover(self, *, truncate_corrupt: bool = False) -> Recovered:
        """Load the newest valid snapshot and replay the log after it (DataDir's rules:
        both follow the plan of coord.server.storage.recovery)."""
        self._segment = None  # appends go on in a new segment, after what recovery kept
        files = self._files()
        plan = plan_recovery(files, truncate_corrupt=truncate_corrupt, location=str(self.path))
        for reason in plan.skipped_snapshots:
            log.warning("skipping snapshot: %s", reason)
        for change in plan.changes:
            self._carry_out(change)
        recovered = replay(plan)
        self.last_zxid = recovered.tree.last_zxid
        return recovered

    def _files(self) -> DiskFiles:
        """The disk's contents as the files a real data directory would hold."""
        disk = self.disk
        segments = {segment_name(first): first for first in disk.segments}
        snapshots = {snapshot_name(zxid): zxid for zxid in disk.snapshots}

        def read(name: str) -> bytes:
            if name in segments:
                return bytes(disk.segments[segments[name]])
            if name in snapshots:
                return disk.snapshots[snapshots[name]]
            return disk.temp_files[name]

        return DiskFiles([*segments, *snapshots, *disk.temp_files], read)

    def _carry_out(self, change: FileChange) -> None:
        log.log(change.level, "%s/%s: %s", self.path, change.name, change.reason)
        first = zxid_in_name(change.name, SEGMENT_PREFIX)
        if change.name in self.disk.temp_files:
            del self.disk.temp_files[change.name]
        elif first is None:
            raise AssertionError(f"recovery changes only segments and leftovers: {change}")
        elif change.size is None:
            del self.disk.segments[first]
        else:
            del self.disk.segments[first][change.size :]

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
        """A snapshot in the making: a `.tmp` on the disk, its bytes in the handle (a crash
        loses them, as it should)."""
        name = snapshot_name(zxid) + TEMP_SUFFIX
        self.disk.temp_files[name] = b""
        return self.path / name, io.BytesIO()

    def finish_snapshot(self, zxid: int, temp: Path, handle: BinaryIO) -> Path:
        assert isinstance(handle, io.BytesIO), "a handle from begin_snapshot"
        self.disk.snapshots[zxid] = handle.getvalue()
        self.disk.temp_files.pop(temp.name, None)
        handle.close()
        return self.path / snapshot_name(zxid)

    def purge(self, keep_snapshots: int) -> list[Path]:
        """Drop snapshots beyond the newest `keep_snapshots`, and log segments none needs."""
        zxids = sorted(self.disk.snapshots)
        if len(zxids) <= keep_snapshots or keep_snapshots < 1:
            return []
        removed = []
        for zxid in zxids[:-keep_snapshots]:
            del self.disk.snapshots[zxid]
            removed.append(self.path / snapshot_name(zxid))
        oldest_kept = zxids[-keep_snapshots]
        firsts = sorted(self.disk.segments)
        for index, first in enumerate(firsts):
            following = firsts[index + 1] if index + 1 < len(firsts) else None
            if following is not None and following <= oldest_kept + 1:
                del self.disk.segments[first]
                if self._segment == first:
                    self._segment = None
                removed.append(self.path / segment_name(first))
        return removed
