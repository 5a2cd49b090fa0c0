"""Watch registrations and routing: which watcher hears of which change.

Pure bookkeeping, ZooKeeper's rules. A watcher is an opaque id (the server
uses the connection id). Kinds:

- data watches (set by get, and by exists on an existing node) and exist
  watches (exists on a missing node) share one table, as in ZooKeeper: they
  fire once on CREATED, CHANGED or DELETED of their path;
- child watches (get_children) fire once on CHILD of their path, and on
  DELETED of it;
- persistent watches (addWatch mode 0) hear CREATED, CHANGED, DELETED and
  CHILD of their path, and stay;
- persistent recursive watches (addWatch mode 1) hear CREATED, CHANGED and
  DELETED of every node in their subtree (not CHILD, as in ZooKeeper), and stay.

`trigger` returns the (watcher, event) pairs to deliver, each watcher at most
once per event, in a deterministic order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from coord import paths
from coord.errors import TooManyWatchesError
from coord.messages import EventType, WatchedEvent, WatcherType

W = TypeVar("W", bound=Hashable)

_DATA_EVENTS = frozenset({EventType.CREATED, EventType.CHANGED, EventType.DELETED})


class WatchTable:
    """One kind of watch: path -> watchers, and watcher -> paths for cleanup."""

    __slots__ = ("by_path", "by_watcher")

    def __init__(self) -> None:
        self.by_path: dict[str, dict[Hashable, None]] = {}
        self.by_watcher: dict[Hashable, set[str]] = {}

    def add(self, path: str, watcher: Hashable) -> None:
        self.by_path.setdefault(path, {})[watcher] = None
        self.by_watcher.setdefault(watcher, set()).add(path)

    def pop(self, path: str) -> list[Hashable]:
        """Remove and return every watcher of `path` (a one-shot fire)."""
        watchers = self.by_path.pop(path, None)
        if not watchers:
            return []
        for watcher in watchers:
            owned = self.by_watcher.get(watcher)
            if owned is not None:
                owned.discard(path)
                if not owned:
                    del self.by_watcher[watcher]
        return list(watchers)

    def get(self, path: str) -> list[Hashable]:
        watchers = self.by_path.get(path)
        return list(watchers) if watchers else []

    def remove(self, path: str, watcher: Hashable) -> bool:
        watchers = self.by_path.get(path)
        if not watchers or watcher not in watchers:
            return False
        del watchers[watcher]
        if not watchers:
            del self.by_path[path]
        owned = self.by_watcher[watcher]
        owned.discard(path)
        if not owned:
            del self.by_watcher[watcher]
        return True

    def remove_watcher(self, watcher: Hashable) -> None:
        for path in self.by_watcher.pop(watcher, ()):
            watchers = self.by_path.get(path)
            if watchers is not None:
                watchers.pop(watcher, None)
                if not watchers:
                    del self.by_path[path]

    def has(self, path: str, watcher: Hashable) -> bool:
        watchers = self.by_path.get(path)
        return bool(watchers) and watcher in watchers  # type: ignore[operator]

    def __len__(self) -> int:
        return sum(len(w) for w in self.by_path.values())


class WatchManager:
    """All watches of a server; routes tree triggers to watchers.

    `limit` caps the watches one watcher (one session's connection) may hold, of
    all kinds together; 0 means no cap. Setting a watch over the cap raises
    TooManyWatchesError and sets nothing; setting one it already holds is free.
    """

    def __init__(self, limit: int = 0) -> None:
        self.data = WatchTable()
        self.child = WatchTable()
        self.persistent = WatchTable()
        self.recursive = WatchTable()
        self.limit = limit

    def add_data_watch(self, path: str, watcher: Hashable) -> None:
        self._add(self.data, path, watcher)

    def add_child_watch(self, path: str, watcher: Hashable) -> None:
        self._add(self.child, path, watcher)

    def add_persistent(self, path: str, watcher: Hashable, *, recursive: bool) -> None:
        self._add(self.recursive if recursive else self.persistent, path, watcher)

    def add_many(
        self,
        watcher: Hashable,
        *,
        data: Iterable[str] = (),
        child: Iterable[str] = (),
        persistent: Iterable[str] = (),
        recursive: Iterable[str] = (),
    ) -> None:
        """Set several watches at once, all or none: over the cap nothing is set
        (a reconnect's SET_WATCHES must not leave half of its watches behind)."""
        plan = [
            (table, path)
            for table, paths_ in (
                (self.data, data),
                (self.child, child),
                (self.persistent, persistent),
                (self.recursive, recursive),
            )
            for path in dict.fromkeys(paths_)
        ]
        if self.limit:
            new = sum(1 for table, path in plan if not table.has(path, watcher))
            held = self.count_of(watcher)
            if new and held + new > self.limit:
                raise TooManyWatchesError(
                    f"cannot set {new} more watches: this session holds {held} of the"
                    f" {self.limit} the server allows (max_watches_per_session)",
                    expected=self.limit,
                    actual=held + new,
                )
        for table, path in plan:
            table.add(path, watcher)

    def count_of(self, watcher: Hashable) -> int:
        """How many watches `watcher` holds, of every kind."""
        tables = (self.data, self.child, self.persistent, self.recursive)
        return sum(len(t.by_watcher.get(watcher, ())) for t in tables)

    def _add(self, table: WatchTable, path: str, watcher: Hashable) -> None:
        if self.limit and not table.has(path, watcher) and self.count_of(watcher) >= self.limit:
            raise TooManyWatchesError(
                f"cannot watch {path!r}: this session already holds {self.limit} watches, "
                "the most the server allows (max_watches_per_session)",
                path=path,
                expected=self.limit,
                actual=self.limit + 1,
            )
        table.add(path, watcher)

    def _tables(self, watcher_type: WatcherType) -> tuple[WatchTable, ...]:
        return {
            WatcherType.CHILDREN: (self.child,),
            WatcherType.DATA: (self.data,),
            WatcherType.ANY: (self.data, self.child, self.persistent, self.recursive),
            WatcherType.PERSISTENT: (self.persistent,),
            WatcherType.PERSISTENT_RECURSIVE: (self.recursive,),
        }[watcher_type]

    def remove(self, path: str, watcher: Hashable, watcher_type: WatcherType) -> bool:
        """Remove this watcher's watches of the given type on `path`; False if it had none."""
        removed = False
        for table in self._tables(watcher_type):
            removed = table.remove(path, watcher) or removed
        return removed

    def has(self, path: str, watcher: Hashable, watcher_type: WatcherType) -> bool:
        """Whether this watcher has a watch of the given type on `path` (checkWatches)."""
        return any(table.has(path, watcher) for table in self._tables(watcher_type))

    def remove_watcher(self, watcher: Hashable) -> None:
        """Forget every watch of a watcher (its connection closed)."""
        for table in (self.data, self.child, self.persistent, self.recursive):
            table.remove_watcher(watcher)

    def trigger(
        self,
        kind: EventType,
        path: str,
        zxid: int,
        may_read: Callable[[Hashable], bool] | None = None,
    ) -> list[tuple[Hashable, WatchedEvent]]:
        """The deliveries for one change: (watcher, event), each watcher once.

        `may_read(watcher)`, when given, decides whether a recursive watch set
        on an ancestor hears of this change: a watcher without READ on the
        changed node must not learn that it exists (ZooKeeper 3.8.4's fix of
        CVE-2024-23944). Watches on the path itself were set by a read that
        was checked already.
        """
        targets: dict[Hashable, None] = {}
        if kind in _DATA_EVENTS:
            targets.update(dict.fromkeys(self.data.pop(path)))
        if kind is EventType.CHILD or kind is EventType.DELETED:
            targets.update(dict.fromkeys(self.child.pop(path)))
        if self.persistent.by_path:
            targets.update(dict.fromkeys(self.persistent.get(path)))
        if kind in _DATA_EVENTS and self.recursive.by_path:
            for root in (*paths.ancestors(path), path):
                if root in self.recursive.by_path:
                    watchers = self.recursive.get(root)
                    if may_read is not None and root != path:
                        watchers = [w for w in watchers if w in targets or may_read(w)]
                    targets.update(dict.fromkeys(watchers))
        if not targets:
            return []
        event = WatchedEvent(kind, path, zxid)
        return [(watcher, event) for watcher in targets]

    @property
    def has_recursive(self) -> bool:
        """Whether any recursive watch is set (only those need ACL filtering)."""
        return bool(self.recursive.by_path)

    def count(self) -> int:
        return len(self.data) + len(self.child) + len(self.persistent) + len(self.recursive)
