"""Read-write lock: shared readers, exclusive writers, one queue, no herd effect.

    rw = zk.ReadWriteLock("/locks/table")
    async with rw.read_lock:   # many readers at once
        ...
    async with rw.write_lock:  # alone
        ...

Readers and writers queue in one directory (kazoo's node names `__rlock__`
and `__lock__`, so the two libraries interoperate). A writer waits for its
nearest predecessor of either kind; a reader waits only for its nearest
preceding writer, so readers that queue together hold together, and a writer
that queued first is never overtaken (no writer starvation). Both get the
Lock's guard, fencing token and cleanup (lock.py). A writer's token is
larger than the token of every reader and writer that held before it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ._contenders import READ, SHARED
from .lock import Lock

if TYPE_CHECKING:
    from ..client import Client


class ReadLock(Lock):
    """A shared lock: held together with other readers, never with a writer (kazoo's name)."""

    kind: ClassVar[str] = READ
    blocked_by: ClassVar[frozenset[str]] = SHARED

    def __init__(
        self,
        client: Client,
        path: str,
        identifier: str = "",
        *,
        timeout: float | None = None,
        margin: float | None = None,
    ) -> None:
        super().__init__(client, path, identifier, timeout=timeout, margin=margin)


class WriteLock(Lock):
    """An exclusive lock that also excludes readers (kazoo's name; the same as Lock)."""


class ReadWriteLock:
    """A pair of locks on one path (Curator's InterProcessReadWriteLock).

    `read_lock` and `write_lock` are ReadLock and WriteLock objects; each
    can be held by one task at a time, so make one ReadWriteLock per task.
    """

    def __init__(
        self,
        client: Client,
        path: str,
        identifier: str = "",
        *,
        timeout: float | None = None,
        lock_delay: float = 0.0,
        margin: float | None = None,
    ) -> None:
        self.path = path
        self.read_lock = ReadLock(client, path, identifier, timeout=timeout, margin=margin)
        self.write_lock = WriteLock(
            client, path, identifier, timeout=timeout, lock_delay=lock_delay, margin=margin
        )
