"""DataTree: the znode tree, changed only by applying committed txns.

The tree never decides anything: the preparer (coord.server.core.prep) already checked
versions, chose sequential names and read the time, so `apply` just carries a
txn out and reports what changed as watch triggers (`(EventType, path)` pairs)
for the caller to route. The tree calls no watcher itself.

`apply` tolerates a txn that does not fit (a create of an existing node, a
delete of a missing one) by recording an error code instead of raising: that
is what replaying a log over a fuzzy snapshot needs (server storage), and in
normal operation it never happens. Znodes are many, so `Znode` is a slotted
class and a leaf keeps no children set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from coord import paths
from coord.acl import OPEN_ACL_UNSAFE
from coord.errors import NodeExistsError, NoNodeError
from coord.messages import CreateMode, EventType, Stat
from coord.server.core.acls import AclInterner, AclList
from coord.server.core.dedupe import WriteResults
from coord.server.core.txn import (
    CheckTxn,
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    DeleteTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)

Trigger = tuple[EventType, str]


class Znode:
    """One node. `children` is None for a leaf, to keep leaves small.

    `data` is None for ZooKeeper's null data (distinct from b""); `acl` is the
    tree's interned tuple, shared by every node with the same ACL.
    """

    __slots__ = (
        "acl",
        "aversion",
        "children",
        "ctime",
        "cversion",
        "czxid",
        "data",
        "ephemeral_owner",
        "mode",
        "mtime",
        "mzxid",
        "pzxid",
        "ttl_ms",
        "version",
    )

    def __init__(
        self,
        data: bytes | None,
        zxid: int,
        time_ms: int,
        mode: CreateMode = CreateMode.PERSISTENT,
        ephemeral_owner: int = 0,
        ttl_ms: int = 0,
        acl: AclList = OPEN_ACL_UNSAFE,
    ) -> None:
        self.data = data
        self.acl = acl
        self.czxid = zxid
        self.mzxid = zxid
        self.pzxid = zxid
        self.ctime = time_ms
        self.mtime = time_ms
        self.version = 0
        self.cversion = 0
        self.aversion = 0
        self.ephemeral_owner = ephemeral_owner
        self.mode = mode
        self.ttl_ms = ttl_ms
        self.children: set[str] | None = None

    @property
    def num_children(self) -> int:
        return len(self.children) if self.children else 0

    def stat(self) -> Stat:
        return Stat(
            self.czxid,
            self.mzxid,
            self.ctime,
            self.mtime,
            self.version,
            self.cversion,
            self.aversion,
            self.ephemeral_owner,
            len(self.data) if self.data else 0,
            len(self.children) if self.children else 0,
            self.pzxid,
        )


@dataclass(slots=True)
class ApplyResult:
    """What applying one txn did: its result, the watch triggers, and follow-ups.

    `result` is per body kind: create -> (path, Stat); set -> Stat; delete,
    check, session txns -> None; multi -> a list of those. `error` is a
    KeeperError code when the txn did not fit the tree (replay only).
    `emptied_containers` lists containers whose last child this txn removed:
    the server reaps them with txns of their own. `deleted_acls` holds the
    ACL of each deleted node that had one other than the open ACL: who may
    hear of its deletion through a recursive watch is decided by it.
    """

    result: object = None
    error: int = 0
    triggers: list[Trigger] = field(default_factory=list)
    emptied_containers: list[str] = field(default_factory=list)
    closed_session: int = 0
    deleted_acls: dict[str, AclList] = field(default_factory=dict)


class DataTree:
    """The znode tree plus the indexes the server needs (ephemerals by owner, containers, TTLs)."""

    def __init__(self) -> None:
        self.nodes: dict[str, Znode] = {"/": Znode(b"", 0, 0)}
        self.ephemerals: dict[int, set[str]] = {}
        self.containers: set[str] = set()
        self.ttl_nodes: set[str] = set()
        self.sessions: dict[int, tuple[int, bytes]] = {}
        """Live sessions as the log knows them: id -> (timeout_ms, password)."""
        self.write_results = WriteResults()
        """The first result of each recent client write, by session and xid
        (coord.server.core.dedupe). Derived from the log like the rest of the tree, and
        kept with it (snapshots carry it), so a member that loads a snapshot, from its
        own disk or from its leader, still knows which resent writes to answer and not
        apply again. Filled by whoever applies client txns (coord.server.core.results)."""
        self.last_zxid = 0
        self.acls = AclInterner()
        """Every node's ACL is one of these shared tuples."""

    # -- reads ---------------------------------------------------------------

    def get(self, path: str) -> Znode | None:
        return self.nodes.get(path)

    def __len__(self) -> int:
        return len(self.nodes)

    def children_of(self, path: str) -> list[str]:
        node = self.nodes.get(path)
        if node is None or not node.children:
            return []
        return sorted(node.children)

    def walk(self, root: str = "/") -> Iterator[str]:
        """Every path in the subtree under `root`, parents before children."""
        stack = [root]
        while stack:
            path = stack.pop()
            node = self.nodes.get(path)
            if node is None:
                continue
            yield path
            if node.children:
                stack.extend(paths.join(path, name) for name in sorted(node.children, reverse=True))

    # -- writes --------------------------------------------------------------

    def apply(self, txn: Txn) -> ApplyResult:
        """Apply one committed txn; the zxid becomes the tree's last_zxid."""
        out = ApplyResult()
        out.result = self._apply_body(txn.header, txn.body, out)
        if txn.header.zxid > self.last_zxid:
            self.last_zxid = txn.header.zxid
        return out

    def _apply_body(self, header: TxnHeader, body: object, out: ApplyResult) -> object:
        if isinstance(body, SetDataTxn):
            return self._set_data(header, body, out)
        if isinstance(body, CreateTxn):
            return self._create(header, body, out)
        if isinstance(body, DeleteTxn):
            self._delete(header, body.path, out, body.parent_cversion)
            return None
        if isinstance(body, SetACLTxn):
            return self._set_acl(body, out)
        if isinstance(body, MultiTxn):
            return [self._apply_body(header, sub, out) for sub in body.txns]
        if isinstance(body, CheckTxn):
            return None
        if isinstance(body, CreateSessionTxn):
            self.sessions[body.session_id] = (body.timeout_ms, body.password)
            return None
        if isinstance(body, CloseSessionTxn):
            self._close_session(header, body, out)
            return None
        raise TypeError(f"unknown txn body {type(body).__name__}")

    def _create(self, header: TxnHeader, txn: CreateTxn, out: ApplyResult) -> object:
        path = txn.path
        parent_path = paths.parent(path)
        parent = self.nodes.get(parent_path)
        if parent is None:
            out.error = out.error or NoNodeError.code
            return None
        parent.cversion = txn.parent_cversion
        parent.pzxid = header.zxid
        if path in self.nodes:
            out.error = out.error or NodeExistsError.code
            return None
        node = Znode(
            txn.data,
            header.zxid,
            header.time_ms,
            txn.mode,
            txn.ephemeral_owner,
            txn.ttl_ms,
            self.acls.intern(txn.acl),
        )
        self.nodes[path] = node
        if parent.children is None:
            parent.children = set()
        parent.children.add(paths.basename(path))
        if txn.ephemeral_owner:
            self.ephemerals.setdefault(txn.ephemeral_owner, set()).add(path)
        if txn.mode.is_container:
            self.containers.add(path)
        elif txn.mode.is_ttl:
            self.ttl_nodes.add(path)
        out.triggers.append((EventType.CREATED, path))
        out.triggers.append((EventType.CHILD, parent_path))
        return (path, node.stat())

    def _delete(
        self, header: TxnHeader, path: str, out: ApplyResult, parent_cversion: int = -1
    ) -> None:
        parent_path = paths.parent(path)
        parent = self.nodes.get(parent_path)
        node = self.nodes.pop(path, None)
        if parent is not None and (node is not None or parent_cversion != -1):
            parent.cversion = parent.cversion + 1 if parent_cversion == -1 else parent_cversion
            parent.pzxid = header.zxid
        if node is None or parent is None:
            out.error = out.error or NoNodeError.code
            return
        if parent.children is not None:
            parent.children.discard(paths.basename(path))
            if not parent.children:
                parent.children = None
        if node.ephemeral_owner:
            owned = self.ephemerals.get(node.ephemeral_owner)
            if owned is not None:
                owned.discard(path)
                if not owned:
                    del self.ephemerals[node.ephemeral_owner]
        self.containers.discard(path)
        self.ttl_nodes.discard(path)
        if node.acl is not OPEN_ACL_UNSAFE:
            out.deleted_acls[path] = node.acl
        out.triggers.append((EventType.DELETED, path))
        out.triggers.append((EventType.CHILD, parent_path))
        if parent_path in self.containers and parent.children is None:
            out.emptied_containers.append(parent_path)

    def _set_data(self, header: TxnHeader, txn: SetDataTxn, out: ApplyResult) -> object:
        node = self.nodes.get(txn.path)
        if node is None:
            out.error = out.error or NoNodeError.code
            return None
        node.data = txn.data
        node.version = txn.version
        node.mzxid = header.zxid
        node.mtime = header.time_ms
        out.triggers.append((EventType.CHANGED, txn.path))
        return node.stat()

    def _set_acl(self, txn: SetACLTxn, out: ApplyResult) -> object:
        node = self.nodes.get(txn.path)
        if node is None:
            out.error = out.error or NoNodeError.code
            return None
        node.acl = self.acls.intern(txn.acl)
        node.aversion = txn.aversion
        return node.stat()  # ZooKeeper fires no watch for an ACL change

    def _close_session(self, header: TxnHeader, txn: CloseSessionTxn, out: ApplyResult) -> None:
        session_id = txn.session_id
        self.sessions.pop(session_id, None)
        out.closed_session = session_id
        for delete in txn.deletes:
            self._delete(header, delete.path, out, delete.parent_cversion)
        # Whatever the txn did not list (only when it listed nothing) goes too.
        for path in sorted(self.ephemerals.get(session_id, ()), key=len, reverse=True):
            self._delete(header, path, out)
        self.ephemerals.pop(session_id, None)
