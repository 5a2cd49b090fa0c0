"""Per-connection limits over real sockets: unread replies in bytes, the handshake deadline,
rate-limited warnings. Each test is one attack; the server must hold its bound and stay
healthy, and a slow reader's session must survive its connection."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from coord.framing import encode_frame
from coord.messages import OpCode
from coord.server.zk import jute
from coord.server.zk.jute import PathWatchRequest, ZkOp
from tests.conftest import RunningServer, start_server
from tests.rawclient import RawClient
from tests.server.zk.jute_client import RawZk, four_letter_word

MIB = 1024 * 1024
BOUND = 4 * MIB
BIG = b"x" * 1_000_000


async def _limited(nursery: trio.Nursery, tmp_path: Path, **settings: object) -> RunningServer:
    return await start_server(
        nursery, tick_ms=100, data_dir=tmp_path / "data", fsync=False, zk_port=0, **settings
    )


async def _until(predicate: object, timeout: float = 10.0) -> None:
    """Wait for a condition of the server's state (checked every few ms), or fail."""
    assert callable(predicate)
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.005)


async def _drain(stream: trio.abc.Stream, timeout: float = 10.0) -> int:
    """Read until the server closes; how many bytes came."""
    total = 0
    with trio.fail_after(timeout):
        while True:
            try:
                data = await stream.receive_some(1 << 20)
            except trio.BrokenResourceError:
                return total
            if not data:
                return total
            total += len(data)


async def test_native_slow_reader_is_cut_off_in_bytes_and_its_session_lives_on(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    running = await _limited(nursery, tmp_path, max_outbound_bytes=BOUND)
    stats = running.server.stats
    client, _ = await RawClient.connect(running.port, timeout_ms=2000)
    await client.result(OpCode.CREATE, {"path": "/big", "data": BIG})
    # 100 pipelined gets of a 1 MB node, never read: 100 MB of replies.
    burst = b"".join(encode_frame([100 + i, OpCode.GET_DATA, {"path": "/big"}]) for i in range(100))
    await client.send_raw(burst)
    await _until(lambda: stats.cut_off >= 1)
    received = await _drain(client.stream)
    assert received < 100 * len(BIG)
    assert 0 < stats.outbound_peak_bytes <= BOUND
    # The session is still there: a new connection resumes it.
    again, response = await RawClient.connect(
        running.port, timeout_ms=2000, session_id=client.session_id, password=client.password
    )
    assert response.session_id == client.session_id and response.timeout_ms > 0
    assert await again.result(OpCode.EXISTS, {"path": "/big"}) is not None
    await again.aclose()


async def test_zk_slow_reader_is_cut_off_in_bytes_and_its_session_lives_on(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    running = await _limited(nursery, tmp_path, max_outbound_bytes=BOUND)
    stats = running.server.stats
    client, response = await RawZk.connect(running.zk_port, timeout_ms=2000)
    assert response is not None
    header, _ = await client.call(
        ZkOp.CREATE, jute.CreateRequest("/big", BIG, [*jute.OPEN_ACL_UNSAFE], 0)
    )
    assert header.err == 0
    burst = b"".join(
        jute.encode_request(
            jute.RequestHeader(100 + i, ZkOp.GET_DATA), PathWatchRequest("/big", False)
        )
        for i in range(100)
    )
    await client.send_raw(burst)
    await _until(lambda: stats.cut_off >= 1)
    await _drain(client.stream)
    assert 0 < stats.outbound_peak_bytes <= BOUND
    again, resumed = await RawZk.connect(
        running.zk_port, timeout_ms=2000, session_id=client.session_id, password=client.password
    )
    assert resumed is not None and resumed.session_id == client.session_id
    assert resumed.timeout_ms > 0
    header, _ = await again.call(ZkOp.EXISTS, PathWatchRequest("/big", False))
    assert header.err == 0
    await again.aclose()


async def test_a_reader_that_keeps_up_is_never_cut_off(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """The bound is on what is unread, not on what is sent: 20 MB read as it comes is fine."""
    running = await _limited(nursery, tmp_path, max_outbound_bytes=BOUND)
    client, _ = await RawClient.connect(running.port, timeout_ms=2000)
    await client.result(OpCode.CREATE, {"path": "/big", "data": BIG})
    for _ in range(20):
        assert (await client.result(OpCode.GET_DATA, {"path": "/big"})).data == BIG
    assert running.server.stats.cut_off == 0
    await client.aclose()


@pytest.mark.parametrize("port_name", ["port", "zk_port"])
async def test_a_connection_without_a_handshake_is_closed_at_the_deadline(
    nursery: trio.Nursery, tmp_path: Path, port_name: str
) -> None:
    running = await _limited(nursery, tmp_path, handshake_timeout_ms=200)
    stream = await trio.open_tcp_stream("127.0.0.1", getattr(running, port_name))
    await stream.send_all(b"\x00\x00")  # the start of a length prefix, and then nothing
    started = trio.current_time()
    await _drain(stream, timeout=5.0)
    assert trio.current_time() - started >= 0.15
    assert running.server.stats.handshake_timeouts == 1
    # A connection that does shake hands is not closed by the deadline.
    client, _ = await RawClient.connect(running.port, timeout_ms=2000)
    with trio.move_on_after(0.4):
        await client.call(OpCode.SYNC, {"path": "/"})
    assert await client.result(OpCode.EXISTS, {"path": "/"}) is not None
    assert running.server.stats.handshake_timeouts == 1
    await client.aclose()


async def test_a_flood_of_bad_connections_logs_a_few_lines_and_a_count(
    nursery: trio.Nursery, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    running = await _limited(nursery, tmp_path, max_client_connections=0, log_burst=5)
    caplog.set_level(logging.WARNING, logger="coord.server")
    for _ in range(200):
        stream = await trio.open_tcp_stream("127.0.0.1", running.port)
        await stream.send_all(b"\x00\x00\x00\x01\xc1")  # one byte that is not msgpack
        await _drain(stream)
        await stream.aclose()
    assert running.server.stats.bad_frames == 200
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 10, [r.getMessage() for r in warnings]
    assert running.server.stats.warnings_suppressed >= 190
    # The server still serves.
    client, _ = await RawClient.connect(running.port, timeout_ms=2000)
    assert await client.result(OpCode.EXISTS, {"path": "/"}) is not None
    await client.aclose()


async def test_four_letter_words_outside_the_whitelist_get_zookeepers_refusal(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    running = await _limited(nursery, tmp_path)  # the default whitelist: srvr only
    assert (await four_letter_word(running.zk_port, "srvr")).startswith("Zookeeper version: ")
    for word in ("ruok", "cons", "dump", "envi", "mntr", "wchs", "conf"):
        assert await four_letter_word(running.zk_port, word) == (
            f"{word} is not executed because it is not in the whitelist.\n"
        )


async def test_the_four_letter_whitelist_is_configurable(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    running = await _limited(nursery, tmp_path, four_letter_words=["ruok", "mntr"])
    assert await four_letter_word(running.zk_port, "ruok") == "imok"
    assert "zk_version" in await four_letter_word(running.zk_port, "mntr")
    refused = await four_letter_word(running.zk_port, "srvr")
    assert refused == "srvr is not executed because it is not in the whitelist.\n"
