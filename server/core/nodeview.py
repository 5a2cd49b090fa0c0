"""NodeView: a znode as preparation sees it, the tree plus the writes still pending.

The Preparer keeps one per touched path in its pending overlay, so that a
request is checked against the state every earlier, not yet applied write
leaves behind (versions, children, ACLs), not against the tree alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from coord.acl import OPEN_ACL_UNSAFE
from coord.messages import CreateMode
from coord.server.core.acls import AclList
from coord.server.core.tree import Znode


@dataclass(slots=True)
class NodeView:
    """The fields of a znode that preparation needs, as of the pending state."""

    version: int
    cversion: int
    num_children: int
    ephemeral_owner: int
    mode: CreateMode
    mtime: int
    ttl_ms: int
    acl: AclList = OPEN_ACL_UNSAFE
    aversion: int = 0
    zxid: int = 0
    """The zxid of the last pending txn that touched this record (0: copied from the tree)."""
    exists: bool = True
    """False for a pending delete (a tombstone)."""
    child_bytes: int = -1
    """What the child list costs (see MAX_CHILD_LIST_BYTES); -1: not yet counted, so the
    view's children are the tree's (every pending child change counts them)."""

    @classmethod
    def of(cls, node: Znode) -> NodeView:
        return cls(
            node.version,
            node.cversion,
            node.num_children,
            node.ephemeral_owner,
            node.mode,
            node.mtime,
            node.ttl_ms,
            node.acl,
            node.aversion,
        )


def copy_view(view: NodeView) -> NodeView:
    """A copy to change in a pending overlay without touching the original."""
    return NodeView(
        view.version,
        view.cversion,
        view.num_children,
        view.ephemeral_owner,
        view.mode,
        view.mtime,
        view.ttl_ms,
        view.acl,
        view.aversion,
        view.zxid,
        child_bytes=view.child_bytes,
    )
