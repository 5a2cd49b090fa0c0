"""kazoo's ACL and auth behaviour against the ZooKeeper-compatible port.

The cases are the ones kazoo's own suite checks against ZooKeeper 3.8 (auth,
connect-time auth, unicode auth, get/set ACLs, makepath with incompatible
ACLs, null data), written here with kazoo's public API only.
"""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer
from tests.server.zk.test_kazoo import in_thread, kazoo

security = pytest.importorskip("kazoo.security", reason="kazoo not installed: pip install kazoo")
kazoo_exceptions = pytest.importorskip("kazoo.exceptions")

pytestmark = pytest.mark.slow


async def test_auth_keeps_others_out_and_lets_the_credential_in(zk_server: RunningServer) -> None:
    def body() -> None:
        e = kazoo_exceptions
        acl = security.make_digest_acl("user", "pass", all=True)
        with kazoo(zk_server.zk_hosts) as owner, kazoo(zk_server.zk_hosts) as other:
            owner.add_auth("digest", "user:pass")
            owner.create("/1", b"x", acl=[acl])
            with pytest.raises(e.NoAuthError):
                other.get("/1")
            with pytest.raises(e.NoAuthError):
                other.create("/1/2")
            other.add_auth("digest", "user:wrong")
            with pytest.raises(e.NoAuthError):
                other.get("/1")
            other.add_auth("digest", "user:pass")
            assert other.get("/1")[0] == b"x"
            owner.delete("/1")

    await in_thread(body)


async def test_connect_time_auth_data(zk_server: RunningServer) -> None:
    def body() -> None:
        e = kazoo_exceptions
        credential = security.make_digest_acl_credential("username", "password")
        acl = security.make_acl("digest", credential, all=True)
        with kazoo(zk_server.zk_hosts, auth_data=[("digest", "username:password")]) as owner:
            owner.create("/1", acl=(acl,))
            assert owner.get("/1")[0] == b""
        with kazoo(zk_server.zk_hosts) as other, pytest.raises(e.NoAuthError):
            other.get("/1")
        with kazoo(zk_server.zk_hosts, auth_data=[("digest", "username:password")]) as again:
            again.delete("/1")

    await in_thread(body)


async def test_unicode_auth(zk_server: RunningServer) -> None:
    def body() -> None:
        e = kazoo_exceptions
        username, password = r"xe4/\hm", "/\xe4hm"
        acl = security.make_digest_acl(username, password, all=True)
        with kazoo(zk_server.zk_hosts) as owner, kazoo(zk_server.zk_hosts) as other:
            owner.add_auth("digest", f"{username}:{password}")
            owner.create("/1", acl=[acl])
            with pytest.raises(e.NoAuthError):
                other.get("/1")
            other.add_auth("digest", f"{username}:{password}")
            assert other.get_acls("/1")[0] == [acl]

    await in_thread(body)


async def test_an_unknown_scheme_fails_auth(zk_server: RunningServer) -> None:
    def body() -> None:
        with kazoo(zk_server.zk_hosts) as zk, pytest.raises(kazoo_exceptions.AuthFailedError):
            zk.add_auth("unknown-scheme", "x")

    await in_thread(body)


async def test_get_and_set_acls(zk_server: RunningServer) -> None:
    def body() -> None:
        e = kazoo_exceptions
        with kazoo(zk_server.zk_hosts) as zk:
            zk.add_auth("digest", "user:pass")
            mine = security.make_digest_acl("user", "pass", all=True)
            zk.create("/a", acl=[mine, security.make_acl("world", "anyone", read=True)])
            acls, stat = zk.get_acls("/a")
            assert acls == [mine, security.make_acl("world", "anyone", read=True)]
            assert stat.aversion == 0
            assert zk.set_acls("/a", [mine], version=0).aversion == 1
            with pytest.raises(e.BadVersionError):
                zk.set_acls("/a", [mine], version=0)
            with pytest.raises(e.InvalidACLError):
                zk.set_acls("/a", [])
            assert zk.get_acls("/a")[0] == [mine]
            zk.set_acls("/a", security.OPEN_ACL_UNSAFE)
            with kazoo(zk_server.zk_hosts) as other:
                assert other.get_acls("/a")[0] == list(security.OPEN_ACL_UNSAFE)

    await in_thread(body)


async def test_makepath_with_incompatible_acls(zk_server: RunningServer) -> None:
    def body() -> None:
        credential = security.make_digest_acl_credential("username", "password")
        with (
            kazoo(zk_server.zk_hosts, auth_data=[("digest", "username:password")]) as owner,
            kazoo(zk_server.zk_hosts) as other,
        ):
            owner.create("/1/2", b"val2", makepath=True, acl=security.CREATOR_ALL_ACL)
            with pytest.raises(kazoo_exceptions.NoAuthError):
                other.create("/1/2/3/4/5", b"val2", makepath=True)
            (acl,), _ = owner.get_acls("/1")
            assert (acl.perms, acl.id.scheme, acl.id.id) == (31, "digest", credential)
            owner.delete("/1", recursive=True)

    await in_thread(body)


async def test_null_data_reads_back_as_none(zk_server: RunningServer) -> None:
    def body() -> None:
        with kazoo(zk_server.zk_hosts) as zk:
            zk.create("/null", None)
            data, stat = zk.get("/null")
            assert data is None and stat.dataLength == 0
            zk.set("/null", b"x")
            zk.set("/null", None)
            assert zk.get("/null")[0] is None
            zk.create("/empty", b"")
            assert zk.get("/empty")[0] == b""

    await in_thread(body)
