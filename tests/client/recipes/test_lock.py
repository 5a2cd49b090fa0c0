"""Lock: mutual exclusion with fencing tokens, under races, server kills and expiry."""

from __future__ import annotations

import pytest
import trio

from coord.client import ClientState
from coord.client.recipes import LockLostError, LockTimeout, is_current_holder
from coord.client.recipes._contenders import queue_of

from .conftest import ConnectFactory, HoldLog, Net, RestartableServer, wait_state

PATH = "/locks/db"


async def test_acquire_release_token_and_contenders(connect: ConnectFactory) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as zk2:
        lock = zk.Lock(PATH, identifier="worker-7")
        async with lock:
            assert lock.is_acquired and lock.is_trusted()
            stat = await zk.exists(lock.node)  # type: ignore[arg-type]
            assert stat is not None and lock.token == stat.czxid
            assert await lock.contenders() == ["worker-7"]
            assert await is_current_holder(zk2, PATH, lock.token)
            other = zk2.Lock(PATH, identifier="other")
            assert not await other.acquire(blocking=False)
            assert not await other.acquire(timeout=0.1)
            with pytest.raises(LockTimeout):
                async with zk2.Lock(PATH, timeout=0.05):
                    pass
            assert await zk.get_children(PATH) == [lock.node.rsplit("/", 1)[1]]  # type: ignore[union-attr]
            token = lock.token
        assert not lock.is_acquired and lock.lost is None and lock.token is None
        assert not await is_current_holder(zk2, PATH, token)
        assert await zk.get_children(PATH) == []
        async with zk2.Lock(PATH) as second:
            assert second.token is not None and second.token > token


async def test_race_of_five_clients_is_mutually_exclusive(connect: ConnectFactory) -> None:
    log = HoldLog()

    async def worker(i: int) -> None:
        async with connect(session_timeout=2) as zk:
            for _ in range(4):
                async with zk.Lock(PATH, identifier=f"w{i}") as lock:
                    hold = log.begin(f"w{i}", lock.token)
                    await trio.sleep(0.002)
                    log.end(hold)

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(worker, i)
    assert len(log.holds) == 20
    log.check()


async def test_a_release_wakes_one_waiter_not_the_herd(
    connect: ConnectFactory, server: RestartableServer
) -> None:
    waiters = 8
    async with connect(session_timeout=2) as zk:
        holder = zk.Lock(PATH)
        await holder.acquire()
        got: list[int] = []
        async with trio.open_nursery() as nursery:
            clients = []
            for i in range(waiters):
                client = await nursery.start(_serve_client, connect)
                clients.append(client)
                nursery.start_soon(_acquire_and_hold, client, i, got)
            with trio.fail_after(5):
                while len(await zk.get_children(PATH)) < waiters + 1:
                    await trio.sleep(0.01)
            await trio.sleep(0.05)
            assert server.server is not None
            before = server.server.stats.requests
            await holder.release()
            with trio.fail_after(5):
                while not got:
                    await trio.sleep(0.005)
            await trio.sleep(0.1)
            # The holder's delete, then the one woken waiter re-reads and sets up
            # its guard; the other seven stay asleep (a herd would be 8+ reads).
            assert server.server.stats.requests - before < waiters
            nursery.cancel_scope.cancel()


async def _serve_client(connect: ConnectFactory, task_status: trio.TaskStatus) -> None:  # type: ignore[type-arg]
    async with connect(session_timeout=2) as zk:
        task_status.started(zk)
        await trio.sleep_forever()


async def _acquire_and_hold(zk, i: int, got: list[int]) -> None:  # type: ignore[no-untyped-def]
    async with zk.Lock(PATH):
        got.append(i)
        await trio.sleep_forever()


async def test_cancelled_acquire_leaves_no_contender(connect: ConnectFactory) -> None:
    """kazoo #732: cancel at every moment, also while the create is in flight."""
    async with (
        connect(session_timeout=2) as zk,
        connect(session_timeout=2) as zk2,
        zk.Lock(PATH, identifier="holder") as holder,
    ):
        for delay in [0, 0.0001, 0.0003, 0.0006, 0.001, 0.002, 0.004, 0.008] * 2:
            with trio.move_on_after(delay):
                await zk2.Lock(PATH).acquire()
            children = await zk.get_children(PATH)
            assert children == [holder.node.rsplit("/", 1)[1]]  # type: ignore[union-attr]


async def test_cancelled_acquire_with_the_connection_down_cleans_up_after_reconnect(
    connect: ConnectFactory,
) -> None:
    net = Net()
    async with (
        connect(session_timeout=2) as zk,
        connect(session_timeout=2, net=net) as zk2,
        zk.Lock(PATH) as holder,
    ):
        waiter = zk2.Lock(PATH)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter.acquire)
            with trio.fail_after(5):
                while len(await zk.get_children(PATH)) < 2:
                    await trio.sleep(0.005)
            await net.cut()
            nursery.cancel_scope.cancel()  # cleanup waits, shielded, for the reconnect...
            net.heal()
        assert await zk.get_children(PATH) == [holder.node.rsplit("/", 1)[1]]  # type: ignore[union-attr]
        assert zk2.state is ClientState.CONNECTED


