"""Bad input over real sockets: each gets a clear error, and the server stays up for others."""

from __future__ import annotations

import struct

import msgpack
import pytest
import trio

from coord.errors import (
    BadVersionError,
    DataTooLargeError,
    InvalidPathError,
    KeeperError,
    MarshallingError,
    NoChildrenForEphemeralsError,
    NotEmptyError,
    UnimplementedError,
)
from coord.framing import MAX_DATA_SIZE, MAX_FRAME_SIZE
from coord.messages import CreateMode, OpCode
from coord.server.core.output import ErrorReply, Notice, Reply
from tests.rawclient import RawClient


async def _healthy(port: int) -> None:
    """A fresh client can still write and read: the server survived."""
    client, _ = await RawClient.connect(port)
    path = f"/health-{client.session_id}"
    await client.ok(OpCode.CREATE, {"path": path, "data": b"ok"})
    assert (await client.result(OpCode.GET_DATA, {"path": path})).data == b"ok"
    await client.aclose()


def _error(reply: Reply | ErrorReply) -> KeeperError:
    assert isinstance(reply, ErrorReply), f"expected an error reply, got {reply!r}"
    return reply.error


async def _notice(client: RawClient) -> KeeperError:
    """The error of the notice the server sends before it closes the connection."""
    notice = await client.receive()
    assert isinstance(notice, Notice), notice
    return notice.error


@pytest.mark.parametrize(
    "path, fragment",
    [
        ("relative", "must start with '/'"),
        ("/trailing/", "must not end with '/'"),
        ("/a//b", "empty segment"),
        ("/a/./b", "relative segment"),
        ("/a/../b", "relative segment"),
        ("/nul\x00byte", "U+0000"),
        ("/ctl\x07char", "U+0007"),
        ("", "empty"),
    ],
)
async def test_invalid_paths_are_refused_with_the_rule_named(coord_server, path, fragment):
    client, _ = await RawClient.connect(coord_server.port)
    for op, body in [
        (OpCode.CREATE, {"path": path, "data": b""}),
        (OpCode.GET_DATA, {"path": path}),
        (OpCode.SET_DATA, {"path": path, "data": b"x"}),
        (OpCode.DELETE, {"path": path}),
    ]:
        error = _error(await client.call(op, body))
        assert isinstance(error, InvalidPathError), (op, error)
        assert fragment in error.message
    # The session goes on.
    await client.ok(OpCode.EXISTS, {"path": "/"})
    await client.aclose()
    await _healthy(coord_server.port)


async def test_data_over_the_limit_names_path_limit_and_size(coord_server):
    client, _ = await RawClient.connect(coord_server.port)
    await client.ok(OpCode.CREATE, {"path": "/big", "data": b"x" * MAX_DATA_SIZE})
    error = _error(
        await client.call(OpCode.SET_DATA, {"path": "/big", "data": b"x" * (MAX_DATA_SIZE + 1)})
    )
    assert isinstance(error, DataTooLargeError)
    assert error.path == "/big"
    assert error.expected == MAX_DATA_SIZE
    assert error.actual == MAX_DATA_SIZE + 1
    assert "/big" in error.message
    await client.aclose()
    await _healthy(coord_server.port)


async def test_frame_over_the_limit_closes_only_that_connection(coord_server):
    bystander, _ = await RawClient.connect(coord_server.port)
    client, _ = await RawClient.connect(coord_server.port)
    # Declare a frame one byte over the limit; the server must not wait for the body.
    await client.send_raw(struct.pack(">I", MAX_FRAME_SIZE + 1) + b"\x90")
    error = await _notice(client)
    assert isinstance(error, MarshallingError)
    assert "over the limit" in error.message
    with pytest.raises(EOFError):
        await client.receive_frame()
    await bystander.ok(OpCode.EXISTS, {"path": "/"})
    await bystander.aclose()
    await _healthy(coord_server.port)


