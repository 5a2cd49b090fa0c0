"""Semaphore: at most N holders at once, fair and herd-free, with a guarded body.

    async with zk.Semaphore("/sem/gpu", identifier="job-3", max_leases=4) as lease:
        ...  # at most 4 of these bodies run at once, across all clients

Layout (Curator's InterProcessSemaphoreV2 idea):

    path          data: max_leases, so clients that disagree fail loudly
    path/lock     a Lock that orders the waiters (fair, herd-free)
    path/leases   one ephemeral node per holder

A contender first takes `path/lock`, so waiters queue in order and each
watches only its predecessor. The lock holder then waits, if all N leases
are taken, on the children of `path/leases`; only it is woken when a lease
frees. It creates its lease node and releases `path/lock` at once. A
release is just the delete of the lease node. kazoo's Semaphore does the
same but holds its lock while *other* clients are woken on every change of
the lease list; here only the head of the queue is.

The lease's body runs under the same guard as a Lock's (`_guard.py`), and
`token` is the zxid that created the lease node.
"""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING

import trio

from coord.errors import NodeExistsError, NoNodeError
from coord.paths import join, validate

from ._contenders import EXCLUSIVE, LOCK
from ._guard import GuardedHold, HoldGuard
from ._support import (
    Waker,
    create_protected,
    delete_all_own,
    delete_reliably,
    retry_read,
)
from .errors import LockLostError, LockTimeout
from .lock import Contender

if TYPE_CHECKING:
    from ..client import Client


class Semaphore(GuardedHold):
    """N leases on a path (kazoo's `Semaphore` names: acquire, release, lease_holders)."""

    def __init__(
        self,
        client: Client,
        path: str,
        identifier: str = "",
        max_leases: int = 1,
        *,
        timeout: float | None = None,
        margin: float | None = None,
    ) -> None:
        if max_leases < 1:
            raise ValueError("max_leases must be at least 1")
        self.client = client
        self.path = validate(path)
        self.identifier = identifier
        self.max_leases = max_leases
        self.timeout = timeout
        self.margin = margin
        self.lock_path = join(self.path, "lock")
        self.leases_path = join(self.path, "leases")
        self.node: str | None = None
        self.token: int | None = None
        self._confirmed_at = -math.inf

    @property
    def _holds(self) -> bool:
        return self.node is not None

    async def _check_max_leases(self) -> None:
        """Store max_leases in the path's node, or check that it matches (kazoo does too)."""
        value = str(self.max_leases).encode()
        try:
            await self.client.create(self.path, value, makepath=True)
            return
        except NodeExistsError:
            pass
        data, _ = await retry_read(self.client.get, self.path)
        if data and data != value:
            raise ValueError(
                f"semaphore {self.path} has max_leases {data.decode(errors='replace')},"
                f" this client asked for {self.max_leases}"
            )
        if not data:
            await self.client.set(self.path, value)

    async def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a lease; False when `timeout` passed (or, not blocking, none is free)."""
        if self.node is not None:
            raise RuntimeError("this Semaphore already holds a lease; release it first")
        await self._check_max_leases()
        await self.client.ensure_path(self.leases_path)
        mutex = Contender(self.client, self.lock_path, LOCK, self.identifier.encode(), EXCLUSIVE)
        prefix = uuid.uuid4().hex
        creating = False
        got = False
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        try:
            with trio.move_on_at(deadline if blocking else math.inf):
                if await mutex.run(wait=blocking):
                    creating = True
                    got = await self._take_lease(prefix, blocking)
        finally:
            with trio.CancelScope(shield=True):
                await mutex.abandon()
                if creating and not got:
                    self.node = self.token = None
                    await delete_all_own(self.client, self.leases_path, prefix)
        return got

    async def _take_lease(self, prefix: str, blocking: bool) -> bool:
        """Holding path/lock: wait for a free lease and create our lease node."""
        client = self.client
        waker = Waker()
        client.add_listener(waker)
        try:
            while True:
                sent = trio.current_time()
                leases = await retry_read(client.get_children, self.leases_path, watch=waker)
                if len(leases) < self.max_leases:
                    sent = trio.current_time()
                    self.node, stat = await create_protected(
                        client, self.leases_path, prefix, self.identifier.encode(), sequential=False
                    )
                    self.token = stat.czxid
                    self._confirmed_at = sent
                    return True
                if not blocking:
                    return False
                await waker.wait()
        finally:
            client.remove_listener(waker)

    async def release(self) -> bool:
        """Give the lease back; False if none was held."""
        node, self.node = self.node, None
        if node is None:
            await trio.lowlevel.checkpoint()
            return False
        with trio.CancelScope(shield=True):
            await delete_reliably(self.client, node)
        return True

    async def lease_holders(self) -> list[str]:
        """The identifiers of the current lease holders."""
        try:
            names = await self.client.get_children(self.leases_path)
        except NoNodeError:
            return []
        out: list[str] = []
        for name in names:
            try:
                data, _ = await self.client.get(join(self.leases_path, name))
            except NoNodeError:
                continue
            out.append(data.decode(errors="replace"))
        return out

    async def _take(self) -> None:
        if not await self.acquire(timeout=self.timeout):
            raise LockTimeout(f"no lease of {self.path} within {self.timeout:g} s")

    def _new_guard(self) -> HoldGuard:
        assert self.node is not None
        return HoldGuard(
            self.client, self.node, confirmed_at=self._confirmed_at, margin=self.margin
        )

    def _lost_error(self, why: str) -> LockLostError:
        return LockLostError(f"semaphore {self.path}: {why}")
