"""Shared fixtures: a real standalone server on a port the OS picks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trio.testing

from coord.server.config import ServerConfig
from coord.server.runtime import StandaloneServer


@dataclass
class RunningServer:
    server: StandaloneServer
    hosts: str
    port: int
    zk_port: int = 0
    """The ZooKeeper-compatible port (0 when it is not open)."""

    @property
    def zk_hosts(self) -> str:
        """A connection string for kazoo or zkCli."""
        return f"127.0.0.1:{self.zk_port}"


async def start_server(nursery: trio.Nursery, **settings: object) -> RunningServer:
    """Start a StandaloneServer on 127.0.0.1:0 in `nursery`; settings override ServerConfig."""
    config = ServerConfig(host="127.0.0.1", port=0, **settings)  # type: ignore[arg-type]
    server = StandaloneServer(config)
    port = await nursery.start(server.serve)
    return RunningServer(server, f"127.0.0.1:{port}", port, server.zk_port)


@pytest.fixture
async def coord_server(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A standalone server with a 100 ms tick (session timeouts 200 ms - 2 s).

    Its data goes to a temporary directory without fsync: these tests are about
    the protocol; the storage tests turn fsync on where durability is the point.
    """
    yield await start_server(nursery, tick_ms=100, data_dir=tmp_path / "data", fsync=False)


@pytest.fixture
async def zk_server(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """`coord_server` with the ZooKeeper-compatible port open too (on a free port).

    Every four-letter word is allowed here (the default allows only `srvr`).
    """
    yield await start_server(
        nursery,
        tick_ms=100,
        data_dir=tmp_path / "data",
        fsync=False,
        zk_port=0,
        four_letter_words=["*"],
    )


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)
