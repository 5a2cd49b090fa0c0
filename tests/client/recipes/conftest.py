"""Fixtures for the recipe tests: a server that can be killed and restarted, clients
whose network can be cut, and a log of who held a lock when.

- `server` is a standalone server (tick 100 ms: session timeouts 0.2-2 s) run
  in its own cancel scope. `await server.restart()` stops it (every client
  connection drops at once) and starts a new one on the same data directory
  and the same port, so clients reconnect to the same host string and resume
  their sessions. `await server.stop()` / `start()` leave a gap in between.
- `connect(...)` opens a Client through a `Net`: `net.cut()` closes the
  client's connections and refuses new ones (the server hears nothing more:
  its session will expire), `net.heal()` lets it reconnect.
- `HoldLog` records (who, token, start, end) of every hold, on the one trio
  clock all the clients in a test share, and checks mutual exclusion.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from coord.client import Client, ClientState
from coord.server.config import ServerConfig
from coord.server.runtime import StandaloneServer


class RestartableServer:
    def __init__(self, nursery: trio.Nursery, data_dir: Path) -> None:
        self._nursery = nursery
        self.data_dir = data_dir
        self.port = 0
        self.server: StandaloneServer | None = None
        self._scope: trio.CancelScope | None = None
        self._stopped: trio.Event | None = None
        self.restarts = 0

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
        self.server, self._scope, self._stopped = server, scope, stopped

    async def stop(self) -> None:
        """Kill the server: every connection drops; its state is on disk."""
        assert self._scope is not None and self._stopped is not None
        self._scope.cancel()
        await self._stopped.wait()
        self._scope = self._stopped = None
        self.server = None

    async def restart(self, downtime: float = 0.0) -> None:
        await self.stop()
        if downtime:
            await trio.sleep(downtime)
        await self.start()
        self.restarts += 1


@pytest.fixture
async def server(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[RestartableServer]:
    srv = RestartableServer(nursery, tmp_path / "data")
    await srv.start()
    yield srv


class Net:
    """A stream factory whose connections a test can cut (a partition of one client)."""

    def __init__(self) -> None:
        self.up = True
        self.streams: list[trio.abc.Stream] = []
        self.connects = 0

    async def factory(self, host: str, port: int) -> trio.abc.Stream:
        if not self.up:
            raise OSError("network cut by the test")
        stream = await trio.open_tcp_stream(host, port)
        self.connects += 1
        self.streams.append(stream)
        return stream

    async def cut(self) -> None:
        self.up = False
        streams, self.streams = self.streams, []
        for stream in streams:
            await trio.aclose_forcefully(stream)

    def heal(self) -> None:
        self.up = True


ConnectFactory = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
def connect(server: RestartableServer) -> ConnectFactory:
    """`async with connect(session_timeout=1, net=Net()) as zk:` a client of `server`."""

    @asynccontextmanager
    async def open_client(
        session_timeout: float = 1.0, net: Net | None = None, **kwargs: Any
    ) -> AsyncIterator[Client]:
        factory = net.factory if net is not None else None
        kwargs.setdefault("request_timeout", 10.0)
        async with Client(
            server.hosts, session_timeout=session_timeout, stream_factory=factory, **kwargs
        ) as zk:
            yield zk

    return open_client


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

    def begin(self, who: str, token: int | None) -> Hold:
        assert token is not None
        hold = Hold(who, token, trio.current_time())
        self.holds.append(hold)
        return hold

    @staticmethod
    def end(hold: Hold) -> None:
        hold.end = trio.current_time()

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
        exclusive = [h for h in holds]
        for a, b in itertools.pairwise(exclusive):
            if shared is None or not shared(a, b):
                assert a.token < b.token, f"token did not grow: {a} then {b}"
