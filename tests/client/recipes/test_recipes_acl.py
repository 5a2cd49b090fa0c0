"""The recipes under ACLs: they create their nodes with the client's default ACL,
so a team's lock or counter keeps other users out, and the server's checks
apply to every node a recipe touches."""

from __future__ import annotations

import pytest
from trio.testing import MockClock

from coord.client import CREATOR_ALL_ACL, NoAuthError

from .conftest import ConnectFactory

ALICE = [("digest", "alice:secret")]


async def test_a_lock_and_a_counter_under_creator_only_acls(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    async with (
        connect(session_timeout=2, auth=ALICE, default_acl=CREATOR_ALL_ACL) as alice,
        connect(session_timeout=2, auth=ALICE) as alice_too,
        connect(session_timeout=2) as stranger,
    ):
        counter = alice.Counter("/team/hits")
        await counter.add(2)
        await alice_too.sync("/team/hits")
        assert await alice_too.Counter("/team/hits").get() == 2  # same ids: allowed
        await stranger.sync("/team/hits")
        with pytest.raises(NoAuthError):
            await stranger.Counter("/team/hits").get()
        with pytest.raises(NoAuthError):
            await stranger.Counter("/team/hits").add(1)
        async with alice.Lock("/team/lock", identifier="alice"):
            (holder,) = await alice.get_children("/team/lock")
            acl, _ = await alice.get_acls(f"/team/lock/{holder}")
            assert [entry.id.scheme for entry in acl] == ["digest"]
            with pytest.raises(NoAuthError):
                await stranger.Lock("/team/lock").acquire(timeout=1)
        assert await alice.Counter("/team/hits").get() == 2
