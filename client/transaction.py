"""Transactions: several writes (and version checks) applied all or nothing.

A Transaction only collects ops; `commit()` sends them as one MULTI request.
Arguments are validated as each op is added, like kazoo, so that a bad path
fails at the line that added it rather than at commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import trio

from coord.acl import ACL
from coord.messages import OpCode

from . import ops

if TYPE_CHECKING:
    from .client import Client


class Transaction:
    """A multi-op builder; see `Client.transaction()`.

    `await t.commit()` returns one entry per op: the created path, the Stat
    of a set, True for check and delete. If the multi failed nothing was
    applied and every entry is an exception instance: the failing op's own
    error and RolledBackError for the others (kazoo's behaviour). Used as
    `async with zk.transaction() as t:` it commits when the block ends
    without an exception and leaves the list in `t.results`.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._ops: list[tuple[int, dict[str, Any]]] = []
        self.committed = False
        self.results: list[Any] | None = None

    def __len__(self) -> int:
        return len(self._ops)

    def _add(self, op: OpCode, body: dict[str, Any]) -> None:
        if self.committed:
            raise ValueError("transaction already committed")
        self._ops.append((int(op), body))

    def create(
        self,
        path: str,
        value: bytes = b"",
        *,
        ephemeral: bool = False,
        sequential: bool = False,
        container: bool = False,
        ttl: float | None = None,
        acl: Iterable[ACL] | None = None,
    ) -> None:
        """Add a create; see Client.create for the flags (`acl` defaults to the client's)."""
        body = ops.create_body(
            path,
            value,
            ephemeral=ephemeral,
            sequential=sequential,
            container=container,
            ttl=ttl,
            acl=acl if acl is not None else self._client.default_acl,
        )
        self._add(OpCode.CREATE, body)

    def delete(self, path: str, version: int = -1) -> None:
        """Add a delete (of a node without children)."""
        self._add(OpCode.DELETE, ops.delete_body(path, version))

    def set_data(self, path: str, value: bytes, version: int = -1) -> None:
        """Add a set of the node's data."""
        self._add(OpCode.SET_DATA, ops.set_body(path, value, version))

    def check(self, path: str, version: int) -> None:
        """Add a check that the node is at `version`; the multi fails if it is not."""
        self._add(OpCode.CHECK, ops.check_body(path, version))

    async def commit(self) -> list[Any]:
        """Send the ops as one MULTI; returns one result or exception per op."""
        if self.committed:
            raise ValueError("transaction already committed")
        self.committed = True
        if not self._ops:
            await trio.lowlevel.checkpoint()
            self.results = []
            return []
        first_path = self._ops[0][1].get("path")
        body = {"ops": [[op, op_body] for op, op_body in self._ops]}
        raw = await self._client._request(OpCode.MULTI, body, path=first_path)
        self.results = ops.parse_multi([op for op, _ in self._ops], raw)
        return self.results

    async def __aenter__(self) -> Transaction:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and not self.committed:
            await self.commit()
