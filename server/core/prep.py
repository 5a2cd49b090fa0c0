"""Preparation: a write request becomes a txn, checked against the pending state.

Writes are pipelined: a request is prepared while earlier txns are still on
their way to disk (and, later, to a quorum). So it must be checked against the
tree *as it will be* once those land, not as it is. Like ZooKeeper's
PrepRequestProcessor, the preparer keeps an overlay of outstanding changes: a
`NodeView` per path touched by a pending txn (a tombstone for a pending delete),
consulted before the tree. When txns are applied the tree catches up and
`applied(zxid)` drops the records that are no longer ahead of it.

Every check that can fail happens here: path rules, data size, versions,
parents, ephemeral parents, sequential names (from the parent's cversion),
TTL bounds, and ACLs where ZooKeeper checks them (CREATE on the parent of a
create, DELETE on the parent of a delete, WRITE for a set, READ for a check
inside a multi, ADMIN for set_acls), against the ids of the asking
connection, and against the ACLs of the pending state (a multi may create a
node and its children). The resulting txn cannot fail on apply, so every replica that
applies it gets the same tree. A multi is prepared op by op on a scratch
overlay; only if all ops pass does the scratch join the pending overlay.
"""

from __future__ import annotations

from collections import deque

from coord import paths
from coord.acl import OPEN_ACL_UNSAFE, Perm, acl_from_wire
from coord.errors import (
    BadArgumentsError,
    BadVersionError,
    ChildListTooLargeError,
    DataTooLargeError,
    InvalidTTLError,
    KeeperError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
)
from coord.framing import MAX_DATA_SIZE
from coord.messages import (
    CheckRequest,
    CreateMode,
    CreateRequest,
    DeleteRequest,
    OpCode,
    SetACLRequest,
    SetDataRequest,
)
from coord.server.core.acls import AuthIds, check, fixup_acl
from coord.server.core.nodeview import NodeView, copy_view
from coord.server.core.reads import entry_cost
from coord.server.core.tree import DataTree
from coord.server.core.txn import (
    CheckTxn,
    CloseSessionTxn,
    CreateTxn,
    DeleteTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
)

MAX_TTL_MS = (1 << 40) - 1
"""ZooKeeper's TTL bound (it keeps the TTL in 40 bits of the ephemeral owner)."""

MAX_CHILD_LIST_BYTES = MAX_DATA_SIZE - 1024
"""The most a parent's child names may take, counted as UTF-8 bytes plus 4 per name.

That is what a get_children reply costs in jute (a 4-byte length per name) and
at most what it costs in msgpack; the 1 KiB left covers the reply's header and
stat, so the reply fits both our client's frame limit and a ZooKeeper client's
jute.maxbuffer (1 MiB - 1). A create over it fails with ChildListTooLargeError.
"""


SubTxn = CreateTxn | DeleteTxn | SetDataTxn | SetACLTxn | CheckTxn


class MultiFailed(Exception):
    """A multi in which op `index` failed with `error`; nothing of it takes effect."""

    def __init__(self, index: int, error: KeeperError, count: int) -> None:
        super().__init__(f"multi op {index} failed: {error}")
        self.index = index
        self.error = error
        self.count = count

    def results(self) -> list[KeeperError]:
        """One error per op: the real one at `index`, RolledBackError elsewhere."""
        out: list[KeeperError] = []
        for i in range(self.count):
            if i == self.index:
                out.append(self.error)
            else:
                out.append(RolledBackError("rolled back: another op in the multi failed"))
        return out


