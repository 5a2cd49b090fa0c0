"""TreeCache: a subtree in memory, current after changes, reconnects and restarts."""

from __future__ import annotations

from collections.abc import Callable

import trio
from trio.testing import MockClock

from coord.client import ClientState
from coord.client.recipes import TreeCache, TreeEvent, TreeEventType
from coord.server.testing import InProcessEnsemble

from .conftest import ConnectFactory, Notifier, followers, wait_state

ROOT = "/tree"


async def until(cache: TreeCache, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `predicate()` holds, checking it again after each of the cache's events."""
    notifier = Notifier()

    def on_event(_event: TreeEvent) -> None:
        notifier.changed()

    cache.listen(on_event)
    try:
        await notifier.wait_until(predicate, timeout)
    finally:
        cache.unlisten(on_event)


async def test_initial_load_and_events(autojump_clock: MockClock, connect: ConnectFactory) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as writer:
        await writer.create(f"{ROOT}/a/b", b"ab", makepath=True)
        await zk.sync(ROOT)
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
            await until(cache, lambda: len(cache) == 0)
            await writer.create(f"{ROOT}/z", b"z", makepath=True)
            await until(cache, lambda: cache.snapshot() == {ROOT: b"", f"{ROOT}/z": b"z"})


async def test_race_of_writers_ends_equal_to_the_server(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as writer:
        await writer.ensure_path(ROOT)
        await zk.sync(ROOT)
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
                data, _stat = await writer.get(f"{ROOT}/{name}")
                truth[f"{ROOT}/{name}"] = data
            await until(cache, lambda: cache.snapshot() == truth)


async def test_resync_after_a_disconnect_and_a_restart(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    down, up = await followers(ensemble)
    async with (
        connect(session_timeout=2, members=[down]) as zk,
        connect(session_timeout=2, members=[up]) as writer,
    ):
        await writer.create(f"{ROOT}/a", b"1", makepath=True)
        await zk.sync(ROOT)
        async with zk.TreeCache(ROOT) as cache:
            await ensemble.kill(down)  # zk's only member
            await wait_state(zk, ClientState.SUSPENDED)
            await writer.set(f"{ROOT}/a", b"2")
            await writer.create(f"{ROOT}/b", b"b")
            await ensemble.start(down)
            # Persistent watches do not replay missed changes: the resync finds them.
            await until(
                cache,
                lambda: cache.snapshot() == {ROOT: b"", f"{ROOT}/a": b"2", f"{ROOT}/b": b"b"},
            )
            assert cache.syncs == 2
            await ensemble.restart(await ensemble.wait_for_leader())  # an election
            await ensemble.wait_serving()
            await writer.delete(f"{ROOT}/b")
            await until(cache, lambda: f"{ROOT}/b" not in cache.snapshot())


async def test_lost_session_is_reported(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    async with connect(session_timeout=0.4) as zk:
        await zk.ensure_path(ROOT)
        async with zk.TreeCache(ROOT) as cache:
            events = cache.events()
            await ensemble.expire_session(zk)
            kinds = []
            with trio.fail_after(5):
                async for event in events:
                    kinds.append(event.event_type)
            assert kinds[-1] is TreeEventType.CONNECTION_LOST
