"""Reads: answer a read request from the applied tree, and register its watch.

Pure functions over a DataTree and a WatchManager. Reads are served by the
member the client is connected to; they never wait for the leader.

ACLs are checked where ZooKeeper checks them, against the ids of the asking
connection (coord.server.core.acls), before any watch is set: READ for get_data,
get_children, check and the number of children; READ or ADMIN for get_acls
(a reader without ADMIN sees digest ids as "user:x"); nothing for exists,
sync, the watch ops and get_ephemerals. A refused read sets no watch.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Final

from coord import paths
from coord.acl import OPEN_ACL_UNSAFE, Perm
from coord.errors import (
    BadArgumentsError,
    BadVersionError,
    KeeperError,
    NoNodeError,
    NoWatcherError,
    ReplyTooLargeError,
    UnimplementedError,
)
from coord.framing import MAX_FRAME_SIZE
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
    SetWatchesRequest,
    SyncRequest,
    WatchedEvent,
    WatcherType,
    parse_request_body,
)
from coord.server.core.acls import READ_OR_ADMIN, AuthIds, authorized, check, redact
from coord.server.core.output import Children, MultiResults, NodeAcl, NodeData, OpOutcome, Result
from coord.server.core.tree import DataTree, Znode
from coord.server.core.watches import WatchManager


def evaluate_read(
    tree: DataTree,
    watches: WatchManager,
    watcher: Hashable,
    op: int,
    request: Any,
    *,
    session_id: int = 0,
    ids: AuthIds = (),
) -> Result:
    """Answer one read against the applied tree and register its watch, or raise the
    KeeperError the client gets. SET_WATCHES is answered by `set_watches`.
    `session_id` is the asking session (GET_EPHEMERALS lists its ephemerals);
    `ids` are its connection's ACL identity."""
    if op == OpCode.GET_DATA:
        assert isinstance(request, GetDataRequest)
        path = paths.validate(request.path)
        node = tree.get(path)
        if node is None:
            raise NoNodeError(f"node {path!r} does not exist", path=path)
        if node.acl is not OPEN_ACL_UNSAFE:
            check(node.acl, Perm.READ, ids, node=path, action="to read", target=path)
        if request.watch:
            watches.add_data_watch(path, watcher)
        return NodeData(node.data, node.stat())
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
        if node.acl is not OPEN_ACL_UNSAFE:
            action = "to list the children of"
            check(node.acl, Perm.READ, ids, node=path, action=action, target=path)
        if request.watch:
            watches.add_child_watch(path, watcher)
        children = sorted(node.children) if node.children else []
        return Children(children, node.stat() if request.include_stat else None)
    if op == OpCode.SYNC:
        assert isinstance(request, SyncRequest)
        return paths.validate(request.path)
    if op == OpCode.CHECK:
        assert isinstance(request, CheckRequest)
        path = paths.validate(request.path)
        node = tree.get(path)
        if node is None:
            raise NoNodeError(f"node {path!r} does not exist", path=path)
        if node.acl is not OPEN_ACL_UNSAFE:
            action = "to check the version of"
            check(node.acl, Perm.READ, ids, node=path, action=action, target=path)
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
        path = request.path
        action = "to read the ACL of"
        check(node.acl, READ_OR_ADMIN, ids, node=path, action=action, target=path)
        acl = node.acl if authorized(node.acl, Perm.ADMIN, ids) else redact(node.acl)
        return NodeAcl(acl, node.stat())
    if op == OpCode.GET_EPHEMERALS:
        assert isinstance(request, GetEphemeralsRequest)
        owned = tree.ephemerals.get(session_id, ())
        found = sorted(path for path in owned if path.startswith(request.prefix))
        _check_reply_size("the ephemerals list", sum(entry_cost(p) for p in found))
        return found
    if op == OpCode.GET_ALL_CHILDREN_NUMBER:
        assert isinstance(request, GetAllChildrenNumberRequest)
        node = _existing(tree, request.path)
        path = request.path
        check(node.acl, Perm.READ, ids, node=path, action="to count the nodes below", target=path)
        if request.path == "/":
            return len(tree) - 1
        return sum(1 for _ in tree.walk(request.path)) - 1 if node.children else 0
    if op == OpCode.MULTI_READ:
        assert isinstance(request, MultiReadRequest)
        return _multi_read(tree, watches, watcher, request, ids)
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
    tree: DataTree,
    watches: WatchManager,
    watcher: Hashable,
    request: MultiReadRequest,
    ids: AuthIds,
) -> MultiResults:
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
    _check_reply_size("the multi-read", sum(_read_cost(tree, body) for _, body in parsed))
    out: list[OpOutcome] = []
    for op, body in parsed:
        try:
            out.append(OpOutcome(evaluate_read(tree, watches, watcher, op, body, ids=ids)))
        except KeeperError as exc:
            out.append(OpOutcome(error=exc))
    return MultiResults(tuple(out))


REPLY_BUDGET: Final = MAX_FRAME_SIZE - 4096
"""The most a read's results may take: what the client accepts in one frame, less
room for the envelope and the stats."""

_RESULT_OVERHEAD: Final = 128
"""A generous bound on one result's envelope and stat in msgpack or jute."""


def entry_cost(name: str) -> int:
    """What one string of a list result (a child name, a path) adds to a reply:
    its UTF-8 bytes and a 4-byte length (jute; msgpack takes no more for these)."""
    return len(name.encode()) + 4


def _read_cost(tree: DataTree, body: Any) -> int:
    """What one get_data or get_children of a multi-read will take in the reply."""
    node = tree.get(getattr(body, "path", ""))
    if node is None:
        return _RESULT_OVERHEAD
    if isinstance(body, GetDataRequest):
        return len(node.data or b"") + _RESULT_OVERHEAD
    return sum(entry_cost(name) for name in node.children or ()) + _RESULT_OVERHEAD


def _check_reply_size(what: str, size: int) -> None:
    if size > REPLY_BUDGET:
        raise ReplyTooLargeError(
            f"{what} would take {size} bytes, over the {REPLY_BUDGET} one reply may carry;"
            " ask for less at a time",
            expected=f"<= {REPLY_BUDGET}",
            actual=size,
        )


def set_watches(
    tree: DataTree, watches: WatchManager, watcher: Hashable, request: SetWatchesRequest
) -> list[WatchedEvent]:
    """Re-register watches after a reconnect; fire at once what changed since then."""
    since = request.relative_zxid
    fired: list[WatchedEvent] = []
    data: list[str] = []
    child: list[str] = []
    for path in map(paths.validate, request.data):
        node = tree.get(path)
        if node is None:
            fired.append(WatchedEvent(EventType.DELETED, path, tree.last_zxid))
        elif node.mzxid > since:
            fired.append(WatchedEvent(EventType.CHANGED, path, node.mzxid))
        else:
            data.append(path)
    for path in map(paths.validate, request.exist):
        node = tree.get(path)
        if node is not None:
            fired.append(WatchedEvent(EventType.CREATED, path, node.czxid))
        else:
            data.append(path)
    for path in map(paths.validate, request.child):
        node = tree.get(path)
        if node is None:
            fired.append(WatchedEvent(EventType.DELETED, path, tree.last_zxid))
        elif node.pzxid > since:
            fired.append(WatchedEvent(EventType.CHILD, path, node.pzxid))
        else:
            child.append(path)
    watches.add_many(
        watcher,
        data=data,
        child=child,
        persistent=map(paths.validate, request.persistent),
        recursive=map(paths.validate, request.persistent_recursive),
    )
    return fired
