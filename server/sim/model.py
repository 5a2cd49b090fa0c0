"""An independent model of the znode tree, built from the committed chain and checking it.

The model applies each committed txn after checking what the preparer
decided against its own state: a create's parent exists and the node does
not, a sequential name is the parent's counter, a set's new version is one
more, a delete's node has no children, a multi's checks hold, a session's
close removes exactly its ephemerals. It keeps, per path, the states the
path went through by zxid, so that a read's reply can be checked against the
state at the zxid the reply carries, and the changes a watch must hear of:
the path's own, the zxids at which its children came or went (a child
watch's), and every change under it in zxid order (a recursive watch's).

A digest (an XOR of per-node hashes, kept incrementally) names the tree at
each zxid, for comparing with the members' real trees.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from coord.messages import CreateMode
from coord.server.core.tree import DataTree
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
)


class Violation(AssertionError):
    """A guarantee did not hold."""


class ModelViolation(AssertionError):
    """A committed txn the model says could not have happened."""


@dataclass(frozen=True, slots=True)
class NodeState:
    data: bytes | None
    version: int
    owner: int


@dataclass(slots=True)
class _Node:
    data: bytes | None
    version: int
    owner: int
    cversion: int = 0
    children: int = 0


CREATED, CHANGED, DELETED = "created", "changed", "deleted"
ROOT = NodeState(b"", 0, 0)
"""The root as the model reads it (no txn changes it, so it has no history)."""


def node_hash(path: str, data: bytes | None, version: int, owner: int) -> int:
    return hash((path, data, version, owner))


def tree_digest(tree: DataTree) -> int:
    """The digest of a member's real tree (the root is left out, as in the model)."""
    digest = 0
    for path, node in tree.nodes.items():
        if path != "/":
            digest ^= node_hash(path, node.data, node.version, node.ephemeral_owner)
    return digest