@pytest.mark.parametrize(
    "payload",
    [
        b"\xc1\xc1\xc1",  # 0xc1 is never valid msgpack
        msgpack.packb("not a request"),
        msgpack.packb([1, 2]),
        msgpack.packb(["xid", 4, {}]),
        msgpack.packb([1, 4, "body"]),
    ],
)
async def test_undecodable_or_misshapen_frames_get_a_notice_and_a_close(coord_server, payload):
    client, _ = await RawClient.connect(coord_server.port)
    await client.send_raw(struct.pack(">I", len(payload)) + payload)
    assert isinstance(await _notice(client), MarshallingError)
    with pytest.raises(EOFError):
        await client.receive_frame()
    await _healthy(coord_server.port)


async def test_unknown_op_is_unimplemented_and_the_session_goes_on(coord_server):
    client, _ = await RawClient.connect(coord_server.port)
    error = _error(await client.call(999, {"path": "/"}))
    assert isinstance(error, UnimplementedError)
    assert error.actual == 999
    await client.ok(OpCode.EXISTS, {"path": "/"})
    await client.aclose()


async def test_body_with_wrong_types_is_a_marshalling_error(coord_server):
    client, _ = await RawClient.connect(coord_server.port)
    error = _error(await client.call(OpCode.CREATE, {"path": "/x", "data": "text, not bytes"}))
    assert isinstance(error, MarshallingError)
    assert "data" in error.message
    error = _error(await client.call(OpCode.GET_DATA, {"path": "/x", "surprise": 1}))
    assert isinstance(error, MarshallingError)
    await client.ok(OpCode.CREATE, {"path": "/x", "data": b""})
    await client.aclose()


async def test_wrong_version_names_expected_and_actual(coord_server):
    client, _ = await RawClient.connect(coord_server.port)
    await client.call(OpCode.CREATE, {"path": "/v", "data": b""})
    await client.call(OpCode.SET_DATA, {"path": "/v", "data": b"1"})
    error = _error(await client.call(OpCode.SET_DATA, {"path": "/v", "data": b"2", "version": 7}))
    assert isinstance(error, BadVersionError)
    assert (error.path, error.expected, error.actual) == ("/v", 7, 1)
    error = _error(await client.call(OpCode.DELETE, {"path": "/v", "version": 0}))
    assert isinstance(error, BadVersionError)
    assert (error.expected, error.actual) == (0, 1)
    await client.aclose()


async def test_children_under_an_ephemeral_and_deleting_a_parent(coord_server):
    client, _ = await RawClient.connect(coord_server.port)
    mode = int(CreateMode.EPHEMERAL)
    await client.call(OpCode.CREATE, {"path": "/eph", "data": b"", "mode": mode})
    error = _error(await client.call(OpCode.CREATE, {"path": "/eph/child", "data": b""}))
    assert isinstance(error, NoChildrenForEphemeralsError)
    assert error.path == "/eph/child" and "/eph" in error.message
    await client.call(OpCode.CREATE, {"path": "/p", "data": b""})
    await client.call(OpCode.CREATE, {"path": "/p/c", "data": b""})
    error = _error(await client.call(OpCode.DELETE, {"path": "/p"}))
    assert isinstance(error, NotEmptyError)
    assert (error.path, error.expected, error.actual) == ("/p", 0, 1)
    await client.aclose()


async def test_handshake_that_is_not_a_connect_request(coord_server):
    stream = await trio.open_tcp_stream("127.0.0.1", coord_server.port)
    client = RawClient(stream)
    await client.send({"hello": "there"})
    assert isinstance(await _notice(client), MarshallingError)
    await client.aclose()
    await _healthy(coord_server.port)


async def test_client_vanishing_mid_request_loses_nothing_acknowledged(coord_server):
    client, _ = await RawClient.connect(coord_server.port)
    acked = []
    for i in range(20):
        created = await client.result(OpCode.CREATE, {"path": f"/acked-{i}", "data": b"v"})
        acked.append(created.path)
    # Pipeline more writes, then vanish without reading the replies.
    for i in range(50):
        await client.submit(OpCode.CREATE, {"path": f"/inflight-{i}", "data": b"v"})
    await client.aclose()
    reader, _ = await RawClient.connect(coord_server.port)
    for path in acked:
        assert await reader.result(OpCode.EXISTS, {"path": path}) is not None, path
    await reader.aclose()
    await _healthy(coord_server.port)