class Preparer:
    """Turns write requests into txns against tree + pending overlay."""

    def __init__(self, tree: DataTree) -> None:
        self.tree = tree
        self._pending: dict[str, NodeView] = {}
        self._touched: deque[tuple[int, list[str]]] = deque()

    # -- the view ------------------------------------------------------------

    def view(self, path: str, overlay: dict[str, NodeView] | None = None) -> NodeView | None:
        """The node at `path` as it will be once every pending txn lands (None: absent)."""
        record = None
        if overlay is not None:
            record = overlay.get(path)
        if record is None:
            record = self._pending.get(path)
        if record is not None:
            return record if record.exists else None
        node = self.tree.get(path)
        return None if node is None else NodeView.of(node)

    def applied(self, zxid: int) -> None:
        """The tree has applied every txn up to `zxid`: drop records no longer ahead of it."""
        touched = self._touched
        pending = self._pending
        while touched and touched[0][0] <= zxid:
            _, touched_paths = touched.popleft()
            for path in touched_paths:
                record = pending.get(path)
                if record is not None and record.zxid <= zxid:
                    del pending[path]

    def clear(self) -> None:
        """Forget every pending change (the pending txns will never land)."""
        self._pending.clear()
        self._touched.clear()

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def _commit(self, zxid: int, overlay: dict[str, NodeView]) -> None:
        for record in overlay.values():
            record.zxid = zxid
        self._pending.update(overlay)
        self._touched.append((zxid, list(overlay)))

    # -- preparation -----------------------------------------------------------

    def prepare_write(
        self,
        op: int,
        request: object,
        *,
        session_id: int,
        zxid: int,
        now_ms: int,
        ids: AuthIds = (),
    ) -> SubTxn:
        """Prepare one create/delete/set/set_acls/check for a connection with `ids`;
        raise the KeeperError if it cannot apply."""
        overlay: dict[str, NodeView] = {}
        txn = self._prepare_one(op, request, overlay, session_id, now_ms, ids)
        self._commit(zxid, overlay)
        return txn

    def prepare_multi(
        self,
        ops: list[tuple[int, object]],
        *,
        session_id: int,
        zxid: int,
        now_ms: int,
        ids: AuthIds = (),
    ) -> MultiTxn:
        """Prepare every op of a multi on one scratch overlay; all or nothing."""
        overlay: dict[str, NodeView] = {}
        txns: list[SubTxn] = []
        for index, (op, request) in enumerate(ops):
            try:
                txns.append(self._prepare_one(op, request, overlay, session_id, now_ms, ids))
            except KeeperError as exc:
                raise MultiFailed(index, exc, len(ops)) from None
        self._commit(zxid, overlay)
        return MultiTxn(tuple(txns))

    def prepare_close_session(
        self, session_id: int, *, expired: bool, zxid: int
    ) -> CloseSessionTxn:
        """Closing a session deletes its ephemerals: record those deletes as pending."""
        overlay: dict[str, NodeView] = {}
        deletes = [self._remove(path, overlay) for path in self.ephemerals_of(session_id)]
        self._commit(zxid, overlay)
        return CloseSessionTxn(session_id, expired, tuple(deletes))

    def prepare_reap(self, path: str, *, now_ms: int, zxid: int) -> DeleteTxn | None:
        """Delete an empty container or an expired TTL node, if it still qualifies."""
        node = self.view(path)
        if node is None or node.num_children:
            return None
        if node.mode.is_container:
            if node.cversion == 0:
                return None  # never had a child: keep it, as ZooKeeper does
        elif node.mode.is_ttl:
            if now_ms < node.mtime + node.ttl_ms:
                return None
        else:
            return None
        overlay: dict[str, NodeView] = {}
        delete = self._remove(path, overlay)
        self._commit(zxid, overlay)
        return delete

    def ephemerals_of(self, session_id: int) -> list[str]:
        """The session's ephemerals as of the pending state."""
        # A tree ephemeral may already be deleted and re-created by someone else
        # in the pending state: it is the session's only if the view says so.
        found = set()
        for path in self.tree.ephemerals.get(session_id, ()):
            view = self.view(path)
            if view is not None and view.ephemeral_owner == session_id:
                found.add(path)
        for path, record in self._pending.items():
            if record.exists and record.ephemeral_owner == session_id:
                found.add(path)
        return sorted(found)

    def _prepare_one(
        self,
        op: int,
        request: object,
        overlay: dict[str, NodeView],
        session_id: int,
        now_ms: int,
        ids: AuthIds,
    ) -> SubTxn:
        if op == OpCode.CREATE and isinstance(request, CreateRequest):
            return self._create(request, overlay, session_id, now_ms, ids)
        if op == OpCode.SET_DATA and isinstance(request, SetDataRequest):
            return self._set_data(request, overlay, now_ms, ids)
        if op == OpCode.DELETE and isinstance(request, DeleteRequest):
            return self._delete(request, overlay, ids)
        if op == OpCode.CHECK and isinstance(request, CheckRequest):
            return self._check(request, overlay, ids)
        if op == OpCode.SET_ACL and isinstance(request, SetACLRequest):
            return self._set_acl(request, overlay, ids)
        raise BadArgumentsError(f"op {op} is not a write", actual=op)

    def _create(
        self,
        request: CreateRequest,
        overlay: dict[str, NodeView],
        owner: int,
        now_ms: int,
        ids: AuthIds,
    ) -> CreateTxn:
        try:
            mode = CreateMode(request.mode)
        except ValueError:
            raise BadArgumentsError(
                f"unknown create mode {request.mode} for {request.path!r}",
                path=request.path,
                expected="0..6",
                actual=request.mode,
            ) from None
        path = paths.validate(request.path, sequential=mode.is_sequential)
        _check_data_size(path, request.data)
        ttl = request.ttl_ms
        if mode.is_ttl:
            if not 0 < ttl <= MAX_TTL_MS:
                raise InvalidTTLError(
                    f"TTL of {ttl} ms for {path!r} is out of range",
                    path=path,
                    expected=f"1..{MAX_TTL_MS}",
                    actual=ttl,
                )
        elif ttl:
            raise InvalidTTLError(
                f"a TTL was given for {path!r} but mode {mode.name} has none",
                path=path,
                expected=0,
                actual=ttl,
            )
        acl = OPEN_ACL_UNSAFE if request.acl is None else acl_from_wire(request.acl)
        acl = fixup_acl(acl, ids, path=path)
        if path == "/" and not mode.is_sequential:
            raise NodeExistsError("the root always exists", path=path)
        # A sequential prefix may end in '/': its parent is the part before the name.
        parent_path = paths.parent(path + "0" if mode.is_sequential else path)
        parent = self.view(parent_path, overlay)
        if parent is None:
            raise NoNodeError(f"parent {parent_path!r} of {path!r} does not exist", path=path)
        if parent.acl is not OPEN_ACL_UNSAFE:
            check(parent.acl, Perm.CREATE, ids, node=parent_path, action="to create", target=path)
        if parent.ephemeral_owner:
            raise NoChildrenForEphemeralsError(
                f"parent {parent_path!r} of {path!r} is ephemeral and cannot have children",
                path=path,
            )
        if mode.is_sequential:
            path = paths.sequential_name(path, parent.cversion)
            paths.validate(path)
        if self.view(path, overlay) is not None:
            raise NodeExistsError(f"node {path!r} already exists", path=path)
        child_bytes = self._child_bytes(parent_path, parent) + _name_cost(path)
        if child_bytes > MAX_CHILD_LIST_BYTES:
            raise ChildListTooLargeError(
                f"creating {path!r} would make the child list of {parent_path!r} "
                f"{child_bytes} bytes, over the limit of {MAX_CHILD_LIST_BYTES} "
                "(4 bytes plus the UTF-8 name per child)",
                path=path,
                expected=MAX_CHILD_LIST_BYTES,
                actual=child_bytes,
            )
        parent = copy_view(parent)
        parent.cversion += 1
        parent.num_children += 1
        parent.child_bytes = child_bytes
        overlay[parent_path] = parent
        overlay[path] = NodeView(
            version=0,
            cversion=0,
            num_children=0,
            ephemeral_owner=owner if mode.is_ephemeral else 0,
            mode=mode,
            mtime=now_ms,
            ttl_ms=ttl,
            acl=acl,
            child_bytes=0,
        )
        return CreateTxn(
            path=path,
            data=request.data,
            mode=mode,
            ephemeral_owner=owner if mode.is_ephemeral else 0,
            ttl_ms=ttl,
            parent_cversion=parent.cversion,
            acl=acl,
        )

    def _set_data(
        self, request: SetDataRequest, overlay: dict[str, NodeView], now_ms: int, ids: AuthIds
    ) -> SetDataTxn:
        path = paths.validate(request.path)
        _check_data_size(path, request.data)
        node = self.view(path, overlay)
        if node is None:
            raise NoNodeError(f"node {path!r} does not exist", path=path)
        if node.acl is not OPEN_ACL_UNSAFE:
            check(node.acl, Perm.WRITE, ids, node=path, action="to set the data of", target=path)
        _check_version(path, request.version, node.version)
        node = copy_view(node)
        node.version += 1
        node.mtime = now_ms
        overlay[path] = node
        return SetDataTxn(path, request.data, node.version)

    def _delete(
        self, request: DeleteRequest, overlay: dict[str, NodeView], ids: AuthIds
    ) -> DeleteTxn:
        path = paths.validate(request.path)
        if path == "/":
            raise BadArgumentsError("the root cannot be deleted", path=path)
        parent_path = paths.parent(path)
        parent = self.view(parent_path, overlay)
        if parent is not None and parent.acl is not OPEN_ACL_UNSAFE:
            check(parent.acl, Perm.DELETE, ids, node=parent_path, action="to delete", target=path)
        node = self.view(path, overlay)
        if node is None:
            raise NoNodeError(f"node {path!r} does not exist", path=path)
        _check_version(path, request.version, node.version)
        if node.num_children:
            raise NotEmptyError(
                f"node {path!r} has {node.num_children} children",
                path=path,
                expected=0,
                actual=node.num_children,
            )
        return self._remove(path, overlay)

    def _check(self, request: CheckRequest, overlay: dict[str, NodeView], ids: AuthIds) -> CheckTxn:
        path = paths.validate(request.path)
        node = self.view(path, overlay)
        if node is None:
            raise NoNodeError(f"node {path!r} does not exist", path=path)
        check(node.acl, Perm.READ, ids, node=path, action="to check the version of", target=path)
        _check_version(path, request.version, node.version)
        return CheckTxn(path, request.version)

    def _set_acl(
        self, request: SetACLRequest, overlay: dict[str, NodeView], ids: AuthIds
    ) -> SetACLTxn:
        path = paths.validate(request.path)
        acl = fixup_acl(acl_from_wire(request.acl), ids, path=path)
        node = self.view(path, overlay)
        if node is None:
            raise NoNodeError(f"node {path!r} does not exist", path=path)
        check(node.acl, Perm.ADMIN, ids, node=path, action="to set the ACL of", target=path)
        if request.version not in (-1, node.aversion):
            raise BadVersionError(
                f"ACL version mismatch on {path!r}: expected {request.version}, "
                f"actual {node.aversion}",
                path=path,
                expected=request.version,
                actual=node.aversion,
            )
        node = copy_view(node)
        node.acl = acl
        node.aversion += 1
        overlay[path] = node
        return SetACLTxn(path, acl, node.aversion)

    def _remove(self, path: str, overlay: dict[str, NodeView]) -> DeleteTxn:
        """Record a pending delete of an existing node; return its txn."""
        parent_path = paths.parent(path)
        parent = self.view(parent_path, overlay)
        assert parent is not None, f"{path!r} exists, so its parent {parent_path!r} does"
        child_bytes = self._child_bytes(parent_path, parent) - _name_cost(path)
        parent = copy_view(parent)
        parent.cversion += 1
        parent.num_children = max(0, parent.num_children - 1)
        parent.child_bytes = max(0, child_bytes)
        overlay[parent_path] = parent
        overlay[path] = NodeView(0, 0, 0, 0, CreateMode.PERSISTENT, 0, 0, exists=False)
        return DeleteTxn(path, parent.cversion)

    def _child_bytes(self, path: str, view: NodeView) -> int:
        """The cost of `view`'s child list, counted from the tree the first time it is needed.

        Counted once per pending lifetime of the parent (one join and encode of
        the names), then kept up to date by each pending create and delete.
        """
        if view.child_bytes >= 0:
            return view.child_bytes
        node = self.tree.get(path)
        names = node.children if node is not None and node.children else ()
        return len("".join(names).encode()) + 4 * len(names)


def _name_cost(path: str) -> int:
    """What one child name adds to its parent's child list."""
    return entry_cost(paths.basename(path))


def _check_version(path: str, expected: int, actual: int) -> None:
    if expected != -1 and expected != actual:
        raise BadVersionError(
            f"version mismatch on {path!r}: expected {expected}, actual {actual}",
            path=path,
            expected=expected,
            actual=actual,
        )


def _check_data_size(path: str, data: bytes | None) -> None:
    if data is not None and len(data) > MAX_DATA_SIZE:
        raise DataTooLargeError(
            f"data for {path!r} is {len(data)} bytes, over the limit of {MAX_DATA_SIZE}",
            path=path,
            expected=MAX_DATA_SIZE,
            actual=len(data),
        )
