"""Queue and LockingQueue: FIFO work queues with priorities (kazoo's names and layout).

    q = zk.Queue("/queues/mail")
    await q.put(b"job")                 # lower priority numbers come out first
    item = await q.get()                # None when empty (kazoo); get(block=True) waits

    lq = zk.LockingQueue("/queues/render")
    async with lq.item(timeout=10) as job:   # removed only if the block succeeds
        await render(job)

Queue: each item is a persistent sequential node `entry-<prio:03>-<seq>`;
ordering is by (priority, sequence). `get` deletes the first item it can;
whoever's delete succeeds owns the item, so an item is handed out once. A
delete whose reply is lost is ambiguous (the item may be ours or gone to
another consumer): the plain Queue is at-most-once across connection losses,
like kazoo's and Curator's. Use LockingQueue for at-least-once.

LockingQueue: items live in `path/entries`; a consumer that takes one
creates the ephemeral `path/taken/<entry>` (its lock) and the item stays
until `consume()` deletes the entry and its lock in one transaction.
`release()` (or the consumer's session ending: the lock is ephemeral) makes
the item available again. A blocked `get` watches the children of both
directories, so it wakes when an item is put or a lock is freed.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from coord.errors import ConnectionLossError, NodeExistsError, NoNodeError
from coord.paths import join, validate

from ._support import Waker, delete_reliably, retry_read

if TYPE_CHECKING:
    from ..client import Client

PREFIX = "entry-"


def _entry_prefix(priority: int) -> str:
    if not 0 <= priority <= 999:
        raise ValueError("priority must be between 0 and 999")
    return f"{PREFIX}{priority:03d}-"


def _order(names: Iterable[str]) -> list[str]:
    """Queue order: priority, then sequence number (both fixed-width in the name)."""
    return sorted(n for n in names if n.startswith(PREFIX))


class Queue:
    """A FIFO queue with priorities; see the module docstring."""

    def __init__(self, client: Client, path: str) -> None:
        self.client = client
        self.path = validate(path)

    async def put(self, value: bytes, priority: int = 100) -> str:
        """Add an item; returns its node path."""
        return await _put(self.client, self.path, value, priority)

    async def put_all(self, values: Iterable[bytes], priority: int = 100) -> list[str]:
        """Add several items, in order, in one transaction."""
        return await _put_all(self.client, self.path, values, priority)

    async def length(self) -> int:
        """How many items are queued (kazoo's `len(queue)`)."""
        try:
            return len(_order(await self.client.get_children(self.path)))
        except NoNodeError:
            return 0

    async def get(self, block: bool = False, timeout: float | None = None) -> bytes | None:
        """Take the first item; None if the queue is empty (or `timeout` passed when blocking)."""
        client = self.client
        waker = Waker()
        client.add_listener(waker)
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                while True:
                    try:
                        names = await retry_read(
                            client.get_children, self.path, watch=waker if block else None
                        )
                    except NoNodeError:
                        names = []
                        if block:
                            await client.ensure_path(self.path)
                            continue
                    for name in _order(names):
                        item = await self._take(join(self.path, name))
                        if item is not None:
                            return item
                    if not block:
                        return None
                    await waker.wait()
            return None
        finally:
            client.remove_listener(waker)

    async def _take(self, path: str) -> bytes | None:
        """The item at `path` if our delete of it succeeded; None if it is gone, or if
        the delete's outcome is unknown (a connection loss: at most once, see above)."""
        try:
            data, stat = await retry_read(self.client.get, path)
            await self.client.delete(path, version=stat.version)
        except (NoNodeError, ConnectionLossError):
            return None
        return data


class LockingQueue:
    """A queue whose items are removed only once their consumer is done (kazoo's names)."""

    def __init__(self, client: Client, path: str) -> None:
        self.client = client
        self.path = validate(path)
        self.entries = join(self.path, "entries")
        self.taken = join(self.path, "taken")
        self.id = uuid.uuid4().hex.encode()
        self.processing_element: tuple[str, bytes] | None = None
        """(entry name, value) of the item this consumer holds."""

    async def put(self, value: bytes, priority: int = 100) -> str:
        """Add an item; returns its node path."""
        return await _put(self.client, self.entries, value, priority)

    async def put_all(self, values: Iterable[bytes], priority: int = 100) -> list[str]:
        """Add several items, in order, in one transaction."""
        return await _put_all(self.client, self.entries, values, priority)

    async def length(self) -> int:
        """How many items are queued, taken ones included."""
        try:
            return len(_order(await self.client.get_children(self.entries)))
        except NoNodeError:
            return 0

    def holds_lock(self) -> bool:
        """Whether this consumer holds an item (kazoo's name)."""
        return self.processing_element is not None

    async def get(self, timeout: float | None = None) -> bytes | None:
        """Take the first free item and lock it; None if `timeout` passed."""
        if self.processing_element is not None:
            raise RuntimeError("consume() or release() the item held first")
        client = self.client
        await client.ensure_path(self.entries)
        await client.ensure_path(self.taken)
        waker = Waker()
        client.add_listener(waker)
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                while True:
                    names = await retry_read(client.get_children, self.entries, watch=waker)
                    taken = set(await retry_read(client.get_children, self.taken, watch=waker))
                    for name in _order(names):
                        if name in taken:
                            continue
                        value = await self._lock(name)
                        if value is not None:
                            self.processing_element = (name, value)
                            return value
                    await waker.wait()
            return None
        finally:
            client.remove_listener(waker)

    async def _lock(self, name: str) -> bytes | None:
        """Lock one entry; its value, or None if another consumer has it or it is gone."""
        client = self.client
        lock = join(self.taken, name)
        try:
            try:
                await client.create(lock, self.id, ephemeral=True)
            except ConnectionLossError:
                data, stat = await retry_read(client.get, lock)
                if data != self.id or stat.ephemeral_owner != client.session_id:
                    return None
        except (NodeExistsError, NoNodeError):
            return None
        try:
            data, _ = await retry_read(client.get, join(self.entries, name))
        except NoNodeError:  # consumed between the listing and our lock
            with trio.CancelScope(shield=True):
                await delete_reliably(client, lock)
            return None
        except BaseException:
            with trio.CancelScope(shield=True):
                await delete_reliably(client, lock)
            raise
        return data

    async def consume(self) -> bool:
        """Remove the held item for good (entry and lock in one transaction)."""
        if self.processing_element is None:
            return False
        name, _ = self.processing_element
        txn = self.client.transaction()
        txn.delete(join(self.entries, name))
        txn.delete(join(self.taken, name))
        results = await txn.commit()
        self.processing_element = None
        for result in results:
            if isinstance(result, Exception):
                raise result
        return True

    async def release(self) -> bool:
        """Give the held item back to the queue."""
        if self.processing_element is None:
            return False
        name, _ = self.processing_element
        self.processing_element = None
        with trio.CancelScope(shield=True):
            await delete_reliably(self.client, join(self.taken, name))
        return True

    @asynccontextmanager
    async def item(self, timeout: float | None = None) -> AsyncIterator[bytes]:
        """Take an item for the block: consumed if the block succeeds, released if it fails.

        Raises trio.TooSlowError if no item came within `timeout`.
        """
        value = await self.get(timeout)
        if value is None:
            raise trio.TooSlowError(f"no item in {self.path} within {timeout} s")
        try:
            yield value
        except BaseException:
            await self.release()
            raise
        await self.consume()


async def _put(client: Client, folder: str, value: bytes, priority: int) -> str:
    return await client.create(
        join(folder, _entry_prefix(priority)), value, sequential=True, makepath=True
    )


async def _put_all(
    client: Client, folder: str, values: Iterable[bytes], priority: int
) -> list[str]:
    await client.ensure_path(folder)
    txn = client.transaction()
    for value in values:
        txn.create(join(folder, _entry_prefix(priority)), value, sequential=True)
    results = await txn.commit()
    for result in results:
        if isinstance(result, Exception):
            raise result
    return [str(r) for r in results]
