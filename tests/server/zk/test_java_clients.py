"""ZooKeeper's own Java client and zkCli against the ZooKeeper-compatible port.

They come from Debian's `zookeeper` package (.ci/run installs it); where Java
or the package is missing these tests are skipped and say why.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import trio

from coord.client import Client
from tests.conftest import RunningServer, start_server
from tests.server.zk.proxy import TcpProxy

ZK_JAR = Path("/usr/share/java/zookeeper.jar")
ZKCLI = shutil.which("zkCli.sh") or "/usr/share/zookeeper/bin/zkCli.sh"
JAVA = shutil.which("java")
HERE = Path(__file__).parent

needs_zkcli = pytest.mark.skipif(
    JAVA is None or not Path(ZKCLI).exists(),
    reason="zkCli not installed: apt-get install zookeeper (it brings Java)",
)
needs_java_client = pytest.mark.skipif(
    JAVA is None or not ZK_JAR.exists(),
    reason="ZooKeeper's Java client not installed: apt-get install zookeeper",
)

pytestmark = pytest.mark.slow


@needs_zkcli
async def test_zkcli_smoke(zk_server: RunningServer) -> None:
    commands = "\n".join(
        [
            "create /zkcli hello",
            "get /zkcli",
            "create /zkcli/child c",
            "ls /zkcli",
            "set /zkcli world",
            "get /zkcli",
            "stat /zkcli",
            "delete /zkcli/child",
            "deleteall /zkcli",
            "ls /",
            "quit",
            "",
        ]
    )
    with trio.fail_after(60):
        result = await trio.run_process(
            [ZKCLI, "-server", zk_server.zk_hosts],
            stdin=commands.encode(),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out = (result.stdout + result.stderr).decode(errors="replace")  # "Created" goes to stderr
    lines = [line.strip() for line in out.splitlines()]
    assert "Created /zkcli" in lines, out
    assert "hello" in lines and "[child]" in lines and "world" in lines, out
    assert "dataVersion = 1" in lines and "numChildren = 1" in lines, out
    assert lines.count("[]") == 1, out  # `ls /` at the end: everything was deleted
    assert "ConnectionLoss" not in out and "Exception" not in out, out


def _lines(stream: trio.abc.ReceiveStream, nursery: trio.Nursery) -> trio.MemoryReceiveChannel[str]:
    """The process's output, line by line."""
    send, receive = trio.open_memory_channel[str](100)

    async def pump() -> None:
        buffer = b""
        async with send:
            async for chunk in stream:
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    await send.send(line.decode(errors="replace").strip())

    nursery.start_soon(pump)
    return receive


async def _expect(lines: trio.MemoryReceiveChannel[str], wanted: str, seen: list[str]) -> None:
    with trio.fail_after(20):
        async for line in lines:
            seen.append(line)
            if line.startswith(wanted):
                return
    raise AssertionError(f"the Java client ended before {wanted!r}: {seen}")


@needs_java_client
async def test_java_client_keeps_its_watches_across_a_reconnect(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    # A 500 ms tick allows sessions of up to 10 s: the reconnect has time to happen.
    server = await start_server(
        nursery, tick_ms=500, data_dir=tmp_path / "data", fsync=False, zk_port=0
    )
    proxy = TcpProxy(server.zk_port)
    await nursery.start(proxy.serve)
    async with Client(server.hosts, session_timeout=5, request_timeout=5) as native:
        await native.create("/jdata", b"0")
        await native.create("/jtree", b"")
        process = await trio.lowlevel.open_process(
            [JAVA, "-cp", str(ZK_JAR), str(HERE / "java" / "WatchesAcrossReconnect.java"),
             f"127.0.0.1:{proxy.port}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert process.stdout is not None and process.stdin is not None
        seen: list[str] = []
        try:
            lines = _lines(process.stdout, nursery)
            await _expect(lines, "ready", seen)
            proxy.block()  # the connection drops; the session lives on
            await _expect(lines, "session Disconnected", seen)
            await trio.sleep(0.2)
            proxy.unblock()
            await _expect(lines, "session SyncConnected", seen)
            # The watches it set before are back on the new connection (setWatches2).
            await native.set("/jdata", b"1")
            await _expect(lines, "watch NodeDataChanged /jdata", seen)
            await native.create("/jdata/kid", b"")
            await _expect(lines, "watch NodeChildrenChanged /jdata", seen)
            await native.create("/jnew", b"")
            await _expect(lines, "watch NodeCreated /jnew", seen)
            await native.create("/jtree/deep", b"")
            await _expect(lines, "watch NodeCreated /jtree/deep", seen)
        finally:
            await process.stdin.aclose()
            with trio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
