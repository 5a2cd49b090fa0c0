"""Snapshots of the tree and the live sessions, as a sequence of log-style records.

Layout: SNAP_MAGIC, then records (coord.server.storage.records framing):

    header   {"zxid": Z, "sessions": [[id, timeout_ms, password], ...]}
    writes   {"writes": [[session, xid, zxid, result], ...]}   (any number, maybe none)
    nodes    {"acls": [acl, ...],
              "nodes": [[path, data, czxid, mzxid, pzxid, ctime, mtime, version,
                         cversion, aversion, ephemeral_owner, mode, ttl_ms,
                         acl_index], ...]}                                (many)
    footer   {"end": true, "nodes": N}

Each nodes record lists the distinct ACLs its nodes use once (`acl` in the
native wire form, `[[perms, scheme, id], ...]`) and each row names its ACL by
index into that list; a row of 13 fields (or a record that is a bare list of
rows, as older snapshots have) has the open ACL. `data` is nil for null data.

The writes records are the tree's table of recent client write results
(coord.server.core.dedupe), so that a resent write is answered, not applied
again, also by a member that loaded this snapshot. A result is tagged:
["created", path, stat], ["stat", stat], ["none"], or ["multi", [result, ...]].

A snapshot without its footer, or with a bad CRC, is invalid and start-up
falls back to an older one. Snapshots are fuzzy, as in ZooKeeper: writes go
on while the nodes are encoded a batch at a time, so a node may be captured
in a state later than Z. Start-up replays every txn after Z over the loaded
tree; txns carry absolute values (versions, parent cversions), so replaying
one whose effect the snapshot already holds changes nothing that a later txn
does not set again. Paths are written in the tree's insertion order, which
puts every parent before its children.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgpack

from coord.acl import OPEN_ACL_UNSAFE, acl_from_wire, acl_to_wire
from coord.messages import CreateMode, Stat
from coord.server.core.acls import AclList
from coord.server.core.output import Created, MultiResults, OpOutcome, Result
from coord.server.core.tree import DataTree, Znode
from coord.server.storage.records import ScanEnd, encode_record, scan

SNAP_MAGIC = b"COORDSNAP1\n"
NODES_PER_RECORD = 2000
WRITES_PER_RECORD = 20_000


class SnapshotError(ValueError):
    """The snapshot is incomplete or damaged; the message says where."""


def _pack(value: Any) -> bytes:
    return encode_record(msgpack.packb(value, use_bin_type=True))


def _node_row(path: str, node: Znode, acl_index: dict[AclList, int]) -> list[Any]:
    row = [
        path,
        node.data,
        node.czxid,
        node.mzxid,
        node.pzxid,
        node.ctime,
        node.mtime,
        node.version,
        node.cversion,
        node.aversion,
        node.ephemeral_owner,
        int(node.mode),
        node.ttl_ms,
    ]
    if node.acl is not OPEN_ACL_UNSAFE:
        row.append(acl_index.setdefault(node.acl, len(acl_index)))
    return row


class FuzzySnapshot:
    """A snapshot in the making: the zxid, sessions and path list are fixed at creation.

    `chunks()` then encodes the nodes a batch at a time, reading each node when
    its batch is encoded (the fuzzy part); the caller may let writes run between
    chunks.
    """

    def __init__(self, tree: DataTree, batch: int = NODES_PER_RECORD) -> None:
        self.tree = tree
        self.batch = batch
        self.zxid = tree.last_zxid
        self._sessions = [[sid, timeout, pw] for sid, (timeout, pw) in tree.sessions.items()]
        self._writes = [
            [session, xid, zxid, _result_row(result)]
            for session, xid, zxid, result in tree.write_results.entries()
        ]
        self._paths = list(tree.nodes)

    def chunks(self) -> Iterator[bytes]:
        yield SNAP_MAGIC + _pack({"zxid": self.zxid, "sessions": self._sessions})
        for start in range(0, len(self._writes), WRITES_PER_RECORD):
            yield _pack({"writes": self._writes[start : start + WRITES_PER_RECORD]})
        nodes = self.tree.nodes
        written = 0
        for start in range(0, len(self._paths), self.batch):
            rows = []
            acl_index: dict[AclList, int] = {}
            for path in self._paths[start : start + self.batch]:
                node = nodes.get(path)
                if node is not None:
                    rows.append(_node_row(path, node, acl_index))
            written += len(rows)
            yield _pack({"acls": [acl_to_wire(acl) for acl in acl_index], "nodes": rows})
        yield _pack({"end": True, "nodes": written})


def snapshot_chunks(tree: DataTree, batch: int = NODES_PER_RECORD) -> Iterator[bytes]:
    """A whole snapshot of `tree` as of now (see FuzzySnapshot for the incremental form)."""
    return FuzzySnapshot(tree, batch).chunks()


@dataclass(slots=True)
class LoadedSnapshot:
    tree: DataTree
    zxid: int
    node_count: int


def load_snapshot(data: bytes, *, name: str = "snapshot") -> LoadedSnapshot:
    """Rebuild a tree from a snapshot's bytes; raise SnapshotError if it is not whole."""
    if not data.startswith(SNAP_MAGIC):
        raise SnapshotError(f"{name}: not a snapshot (bad magic)")
    result = scan(data, len(SNAP_MAGIC))
    if result.end is not ScanEnd.CLEAN:
        raise SnapshotError(
            f"{name}: {result.end.value} at offset {result.offset}: {result.reason}"
        )
    records = result.records
    if len(records) < 2:
        raise SnapshotError(f"{name}: the footer is missing (the snapshot was not finished)")
    footer = msgpack.unpackb(records[-1][1], raw=False)
    if not isinstance(footer, dict) or not footer.get("end"):
        raise SnapshotError(f"{name}: the footer is missing (the snapshot was not finished)")
    header = msgpack.unpackb(records[0][1], raw=False)
    tree = DataTree()
    tree.nodes.clear()
    count = 0
    for _, payload in records[1:-1]:
        record = msgpack.unpackb(payload, raw=False)
        if isinstance(record, dict) and "writes" in record:
            _load_writes(tree, record["writes"], name)
            continue
        if isinstance(record, dict):
            acls = [tree.acls.intern(acl_from_wire(acl)) for acl in record["acls"]]
            rows = record["nodes"]
        else:
            acls, rows = [], record
        for row in rows:
            _load_node(tree, row, acls)
        count += len(rows)
    if count != footer["nodes"]:
        raise SnapshotError(f"{name}: footer says {footer['nodes']} nodes, found {count}")
    if "/" not in tree.nodes:
        raise SnapshotError(f"{name}: the root node is missing")
    tree.last_zxid = header["zxid"]
    tree.sessions = {sid: (timeout, password) for sid, timeout, password in header["sessions"]}
    return LoadedSnapshot(tree, header["zxid"], count)


