"""Which callables to call for a watch event: the client's watch bookkeeping.

This is ZooKeeper's ZKWatchManager as a pure object (no IO, no clock). The
server keeps one watch per (path, kind) for the session; the client keeps,
for each such watch, the callables that asked for it. When an event arrives
`fire()` says who gets it and forgets the one-shot registrations it used up:

    CREATED, CHANGED  data and exist watches on the path
    DELETED           data, exist and child watches on the path
    CHILD             child watches on the path
    and, for every type, the persistent watches on the path and the
    persistent recursive watches on the path or any ancestor (except
    CHILD events, which recursive watches never get; ZooKeeper filters
    them on the client too, since a child watch on a descendant makes the
    server send them)

One-shot kinds (DATA from get/exists on a present node, EXIST from exists on
a missing node, CHILD from get_children) are removed when they fire;
persistent kinds stay until removed. A callable registered twice for the same
(path, kind), or reached through two kinds by one event, is called once.

Callables must be hashable (functions, bound methods and WatchStreams are);
they are kept in insertion-ordered dicts so calls happen in registration
order, which makes tests and logs repeatable.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from coord.messages import EventType, WatchedEvent, WatcherType
from coord.paths import ancestors

WatchCallback = Callable[[WatchedEvent], Any]


class WatchKind(enum.Enum):
    """The five kinds of watch a session can hold on a path."""

    DATA = "data"
    EXIST = "exist"
    CHILD = "child"
    PERSISTENT = "persistent"
    PERSISTENT_RECURSIVE = "persistent_recursive"

    @property
    def is_persistent(self) -> bool:
        return self in (WatchKind.PERSISTENT, WatchKind.PERSISTENT_RECURSIVE)

    @property
    def removed_event(self) -> EventType:
        """The event a callable gets when its watch of this kind is removed."""
        if self is WatchKind.CHILD:
            return EventType.CHILD_WATCH_REMOVED
        if self.is_persistent:
            return EventType.PERSISTENT_WATCH_REMOVED
        return EventType.DATA_WATCH_REMOVED


KINDS_BY_WATCHER_TYPE: dict[WatcherType, tuple[WatchKind, ...]] = {
    WatcherType.CHILDREN: (WatchKind.CHILD,),
    WatcherType.DATA: (WatchKind.DATA, WatchKind.EXIST),
    WatcherType.ANY: tuple(WatchKind),
    WatcherType.PERSISTENT: (WatchKind.PERSISTENT,),
    WatcherType.PERSISTENT_RECURSIVE: (WatchKind.PERSISTENT_RECURSIVE,),
}

_ONE_SHOT_BY_EVENT: dict[EventType, tuple[WatchKind, ...]] = {
    EventType.CREATED: (WatchKind.DATA, WatchKind.EXIST),
    EventType.CHANGED: (WatchKind.DATA, WatchKind.EXIST),
    EventType.DELETED: (WatchKind.DATA, WatchKind.EXIST, WatchKind.CHILD),
    EventType.CHILD: (WatchKind.CHILD,),
}


class WatchRegistry:
    """The callables registered per (kind, path); see the module docstring."""

    __slots__ = ("_table",)

    def __init__(self) -> None:
        self._table: dict[WatchKind, dict[str, dict[WatchCallback, None]]] = {
            kind: {} for kind in WatchKind
        }

    def add(self, kind: WatchKind, path: str, callback: WatchCallback) -> None:
        """Register `callback` for events of `kind` on `path` (once per pair)."""
        try:
            hash(callback)
        except TypeError:
            raise TypeError(f"watch callable {callback!r} must be hashable") from None
        self._table[kind].setdefault(path, {})[callback] = None

    def has(self, kind: WatchKind, path: str) -> bool:
        """Whether any callable holds a watch of `kind` on `path`."""
        return path in self._table[kind]

    def callbacks(self, kind: WatchKind, path: str) -> list[WatchCallback]:
        """The callables registered for (kind, path), in registration order."""
        return list(self._table[kind].get(path, ()))

    def fire(self, event: WatchedEvent) -> list[WatchCallback]:
        """The callables to call for `event`; used-up one-shot registrations are dropped."""
        out: dict[WatchCallback, None] = {}
        for kind in _ONE_SHOT_BY_EVENT.get(event.type, ()):
            found = self._table[kind].pop(event.path, None)
            if found:
                out.update(found)
        if event.type in _ONE_SHOT_BY_EVENT:
            out.update(self._table[WatchKind.PERSISTENT].get(event.path, {}))
            if event.type is not EventType.CHILD:
                recursive = self._table[WatchKind.PERSISTENT_RECURSIVE]
                if recursive:
                    for path in (*ancestors(event.path), event.path):
                        out.update(recursive.get(path, {}))
        return list(out)

    def remove(
        self,
        path: str,
        watcher_type: WatcherType,
        callback: WatchCallback | None = None,
    ) -> list[tuple[WatchKind, WatchCallback]]:
        """Drop the registrations of `watcher_type` on `path` (only `callback`'s if given).

        Returns what was dropped, so the caller can tell each callable that its
        watch is gone (ZooKeeper's *_WATCH_REMOVED events).
        """
        removed: list[tuple[WatchKind, WatchCallback]] = []
        for kind in KINDS_BY_WATCHER_TYPE[watcher_type]:
            by_path = self._table[kind]
            found = by_path.get(path)
            if not found:
                continue
            if callback is None:
                removed.extend((kind, cb) for cb in found)
                del by_path[path]
            elif callback in found:
                del found[callback]
                removed.append((kind, callback))
                if not found:
                    del by_path[path]
        return removed

    def any_of(self, path: str, watcher_type: WatcherType) -> bool:
        """Whether some callable still holds a watch of `watcher_type` on `path`."""
        return any(self.has(kind, path) for kind in KINDS_BY_WATCHER_TYPE[watcher_type])

    def set_watches(self) -> dict[str, list[str]]:
        """The watched paths per SetWatchesRequest field (data, exist, child, ...).

        Empty lists are left out; an empty dict means there is nothing to
        re-register after a reconnect.
        """
        return {kind.value: list(by_path) for kind, by_path in self._table.items() if by_path}

    def clear(self) -> list[WatchCallback]:
        """Forget every registration; returns each callable once (to close streams)."""
        out: dict[WatchCallback, None] = {}
        for by_path in self._table.values():
            for callbacks in by_path.values():
                out.update(callbacks)
            by_path.clear()
        return list(out)

    def __len__(self) -> int:
        """How many (kind, path, callable) registrations there are."""
        return sum(len(cbs) for by_path in self._table.values() for cbs in by_path.values())


def split_set_watches(
    lists: dict[str, list[str]], relative_zxid: int, budget: int
) -> list[dict[str, Any]]:
    """SetWatchesRequest bodies for `lists`, each holding at most ~`budget` path bytes.

    ZooKeeper splits its SetWatches the same way: a session with many watches
    must not produce one frame over the size limit after a reconnect.
    """
    bodies: list[dict[str, Any]] = []
    current: dict[str, Any] = {"relative_zxid": relative_zxid}
    used = 0
    for field, paths in lists.items():
        for path in paths:
            cost = len(path.encode("utf-8", "surrogatepass")) + 8
            if used and used + cost > budget:
                bodies.append(current)
                current = {"relative_zxid": relative_zxid}
                used = 0
            current.setdefault(field, []).append(path)
            used += cost
    if used:
        bodies.append(current)
    return bodies
