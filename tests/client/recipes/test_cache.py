"""TreeCache: a subtree in memory, current after changes, reconnects and restarts."""

from __future__ import annotations

import trio

from coord.client import ClientState
from coord.client.recipes import TreeEventType

from .conftest import ConnectFactory, Net, RestartableServer, wait_state

ROOT = "/tree"


async def until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def test_initial_load_and_events(connect: ConnectFactory) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as writer:
        await writer.create(f"{ROOT}/a/b", b"ab", makepath=True)
        async with zk.TreeCache(ROOT) as cache:
            assert cache.snapshot() == {ROOT: b"", f"{ROOT}/a": b"", f"{ROOT}/a/b": b"ab"}
            assert cache.get_children(ROOT) == {"a"}
            events = cache.events()
            await writer.create(f"{ROOT}/a/c", b"c")
            await writer.set(f"{ROOT}/a/b", b"ab2")
            await writer.delete(f"{ROOT}/a/c")
            seen = []
            with trio.fail_after(5):
                async for event in events:
                    seen.append((event.event_type, event.path))
                    if len(seen) == 3:
                        break
            assert seen == [
                (TreeEventType.NODE_ADDED, f"{ROOT}/a/c"),
                (TreeEventType.NODE_UPDATED, f"{ROOT}/a/b"),
                (TreeEventType.NODE_REMOVED, f"{ROOT}/a/c"),
            ]
            assert cache.get_data(f"{ROOT}/a/b").data == b"ab2"  # type: ignore[union-attr]
            assert cache.get_children(f"{ROOT}/a") == {"b"}
            await writer.delete(ROOT, recursive=True)
            await until(lambda: len(cache) == 0)
            await writer.create(f"{ROOT}/z", b"z", makepath=True)
            await until(lambda: cache.snapshot() == {ROOT: b"", f"{ROOT}/z": b"z"})


async def test_race_of_writers_ends_equal_to_the_server(connect: ConnectFactory) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as writer:
        await writer.ensure_path(ROOT)
        async with zk.TreeCache(ROOT) as cache:

            async def churn(w: int) -> None:
                for i in range(15):
                    path = f"{ROOT}/n{w}-{i % 4}"
                    if await writer.exists(path) is None:
                        await writer.create(path, b"%d" % i)
                    elif i % 3:
                        await writer.set(path, b"%d" % i)
                    else:
                        await writer.delete(path)

            async with trio.open_nursery() as nursery:
                for w in range(3):
                    nursery.start_soon(churn, w)
            truth = {ROOT: b""}
            for name in await writer.get_children(ROOT):
                truth[f"{ROOT}/{name}"] = (await writer.get(f"{ROOT}/{name}"))[0]
            await until(lambda: cache.snapshot() == truth)


async def test_resync_after_a_disconnect_and_a_restart(
    connect: ConnectFactory, server: RestartableServer
) -> None:
    net = Net()
    async with connect(session_timeout=2, net=net) as zk, connect(session_timeout=2) as writer:
        await writer.create(f"{ROOT}/a", b"1", makepath=True)
        async with zk.TreeCache(ROOT) as cache:
            await net.cut()
            await wait_state(zk, ClientState.SUSPENDED)
            await writer.set(f"{ROOT}/a", b"2")
            await writer.create(f"{ROOT}/b", b"b")
            net.heal()
            # Persistent watches do not replay missed changes: the resync finds them.
            await until(
                lambda: cache.snapshot() == {ROOT: b"", f"{ROOT}/a": b"2", f"{ROOT}/b": b"b"}
            )
            assert cache.syncs >= 2
            await server.restart()
            await until(lambda: writer.connected and zk.connected)
            await writer.delete(f"{ROOT}/b")
            await until(lambda: f"{ROOT}/b" not in cache.snapshot())


async def test_lost_session_is_reported(connect: ConnectFactory) -> None:
    net = Net()
    async with connect(session_timeout=0.4, net=net) as zk:
        await zk.ensure_path(ROOT)
        async with zk.TreeCache(ROOT) as cache:
            events = cache.events()
            await net.cut()
            await wait_state(zk, ClientState.LOST)
            kinds = []
            with trio.fail_after(5):
                async for event in events:
                    kinds.append(event.event_type)
            assert kinds[-1] is TreeEventType.CONNECTION_LOST