_MODES = {int(mode): mode for mode in CreateMode}


def _result_row(result: Result) -> list[Any]:
    if isinstance(result, Created):
        return ["created", result.path, list(result.stat)]
    if isinstance(result, Stat):
        return ["stat", list(result)]
    if isinstance(result, MultiResults):
        return ["multi", [_result_row(outcome.result) for outcome in result.outcomes]]
    if result is None:
        return ["none"]
    raise ValueError(f"a write's result cannot be {result!r}")


def _result_from_row(row: Any) -> Result:
    """The inverse of `_result_row`; ValueError (or TypeError) on any other shape."""
    tag, *rest = row
    if tag == "created" and len(rest) == 2 and isinstance(rest[0], str):
        return Created(rest[0], _stat(rest[1]))
    if tag == "stat" and len(rest) == 1:
        return _stat(rest[0])
    if tag == "multi" and len(rest) == 1:
        return MultiResults(tuple(OpOutcome(_result_from_row(sub)) for sub in rest[0]))
    if tag == "none" and not rest:
        return None
    raise ValueError(f"not a write's result: {row!r}")


def _stat(values: Any) -> Stat:
    if len(values) != len(Stat._fields) or not all(type(v) is int for v in values):
        raise ValueError(f"not a stat: {values!r}")
    return Stat(*values)


def _load_writes(tree: DataTree, rows: Any, name: str) -> None:
    """Fill the tree's table of write results (a leader's snapshot is checked like any
    bytes from the network: a bad row makes the whole snapshot invalid)."""
    try:
        for session, xid, zxid, result in rows:
            if not all(type(v) is int for v in (session, xid, zxid)):
                raise ValueError(f"not a write: {[session, xid, zxid]!r}")
            tree.write_results.record(session, xid, zxid, _result_from_row(result))
    except (TypeError, ValueError) as exc:
        raise SnapshotError(f"{name}: a bad write result: {exc}") from None


def _load_node(tree: DataTree, row: list[Any], acls: list[AclList]) -> None:
    (path, data, czxid, mzxid, pzxid, ctime, mtime, version, cversion, aversion, owner, mode,
     ttl_ms, *acl_index) = row  # fmt: skip
    create_mode = _MODES[mode]
    acl = acls[acl_index[0]] if acl_index else OPEN_ACL_UNSAFE
    node = Znode(data, czxid, ctime, create_mode, owner, ttl_ms, acl)
    node.mzxid, node.pzxid, node.mtime = mzxid, pzxid, mtime
    node.version, node.cversion, node.aversion = version, cversion, aversion
    nodes = tree.nodes
    if path != "/":
        cut = path.rfind("/")
        parent = nodes.get(path[:cut] or "/")
        if parent is None:
            # Its parent was deleted while the snapshot was being taken; the log's
            # replay deletes this node too. Keep it out of the tree meanwhile.
            return
        if parent.children is None:
            parent.children = {path[cut + 1 :]}
        else:
            parent.children.add(path[cut + 1 :])
    nodes[path] = node
    if owner:
        tree.ephemerals.setdefault(owner, set()).add(path)
    if create_mode is CreateMode.CONTAINER:
        tree.containers.add(path)
    elif create_mode.is_ttl:
        tree.ttl_nodes.add(path)
