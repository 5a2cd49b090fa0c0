"""Party: who is present right now (kazoo's Party; membership for service discovery).

    party = zk.Party("/parties/workers", identifier="host-a:8080")
    async with party:                       # join; leave when the block ends
        print(await party.members())        # every member's identifier
        async for members in party.watch(): # the current list, then every change
            ...

Each member is an ephemeral node named by a uuid and holding the
identifier, so a member whose process or session dies leaves by itself. A
join whose reply was lost is found again by its uuid instead of creating a
second node (kazoo retries the create blindly).
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Self

import trio

from coord.errors import NoNodeError
from coord.paths import join, validate

from ._support import create_protected, delete_reliably, retry_read
from .watchers import ChildrenWatch

if TYPE_CHECKING:
    from ..client import Client


class Party:
    """Membership of a group at `path`."""

    def __init__(self, client: Client, path: str, identifier: str = "") -> None:
        self.client = client
        self.path = validate(path)
        self.identifier = identifier
        self.node_name = uuid.uuid4().hex
        self.participating = False

    @property
    def node(self) -> str:
        return join(self.path, self.node_name)

    async def join(self) -> None:
        """Become a member (idempotent)."""
        if self.participating:
            await trio.lowlevel.checkpoint()
            return
        await create_protected(
            self.client, self.path, self.node_name, self.identifier.encode(), sequential=False
        )
        self.participating = True

    async def leave(self) -> None:
        """Stop being a member (idempotent)."""
        self.participating = False
        with trio.CancelScope(shield=True):
            await delete_reliably(self.client, self.node)

    async def members(self) -> list[str]:
        """Every member's identifier, ordered by node name (stable, not join order)."""
        try:
            names = await retry_read(self.client.get_children, self.path)
        except NoNodeError:
            return []
        return await self._identifiers(names)

    async def _identifiers(self, names: list[str]) -> list[str]:
        out: list[str] = []
        for name in sorted(names):
            path = join(self.path, name)
            try:
                data, _ = await retry_read(self.client.get, path)
            except NoNodeError:
                continue
            out.append(data.decode(errors="replace"))
        return out

    async def count(self) -> int:
        """How many members there are (kazoo's `len(party)`)."""
        try:
            return len(await retry_read(self.client.get_children, self.path))
        except NoNodeError:
            return 0

    def watch(self) -> MembersWatch:
        """The members' identifiers now, then after every change (a ChildrenWatch).

        `async with party.watch() as members: async for ids in members: ...`
        """
        return MembersWatch(self)

    async def __aenter__(self) -> Self:
        await self.join()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.leave()


class MembersWatch:
    """An async iterator of a party's member lists; close it (or use `async with`)."""

    def __init__(self, party: Party) -> None:
        self._party = party
        self._names = ChildrenWatch(party.client, party.path)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> list[str]:
        names = await self._names.__anext__()
        return await self._party._identifiers(names)

    async def aclose(self) -> None:
        await self._names.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with trio.CancelScope(shield=True):
            await self.aclose()
