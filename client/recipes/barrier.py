"""Barrier and DoubleBarrier (kazoo's names and ZooKeeper's recipes).

Barrier: one party puts the barrier up (`create()`), any number wait for it
to come down (`wait()`), and someone takes it down (`remove()`). The waiters
watch the one node with an exists watch; a reconnect re-registers it and the
server fires it at once if the node went away meanwhile, so no waiter sleeps
through a removal.

DoubleBarrier: `num_clients` parties `enter()` together and `leave()`
together (ZooKeeper's double barrier). Each party's presence is an
ephemeral node named by a uuid, so a crashed party leaves instead of
blocking the others forever, and a create whose reply was lost is found
again (kazoo retries the create and may fail with NodeExists). On enter the
last party to arrive creates `ready`, which releases everyone (one exists
watch each, no herd on the children list). On leave, following the
recipe, the lowest node waits for the highest and every other waits for the
lowest, so each departure wakes at most one waiter.
"""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING

import trio

from coord.errors import NodeExistsError, NoNodeError
from coord.paths import join, validate

from ._support import Waker, create_protected, delete_reliably, retry_read

if TYPE_CHECKING:
    from ..client import Client

READY = "ready"


class Barrier:
    """A barrier that is up while its node exists."""

    def __init__(self, client: Client, path: str) -> None:
        self.client = client
        self.path = validate(path)

    async def create(self) -> bool:
        """Put the barrier up; False if it was up already."""
        try:
            await self.client.create(self.path, makepath=True)
        except NodeExistsError:
            return False
        return True

    async def remove(self) -> bool:
        """Take the barrier down, releasing every waiter; False if it was down."""
        try:
            await self.client.delete(self.path)
        except NoNodeError:
            return False
        return True

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until the barrier is down; False if `timeout` passed first."""
        waker = Waker()
        self.client.add_listener(waker)
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                while await retry_read(self.client.exists, self.path, watch=waker):
                    await waker.wait()
                return True
            return False
        finally:
            self.client.remove_listener(waker)


class DoubleBarrier:
    """Enter together, leave together: `num_clients` parties at `path`."""

    def __init__(self, client: Client, path: str, num_clients: int, identifier: str = "") -> None:
        if num_clients < 1:
            raise ValueError("num_clients must be at least 1")
        self.client = client
        self.path = validate(path)
        self.num_clients = num_clients
        self.identifier = identifier
        self.node_name = uuid.uuid4().hex
        self.participating = False

    @property
    def _node(self) -> str:
        return join(self.path, self.node_name)

    async def _parties(self) -> list[str]:
        names = await retry_read(self.client.get_children, self.path)
        return sorted(n for n in names if n != READY)

    async def enter(self, timeout: float | None = None) -> bool:
        """Join and wait until `num_clients` parties have joined; False on timeout (left again)."""
        client = self.client
        waker = Waker()
        client.add_listener(waker)
        ready = join(self.path, READY)
        done = False
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                await create_protected(
                    client, self.path, self.node_name, self.identifier.encode(), sequential=False
                )
                self.participating = True
                while True:
                    if await retry_read(client.exists, ready, watch=waker) is not None:
                        done = True
                        return True
                    if len(await self._parties()) >= self.num_clients:
                        try:
                            await client.create(ready)
                        except NodeExistsError:
                            pass
                        continue
                    await waker.wait()
            return False
        finally:
            client.remove_listener(waker)
            if not done and self.participating:
                with trio.CancelScope(shield=True):
                    await delete_reliably(client, self._node)
                self.participating = False

    async def leave(self, timeout: float | None = None) -> bool:
        """Leave and wait until every party has left; False on timeout."""
        client = self.client
        waker = Waker()
        client.add_listener(waker)
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                while True:
                    parties = await self._parties()
                    if not parties:
                        break
                    mine = self.node_name in parties
                    if parties == [self.node_name]:
                        await delete_reliably(client, self._node)
                        break
                    lowest, highest = parties[0], parties[-1]
                    if mine and self.node_name != lowest:
                        await delete_reliably(client, self._node)
                        mine = False
                    target = highest if mine else lowest
                    watched = join(self.path, target)
                    if await retry_read(client.exists, watched, watch=waker) is not None:
                        await waker.wait()
                self.participating = False
                try:
                    await client.delete(join(self.path, READY))
                except NoNodeError:
                    pass
                return True
            return False
        finally:
            client.remove_listener(waker)
