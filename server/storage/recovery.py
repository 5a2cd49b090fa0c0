"""Start-up recovery, decided once: the files of a data directory in, a plan out.

Both data directories, the real one (coord.server.runtime.disk) and the in-memory one
of the test ensemble (coord.server.testing.memory_disk), hand `plan_recovery` their
files as a mapping from name to bytes, carry out the plan's file changes, and
build the tree with `replay`. Nothing here touches a file, and nothing in
either disk decides anything about recovery: what one disk does at start-up,
the other does too.

The mapping is read only where a decision needs bytes: snapshots newest first
until one loads, then the segments that may hold a txn after it (`DiskFiles`
reads a file when it is asked for, so a real disk reads nothing else). Every
check is made before any change is planned, so a start-up that fails has
changed nothing on the disk.

The decisions, in the order they are made:

1. Leftovers. Every `*.tmp` is deleted: a snapshot (or the epochs file) that
   was being written when the server stopped. Its finished form is renamed
   into place only once it is durable, so a `.tmp` never holds anything that
   is not also somewhere else, or that anyone was promised.
2. Names. `log.<zxid hex>` is a log segment named after its first txn, and
   `snapshot.<zxid hex>` a snapshot as of that zxid. Other names (LOCK,
   epochs, an operator's notes) are not recovery's business: left alone.
3. The snapshot. The newest that loads whole and holds the zxid its name
   says. One that does not (unfinished, bad CRC, misnamed) is skipped with a
   warning and left in place for the operator to look at. No snapshot loads:
   start from the empty tree at zxid 0, and the log must then reach back to
   the first txn (decision 6).
4. The segments to read. One whose successor starts at or before the
   snapshot's zxid + 1 holds nothing after it and is not read. The last
   segment is always read: its tail may need cutting.
5. How each segment read ends (coord.server.storage.records has the scan):
   - The last segment does not hold the whole magic, and its bytes are a
     prefix of the magic followed only by zero bytes (an empty file too):
     it was being created when the server stopped. A segment's magic is made
     durable before its first append, so nothing in it was acknowledged:
     it is deleted. Any other segment without the magic stops start-up.
   - A torn tail in the last segment (a record cut short, or zero bytes):
     a crash during an append. Acknowledgement follows fsync, so nothing in
     the tail was acknowledged: it is truncated at the last whole record,
     with a warning.
   - A torn tail in an earlier segment, or a corrupt record anywhere (a bad
     CRC with more after it, a length over the limit): not what a crash
     leaves but bit rot or a bug. Start-up stops and names the file and the
     offset, unless the operator asks to truncate (`truncate_corrupt`); then
     the log ends there: the segment is truncated at that record and every
     later segment is deleted, as replaying them across the lost txns would
     build a tree no member ever had.
   - A record whose CRC is right but which does not decode as a txn: a bug
     or a newer format. Start-up stops; truncating would not help.
6. Order and gaps. A segment's first txn has the zxid its name says; the
   txns read rise strictly; and the txns after the snapshot follow it
   without a gap, as the ZAB peer logs them (the next counter in the same
   epoch, or counter 1 of a later epoch). Otherwise start-up stops and says
   what is missing: replaying across a gap (a purged or lost segment, a
   snapshot that did not load while the log before it was purged) would
   silently build a tree no member ever had.

Replay then applies every txn after the snapshot's zxid to its tree, in log
order. A snapshot is fuzzy (coord.server.storage.snapshot), so a replayed txn may
already be in it; txns carry absolute values, which makes that harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from coord.server.core.results import remember_write
from coord.server.core.tree import DataTree
from coord.server.core.txn import Txn
from coord.server.storage.codec import TxnDecodeError, decode_txn, peek_zxid
from coord.server.storage.records import LOG_MAGIC, ScanEnd, scan
from coord.server.storage.snapshot import LoadedSnapshot, SnapshotError, load_snapshot

SEGMENT_PREFIX = "log."
SNAPSHOT_PREFIX = "snapshot."
TEMP_SUFFIX = ".tmp"
_HEX = frozenset("0123456789abcdefABCDEF")


class StorageError(Exception):
    """The data directory cannot be used as it is; the message names the file and offset."""


def segment_name(first_zxid: int) -> str:
    return f"{SEGMENT_PREFIX}{first_zxid:016x}"


def snapshot_name(zxid: int) -> str:
    return f"{SNAPSHOT_PREFIX}{zxid:016x}"


def zxid_in_name(name: str, prefix: str) -> int | None:
    """The zxid a `<prefix><hex>` file name carries, or None for any other name."""
    digits = name[len(prefix) :]
    if not name.startswith(prefix) or not digits or not set(digits) <= _HEX:
        return None
    return int(digits, 16)


def _follows(previous: int, zxid: int) -> bool:
    """Whether a log may hold `zxid` right after `previous` (zxid: epoch << 32 | counter)."""
    if zxid >> 32 == previous >> 32:
        return zxid == previous + 1
    return zxid >> 32 > previous >> 32 and zxid & 0xFFFFFFFF == 1


class DiskFiles(Mapping[str, bytes]):
    """A data directory's files by name, each read only when `plan_recovery` asks for it."""

    def __init__(self, names: Iterable[str], read: Callable[[str], bytes]) -> None:
        self._names = sorted(set(names))
        self._known = frozenset(self._names)
        self._read = read

    def __getitem__(self, name: str) -> bytes:
        if name not in self._known:
            raise KeyError(name)
        return self._read(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass(frozen=True, slots=True)
class FileChange:
    """One file the disk must change before the server may start."""

    name: str
    size: int | None
    """Truncate the file to this many bytes; None: delete it."""
    lost: int
    """Bytes of log this throws away (0 for a leftover `.tmp`: nothing in it counted)."""
    reason: str
    """Why, for the log."""
    forced: bool = False
    """Only because the operator asked (`truncate_corrupt`)."""

    @property
    def level(self) -> int:
        """How loud the disk logs it: an error if forced, a warning if it loses log bytes."""
        if self.forced:
            return logging.ERROR
        return logging.WARNING if self.lost else logging.INFO


@dataclass(slots=True)
class RecoveryPlan:
    """What start-up does: which snapshot, which txns after it, which files to change.

    The disk carries out `changes` (durably) and then calls `replay`, which
    applies `txns` to the snapshot's tree: the plan is used up by that.
    """

    snapshot: LoadedSnapshot
    """The newest snapshot that loaded, or the empty tree at zxid 0."""
    snapshot_name: str | None
    skipped_snapshots: list[str] = field(default_factory=list)
    """Why each newer snapshot was not used, for the log."""
    txns: list[Txn] = field(default_factory=list)
    """Every logged txn after the snapshot's zxid, in order, without a gap."""
    changes: list[FileChange] = field(default_factory=list)

    @property
    def truncated_bytes(self) -> int:
        return sum(change.lost for change in self.changes)


@dataclass(slots=True)
class Recovered:
    """What start-up found: the tree as of the last durable txn, and how it got there."""

    tree: DataTree
    snapshot_zxid: int
    snapshot_nodes: int
    replayed: int
    truncated_bytes: int


def plan_recovery(
    files: Mapping[str, bytes], *, truncate_corrupt: bool = False, location: str = ""
) -> RecoveryPlan:
    """Decide start-up for a data directory holding `files`; raise StorageError if it cannot.

    `location` prefixes file names in messages (the directory's path).
    """

    def where(name: str) -> str:
        return f"{location}/{name}" if location else name

    changes = [
        FileChange(name, None, 0, "left over from a write that never finished")
        for name in files
        if name.endswith(TEMP_SUFFIX)
    ]
    segments = _numbered(files, SEGMENT_PREFIX)
    plan = _choose_snapshot(files, _numbered(files, SNAPSHOT_PREFIX), where)
    plan.changes = changes
    _read_log(plan, files, segments, truncate_corrupt, where)
    return plan


def replay(plan: RecoveryPlan) -> Recovered:
    """Apply the plan's txns to its snapshot's tree (which this changes).

    The client writes among them go into the tree's table of write results (the
    snapshot brought the table as of its zxid), so that a write resent after the
    restart is still applied at most once.
    """
    tree = plan.snapshot.tree
    for txn in plan.txns:
        result = tree.apply(txn)
        if txn.header.xid > 0:
            remember_write(tree.write_results, txn, result)
    loaded = plan.snapshot
    return Recovered(tree, loaded.zxid, loaded.node_count, len(plan.txns), plan.truncated_bytes)


def _numbered(files: Iterable[str], prefix: str) -> list[tuple[int, str]]:
    out = []
    for name in files:
        zxid = zxid_in_name(name, prefix)
        if zxid is not None:
            out.append((zxid, name))
    return sorted(out)


def _choose_snapshot(
    files: Mapping[str, bytes], snapshots: list[tuple[int, str]], where: Callable[[str], str]
) -> RecoveryPlan:
    skipped = []
    for zxid, name in reversed(snapshots):
        try:
            loaded = load_snapshot(files[name], name=where(name))
        except SnapshotError as exc:
            skipped.append(str(exc))
            continue
        if loaded.zxid != zxid:
            skipped.append(f"{where(name)}: it says zxid {loaded.zxid:#x}")
            continue
        return RecoveryPlan(loaded, name, skipped)
    return RecoveryPlan(LoadedSnapshot(DataTree(), 0, 1), None, skipped)


def _never_begun(data: bytes) -> bool:
    """A segment file created, then the crash came before its magic was durable."""
    kept = data.rstrip(b"\0")
    return len(kept) < len(LOG_MAGIC) and LOG_MAGIC.startswith(kept)


def _read_log(
    plan: RecoveryPlan,
    files: Mapping[str, bytes],
    segments: list[tuple[int, str]],
    truncate_corrupt: bool,
    where: Callable[[str], str],
) -> None:
    """Decisions 4 and 5, segment by segment: fill in the plan's txns and changes."""
    base = plan.snapshot.zxid
    order = _LogOrder(base)
    for index, (first, name) in enumerate(segments):
        is_last = index == len(segments) - 1
        if not is_last and segments[index + 1][0] <= base + 1:
            continue  # the snapshot already holds every txn in this segment
        data = files[name]
        if not data.startswith(LOG_MAGIC):
            if is_last and _never_begun(data):
                reason = "created, but the server stopped before its header was whole"
                plan.changes.append(FileChange(name, None, len(data), reason))
                continue
            raise StorageError(f"{where(name)}: not a log segment (bad magic at offset 0)")
        result = scan(data, len(LOG_MAGIC))
        plan.txns += order.take(first, where(name), result.records)
        if result.end is ScanEnd.CLEAN:
            continue
        lost = len(data) - result.offset
        if result.end is ScanEnd.TORN and is_last:
            reason = (
                f"torn tail at offset {result.offset} ({result.reason}); truncating "
                f"{lost} bytes that were never acknowledged"
            )
            plan.changes.append(FileChange(name, result.offset, lost, reason))
            continue
        here = f"{where(name)} at offset {result.offset}: {result.reason}"
        if not truncate_corrupt:
            raise StorageError(
                f"corrupt log record in {here}. Every txn after it would be lost; "
                "to truncate there anyway, start with --truncate-corrupt-log"
            )
        reason = f"truncating corrupt log at offset {result.offset} ({lost} bytes lost, as asked)"
        plan.changes.append(FileChange(name, result.offset, lost, reason, forced=True))
        for _, later in segments[index + 1 :]:
            reason = f"after the corrupt record in {name}: the log ends there, as asked"
            plan.changes.append(FileChange(later, None, len(files[later]), reason, forced=True))
        return


class _LogOrder:
    """Decision 6, across the segments read: names, rising zxids, no gap after the base."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.latest = base
        """The zxid the next replayed txn must follow."""
        self.previous: tuple[int, str] | None = None
        """The last record read, and where."""

    def take(self, first: int, name: str, records: list[tuple[int, bytes]]) -> list[Txn]:
        """The txns after the base among one segment's records; StorageError on disorder."""
        txns = []
        for number, (offset, payload) in enumerate(records):
            zxid = peek_zxid(payload)
            txn = None
            if zxid is None or zxid > self.base:
                txn = _decode(payload, name, offset)
                zxid = txn.zxid
                if zxid <= self.base:
                    txn = None  # an old encoding peek_zxid does not read: decoded to compare
            here = f"{name} at offset {offset}"
            if number == 0 and zxid != first:
                raise StorageError(
                    f"{here}: the segment's first txn is {zxid:#x}, but its name says {first:#x}"
                )
            if self.previous is not None and zxid <= self.previous[0]:
                raise StorageError(
                    f"{here}: txn {zxid:#x} comes after txn {self.previous[0]:#x} "
                    f"(in {self.previous[1]}): the log is out of order"
                )
            self.previous = zxid, name
            if txn is None:
                continue  # at or before the snapshot: it holds this one
            if not _follows(self.latest, zxid):
                after = "the txn before it"
                if self.latest == self.base:
                    after = "where replay starts: the snapshot's zxid, or 0 without one"
                raise StorageError(
                    f"{here}: txn {zxid:#x} does not follow {self.latest:#x} ({after}): "
                    "the txns between them are missing from the log, and replaying "
                    "across the gap would give a wrong tree; restore the missing "
                    "segment, or a snapshot that covers the gap"
                )
            txns.append(txn)
            self.latest = zxid
        return txns


def _decode(payload: bytes, name: str, offset: int) -> Txn:
    try:
        return decode_txn(payload)
    except TxnDecodeError as exc:
        raise StorageError(f"{name}: undecodable txn at offset {offset}: {exc}") from None