class TreeModel:
    """The tree as the committed chain builds it, checked txn by txn."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Node] = {"/": _Node(b"", 0, 0)}
        self._ephemerals: dict[int, set[str]] = {}
        self.sessions: set[int] = set()
        self.digest = 0
        self.digests: dict[int, int] = {0: 0}
        """zxid -> the digest of the tree right after that txn."""
        self._history: dict[str, tuple[list[int], list[NodeState | None]]] = {}
        self._names: dict[str, dict[str, None]] = {}
        """parent -> every child path it ever had, in order of first creation."""
        self._child_zxids: dict[str, list[int]] = {}
        """parent -> the zxids at which a child came or went (once per zxid)."""
        self._touched: list[tuple[int, str]] = []
        """(zxid, path) of every change, in zxid order, once per path and zxid."""
        self._touched_zxids: list[int] = []
        self.last_zxid = 0

    # -- reading the model -------------------------------------------------------------

    def state_at(self, path: str, zxid: int) -> NodeState | None:
        """The node at `path` as of `zxid` (None: absent; the root is always there)."""
        history = self._history.get(path)
        if history is None:
            return ROOT if path == "/" else None
        zxids, states = history
        index = bisect_right(zxids, zxid)
        return states[index - 1] if index else None

    def changes(self, path: str, after: int, upto: int) -> list[tuple[int, str]]:
        """(zxid, created/changed/deleted) for `path` in (after, upto]."""
        history = self._history.get(path)
        if history is None:
            return []
        zxids, states = history
        out = []
        for i in range(bisect_right(zxids, after), bisect_right(zxids, upto)):
            before = states[i - 1] if i else None
            now = states[i]
            kind = CREATED if before is None else DELETED if now is None else CHANGED
            out.append((zxids[i], kind))
        return out

    def kind_at(self, path: str, zxid: int) -> str:
        """What the change of `path` at `zxid` was (one that is in its history)."""
        before = self.state_at(path, zxid - 1)
        return (
            CREATED if before is None else DELETED if self.state_at(path, zxid) is None else CHANGED
        )

    def children_at(self, parent: str, zxid: int) -> list[str]:
        """The names of `parent`'s children as of `zxid`, sorted (as get_children answers)."""
        prefix = "/" if parent == "/" else parent + "/"
        return sorted(
            path[len(prefix) :]
            for path in self._names.get(parent, ())
            if self.state_at(path, zxid) is not None
        )

    def child_changes(self, parent: str, after: int, upto: int) -> list[int]:
        """The zxids in (after, upto] at which a child of `parent` was created or deleted."""
        zxids = self._child_zxids.get(parent, [])
        return zxids[bisect_right(zxids, after) : bisect_right(zxids, upto)]

    def subtree_changes(self, root: str, after: int, upto: int) -> list[tuple[int, str, str]]:
        """(zxid, path, created/changed/deleted) of `root` and every node under it, in
        (after, upto], in zxid order."""
        zxids = self._touched_zxids
        start, end = bisect_right(zxids, after), bisect_right(zxids, upto)
        prefix = "/" if root == "/" else root + "/"
        return [
            (zxid, path, self.kind_at(path, zxid))
            for zxid, path in self._touched[start:end]
            if path == root or path.startswith(prefix)
        ]

    # -- applying ------------------------------------------------------------------------

    def apply(self, txn: Txn) -> None:
        zxid = txn.zxid
        if zxid <= self.last_zxid:
            raise ModelViolation(f"txn {zxid:#x} after {self.last_zxid:#x}")
        body = txn.body
        if isinstance(body, MultiTxn):
            for part in body.txns:
                self._apply_one(zxid, part)
        elif isinstance(body, CreateSessionTxn):
            self.sessions.add(body.session_id)
        elif isinstance(body, CloseSessionTxn):
            self._close(zxid, body)
        elif isinstance(body, CheckTxn):
            pass  # a sync's marker: orders nothing but itself, whatever the path
        else:
            self._apply_one(zxid, body)
        self.last_zxid = zxid
        self.digests[zxid] = self.digest

    def _apply_one(
        self, zxid: int, body: CreateTxn | DeleteTxn | SetDataTxn | SetACLTxn | CheckTxn
    ) -> None:
        if isinstance(body, CreateTxn):
            self._create(zxid, body)
        elif isinstance(body, DeleteTxn):
            self._delete(zxid, body.path)
        elif isinstance(body, SetDataTxn):
            node = self._need(body.path, zxid)
            if body.version != node.version + 1:
                raise ModelViolation(
                    f"{zxid:#x}: set {body.path} to version {body.version} from {node.version}"
                )
            self._put(zxid, body.path, _Node(body.data, body.version, node.owner, node.cversion,
                                             node.children))  # fmt: skip
        elif isinstance(body, CheckTxn):
            node = self._need(body.path, zxid)
            if body.version not in (-1, node.version):
                raise ModelViolation(
                    f"{zxid:#x}: check of {body.path} at version {body.version} passed, "
                    f"it is at {node.version}"
                )

    def _create(self, zxid: int, body: CreateTxn) -> None:
        path = body.path
        parent_path = path.rsplit("/", 1)[0] or "/"
        parent = self._nodes.get(parent_path)
        if parent is None:
            raise ModelViolation(f"{zxid:#x}: create {path} without its parent")
        if parent.owner:
            raise ModelViolation(f"{zxid:#x}: create {path} under an ephemeral")
        if path in self._nodes:
            raise ModelViolation(f"{zxid:#x}: create {path}, which exists")
        if body.mode.is_sequential:
            suffix = path[-10:]
            if not suffix.isdigit() or int(suffix) != parent.cversion:
                raise ModelViolation(
                    f"{zxid:#x}: sequential {path}, the parent's counter is {parent.cversion}"
                )
        ephemeral = body.mode in (CreateMode.EPHEMERAL, CreateMode.EPHEMERAL_SEQUENTIAL)
        owner = body.ephemeral_owner if ephemeral else 0
        if ephemeral and owner not in self.sessions:
            raise ModelViolation(f"{zxid:#x}: ephemeral {path} of a dead session {owner:#x}")
        parent.cversion += 1
        parent.children += 1
        if body.parent_cversion != parent.cversion:
            raise ModelViolation(
                f"{zxid:#x}: create {path} sets the parent's cversion to "
                f"{body.parent_cversion}, the model has {parent.cversion}"
            )
        self._put(zxid, path, _Node(body.data, 0, owner))
        if owner:
            self._ephemerals.setdefault(owner, set()).add(path)

    def _delete(self, zxid: int, path: str) -> None:
        node = self._need(path, zxid)
        if node.children:
            raise ModelViolation(f"{zxid:#x}: delete {path}, which has children")
        parent = self._nodes[path.rsplit("/", 1)[0] or "/"]
        parent.cversion += 1
        parent.children -= 1
        if node.owner:
            self._ephemerals.get(node.owner, set()).discard(path)
        self._put(zxid, path, None)

    def _close(self, zxid: int, body: CloseSessionTxn) -> None:
        if body.session_id not in self.sessions:
            raise ModelViolation(f"{zxid:#x}: close of session {body.session_id:#x}, not open")
        doomed = self._ephemerals.pop(body.session_id, set())
        listed = {d.path for d in body.deletes}
        if body.deletes and listed != doomed:
            raise ModelViolation(
                f"{zxid:#x}: session {body.session_id:#x} closes with {sorted(listed)}, "
                f"its ephemerals are {sorted(doomed)}"
            )
        for path in sorted(doomed, key=len, reverse=True):
            self._delete(zxid, path)
        self.sessions.discard(body.session_id)

    def _need(self, path: str, zxid: int) -> _Node:
        node = self._nodes.get(path)
        if node is None:
            raise ModelViolation(f"{zxid:#x}: a txn on {path}, which does not exist")
        return node

    def _put(self, zxid: int, path: str, node: _Node | None) -> None:
        old = self._nodes.get(path)
        if old is not None:
            self.digest ^= node_hash(path, old.data, old.version, old.owner)
        if node is None:
            self._nodes.pop(path, None)
            state = None
        else:
            self._nodes[path] = node
            self.digest ^= node_hash(path, node.data, node.version, node.owner)
            state = NodeState(node.data, node.version, node.owner)
        zxids, states = self._history.setdefault(path, ([], []))
        if zxids and zxids[-1] == zxid:  # a multi touched it twice: keep the last
            states[-1] = state
        else:
            zxids.append(zxid)
            states.append(state)
            self._touched.append((zxid, path))
            self._touched_zxids.append(zxid)
        if (old is None) != (node is None):  # a child came or went
            parent = path.rsplit("/", 1)[0] or "/"
            self._names.setdefault(parent, {})[path] = None
            changed = self._child_zxids.setdefault(parent, [])
            if not changed or changed[-1] != zxid:
                changed.append(zxid)