async def test_holder_keeps_the_lock_across_a_quick_server_restart(
    connect: ConnectFactory, server: RestartableServer
) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as zk2:
        async with zk.Lock(PATH) as lock:
            token = lock.token
            await server.restart()
            with trio.fail_after(5):
                while (
                    zk.state is not ClientState.CONNECTED
                    or lock.trusted_until < trio.current_time() + 1
                ):
                    await trio.sleep(0.02)
            assert lock.is_acquired and lock.token == token
            assert not await zk2.Lock(PATH).acquire(blocking=False)
        assert lock.lost is None
        async with zk2.Lock(PATH) as lock2:
            assert lock2.token is not None and token is not None and lock2.token > token


async def test_holder_is_cancelled_in_a_long_outage_before_its_session_could_expire(
    connect: ConnectFactory, server: RestartableServer
) -> None:
    timeout = 0.8
    async with connect(session_timeout=timeout) as zk:
        lock = zk.Lock(PATH)
        cancelled_at = None
        with pytest.raises(LockLostError, match="jeopardy"):
            async with lock:
                confirmed = lock.trusted_until - timeout + lock_margin(timeout)
                await server.stop()
                try:
                    await trio.sleep(10)
                finally:
                    cancelled_at = trio.current_time()
        assert cancelled_at is not None
        # Cancelled a margin before the earliest moment the server could expire us.
        assert cancelled_at <= confirmed + timeout - lock_margin(timeout) + 0.1
        assert cancelled_at < confirmed + timeout
        await server.start()


def lock_margin(timeout: float) -> float:
    return timeout / 4


async def test_expired_holder_stops_before_the_next_holder_starts(
    connect: ConnectFactory,
) -> None:
    """The CURATOR-465/604 shape: the holder is partitioned away and its session expires."""
    timeout = 0.6
    log = HoldLog()
    net = Net()
    async with connect(session_timeout=timeout, net=net) as zk, connect(session_timeout=2) as zk2:
        acquired = trio.Event()

        async def first() -> None:
            with pytest.raises(LockLostError):
                async with zk.Lock(PATH, identifier="a") as lock:
                    hold = log.begin("a", lock.token)
                    acquired.set()
                    try:
                        await trio.sleep_forever()
                    finally:
                        log.end(hold)

        async def second() -> None:
            await acquired.wait()
            async with zk2.Lock(PATH, identifier="b") as lock:
                hold = log.begin("b", lock.token)
                log.end(hold)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first)
            nursery.start_soon(second)
            await acquired.wait()
            await trio.sleep(0.05)
            await net.cut()
        await wait_state(zk, ClientState.LOST)
    log.check()
    first_hold, second_hold = sorted(log.holds, key=lambda h: h.start)
    assert first_hold.who == "a" and second_hold.who == "b"
    # The gap is at least most of the margin: the old holder stopped first.
    assert second_hold.start - first_hold.end > timeout / 4 / 2


async def test_lock_delay_after_an_unclean_handover_only(connect: ConnectFactory) -> None:
    timeout, delay = 0.6, 0.5
    net = Net()
    async with connect(session_timeout=2) as zk2:
        # A clean release: the next holder gets the lock at once.
        async with connect(session_timeout=2) as zk, zk.Lock(PATH, lock_delay=delay):
            pass
        start = trio.current_time()
        async with zk2.Lock(PATH, lock_delay=delay):
            assert trio.current_time() - start < delay / 2
        # An unclean one: the holder's session expires while it holds.
        async with connect(session_timeout=timeout, net=net) as zk:
            holder = zk.Lock(PATH, lock_delay=delay)
            await holder.acquire()
            children = await zk2.get_children(PATH)
            await net.cut()
            await wait_state(zk, ClientState.LOST)
        gone = trio.Event()
        while await zk2.exists(f"{PATH}/{children[0]}", watch=lambda e: gone.set()):
            await gone.wait()
        vanished = trio.current_time()
        async with zk2.Lock(PATH, lock_delay=delay):
            assert trio.current_time() - vanished >= delay


async def test_holder_whose_node_is_deleted_is_cancelled(connect: ConnectFactory) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as admin:
        with pytest.raises(LockLostError, match=r"deleted|gone"):
            async with zk.Lock(PATH) as lock:
                await admin.delete(lock.node)  # type: ignore[arg-type]
                await trio.sleep(5)


async def test_acquire_after_a_session_expired_raises(connect: ConnectFactory) -> None:
    net = Net()
    async with connect(session_timeout=0.4, net=net) as zk:
        await net.cut()
        await wait_state(zk, ClientState.LOST)
        with pytest.raises(Exception, match="expired"):
            await zk.Lock(PATH).acquire()


async def test_queue_has_no_orphans_after_many_timeouts(connect: ConnectFactory) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as zk2, zk.Lock(PATH):
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(zk2.Lock(PATH).acquire, True, 0.05)
        assert len(queue_of(await zk.get_children(PATH))) == 1
