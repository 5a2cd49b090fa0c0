"""Reads: answer a read request from the applied tree, and register its watch.

Pure functions over a DataTree and a WatchManager. Reads are served by the
member the client is connected to; they never wait for the leader.

ACLs: the server stores none and enforces none. GET_ACL answers ZooKeeper's
open ACL (world:anyone, all permissions); SET_ACL checks what ZooKeeper would
check (the node exists, the ACL is not empty, the version matches the node's
aversion) and answers the unchanged stat, so clients that set ACLs keep
working, and nothing is promised that is not kept.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Final

from coord import paths
from coord.errors import (
    BadArgumentsError,
    BadVersionError,
    InvalidACLError,
    KeeperError,
    NoNodeError,
    NoWatcherError,
    UnimplementedError,
)
from coord.messages import (
    MULTI_READ_OPS,
    AddWatchMode,
    AddWatchRequest,
    CheckRequest,
    CheckWatchesRequest,
    EventType,
    ExistsRequest,
    GetACLRequest,
    GetAllChildrenNumberRequest,
    GetChildrenRequest,
    GetDataRequest,
    GetEphemeralsRequest,
    MultiReadRequest,
    OpCode,
    RemoveWatchesRequest,
    SetACLRequest,
    SetWatchesRequest,
    SyncRequest,
    WatchedEvent,
    WatcherType,
    parse_request_body,
)
from server.tree import DataTree, Znode
from server.watches import WatchManager

OPEN_ACL: Final = [[31, "world", "anyone"]]
"""The only ACL this server answers: everyone may do everything (ZooKeeper's OPEN_ACL_UNSAFE)."""


def evaluate_read(
    tree: DataTree,
    watches: WatchManager,
    watcher: Hashable,
    op: int,
    request: Any,
    *,
    session_id: int = 0,
) -> Any:
    """Answer one read against the applied tree and register its watch, or raise the
    KeeperError the client gets. SET_WATCHES is answered by `set_watches`.
    `session_id` is the asking session (GET_EPHEMERALS lists its ephemerals)."""
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
        kind = _watcher_type(path, request.watcher_type)
        if not watches.remove(path, watcher, kind):
            raise NoWatcherError(f"no {kind.name.lower()} watch on {path!r}", path=path)
        return None
    if op == OpCode.CHECK_WATCHES:
        assert isinstance(request, CheckWatchesRequest)
        path = paths.validate(request.path)
        kind = _watcher_type(path, request.watcher_type)
        if not watches.has(path, watcher, kind):
            raise NoWatcherError(f"no {kind.name.lower()} watch on {path!r}", path=path)
        return None
    if op == OpCode.GET_ACL:
        assert isinstance(request, GetACLRequest)
        node = _existing(tree, request.path)
        return [OPEN_ACL, node.stat()]
    if op == OpCode.SET_ACL:
        assert isinstance(request, SetACLRequest)
        node = _existing(tree, request.path)
        if not request.acl:
            raise InvalidACLError(f"empty ACL for {request.path!r}", path=request.path)
        if request.version not in (-1, node.aversion):
            raise BadVersionError(
                f"ACL version mismatch on {request.path!r}: expected {request.version}, "
                f"actual {node.aversion}",
                path=request.path,
                expected=request.version,
                actual=node.aversion,
            )
        return node.stat()
    if op == OpCode.GET_EPHEMERALS:
        assert isinstance(request, GetEphemeralsRequest)
        owned = tree.ephemerals.get(session_id, ())
        return sorted(path for path in owned if path.startswith(request.prefix))
    if op == OpCode.GET_ALL_CHILDREN_NUMBER:
        assert isinstance(request, GetAllChildrenNumberRequest)
        node = _existing(tree, request.path)
        if request.path == "/":
            return len(tree) - 1
        return sum(1 for _ in tree.walk(request.path)) - 1 if node.children else 0
    if op == OpCode.MULTI_READ:
        assert isinstance(request, MultiReadRequest)
        return _multi_read(tree, watches, watcher, request)
    raise BadArgumentsError(f"op {op} is not a read", actual=op)


def _existing(tree: DataTree, path: str) -> Znode:
    path = paths.validate(path)
    node = tree.get(path)
    if node is None:
        raise NoNodeError(f"node {path!r} does not exist", path=path)
    return node


def _watcher_type(path: str, value: int) -> WatcherType:
    try:
        return WatcherType(value)
    except ValueError:
        raise BadArgumentsError(
            f"unknown watcher type {value} for {path!r}",
            path=path,
            expected="1..5",
            actual=value,
        ) from None


def _multi_read(
    tree: DataTree, watches: WatchManager, watcher: Hashable, request: MultiReadRequest
) -> list[list[Any]]:
    """Each op answered on its own (one failing does not fail the others), all at one point."""
    parsed = []
    for op, body in request.ops:
        if op not in MULTI_READ_OPS:
            raise UnimplementedError(
                f"op code {op} cannot appear in a multi-read",
                expected="get_data or get_children",
                actual=op,
            )
        parsed.append((op, parse_request_body(op, body)))
    out: list[list[Any]] = []
    for op, body in parsed:
        try:
            out.append([0, evaluate_read(tree, watches, watcher, op, body)])
        except KeeperError as exc:
            out.append([exc.code, exc.to_wire()])
    return out


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
