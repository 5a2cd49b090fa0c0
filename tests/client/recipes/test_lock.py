"""Lock: mutual exclusion with fencing tokens, under races, restarts and expiry.

On the in-process ensemble in virtual time (conftest.py): every timeout,
guard deadline and lock delay below is exact, and a test waits for what it
means (a node, a state, every task idle), never for a guessed while.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from coord.client import ClientState
from coord.client.recipes import Lock, LockLostError, LockTimeout, is_current_holder
from coord.client.recipes._contenders import queue_of
from coord.client.recipes._guard import DEFAULT_MARGIN
from coord.paths import SEQUENCE_DIGITS
from coord.server.testing import InProcessEnsemble

from .conftest import (
    ConnectFactory,
    HoldLog,
    Recorder,
    Request,
    children,
    followers,
    restart_member_of,
    until_cancelled,
    wait_children,
)

PATH = "/locks/db"


def name_of(node: str | None) -> str:
    assert node is not None
    return node.rsplit("/", 1)[1]


async def test_acquire_release_token_and_contenders(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
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
            start = trio.current_time()
            assert not await other.acquire(timeout=0.1)
            assert trio.current_time() - start == pytest.approx(0.1)
            with pytest.raises(LockTimeout):
                async with zk2.Lock(PATH, timeout=0.05):
                    pass
            assert await children(zk, PATH) == [name_of(lock.node)]
            token = lock.token
        assert not lock.is_acquired and lock.lost is None and lock.token is None
        assert not await is_current_holder(zk2, PATH, token)
        assert await children(zk, PATH) == []
        async with zk2.Lock(PATH) as second:
            assert second.token is not None and second.token > token


async def test_race_of_five_clients_is_mutually_exclusive(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    log = HoldLog()

    async def worker(i: int) -> None:
        async with connect(session_timeout=2) as zk:
            for _ in range(4):
                async with zk.Lock(PATH, identifier=f"w{i}") as lock:
                    hold = log.begin(f"w{i}", lock.token)
                    await trio.sleep(0.002)  # hold it a while (virtual): overlaps would show
                    log.end(hold)

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(worker, i)
    assert len(log.holds) == 20
    log.check()


async def test_a_release_wakes_one_waiter_not_the_herd(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    """Each waiter watches only its predecessor, so each release wakes exactly one.

    Nine clients queue in turn, each recording the requests its Lock sends.
    Then each holder in turn lets go, and once every task is idle again the
    requests are compared: the holder's one delete, the next waiter's read of
    the queue and its guard's first probe, and nothing at all from the others.
    """
    count = 9
    recorders: list[Recorder] = []
    locks: list[Lock] = []
    entered = [trio.Event() for _ in range(count)]
    leave = [trio.Event() for _ in range(count)]

    async def contender(i: int, task_status: trio.TaskStatus[None]) -> None:
        async with connect(session_timeout=2) as zk:
            recorder = Recorder(zk)
            lock = Lock(recorder.client, PATH, identifier=f"c{i}")
            recorders.append(recorder)
            locks.append(lock)
            task_status.started()
            async with lock:
                entered[i].set()
                await leave[i].wait()

    async with connect(session_timeout=2) as observer, trio.open_nursery() as nursery:
        nodes: list[str] = []
        for i in range(count):
            await nursery.start(contender, i)
            await trio.testing.wait_all_tasks_blocked()  # c{i} has queued and waits
            queue = [f"{PATH}/{e.name}" for e in queue_of(await children(observer, PATH))]
            assert queue[:-1] == nodes  # c{i} went to the end of the queue
            nodes.append(queue[-1])
            # The first holds (its guard probes its own node); every other one
            # watches its predecessor's node, and nothing else.
            watched = nodes[0] if i == 0 else nodes[i - 1]
            assert recorders[i].take() == [
                Request("create", nodes[i][:-SEQUENCE_DIGITS]),
                Request("get_children", PATH),
                Request("exists", watched),
            ]
            assert entered[i].is_set() == (i == 0)
        assert locks[0].node == nodes[0]
        for recorder in recorders:
            recorder.take()  # (probes of the holder's guard, had virtual time moved)

        for i in range(count):
            leave[i].set()
            if i + 1 < count:
                await entered[i + 1].wait()
            await trio.testing.wait_all_tasks_blocked()  # a herd would have sent by now
            expected: list[list[Request]] = [[] for _ in range(count)]
            expected[i] = [Request("delete", nodes[i])]
            if i + 1 < count:
                expected[i + 1] = [Request("get_children", PATH), Request("exists", nodes[i + 1])]
            assert [recorder.take() for recorder in recorders] == expected, f"release {i}"
        nursery.cancel_scope.cancel()


async def test_cancelled_acquire_leaves_no_contender(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    """kazoo #732: cancel at every moment, also while the create is in flight.

    The cancellation lands after 0, 1, 2, ... scheduler steps of the acquire
    (its requests take no virtual time), so it hits with the create in
    flight, between the create and the listing, and while waiting for the
    holder; the recorder tells which, and the test checks all three happened.
    """
    async with (
        connect(session_timeout=2) as zk,
        connect(session_timeout=2) as zk2,
        zk.Lock(PATH, identifier="holder") as holder,
    ):
        recorder = Recorder(zk2)
        sent_before_cancel: set[int] = set()
        for steps in range(40):
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(
                        cancel_after_steps, scope, steps, recorder, sent_before_cancel
                    )
                    await Lock(recorder.client, PATH).acquire()
            recorder.take()
            assert await children(zk, PATH) == [name_of(holder.node)], f"after {steps} steps"
        # Cut with the create in flight (its reply not yet read), after the
        # listing, and while waiting (create, list, watch: three requests).
        assert {1, 2, 3} <= sent_before_cancel


async def cancel_after_steps(
    scope: trio.CancelScope, steps: int, recorder: Recorder, sent: set[int]
) -> None:
    for _ in range(steps):
        await trio.lowlevel.checkpoint()
    sent.add(len(recorder.requests))
    scope.cancel()


async def test_cancelled_acquire_with_the_connection_down_cleans_up_after_reconnect(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    down, up = await followers(ensemble)
    async with (
        connect(session_timeout=2, members=[up]) as zk,
        connect(session_timeout=2, members=[down]) as zk2,
        zk.Lock(PATH) as holder,
    ):
        waiting = trio.CancelScope()

        async def wait_for_the_lock() -> None:
            with waiting:
                await zk2.Lock(PATH).acquire()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_for_the_lock)
            await wait_children(zk, PATH, lambda names: len(names) == 2)
            await ensemble.kill(down)  # zk2's only member: it cannot reach the ensemble
            waiting.cancel()
            await trio.testing.wait_all_tasks_blocked()
            # The cleanup waits, shielded, for the reconnect; the node is still there.
            assert zk2.state is ClientState.SUSPENDED
            assert len(await children(zk, PATH)) == 2
            await ensemble.start(down)
        assert await children(zk, PATH) == [name_of(holder.node)]
        assert zk2.state is ClientState.CONNECTED


async def test_holder_keeps_the_lock_across_a_restart_of_its_server(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    timeout = 2.0
    async with (
        connect(session_timeout=timeout, members=await followers(ensemble)) as zk,
        connect(session_timeout=timeout) as zk2,
    ):
        seen: list[ClientState] = []
        zk.add_listener(seen.append)
        async with zk.Lock(PATH) as lock:
            token = lock.token
            await restart_member_of(ensemble, zk)  # zk loses its connection, reconnects
            # A whole session timeout later the guard has renewed its trust on
            # the new connection, else it would have cancelled this body.
            await trio.sleep(timeout)
            assert seen == [ClientState.SUSPENDED, ClientState.CONNECTED]
            assert lock.is_acquired and lock.is_trusted() and lock.token == token
            assert not await zk2.Lock(PATH).acquire(blocking=False)
        assert lock.lost is None
        async with zk2.Lock(PATH) as lock2:
            assert lock2.token is not None and token is not None and lock2.token > token


async def test_holder_is_cancelled_in_a_long_outage_before_its_session_could_expire(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    timeout = 0.8
    margin = timeout * DEFAULT_MARGIN
    async with connect(session_timeout=timeout) as zk, trio.open_nursery() as nursery:
        with pytest.raises(LockLostError, match="jeopardy"):
            async with zk.Lock(PATH) as lock:
                confirmed = trio.current_time()  # the acquire took no virtual time
                assert lock.trusted_until == pytest.approx(confirmed + timeout - margin)
                nursery.start_soon(ensemble.expire_session, zk)  # no reply from now on
                try:
                    await trio.sleep_forever()
                finally:
                    cancelled_at = trio.current_time()
        # Cancelled when the trust window ends: a margin before the earliest
        # moment the server could expire the session (a timeout after the
        # last request that confirmed the hold).
        assert cancelled_at == pytest.approx(confirmed + timeout - margin)


async def test_expired_holder_stops_before_the_next_holder_starts(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    """The CURATOR-465/604 shape: the holder is partitioned away and its session expires."""
    timeout = 0.6
    log = HoldLog()
    async with connect(session_timeout=timeout) as zk, connect(session_timeout=2) as zk2:
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
            await wait_children(zk2, PATH, lambda names: len(names) == 2)  # b waits
            await ensemble.expire_session(zk)
        assert zk.state is ClientState.LOST
    log.check()
    first_hold, second_hold = sorted(log.holds, key=lambda h: h.start)
    assert first_hold.who == "a" and second_hold.who == "b"
    # The old holder stopped at least the whole margin before the server could
    # expire it, so before the next holder could start.
    assert second_hold.start - first_hold.end >= timeout * DEFAULT_MARGIN - 1e-9


async def test_lock_delay_after_an_unclean_handover_only(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    timeout, delay = 0.6, 0.5
    async with connect(session_timeout=2) as zk2:
        # A clean release: the next holder gets the lock at once.
        async with connect(session_timeout=2) as zk, zk.Lock(PATH, lock_delay=delay):
            pass
        start = trio.current_time()
        async with zk2.Lock(PATH, lock_delay=delay):
            assert trio.current_time() == start
        # An unclean one: the holder's session expires while it holds.
        async with connect(session_timeout=timeout) as zk:
            holder = zk.Lock(PATH, lock_delay=delay)
            await holder.acquire()
            (name,) = await children(zk2, PATH)
            assert name == name_of(holder.node)
            await ensemble.expire_session(zk)
        await wait_children(zk2, PATH, lambda names: names == [])
        vanished = trio.current_time()
        async with zk2.Lock(PATH, lock_delay=delay):
            assert trio.current_time() - vanished == pytest.approx(delay)


async def test_holder_whose_node_is_deleted_is_cancelled_at_once(
    autojump_clock: MockClock,
    connect: ConnectFactory,
) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as admin:
        with pytest.raises(LockLostError, match=r"deleted|gone"):
            async with zk.Lock(PATH) as lock:
                deleted_at = trio.current_time()
                await admin.delete(lock.node)  # type: ignore[arg-type]
                await until_cancelled()
        assert trio.current_time() == deleted_at  # the watch fired: no timer was needed


async def test_acquire_after_a_session_expired_raises(
    autojump_clock: MockClock, connect: ConnectFactory, ensemble: InProcessEnsemble
) -> None:
    async with connect(session_timeout=0.4) as zk:
        await ensemble.expire_session(zk)
        with pytest.raises(Exception, match="expired"):
            await zk.Lock(PATH).acquire()


async def test_queue_has_no_orphans_after_many_timeouts(
    autojump_clock: MockClock, connect: ConnectFactory
) -> None:
    async with connect(session_timeout=2) as zk, connect(session_timeout=2) as zk2, zk.Lock(PATH):
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(zk2.Lock(PATH).acquire, True, 0.05)
        assert len(queue_of(await children(zk, PATH))) == 1
