"""SetPartitioner: split a set of work items among the members present, re-balancing on change.

    async def work(partition: list[str]) -> None:
        ...  # cancelled when the members change (or the session is in jeopardy)

    partitioner = zk.SetPartitioner("/partition/queues", set=queues, identifier="host-a")
    await partitioner.run(work)

Each cycle (kazoo's states in brackets):
1. [ALLOCATING] Wait until the members (a Party at `path/party`) have not
   changed for `time_boundary` seconds, so a rolling restart does not cause
   a re-balance per member.
2. Compute this member's share with `partition_func(identifier, members,
   items)` (default: every len(members)-th item of the sorted set).
3. Take a Lock on each of its items (`path/locks/<item>`): a member that has
   not yet let go of an item still holds its lock, so no item is ever
   worked on by two members at once, even while they disagree about the
   membership. A membership change during this step starts the cycle over.
4. [ACQUIRED] Run `func(partition)` under the hold guard of our party
   node (jeopardy, lost session) and a membership watch: a change cancels
   the body. If `func` returns, the partition is still held until a change.
5. [RELEASE] Release the item locks and go back to 1.

kazoo's SetPartitioner leaves the work loop to the user (poll the states,
call release_set) and its locks are not guarded; here the work runs in a
scope that ends when it must.
"""

from __future__ import annotations

import enum
import inspect
import logging
import math
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import trio

from coord.paths import join, validate

from ._guard import HoldGuard
from .lock import Lock
from .party import Party
from .watchers import ChildrenWatch

if TYPE_CHECKING:
    from ..client import Client

log = logging.getLogger(__name__)

PartitionFunc = Callable[[str, list[str], list[str]], list[str]]


class PartitionState(enum.Enum):
    ALLOCATING = "ALLOCATING"
    ACQUIRED = "ACQUIRED"
    RELEASE = "RELEASE"
    FAILURE = "FAILURE"


def default_partition(identifier: str, members: list[str], items: list[str]) -> list[str]:
    """kazoo's partitioner: the member at index i of the sorted members gets items[i::n]."""
    members = sorted(members)
    index = members.index(identifier)
    return sorted(items)[index :: len(members)]


class SetPartitioner:
    """Partitions `set` among the members at `path`; see the module docstring."""

    def __init__(
        self,
        client: Client,
        path: str,
        set: Iterable[str],  # kazoo's argument name
        partition_func: PartitionFunc | None = None,
        identifier: str = "",
        time_boundary: float = 30.0,
        *,
        margin: float | None = None,
    ) -> None:
        self.client = client
        self.path = validate(path)
        self.items = sorted(dict.fromkeys(set))
        for item in self.items:
            if "/" in item or not item:
                raise ValueError(f"item {item!r} cannot be a znode name")
        self.partition_func = partition_func or default_partition
        self.identifier = identifier or uuid.uuid4().hex
        self.time_boundary = time_boundary
        self.margin = margin
        self.state = PartitionState.ALLOCATING
        self.partition: list[str] = []
        self.rebalances = 0
        self._party = Party(client, join(self.path, "party"), self.identifier)
        self._acquired = trio.Event()

    # kazoo's state tests
    @property
    def allocating(self) -> bool:
        return self.state is PartitionState.ALLOCATING

    @property
    def acquired(self) -> bool:
        return self.state is PartitionState.ACQUIRED

    @property
    def release(self) -> bool:
        return self.state is PartitionState.RELEASE

    @property
    def failed(self) -> bool:
        return self.state is PartitionState.FAILURE

    def __iter__(self) -> Iterator[str]:
        """The items of the current partition (empty unless ACQUIRED)."""
        return iter(self.partition if self.acquired else [])

    async def wait_for_acquire(self, timeout: float | None = None) -> bool:
        """Wait until a partition is held (run() must be running in another task)."""
        with trio.move_on_after(math.inf if timeout is None else timeout):
            await self._acquired.wait()
            return True
        return False

    async def run(self, func: Callable[[list[str]], Any]) -> None:
        """Join, and work on our partition with `func` forever (until cancelled or failed)."""
        try:
            await self._party.join()
            while True:
                await self._cycle(func)
        except BaseException:
            self.state = PartitionState.FAILURE
            raise
        finally:
            self.partition = []
            await self._party.leave()

    async def _stable_members(self) -> tuple[list[str], list[str]]:
        """Wait for `time_boundary` without a membership change; (node names, identifiers)."""
        async with ChildrenWatch(self.client, self._party.path) as watch:
            names = await watch.__anext__()
            while True:
                with trio.move_on_after(self.time_boundary) as quiet:
                    names = await watch.__anext__()
                if quiet.cancelled_caught and self._party.node_name in names:
                    break
                if self._party.node_name not in names:
                    await self._party.leave()
                    await self._party.join()  # our node was deleted under us
        return names, await self._party._identifiers(names)

    async def _watch_change(self, names: list[str], on_change: Callable[[], None]) -> None:
        async with ChildrenWatch(self.client, self._party.path) as watch:
            async for now in watch:
                if now != names:
                    on_change()
                    return

    async def _cycle(self, func: Callable[[list[str]], Any]) -> None:
        self.state = PartitionState.ALLOCATING
        self._acquired = trio.Event()
        names, members = await self._stable_members()
        mine = self.partition_func(self.identifier, members, self.items)
        locks: list[Lock] = []
        try:
            changed = False
            async with trio.open_nursery() as nursery:

                def change() -> None:
                    nonlocal changed
                    changed = True
                    nursery.cancel_scope.cancel()

                nursery.start_soon(self._watch_change, names, change)
                for item in mine:
                    lock = Lock(self.client, join(self.path, "locks", item), self.identifier)
                    await lock.acquire()
                    locks.append(lock)
                nursery.cancel_scope.cancel()
            if changed:
                self.rebalances += 1
                return
            sent = trio.current_time()
            if await self.client.exists(self._party.node) is None:
                await self._party.leave()
                await self._party.join()
                return
            guard = HoldGuard(self.client, self._party.node, confirmed_at=sent, margin=self.margin)
            self.partition = list(mine)
            self.state = PartitionState.ACQUIRED
            self._acquired.set()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_change, names, guard.step_down)
                async with guard:
                    result = func(list(mine))
                    if inspect.isawaitable(result):
                        await result
                    await trio.sleep_forever()
                nursery.cancel_scope.cancel()
            self.rebalances += 1
            if guard.lost is not None:
                log.warning("partition of %s lost: %s", self.identifier, guard.lost)
        finally:
            self.state = PartitionState.RELEASE
            self.partition = []
            with trio.CancelScope(shield=True):
                for lock in locks:
                    await lock.release()
