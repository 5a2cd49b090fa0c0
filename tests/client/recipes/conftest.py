"""Fixtures for the recipe tests: an in-process ensemble in virtual time, and the
helpers that let a test wait for a real condition instead of sleeping.

- `ensemble` is a 3-member in-process ensemble (coord.server.testing; tick 100 ms:
  session timeouts 0.2-2 s) under `MockClock(autojump_threshold=0)`. Session
  timeouts, lock delays and lease durations pass in virtual time, so a test
  that waits one out costs milliseconds and can assert exact times. Its
  faults stand for what the tests need: `expire_session(zk)` is a client cut
  off until its session expires; `restart(member)` a server restart; a
  client pinned to one member (`connect(members=[m])`) is disconnected for
  as long as that member is down.
- `connect(session_timeout=1, members=None)` is a Client of the ensemble
  (use it as `async with`); clients spread over the members, so a test that
  reads what another client wrote calls `children()` (sync, then read).
- Waiting: `wait_state`, `wait_children` (on watches), `HoldLog.wait_until`,
  and `trio.testing.wait_all_tasks_blocked()`, which returns once every task
  (servers included: nothing in the ensemble waits on a timer to move a
  request along) is waiting, and before virtual time moves.
- `Recorder` wraps a client and records each request a recipe sends
  through it, so a test can say exactly which requests a waiter made.
- `HoldLog` records (who, token, start, end) of every hold, on the one trio
  clock all the clients share, and checks mutual exclusion.
- `RestartableServer` / `real_connect`: a real standalone server on a TCP
  port, for the few tests whose point is the real thing.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import trio
import trio.testing

from coord.client import Client, ClientState, NoNodeError
from coord.server.config import ServerConfig
from coord.server.runtime import StandaloneServer
from coord.server.testing import InProcessEnsemble, open_test_ensemble

# -- the in-process ensemble ---------------------------------------------------------------


@pytest.fixture
async def ensemble(
    autojump_clock: trio.testing.MockClock,
) -> AsyncIterator[InProcessEnsemble]:
    """The ensemble; a test that uses it names `autojump_clock` among its own arguments,
    since pytest-trio runs a test on the Clock it is passed directly, not on one
    that only a fixture asked for."""
    assert trio.lowlevel.current_clock() is autojump_clock, (
        "a test on the ensemble must take `autojump_clock` itself, or it runs in real time"
    )
    async with open_test_ensemble(3, tick_ms=100) as running:
        yield running


ConnectFactory = Callable[..., Client]


@pytest.fixture
def connect(ensemble: InProcessEnsemble) -> ConnectFactory:
    """`async with connect(session_timeout=1, members=[2]) as zk:` a client of `ensemble`."""

    def open_client(
        session_timeout: float = 1.0, members: Iterable[int] | None = None, **kwargs: Any
    ) -> Client:
        kwargs.setdefault("request_timeout", 10.0)
        return ensemble.client(members, session_timeout=session_timeout, **kwargs)

    return open_client


async def followers(ensemble: InProcessEnsemble) -> list[int]:
    """The members that do not lead now (restarting one of them needs no election)."""
    leader = await ensemble.wait_for_leader()
    return [m for m in ensemble.running if m != leader]


def member_of(ensemble: InProcessEnsemble, zk: Client) -> int:
    """The member `zk` is connected to."""
    host = zk.connected_host
    assert host is not None, f"{zk!r} is not connected"
    return ensemble.member_of(host)


async def restart_member_of(ensemble: InProcessEnsemble, zk: Client) -> int:
    """Restart the member `zk` is connected to (its connections drop); return its id."""
    member = member_of(ensemble, zk)
    await ensemble.restart(member)
    await ensemble.wait_serving()
    return member


# -- waiting for a real condition ------------------------------------------------------------


async def wait_state(zk: Client, state: ClientState, timeout: float = 5.0) -> None:
    """Wait until the client reaches `state` (returns at once if it is there)."""
    with trio.fail_after(timeout):
        if zk.state is state:
            return
        async with zk.states() as states:
            async for seen in states:
                if seen is state:
                    return
        assert zk.state is state, f"ended in {zk.state}, not {state}"


async def children(zk: Client, path: str) -> list[str]:
    """The children of `path` as the ensemble has them now (sync, then read), sorted."""
    await zk.sync(path)
    return sorted(await zk.get_children(path))


async def wait_children(
    zk: Client, path: str, predicate: Callable[[list[str]], bool], timeout: float = 5.0
) -> list[str]:
    """Wait, on watches, until the (sorted) children of `path` satisfy `predicate`."""
    with trio.fail_after(timeout):
        while True:
            changed = trio.Event()

            def wake(_event: object, changed: trio.Event = changed) -> None:
                changed.set()

            try:
                names = sorted(await zk.get_children(path, watch=wake))
            except NoNodeError:
                if await zk.exists(path, watch=wake) is not None:
                    continue  # created in between: list it
                names = []
            if predicate(names):
                return names
            await changed.wait()


async def until_cancelled(bound: float = 5.0) -> None:
    """Wait for the surrounding scope to be cancelled (by a guard, a step-down);
    TooSlowError if that has not happened `bound` seconds on."""
    with trio.fail_after(bound):
        await trio.sleep_forever()


class Notifier:
    """Something a test changes and waits on: `changed()` after each change, then
    `await wait_until(predicate)` returns once the predicate holds."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def changed(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        with trio.fail_after(timeout):
            while not predicate():
                await self._event.wait()


