"""ACLs and auth through the client, against the real standalone server over sockets.

Alice authenticates with digest alice:secret; the stranger has no credential.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from coord.client import (
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    AuthFailedError,
    BadVersionError,
    Client,
    ClientState,
    InvalidACLError,
    NoAuthError,
    make_acl,
    make_digest_acl,
)
from coord.server.config import ServerConfig
from coord.server.runtime import StandaloneServer
from tests.conftest import RunningServer, start_server

ALICE = [("digest", "alice:secret")]
ALICE_ONLY = [make_digest_acl("alice", "secret", all=True)]


def _client(server: RunningServer, **kwargs: object) -> Client:
    return Client(server.hosts, session_timeout=2, request_timeout=5, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def alice(coord_server: RunningServer) -> AsyncIterator[Client]:
    async with _client(coord_server, auth=ALICE) as zk:
        yield zk


@pytest.fixture
async def stranger(coord_server: RunningServer) -> AsyncIterator[Client]:
    async with _client(coord_server) as zk:
        yield zk


async def test_a_digest_acl_keeps_a_stranger_out_and_names_the_missing_permission(
    alice: Client, stranger: Client
) -> None:
    await alice.create("/private", b"s3cret", acl=ALICE_ONLY)
    with pytest.raises(NoAuthError) as caught:
        await stranger.get("/private")
    assert caught.value.path == "/private" and caught.value.expected == "READ"
    assert "READ" in str(caught.value) and "/private" in str(caught.value)
    with pytest.raises(NoAuthError):
        await stranger.set("/private", b"mine")
    with pytest.raises(NoAuthError):
        await stranger.create("/private/child")
    with pytest.raises(NoAuthError):
        await stranger.get_children("/private")
    assert await stranger.exists("/private") is not None  # exists needs no permission
    assert (await alice.get("/private"))[0] == b"s3cret"


async def test_add_auth_opens_the_node_and_survives_a_reconnect(
    coord_server: RunningServer, alice: Client
) -> None:
    await alice.create("/private", b"x", acl=ALICE_ONLY)
    streams: list[trio.SocketStream] = []

    async def factory(host: str, port: int) -> trio.abc.Stream:
        streams.append(await trio.open_tcp_stream(host, port))
        return streams[-1]

    async with _client(coord_server, stream_factory=factory) as late:
        await late.add_auth("digest", "alice:secret")
        assert late.auth_data == [("digest", b"alice:secret")]
        assert (await late.get("/private"))[0] == b"x"
        resumed, states = late.session_id, late.states()
        await streams[-1].aclose()  # the connection dies under the client
        with trio.fail_after(5):
            assert await states.next() is ClientState.SUSPENDED
            assert await states.next() is ClientState.CONNECTED
        assert late.session_id == resumed and len(streams) == 2
        assert (await late.get("/private"))[0] == b"x"  # the credential was sent again


async def test_a_wrong_password_reads_nothing(coord_server: RunningServer, alice: Client) -> None:
    await alice.create("/private", b"x", acl=ALICE_ONLY)
    async with _client(coord_server, auth=[("digest", "alice:wrong")]) as wrong:
        with pytest.raises(NoAuthError):
            await wrong.get("/private")


async def test_bad_credentials_are_auth_failed(
    coord_server: RunningServer, stranger: Client
) -> None:
    with pytest.raises(AuthFailedError, match="martian"):
        await stranger.add_auth("martian", "x")
    await stranger.create("/still-fine")  # the session goes on
    with pytest.raises(AuthFailedError):
        async with _client(coord_server, auth=[("digest", "no-colon")]):
            pass


async def test_get_and_set_acls_with_versions(alice: Client, stranger: Client) -> None:
    await alice.create("/n", acl=[*ALICE_ONLY, make_acl("world", "anyone", read=True)])
    acl, stat = await alice.get_acls("/n")
    assert acl == [*ALICE_ONLY, make_acl("world", "anyone", read=True)] and stat.aversion == 0
    shown, _ = await stranger.get_acls("/n")  # READ, no ADMIN: the hash is hidden
    assert shown[0].id.id == "alice:x"
    assert (await alice.set_acls("/n", OPEN_ACL_UNSAFE, version=0)).aversion == 1
    with pytest.raises(BadVersionError):
        await alice.set_acls("/n", READ_ACL_UNSAFE, version=0)
    assert (await stranger.get_acls("/n"))[0] == list(OPEN_ACL_UNSAFE)


async def test_creator_all_acl_needs_auth_and_makepath_carries_the_acl(
    alice: Client, stranger: Client
) -> None:
    with pytest.raises(InvalidACLError):
        await stranger.create("/c", acl=CREATOR_ALL_ACL)
    await alice.create("/1/2", b"v", makepath=True, acl=CREATOR_ALL_ACL)
    assert (await alice.get_acls("/1"))[0] == (await alice.get_acls("/1/2"))[0]
    with pytest.raises(NoAuthError):
        await stranger.get_acls("/1")
    with pytest.raises(NoAuthError):
        await stranger.create("/1/2/3/4", makepath=True)


async def test_default_acl_applies_to_creates_ensure_path_and_transactions(
    coord_server: RunningServer, stranger: Client
) -> None:
    async with _client(coord_server, auth=ALICE, default_acl=ALICE_ONLY) as zk:
        await zk.create("/d")
        await zk.ensure_path("/e/f")
        async with zk.transaction() as t:
            t.create("/d/t")
        for path in ("/d", "/e", "/e/f", "/d/t"):
            assert (await zk.get_acls(path))[0] == ALICE_ONLY, path
        await zk.create("/open", acl=OPEN_ACL_UNSAFE)
    await stranger.set("/open", b"ok")
    with pytest.raises(NoAuthError):
        await stranger.set("/d", b"no")


async def test_the_super_digest_reads_everything(nursery: trio.Nursery, tmp_path: object) -> None:
    from coord.acl import make_digest_acl_credential

    server = await start_server(
        nursery,
        tick_ms=100,
        fsync=False,
        data_dir=tmp_path / "data",  # type: ignore[operator]
        super_digest=make_digest_acl_credential("super", "admin"),
    )
    async with _client(server, auth=ALICE) as zk:
        await zk.create("/mine", b"x", acl=ALICE_ONLY)
    async with _client(server, auth=[("digest", "super:admin")]) as root:
        assert (await root.get("/mine"))[0] == b"x"
        await root.set_acls("/mine", OPEN_ACL_UNSAFE)


def test_acl_arguments_are_checked_before_anything_is_sent() -> None:
    zk = Client("127.0.0.1:1")
    with pytest.raises(TypeError):
        Client("127.0.0.1:1", default_acl=["world:anyone"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        Client("127.0.0.1:1", auth=[("digest", 5)])  # type: ignore[list-item]
    assert zk.default_acl is None and zk.auth_data == []


async def _start(
    nursery: trio.Nursery, data_dir: Path, snapshot_every: int
) -> tuple[str, trio.CancelScope, trio.Event]:
    """A standalone server on `data_dir` in its own cancel scope: (hosts, scope, stopped)."""
    config = ServerConfig(
        host="127.0.0.1", port=0, tick_ms=100, data_dir=data_dir, snapshot_every=snapshot_every
    )
    server = StandaloneServer(config)
    scope, stopped = trio.CancelScope(), trio.Event()

    async def serve(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with scope:
                await server.serve(task_status=task_status)
        finally:
            stopped.set()

    port = await nursery.start(serve)
    return f"127.0.0.1:{port}", scope, stopped


async def _check_acls(hosts: str) -> None:
    async with Client(hosts) as stranger, Client(hosts, auth=ALICE) as zk:
        for path in ("/created", "/changed"):
            with pytest.raises(NoAuthError):
                await stranger.get(path)
            assert (await zk.get_acls(path))[0] == ALICE_ONLY
        assert (await zk.get_acls("/changed"))[1].aversion == 1


async def test_acls_survive_restarts_from_the_log_and_from_a_snapshot(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """On the real disk: first the ACLs come back from the log alone, then from a snapshot."""
    data = tmp_path / "data"
    hosts, scope, stopped = await _start(nursery, data, snapshot_every=100_000)
    async with Client(hosts, auth=ALICE) as zk:
        await zk.create("/created", b"c", acl=ALICE_ONLY)
        await zk.create("/changed", b"l", acl=OPEN_ACL_UNSAFE)
        await zk.set_acls("/changed", ALICE_ONLY)
        last_acl_zxid = zk.last_zxid
    scope.cancel()
    await stopped.wait()  # it let go of the data directory
    assert not list(data.glob("snapshot.*"))
    hosts, scope, stopped = await _start(nursery, data, snapshot_every=3)
    await _check_acls(hosts)
    async with Client(hosts) as zk:
        for i in range(4):  # past snapshot_every: a snapshot with both ACLs in it
            await zk.create(f"/filler-{i}")
    scope.cancel()
    await stopped.wait()
    snapshots = sorted(data.glob("snapshot.*"))
    assert snapshots and int(snapshots[-1].name.split(".")[1], 16) > last_acl_zxid
    hosts, scope, _ = await _start(nursery, data, snapshot_every=100_000)
    await _check_acls(hosts)
    scope.cancel()
