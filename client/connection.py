"""One connection of a session: handshake, then a reader and a writer task.

This is the only client module besides client.py that does IO. It moves
bytes between a trio stream and the sans-IO ClientProtocol:

- `handshake` sends the ConnectRequest and reads the ConnectResponse. The
  decoder it used is handed on, because the server may have sent more
  frames (watch events after a resumed session) in the same segment.
- the reader feeds every frame to the protocol in order. It is also the
  liveness check: nothing received for `read_timeout` (2/3 of the session
  timeout, as kazoo does) means the connection is dead.
- the writer takes every call waiting in the outbox and writes them with one
  `send_all` (encode_frames), so many pipelined requests cost one syscall.
  When it has sent nothing for `ping_interval` (1/3 of the session timeout)
  it sends a PING, which keeps the session alive on the server and makes the
  server answer, which keeps the reader's check satisfied.

`run_connection` returns, rather than raises, the reason a connection ended
(a broken stream, a protocol error, a dead peer, a server notice): losing a
connection is normal life for a session, not an error of the caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio
from pydantic import ValidationError

from coord.errors import MalformedFrameError, ProtocolError
from coord.framing import MAX_FRAME_SIZE, NEED_DATA, FrameDecoder, encode_frame, encode_frames
from coord.messages import ConnectRequest, ConnectResponse

from .protocol import PING_FRAME, ClientProtocol, NoticeReceived

RECEIVE_SIZE: Final = 256 * 1024
MAX_BATCH: Final = 512
"""Most frames per write: large enough to amortise the syscall, small enough
that one write does not hold hundreds of megabytes of maximal frames."""


class ConnectionDead(Exception):
    """The stream ended, or went silent for longer than the read timeout."""


CONNECTION_ERRORS: Final = (
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    OSError,
    ProtocolError,
    ConnectionDead,
    NoticeReceived,
)
"""What ends a connection without being a bug: run_connection returns these."""


class Signal:
    """A wakeup that resets itself: `set()` from anywhere, `await wait()` in one task.

    A set() that lands while the waiter is busy is not lost: the waiter
    checks its work queue after every wakeup, and the work that came with
    the set() is already in it.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = trio.Event()


async def handshake(
    stream: trio.abc.Stream, request: ConnectRequest, *, max_frame_size: int = MAX_FRAME_SIZE
) -> tuple[ConnectResponse, FrameDecoder]:
    """Send the ConnectRequest, read the ConnectResponse (error field not yet checked).

    `auth` goes only when there are credentials, so that a client without any
    can still talk to a server from before ACLs (its strict model refuses the key).
    """
    body = request.model_dump(exclude={"auth"} if not request.auth else None)
    await stream.send_all(encode_frame(body))
    decoder = FrameDecoder(max_frame_size)
    frame: Any = decoder.next_frame()
    while frame is NEED_DATA:
        data = await stream.receive_some(RECEIVE_SIZE)
        if not data:
            raise ConnectionDead("the server closed the connection during the handshake")
        decoder.receive_data(data)
        frame = decoder.next_frame()
    try:
        return ConnectResponse.model_validate(frame), decoder
    except ValidationError as exc:
        raise MalformedFrameError(f"bad connect response {frame!r}: {exc}") from None


async def run_connection(
    stream: trio.abc.Stream,
    decoder: FrameDecoder,
    protocol: ClientProtocol,
    wakeup: Signal,
    *,
    read_timeout: float,
    ping_interval: float,
) -> BaseException:
    """Serve one connection until it ends; return why it ended. Closes the stream."""
    reasons: list[BaseException] = []

    async def reader() -> None:
        with trio.CancelScope() as scope:
            while True:
                frame = decoder.next_frame()
                while frame is not NEED_DATA:
                    protocol.receive_frame(frame)
                    frame = decoder.next_frame()
                scope.deadline = trio.current_time() + read_timeout
                data = await stream.receive_some(RECEIVE_SIZE)
                if not data:
                    raise ConnectionDead("the server closed the connection")
                decoder.receive_data(data)
        raise ConnectionDead(f"nothing received from the server for {read_timeout:.3g} s")

    async def writer() -> None:
        last_send = trio.current_time()
        while True:
            frames = protocol.take_frames(MAX_BATCH)
            if not frames:
                with trio.move_on_at(last_send + ping_interval) as idle:
                    await wakeup.wait()
                if not idle.cancelled_caught:
                    continue
                frames = [PING_FRAME]
            await stream.send_all(encode_frames(frames))
            last_send = trio.current_time()

    async def guarded(task: Callable[[], Awaitable[None]], cancel: trio.CancelScope) -> None:
        try:
            await task()
        except CONNECTION_ERRORS as exc:
            reasons.append(exc)
        cancel.cancel()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(guarded, reader, nursery.cancel_scope)
            nursery.start_soon(guarded, writer, nursery.cancel_scope)
    finally:
        await trio.aclose_forcefully(stream)
    return reasons[0] if reasons else ConnectionDead("the connection ended")
