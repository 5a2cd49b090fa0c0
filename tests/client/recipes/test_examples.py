"""The recipe examples in examples/ run to completion against a real server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


async def run_example(name: str, hosts: str) -> str:
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, str(EXAMPLES / name), hosts],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


@pytest.mark.slow
async def test_lock_example(coord_server) -> None:  # type: ignore[no-untyped-def]
    out = await run_example("recipes_lock.py", coord_server.hosts)
    assert out.count("holds the lock with token") == 6
    assert "tokens grew with every holder: True" in out
    assert "stale write refused" in out


@pytest.mark.slow
async def test_election_example(coord_server) -> None:  # type: ignore[no-untyped-def]
    out = await run_example("recipes_election.py", coord_server.hosts)
    assert out.count(" leads (token ") == 3
    assert "every candidate led once: ['node-0', 'node-1', 'node-2']" in out


@pytest.mark.slow
async def test_config_example(coord_server) -> None:  # type: ignore[no-untyped-def]
    out = await run_example("recipes_config.py", coord_server.hosts)
    lines = out.splitlines()
    assert lines[0] == "db config: b'host=db1'"
    assert "db config: b'host=db4'" in lines
    assert "services: ['api-1', 'api-2']" in lines
    assert lines[-1].startswith("tree cache: ")


@pytest.mark.slow
async def test_work_example(coord_server) -> None:  # type: ignore[no-untyped-def]
    out = await run_example("recipes_work.py", coord_server.hosts)
    assert out.count(" did job-") == 9
    assert out.rstrip().endswith("all done: 9 jobs")


@pytest.mark.slow
async def test_more_example(coord_server) -> None:  # type: ignore[no-untyped-def]
    out = await run_example("recipes_more.py", coord_server.hosts)
    lines = out.splitlines()
    order = lines[0].removeprefix("read-write lock: ").split(", ")
    # Both readers held the read lock together, and the writer came after both.
    assert order.index("reader-1 reads") < order.index("reader-2 done")
    assert order.index("reader-2 reads") < order.index("reader-1 done")
    assert order[-1] == "writer writes"
    assert "lease: first obtains it: True" in lines
    assert "lease: second obtains it: False" in lines
    shares = [line for line in lines if line.startswith("partitioner: ")]
    assert len(shares) == 2
    assert "barrier: worker still waiting: True" in lines
    assert "barrier: worker passed after the barrier was removed: True" in lines
    assert "queue: ['first', 'second', 'third']" in lines
