"""The programs in examples/ run to completion against a real server.

They are what a new user copies first, so a change in the client's API that
breaks one should fail here, not in the user's hands. Each runs as its own
process, with the server address as argv[1], as the README shows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


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
async def test_basic(coord_server) -> None:
    out = await run_example("basic.py", coord_server.hosts)
    assert "created /examples/basic/worker-0000000000" in out
    assert "set with a stale version refused: version mismatch" in out
    assert "exists now: None" in out


@pytest.mark.slow
async def test_watch(coord_server) -> None:
    out = await run_example("watch.py", coord_server.hosts)
    events = [line.split()[:2] for line in out.splitlines()[1:]]
    assert events == [
        ["CREATED", "/examples/watch/config"],
        ["CREATED", "/examples/watch/config/db"],
        ["CHANGED", "/examples/watch/config/db"],
        ["DELETED", "/examples/watch/config/db"],
        ["DELETED", "/examples/watch/config"],
    ]


@pytest.mark.slow
async def test_transaction(coord_server) -> None:
    out = await run_example("transaction.py", coord_server.hosts)
    assert "todo: []" in out
    assert "check: BadVersionError" in out
    assert "create: RolledBackError" in out
    assert out.rstrip().endswith("done: ['job-1']")
