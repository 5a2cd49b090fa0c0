"""kazoo, a ZooKeeper client nobody here wrote, against the ZooKeeper-compatible port.

The server runs in the test's trio run (the `zk_server` fixture); kazoo is a
threaded client, so each test's kazoo part is a plain function run in a
worker thread (`in_thread`) while trio serves. The recipes are kazoo's own,
used the way people use them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
import trio

from coord.client import Client, EventType, WatchStream
from tests.conftest import RunningServer
from tests.server.zk.proxy import TcpProxy

kazoo_client = pytest.importorskip("kazoo.client", reason="kazoo not installed: pip install kazoo")
kazoo_exceptions = pytest.importorskip("kazoo.exceptions")
KazooClient = kazoo_client.KazooClient
KazooState = kazoo_client.KazooState

T = TypeVar("T")

pytestmark = pytest.mark.slow


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await trio.to_thread.run_sync(fn, *args)


@contextmanager
def kazoo(hosts: str, **kwargs: Any) -> Iterator[Any]:
    kwargs.setdefault("timeout", 2.0)
    client = KazooClient(hosts=hosts, **kwargs)
    client.start(timeout=10)
    try:
        yield client
    finally:
        client.stop()
        client.close()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_kazoo_is_a_test_dependency() -> None:
    assert KazooClient is not None


async def test_basic_ops(zk_server: RunningServer) -> None:
    def body() -> None:
        e = kazoo_exceptions
        with kazoo(zk_server.zk_hosts) as zk:
            assert zk.server_version() == (3, 8, 0)
            zk.ensure_path("/app/jobs")
            path = zk.create("/app/jobs/job-", b"payload", ephemeral=True, sequence=True)
            assert path == "/app/jobs/job-0000000000"
            data, stat = zk.get(path)
            assert data == b"payload" and stat.ephemeralOwner == zk.client_id[0]
            assert zk.get_children("/app/jobs") == ["job-0000000000"]
            children, parent = zk.get_children("/app/jobs", include_data=True)
            assert children == ["job-0000000000"] and parent.numChildren == 1
            stat2 = zk.set(path, b"v2", version=stat.version)
            assert stat2.version == 1 and stat2.mzxid > stat.mzxid
            with pytest.raises(e.BadVersionError):
                zk.set(path, b"v3", version=0)
            with pytest.raises(e.NodeExistsError):
                zk.create("/app")
            with pytest.raises(e.NoNodeError):
                zk.create("/no/parent")
            with pytest.raises(e.NotEmptyError):
                zk.delete("/app")
            with pytest.raises(e.NoNodeError):
                zk.get("/missing")
            # kazoo normalises "/bad/"; a control character reaches the server. As
            # ZooKeeper: a create refuses the path, a read finds no such node.
            with pytest.raises(e.BadArgumentsError):
                zk.create("/bad\x01name")
            with pytest.raises(e.NoNodeError):
                zk.get("/bad\x01name")
            assert zk.exists("/missing") is None
            created, cstat = zk.create("/app/c", b"x", include_data=True)
            assert created == "/app/c" and cstat.dataLength == 1
            assert zk.sync("/app") == "/app"
            tx = zk.transaction()
            tx.create("/app/t", b"1")
            tx.check("/app/c", 0)
            tx.set_data("/app/c", b"y")
            tx.delete(path)
            results = tx.commit()
            assert results[0] == "/app/t" and results[1] is True and results[3] is True
            tx = zk.transaction()
            tx.create("/app/u")
            tx.check("/app/c", 99)
            tx.create("/app/v")
            assert [type(r) for r in tx.commit()] == [
                e.RolledBackError,
                e.BadVersionError,
                e.RuntimeInconsistency,
            ]
            assert zk.exists("/app/u") is None
            acls, _ = zk.get_acls("/app")
            assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [(31, "world", "anyone")]
            zk.set_acls("/app", acls)
            zk.add_auth("digest", "user:secret")
            zk.delete("/app", recursive=True)
            assert zk.exists("/app") is None
            assert zk.command(b"ruok") == "imok"

    await in_thread(body)


async def test_data_watch_and_children_watch(zk_server: RunningServer) -> None:
    def body() -> None:
        with kazoo(zk_server.zk_hosts) as zk, kazoo(zk_server.zk_hosts) as other:
            data_seen: list[bytes | None] = []
            children_seen: list[list[str]] = []
            zk.DataWatch("/dw", lambda data, stat: data_seen.append(data))
            zk.ensure_path("/cw")
            zk.ChildrenWatch("/cw", lambda children: children_seen.append(sorted(children)))
            wait_until(lambda: data_seen == [None] and children_seen == [[]])
            other.create("/dw", b"1")
            wait_until(lambda: data_seen[-1:] == [b"1"])
            other.set("/dw", b"2")
            wait_until(lambda: data_seen[-1:] == [b"2"])
            other.delete("/dw")
            wait_until(lambda: data_seen[-1:] == [None])
            other.create("/cw/a")
            other.create("/cw/b", ephemeral=True)
            wait_until(lambda: children_seen[-1:] == [["a", "b"]])
            other.delete("/cw/a")
            wait_until(lambda: children_seen[-1:] == [["b"]])

    await in_thread(body)


async def test_lock_and_election(zk_server: RunningServer) -> None:
    def body() -> None:
        with kazoo(zk_server.zk_hosts) as one, kazoo(zk_server.zk_hosts) as two:
            first, second = one.Lock("/lock", "first"), two.Lock("/lock", "second")
            assert first.acquire(timeout=5)
            assert not second.acquire(blocking=False)
            got = threading.Event()
            waiter = threading.Thread(target=lambda: second.acquire(timeout=10) and got.set())
            waiter.start()
            wait_until(lambda: len(first.contenders()) == 2)
            assert first.contenders() == ["first", "second"]
            assert not got.is_set()
            first.release()
            waiter.join(10)
            assert got.is_set()
            second.release()

            leaders: list[str] = []
            release = {"a": threading.Event(), "b": threading.Event()}

            def lead(name: str) -> None:
                leaders.append(name)
                release[name].wait(10)

            a = threading.Thread(target=one.Election("/election", "a").run, args=(lead, "a"))
            a.start()
            wait_until(lambda: leaders == ["a"])
            election_b = two.Election("/election", "b")
            b = threading.Thread(target=election_b.run, args=(lead, "b"))
            b.start()
            wait_until(lambda: election_b.contenders() == ["a", "b"])
            assert leaders == ["a"]
            release["a"].set()
            wait_until(lambda: leaders == ["a", "b"])
            release["b"].set()
            a.join(10)
            b.join(10)

    await in_thread(body)


async def test_barrier_counter_queue_party(zk_server: RunningServer) -> None:
    def body() -> None:
        with kazoo(zk_server.zk_hosts) as zk, kazoo(zk_server.zk_hosts) as other:
            barrier = zk.Barrier("/barrier")
            barrier.create()
            assert not other.Barrier("/barrier").wait(timeout=0.2)
            passed = threading.Event()
            waiter = threading.Thread(
                target=lambda: other.Barrier("/barrier").wait(timeout=10) and passed.set()
            )
            waiter.start()
            time.sleep(0.1)
            assert not passed.is_set()
            barrier.remove()
            waiter.join(10)
            assert passed.is_set()

            counter = zk.Counter("/counter")
            counter += 5
            counter -= 2
            assert counter.value == 3

            def bump(client: Any) -> None:
                c = client.Counter("/counter")
                for _ in range(20):
                    c += 1

            bumpers = [threading.Thread(target=bump, args=(c,)) for c in (zk, other)]
            for t in bumpers:
                t.start()
            for t in bumpers:
                t.join(20)
            assert zk.Counter("/counter").value == 43

            queue = zk.Queue("/queue")
            queue.put(b"low", priority=200)
            queue.put(b"first")
            queue.put(b"second")
            assert len(queue) == 3
            assert [other.Queue("/queue").get() for _ in range(3)] == [b"first", b"second", b"low"]
            assert queue.get() is None

            locking = zk.LockingQueue("/lq")
            locking.put(b"job")
            taken = other.LockingQueue("/lq")
            assert taken.get(timeout=5) == b"job"
            assert taken.consume()
            assert len(locking) == 0

            party = zk.Party("/party", "alice")
            party.join()
            other.Party("/party", "bob").join()
            assert sorted(party) == ["alice", "bob"] and len(party) == 2
            party.leave()
            assert list(other.Party("/party")) == ["bob"]
            shallow = zk.ShallowParty("/shallow", "carol")
            shallow.join()
            assert list(other.ShallowParty("/shallow")) == ["carol"]

    await in_thread(body)


async def test_session_expiry_removes_a_kazoo_clients_ephemerals(
    zk_server: RunningServer, nursery: trio.Nursery
) -> None:
    proxy = TcpProxy(zk_server.zk_port)
    await nursery.start(proxy.serve)
    states: list[Any] = []
    fast_retry = {"max_tries": -1, "delay": 0.05, "max_delay": 0.2}
    client = KazooClient(hosts=f"127.0.0.1:{proxy.port}", timeout=1.0, connection_retry=fast_retry)
    client.add_listener(states.append)
    await in_thread(lambda: client.start(timeout=10))
    try:
        await in_thread(lambda: client.create("/owned", b"", ephemeral=True))
        async with Client(zk_server.hosts, session_timeout=2, request_timeout=5) as native:
            stream = WatchStream()
            assert await native.exists("/owned", watch=stream) is not None
            proxy.block()  # the client goes silent; the server expires its session
            with trio.fail_after(10):
                event = await stream.next()
            assert event.type is EventType.DELETED and event.path == "/owned"
            assert await native.exists("/owned") is None
        proxy.unblock()
        await in_thread(lambda: wait_until(lambda: KazooState.LOST in states, timeout=10))
    finally:
        await in_thread(client.stop)
        await in_thread(client.close)


async def test_watches_fire_across_the_two_protocols(zk_server: RunningServer) -> None:
    async with Client(zk_server.hosts, session_timeout=2, request_timeout=5) as native:
        client = KazooClient(hosts=zk_server.zk_hosts, timeout=2.0)
        await in_thread(lambda: client.start(timeout=10))
        try:
            # A native watch fires on a kazoo write.
            await native.create("/x", b"0")
            stream = WatchStream()
            await native.get("/x", watch=stream)
            stat = await in_thread(lambda: client.set("/x", b"from kazoo"))
            with trio.fail_after(5):
                event = await stream.next()
            assert (event.type, event.path, event.zxid) == (EventType.CHANGED, "/x", stat.mzxid)

            # A kazoo watch fires on a native write.
            seen: list[Any] = []
            fired = threading.Event()

            def watcher(event: Any) -> None:
                seen.append(event)
                fired.set()

            await in_thread(lambda: client.get_children("/x", watch=watcher))
            await native.create("/x/child", b"")
            assert await in_thread(lambda: fired.wait(5))
            assert (seen[0].type, seen[0].path) == ("CHILD", "/x")

            # A kazoo session's ephemeral is the native client's to see, owner and all.
            await in_thread(lambda: client.create("/x/eph", b"", ephemeral=True))
            _data, eph = await native.get("/x/eph")
            assert eph.ephemeral_owner == client.client_id[0]
        finally:
            await in_thread(client.stop)
            await in_thread(client.close)
        assert await native.exists("/x/eph") is None  # closeSession removed it
