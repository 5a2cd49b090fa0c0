"""A real server process killed with SIGKILL under acknowledged writes loses none of them.

Several clients pipeline sequential creates; each create's data is its
client's running counter. At a seeded random moment the server is killed
with SIGKILL, restarted on the same data directory, and every client's
children must read back as 0, 1, 2, ... m in order, with no gap and no
duplicate, and m at least the highest counter that was acknowledged. The
cycle repeats with different kill points on the same directory.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import trio

from coord.messages import CreateMode, OpCode
from coord.server.core.output import Reply
from tests.rawclient import RawClient

CLIENTS = 4
OUTSTANDING = 8


async def start_server_process(data_dir: Path, *extra: str) -> tuple[trio.Process, int]:
    """Start `python -m coord.server` on a free port; return it once it says it is listening."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "coord.server", "--port", "0", "--data-dir", str(data_dir),
         "--tick-ms", "100", "--log-level", "WARNING", *extra],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    buffer = b""
    with trio.fail_after(30):
        while b"\n" not in buffer:
            chunk = await process.stdout.receive_some(4096)
            assert chunk, "the server exited before it was listening"
            buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode()
    assert "listening on" in line, line
    return process, int(line.rsplit(":", 1)[1])


class Progress:
    """Counts acknowledgements and wakes the killer when the kill point is reached."""

    def __init__(self, target: int) -> None:
        self.count = 0
        self.target = target
        self.reached = trio.Event()

    def ack(self) -> None:
        self.count += 1
        if self.count >= self.target:
            self.reached.set()


async def _writer(
    port: int, index: int, start: int, acked: dict[int, int], progress: Progress
) -> None:
    try:
        client, _ = await RawClient.connect(port, timeout_ms=10_000)
        mode = int(CreateMode.PERSISTENT_SEQUENTIAL)
        counter = start
        in_flight: list[tuple[int, int]] = []
        while True:
            while len(in_flight) < OUTSTANDING:
                body = {"path": f"/c{index}/n-", "data": b"%d" % counter, "mode": mode}
                in_flight.append((await client.submit(OpCode.CREATE, body), counter))
                counter += 1
            xid, value = in_flight.pop(0)
            reply = await client.reply(xid)
            assert isinstance(reply, Reply), reply
            acked[index] = value
            progress.ack()
    except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        return  # the server was killed under us: expected


async def _read_back(port: int) -> dict[int, list[int]]:
    client, _ = await RawClient.connect(port, timeout_ms=10_000)
    out = {}
    for index in range(CLIENTS):
        names = (await client.result(OpCode.GET_CHILDREN, {"path": f"/c{index}"})).names
        values = []
        for name in sorted(names):
            node = await client.result(OpCode.GET_DATA, {"path": f"/c{index}/{name}"})
            values.append(int(node.data))
        out[index] = values
    await client.aclose()
    return out


async def test_sigkill_under_write_load_loses_no_acknowledged_write(tmp_path):
    rng = random.Random(20261126)
    data_dir = tmp_path / "data"
    acked: dict[int, int] = {}
    next_start = {i: 0 for i in range(CLIENTS)}
    for round_number in range(4):
        process, port = await start_server_process(data_dir, "--snapshot-every", "700")
        try:
            history = await _read_back(port) if round_number else None
            if history is not None:
                for index in range(CLIENTS):
                    values = history[index]
                    # In order, no gap, no duplicate; everything acknowledged is there.
                    assert values == list(range(len(values))), (round_number, index, values[-5:])
                    assert len(values) - 1 >= acked.get(index, -1), (round_number, index)
                    next_start[index] = len(values)
            else:
                setup, _ = await RawClient.connect(port)
                for index in range(CLIENTS):
                    await setup.ok(OpCode.CREATE, {"path": f"/c{index}"})
                await setup.aclose()
            progress = Progress(target=rng.randint(50, 1500))
            async with trio.open_nursery() as nursery:
                for index in range(CLIENTS):
                    nursery.start_soon(_writer, port, index, next_start[index], acked, progress)
                with trio.fail_after(60):
                    await progress.reached.wait()
                process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            await process.wait()
    process, port = await start_server_process(data_dir)
    try:
        history = await _read_back(port)
        for index in range(CLIENTS):
            values = history[index]
            assert values == list(range(len(values)))
            assert len(values) - 1 >= acked[index]
    finally:
        process.kill()
        await process.wait()
