"""Helpers for storage tests: build trees through the real prep + apply path, compare trees."""

from __future__ import annotations

from typing import Any

from coord.messages import CreateMode, CreateRequest, DeleteRequest, OpCode, SetDataRequest
from coord.server.core.prep import Preparer
from coord.server.core.tree import DataTree
from coord.server.core.txn import CreateSessionTxn, Txn, TxnBody, TxnHeader


class TxnMaker:
    """Prepares and applies writes, keeping every txn, as a leader's log would."""

    def __init__(self, tree: DataTree | None = None) -> None:
        self.tree = tree or DataTree()
        self.preparer = Preparer(self.tree)
        self.zxid = max(self.tree.last_zxid, 1 << 32)
        self.log: list[Txn] = []

    def _commit(self, body: TxnBody, session_id: int = 0) -> Txn:
        txn = Txn(TxnHeader(self.zxid, 1_000 + self.zxid % 1000, session_id, 0), body)
        self.tree.apply(txn)
        self.preparer.applied(self.zxid)
        self.log.append(txn)
        return txn

    def _next(self) -> int:
        self.zxid += 1
        return self.zxid

    def create(self, path: str, data: bytes = b"", mode: CreateMode = CreateMode.PERSISTENT,
               session_id: int = 0, ttl_ms: int = 0) -> Txn:  # fmt: skip
        zxid = self._next()
        body = self.preparer.prepare_write(
            OpCode.CREATE,
            CreateRequest(path=path, data=data, mode=int(mode), ttl_ms=ttl_ms),
            session_id=session_id,
            zxid=zxid,
            now_ms=zxid,
        )
        return self._commit(body, session_id)

    def set(self, path: str, data: bytes) -> Txn:
        zxid = self._next()
        body = self.preparer.prepare_write(
            OpCode.SET_DATA, SetDataRequest(path=path, data=data), session_id=0, zxid=zxid,
            now_ms=zxid,
        )  # fmt: skip
        return self._commit(body)

    def delete(self, path: str) -> Txn:
        zxid = self._next()
        body = self.preparer.prepare_write(
            OpCode.DELETE, DeleteRequest(path=path), session_id=0, zxid=zxid, now_ms=zxid
        )
        return self._commit(body)

    def open_session(self, session_id: int, timeout_ms: int = 5000) -> Txn:
        self._next()
        return self._commit(CreateSessionTxn(session_id, timeout_ms, b"p" * 16), session_id)

    def close_session(self, session_id: int) -> Txn:
        zxid = self._next()
        body = self.preparer.prepare_close_session(session_id, expired=True, zxid=zxid)
        return self._commit(body, session_id)


def tree_state(tree: DataTree) -> dict[str, Any]:
    """Everything observable about a tree, for equality checks."""
    return {
        "nodes": {
            path: (
                node.data,
                tuple(node.stat()),
                node.mode,
                node.ttl_ms,
                sorted(node.children or ()),
            )
            for path, node in tree.nodes.items()
        },
        "ephemerals": {sid: sorted(p) for sid, p in tree.ephemerals.items() if p},
        "containers": sorted(tree.containers),
        "ttl": sorted(tree.ttl_nodes),
        "sessions": dict(tree.sessions),
        "last_zxid": tree.last_zxid,
    }