# -- what a client sent ----------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request a recipe sent: the Client method and the path it named."""

    op: str
    path: str


class Recorder:
    """A Client seen through a window that records the requests sent through it.

    Pass `recorder.client` to a recipe (`Lock(recorder.client, path)`): every
    request method it calls is recorded in `requests`, in order, before it is
    sent. Everything else (state, listeners, session) is the real client's.
    """

    REQUESTS = frozenset(
        {"create", "delete", "exists", "get", "get_children", "set", "sync", "ensure_path"}
    )

    def __init__(self, client: Client) -> None:
        self._client = client
        self.requests: list[Request] = []

    @property
    def client(self) -> Client:
        return cast(Client, self)

    def take(self) -> list[Request]:
        """The requests recorded since the last take()."""
        taken, self.requests = self.requests, []
        return taken

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in self.REQUESTS:
            return attr

        async def recorded(path: str, *args: Any, **kwargs: Any) -> Any:
            self.requests.append(Request(name, path))
            return await attr(path, *args, **kwargs)

        return recorded


# -- who held what when ----------------------------------------------------------------------


@dataclass
class Hold:
    who: str
    token: int
    start: float
    end: float = float("inf")


@dataclass
class HoldLog:
    """Who held the lock when, with which token; `check()` proves mutual exclusion."""

    holds: list[Hold] = field(default_factory=list)
    _notifier: Notifier = field(default_factory=Notifier, repr=False)

    def begin(self, who: str, token: int | None) -> Hold:
        assert token is not None
        hold = Hold(who, token, trio.current_time())
        self.holds.append(hold)
        self._notifier.changed()
        return hold

    def end(self, hold: Hold) -> None:
        hold.end = trio.current_time()
        self._notifier.changed()

    async def wait_until(
        self, predicate: Callable[[list[Hold]], bool], timeout: float = 30.0
    ) -> None:
        """Wait until `predicate(holds)` is true (checked after every begin and end)."""
        await self._notifier.wait_until(lambda: predicate(self.holds), timeout)

    def check(self, shared: Callable[[Hold, Hold], bool] | None = None) -> None:
        """No two holds overlap (unless `shared` allows the pair); tokens grow with start time."""
        holds = sorted(self.holds, key=lambda h: h.start)
        for i, a in enumerate(holds):
            assert a.end != float("inf"), f"{a} never ended"
            for b in holds[i + 1 :]:
                if b.start >= a.end:
                    break
                if shared is None or not shared(a, b):
                    raise AssertionError(f"overlapping holds: {a} and {b}")
        for a, b in itertools.pairwise(holds):
            if shared is None or not shared(a, b):
                assert a.token < b.token, f"token did not grow: {a} then {b}"


# -- a real server, where the real thing is the point ------------------------------------------


class RestartableServer:
    """A standalone server on 127.0.0.1 that `restart()` kills (every connection drops)
    and starts again on the same data directory and port, so clients resume their
    sessions on the same host string."""

    def __init__(self, nursery: trio.Nursery, data_dir: Path) -> None:
        self._nursery = nursery
        self.data_dir = data_dir
        self.port = 0
        self._scope: trio.CancelScope | None = None
        self._stopped: trio.Event | None = None

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        assert self._scope is None, "already running"
        server = StandaloneServer(
            ServerConfig(
                host="127.0.0.1",
                port=self.port,
                tick_ms=100,
                data_dir=self.data_dir,
                fsync=False,
                max_client_connections=0,
            )
        )
        scope = trio.CancelScope()
        stopped = trio.Event()

        async def serve(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                with scope:
                    await server.serve(task_status=task_status)
            finally:
                stopped.set()

        self.port = await self._nursery.start(serve)
        self._scope, self._stopped = scope, stopped

    async def restart(self) -> None:
        """Kill the server (its state is on disk) and start it again."""
        assert self._scope is not None and self._stopped is not None
        self._scope.cancel()
        await self._stopped.wait()
        self._scope = self._stopped = None
        await self.start()


@pytest.fixture
async def real_server(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[RestartableServer]:
    srv = RestartableServer(nursery, tmp_path / "data")
    await srv.start()
    yield srv


RealConnectFactory = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
def real_connect(real_server: RestartableServer) -> RealConnectFactory:
    """`async with real_connect(session_timeout=1) as zk:` a TCP client of `real_server`."""

    @asynccontextmanager
    async def open_client(session_timeout: float = 1.0, **kwargs: Any) -> AsyncIterator[Client]:
        kwargs.setdefault("request_timeout", 10.0)
        async with Client(real_server.hosts, session_timeout=session_timeout, **kwargs) as zk:
            yield zk

    return open_client
