"""Reads: answer a read request from the applied tree, and register its watch.

Pure functions over a DataTree and a WatchManager. Reads are served by the
member the client is connected to; they never wait for the leader.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from coord import paths
from coord.errors import BadArgumentsError, BadVersionError, NoNodeError, NoWatcherError
from coord.messages import (
    AddWatchMode,
    AddWatchRequest,
    CheckRequest,
    EventType,
    ExistsRequest,
    GetChildrenRequest,
    GetDataRequest,
    OpCode,
    RemoveWatchesRequest,
    SetWatchesRequest,
    SyncRequest,
    WatchedEvent,
    WatcherType,
)
from server.tree import DataTree
from server.watches import WatchManager


def evaluate_read(
    tree: DataTree, watches: WatchManager, watcher: Hashable, op: int, request: Any
) -> Any:
    """Answer one read against the applied tree and register its watch, or raise the
    KeeperError the client gets. SET_WATCHES is answered by `set_watches`."""
    if op == OpCode.GET_DATA:
        assert isinstance(request, GetDataRequest)
        path = paths.validate(request.path)
        node = tree.get(path)
        if node is None:
            raise NoNodeError(f"node {path!r} does not exist", path=path)
        if request.watch:
            watches.add_data_watch(path, watcher)
        return [node.data, node.stat()]
    if op == OpCode.EXISTS:
        assert isinstance(request, ExistsRequest)
        path = paths.validate(request.path)
        node = tree.get(path)
        if request.watch:
            watches.add_data_watch(path, watcher)
        return None if node is None else node.stat()
    if op == OpCode.GET_CHILDREN:
        assert isinstance(request, GetChildrenRequest)
        path = paths.validate(request.path)
        node = tree.get(path)
        if node is None:
            raise NoNodeError(f"node {path!r} does not exist", path=path)
        if request.watch:
            watches.add_child_watch(path, watcher)
        children = sorted(node.children) if node.children else []
        return [children, node.stat() if request.include_stat else None]
    if op == OpCode.SYNC:
        assert isinstance(request, SyncRequest)
        return paths.validate(request.path)
    if op == OpCode.CHECK:
        assert isinstance(request, CheckRequest)
        path = paths.validate(request.path)
        node = tree.get(path)
        if node is None:
            raise NoNodeError(f"node {path!r} does not exist", path=path)
        if request.version not in (-1, node.version):
            raise BadVersionError(
                f"version mismatch on {path!r}: expected {request.version}, actual {node.version}",
                path=path,
                expected=request.version,
                actual=node.version,
            )
        return None
    if op == OpCode.ADD_WATCH:
        assert isinstance(request, AddWatchRequest)
        path = paths.validate(request.path)
        if request.mode not in (AddWatchMode.PERSISTENT, AddWatchMode.PERSISTENT_RECURSIVE):
            raise BadArgumentsError(
                f"unknown add-watch mode {request.mode} for {path!r}",
                path=path,
                expected="0 or 1",
                actual=request.mode,
            )
        watches.add_persistent(
            path, watcher, recursive=request.mode == AddWatchMode.PERSISTENT_RECURSIVE
        )
        return None
    if op == OpCode.REMOVE_WATCHES:
        assert isinstance(request, RemoveWatchesRequest)
        path = paths.validate(request.path)
        try:
            kind = WatcherType(request.watcher_type)
        except ValueError:
            raise BadArgumentsError(
                f"unknown watcher type {request.watcher_type} for {path!r}",
                path=path,
                expected="1..5",
                actual=request.watcher_type,
            ) from None
        if not watches.remove(path, watcher, kind):
            raise NoWatcherError(f"no {kind.name.lower()} watch on {path!r}", path=path)
        return None
    raise BadArgumentsError(f"op {op} is not a read", actual=op)


def set_watches(
    tree: DataTree, watches: WatchManager, watcher: Hashable, request: SetWatchesRequest
) -> list[WatchedEvent]:
    """Re-register watches after a reconnect; fire at once what changed since then."""
    since = request.relative_zxid
    fired: list[WatchedEvent] = []
    for path in map(paths.validate, request.data):
        node = tree.get(path)
        if node is None:
            fired.append(WatchedEvent(EventType.DELETED, path, tree.last_zxid))
        elif node.mzxid > since:
            fired.append(WatchedEvent(EventType.CHANGED, path, node.mzxid))
        else:
            watches.add_data_watch(path, watcher)
    for path in map(paths.validate, request.exist):
        node = tree.get(path)
        if node is not None:
            fired.append(WatchedEvent(EventType.CREATED, path, node.czxid))
        else:
            watches.add_data_watch(path, watcher)
    for path in map(paths.validate, request.child):
        node = tree.get(path)
        if node is None:
            fired.append(WatchedEvent(EventType.DELETED, path, tree.last_zxid))
        elif node.pzxid > since:
            fired.append(WatchedEvent(EventType.CHILD, path, node.pzxid))
        else:
            watches.add_child_watch(path, watcher)
    for path in map(paths.validate, request.persistent):
        watches.add_persistent(path, watcher, recursive=False)
    for path in map(paths.validate, request.persistent_recursive):
        watches.add_persistent(path, watcher, recursive=True)
    return fired
