"""The data directory: txn log segments, snapshots, the lock file. Blocking file IO.

The runtime calls these methods from a worker thread (trio.to_thread), one
call at a time; nothing here knows about trio. Formats are in coord.server.storage.

Files in the data directory:

    LOCK                      held (flock) by the server that owns the directory
    log.<zxid:016x>           a log segment; <zxid> is the first txn in it
    snapshot.<zxid:016x>      a snapshot consistent once the log after <zxid> is replayed
    snapshot.<zxid>.tmp       a snapshot being written (ignored and removed at start)

What start-up does with them (which snapshot, which txns, what a torn tail or
a half-made segment becomes) is decided by coord.server.storage.recovery; this
module lists the files, reads the ones it asks for, and makes its changes.

Durability: `append` writes a whole batch with one write and, unless fsync is
off, one fdatasync; a caller acknowledges nothing in the batch before
`append` returns. A new segment's directory entry is fsync'd with it.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from coord.server.core.txn import Txn
from coord.server.storage.codec import decode_txn, encode_txn
from coord.server.storage.records import LOG_MAGIC, encode_record, scan
from coord.server.storage.recovery import (
    SEGMENT_PREFIX,
    SNAPSHOT_PREFIX,
    TEMP_SUFFIX,
    DiskFiles,
    FileChange,
    Recovered,
    StorageError,
    plan_recovery,
    replay,
    segment_name,
    snapshot_name,
    zxid_in_name,
)
from coord.server.storage.snapshot import LoadedSnapshot, load_snapshot

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024


class DataDirLocked(StorageError):
    """Another running server holds the data directory."""


class Storage(Protocol):
    """What the runtime asks of a data directory: `DataDir`, or the in-memory disk of tests.

    Calls come one at a time. Each mutating call is durable when it returns;
    `blocking` tells the runtime whether a call may block on IO (then it runs
    in a worker thread) or returns at once (then it runs inline, which keeps a
    trio MockClock usable: the clock would jump while a thread works).
    """

    blocking: bool
    appends: int
    appended_txns: int

    def lock(self) -> None: ...
    def close(self) -> None: ...
    def recover(self, *, truncate_corrupt: bool = False) -> Recovered: ...
    def append(self, txns: list[Txn]) -> None: ...
    def read_from(self, zxid: int) -> Iterator[Txn]: ...
    def truncate_after(self, zxid: int) -> int: ...
    def load_epochs(self) -> tuple[int, int]: ...
    def save_epochs(self, accepted: int, current: int) -> None: ...
    def install_snapshot(self, zxid: int, data: bytes) -> LoadedSnapshot: ...
    def begin_snapshot(self, zxid: int) -> tuple[Path, BinaryIO]: ...
    def finish_snapshot(self, zxid: int, temp: Path, handle: BinaryIO) -> Path: ...
    def purge(self, keep_snapshots: int) -> list[Path]: ...


class DataDir:
    """One server's data directory."""

    blocking = True
    """Every call does file IO: the runtime runs it in a worker thread."""

    def __init__(
        self,
        path: Path,
        *,
        fsync: bool = True,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._lock_handle: BinaryIO | None = None
        self._segment: BinaryIO | None = None
        self._segment_size = 0
        self.last_zxid = 0
        self.appends = 0
        self.appended_txns = 0

    # -- ownership -----------------------------------------------------------------

    def lock(self) -> None:
        """Create the directory if needed and take its lock, or raise DataDirLocked."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / "LOCK", "a+b")  # noqa: SIM115 - held for the server's life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().decode(errors="replace").strip() or "unknown"
            handle.close()
            raise DataDirLocked(
                f"data directory {str(self.path)!r} is in use by another server "
                f"(pid {holder}); stop it or choose another --data-dir"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()).encode())
        handle.flush()
        self._lock_handle = handle

    def close(self) -> None:
        if self._segment is not None:
            self._segment.close()
            self._segment = None
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    # -- listing -------------------------------------------------------------------

    def segments(self) -> list[tuple[int, Path]]:
        return self._numbered(SEGMENT_PREFIX)

    def snapshots(self) -> list[tuple[int, Path]]:
        return self._numbered(SNAPSHOT_PREFIX)

    def _numbered(self, prefix: str) -> list[tuple[int, Path]]:
        out = []
        for entry in self.path.glob(prefix + "*"):
            zxid = zxid_in_name(entry.name, prefix)
            if zxid is not None:
                out.append((zxid, entry))
        return sorted(out)

    # -- start-up ------------------------------------------------------------------

    def recover(self, *, truncate_corrupt: bool = False) -> Recovered:
        """Load the newest valid snapshot and replay the log after it (storage.recovery decides).

        The cyclic garbage collector is paused while millions of long-lived
        objects are made (it would rescan them again and again for nothing),
        and what was loaded is then frozen out of its future scans.
        """
        gc.disable()
        try:
            return self._recover(truncate_corrupt)
        finally:
            gc.enable()
            gc.freeze()

    def _recover(self, truncate_corrupt: bool) -> Recovered:
        if self._segment is not None:
            self._segment.close()  # appends go on in a new segment, after what recovery kept
            self._segment = None
        names = [p.name for p in self.path.iterdir() if p.is_file()] if self.path.is_dir() else []
        files = DiskFiles(names, lambda name: (self.path / name).read_bytes())
        plan = plan_recovery(files, truncate_corrupt=truncate_corrupt, location=str(self.path))
        for reason in plan.skipped_snapshots:
            log.warning("skipping snapshot: %s", reason)
        self._carry_out(plan.changes)
        recovered = replay(plan)
        self.last_zxid = recovered.tree.last_zxid
        return recovered

    def _carry_out(self, changes: list[FileChange]) -> None:
        """Make the plan's file changes, durably, before anything is built on them."""
        for change in changes:
            path = self.path / change.name
            log.log(change.level, "%s: %s", path, change.reason)
            if change.size is None:
                path.unlink(missing_ok=True)
            else:
                self._truncate_file(path, change.size)
        if changes and self.fsync:
            self._fsync_dir()

    def _truncate_file(self, path: Path, size: int) -> None:
        with open(path, "r+b") as handle:
            handle.truncate(size)
            if self.fsync:
                os.fsync(handle.fileno())

    # -- appending -----------------------------------------------------------------

    def append(self, txns: list[Txn]) -> None:
        """Write a batch of txns and make it durable (one write, one fdatasync)."""
        if not txns:
            return
        if self._segment is None or self._segment_size >= self.segment_bytes:
            self._roll(txns[0].zxid)
        assert self._segment is not None
        buffer = b"".join(encode_record(encode_txn(txn)) for txn in txns)
        self._segment.write(buffer)
        self._segment.flush()
        if self.fsync:
            os.fdatasync(self._segment.fileno())
        self._segment_size += len(buffer)
        self.last_zxid = txns[-1].zxid
        self.appends += 1
        self.appended_txns += len(txns)

    def _roll(self, first_zxid: int) -> None:
        if self._segment is not None:
            self._segment.close()
        self.path.mkdir(parents=True, exist_ok=True)
        path = self.path / segment_name(first_zxid)
        self._segment = open(path, "ab")  # noqa: SIM115 - the open segment
        if self._segment.tell() == 0:
            self._segment.write(LOG_MAGIC)
            self._segment.flush()
            if self.fsync:
                os.fsync(self._segment.fileno())
                self._fsync_dir()
        self._segment_size = self._segment.tell()

    def _fsync_dir(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- reading and truncating (for followers and catch-up) -------------------------

    def read_from(self, zxid: int) -> Iterator[Txn]:
        """Every logged txn with a zxid greater than `zxid`, in order."""
        segments = self.segments()
        for index, (_first, segment) in enumerate(segments):
            following = segments[index + 1][0] if index + 1 < len(segments) else None
            if following is not None and following <= zxid + 1:
                continue  # every txn in this segment is at or before zxid
            data = segment.read_bytes()
            for _, payload in scan(data, len(LOG_MAGIC)).records:
                txn = decode_txn(payload)
                if txn.zxid > zxid:
                    yield txn

    def truncate_after(self, zxid: int) -> int:
        """Remove every logged txn after `zxid`; return how many were removed."""
        if self._segment is not None:
            self._segment.close()
            self._segment = None
        removed = 0
        for first, segment in reversed(self.segments()):
            if first > zxid:
                data = segment.read_bytes()
                removed += len(scan(data, len(LOG_MAGIC)).records)
                segment.unlink()
                continue
            records = scan(segment.read_bytes(), len(LOG_MAGIC)).records
            for index, (offset, payload) in enumerate(records):
                if decode_txn(payload).zxid > zxid:
                    removed += len(records) - index
                    self._truncate_file(segment, offset)
                    break
            break
        if self.fsync:
            self._fsync_dir()
        self.last_zxid = min(self.last_zxid, zxid)
        return removed

    # -- the ensemble's epochs and snapshot installs -----------------------------------

    def load_epochs(self) -> tuple[int, int]:
        """Zab's (acceptedEpoch, currentEpoch), (0, 0) for a new directory."""
        path = self.path / "epochs"
        if not path.exists():
            return 0, 0
        text = path.read_text().split()
        try:
            return int(text[0]), int(text[1])
        except (IndexError, ValueError):
            raise StorageError(f"{path}: expected two integers, got {text!r}") from None

    def save_epochs(self, accepted: int, current: int) -> None:
        """Write the epochs durably (temporary file, fsync, rename, fsync the directory)."""
        self.path.mkdir(parents=True, exist_ok=True)
        temp = self.path / "epochs.tmp"
        with open(temp, "w") as handle:
            handle.write(f"{accepted} {current}\n")
            handle.flush()
            if self.fsync:
                os.fsync(handle.fileno())
        os.replace(temp, self.path / "epochs")
        if self.fsync:
            self._fsync_dir()

    def install_snapshot(self, zxid: int, data: bytes) -> LoadedSnapshot:
        """Replace everything with a leader's snapshot: write it, drop every log segment."""
        loaded = load_snapshot(data, name=f"snapshot from the leader at {zxid:#x}")
        temp, handle = self.begin_snapshot(zxid)
        handle.write(data)
        self.finish_snapshot(zxid, temp, handle)
        if self._segment is not None:
            self._segment.close()
            self._segment = None
        for _, segment in self.segments():
            segment.unlink()
        for snap_zxid, snapshot in self.snapshots():
            if snap_zxid > zxid:
                snapshot.unlink()
        if self.fsync:
            self._fsync_dir()
        self.last_zxid = zxid
        return loaded

    # -- snapshots -----------------------------------------------------------------

    def begin_snapshot(self, zxid: int) -> tuple[Path, BinaryIO]:
        temp = self.path / (snapshot_name(zxid) + TEMP_SUFFIX)
        return temp, open(temp, "wb")

    def finish_snapshot(self, zxid: int, temp: Path, handle: BinaryIO) -> Path:
        """fsync the temporary file, rename it into place, fsync the directory."""
        handle.flush()
        if self.fsync:
            os.fsync(handle.fileno())
        handle.close()
        final = self.path / snapshot_name(zxid)
        os.replace(temp, final)
        if self.fsync:
            self._fsync_dir()
        return final

    def purge(self, keep_snapshots: int) -> list[Path]:
        """Drop snapshots beyond the newest `keep_snapshots`, and log segments none needs."""
        snapshots = self.snapshots()
        if len(snapshots) <= keep_snapshots or keep_snapshots < 1:
            return []
        removed = []
        for _, snapshot in snapshots[:-keep_snapshots]:
            snapshot.unlink()
            removed.append(snapshot)
        oldest_kept = snapshots[-keep_snapshots][0]
        segments = self.segments()
        # A segment is needed if it may hold a txn after the oldest kept snapshot:
        # keep the last segment starting at or before it, and everything after.
        for index, (_first, segment) in enumerate(segments):
            following = segments[index + 1][0] if index + 1 < len(segments) else None
            if following is not None and following <= oldest_kept + 1:
                segment.unlink()
                removed.append(segment)
        return removed


def write_all(handle: BinaryIO, chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        handle.write(chunk)
