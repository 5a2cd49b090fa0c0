"""The recipes under ACLs: they create their nodes with the client's default ACL,
so a team's lock or counter keeps other users out, and the server's checks
apply to every node a recipe touches."""

from __future__ import annotations

import pytest

from coord.client import CREATOR_ALL_ACL, Client, NoAuthError
from tests.conftest import RunningServer

ALICE = [("digest", "alice:secret")]


def _client(server: RunningServer, **kwargs: object) -> Client:
    return Client(server.hosts, session_timeout=2, request_timeout=5, **kwargs)  # type: ignore[arg-type]


async def test_a_lock_and_a_counter_under_creator_only_acls(coord_server: RunningServer) -> None:
    async with (
        _client(coord_server, auth=ALICE, default_acl=CREATOR_ALL_ACL) as alice,
        _client(coord_server, auth=ALICE) as alice_too,
        _client(coord_server) as stranger,
    ):
        counter = alice.Counter("/team/hits")
        await counter.add(2)
        assert await alice_too.Counter("/team/hits").get() == 2  # same ids: allowed
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
