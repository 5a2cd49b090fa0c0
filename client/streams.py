"""Callables that turn callbacks into async iterators: WatchStream and StateStream.

One mechanism serves both styles of use. A stream is a plain callable, so it
can be passed wherever a callback is accepted (`zk.get(path, watch=stream)`,
`zk.add_listener(stream)`); each call queues the item into a bounded trio
memory channel, and the stream is an async iterator over what was queued.

Calls come from the client's reader task and must never block it (that
would stall every reply and heartbeat of the session), so the channel is
bounded and a full stream is closed with StreamOverflowError: the consumer
first gets every item that fit, then the error, and knows it missed
events instead of silently losing them. That is rule 8 of STYLE.md: a slow
consumer is cut off, memory never grows without bound.

After `close()` iteration ends once the queued items are consumed; after
`close(error)` the error is raised instead (SessionExpiredError when the
session is lost).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Generic, Self, TypeVar

import trio

from coord.errors import CoordError
from coord.messages import WatchedEvent

from .states import ClientState

T = TypeVar("T")

DEFAULT_BUFFER = 1000


class StreamOverflowError(CoordError):
    """A stream's consumer fell behind and its buffer filled up; items were lost."""


class _BoundedStream(Generic[T]):
    def __init__(self, max_buffer: int = DEFAULT_BUFFER) -> None:
        if max_buffer < 1:
            raise ValueError("max_buffer must be at least 1")
        self._max_buffer = max_buffer
        send, receive = trio.open_memory_channel[T](max_buffer)
        self._send = send
        self._receive = receive
        self._error: BaseException | None = None
        self._closed = False

    def _put(self, item: T) -> None:
        if self._closed:
            return
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self.close(
                StreamOverflowError(
                    f"{type(self).__name__} buffer of {self._max_buffer} items is full;"
                    " later items were dropped"
                )
            )

    @property
    def closed(self) -> bool:
        """Whether the stream takes no more items (queued ones can still be read)."""
        return self._closed

    def close(self, error: BaseException | None = None) -> None:
        """Take no more items; readers get the queued ones, then the end (or `error`)."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._send.close()

    async def next(self) -> T:
        """The next item; raises trio.EndOfChannel at the end, or the closing error."""
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            if self._error is not None:
                raise self._error from None
            raise

    def next_nowait(self) -> T:
        """The next item if one is queued, else trio.WouldBlock (trio's op/op_nowait pair)."""
        try:
            return self._receive.receive_nowait()
        except trio.EndOfChannel:
            if self._error is not None:
                raise self._error from None
            raise

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.next()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def statistics(self) -> dict[str, int | bool]:
        """How many items wait, the bound, and whether the stream is closed."""
        stats = self._receive.statistics()
        return {
            "queued": stats.current_buffer_used,
            "max_buffer": self._max_buffer,
            "closed": self._closed,
        }


class WatchStream(_BoundedStream[WatchedEvent]):
    """A watch callable that queues events; `await stream.next()` or `async for`.

    Pass it as `watch=` to get/exists/get_children, or to add_watch. A
    one-shot watch puts one event in it; a persistent watch keeps putting.
    """

    def __call__(self, event: WatchedEvent) -> None:
        self._put(event)


class StateStream(_BoundedStream[ClientState]):
    """A state listener that queues state changes; iteration ends after LOST or CLOSED.

    Made by `Client.states()`; leave it with `aclose()` or `async with`, which
    unregisters it from the client.
    """

    def __init__(
        self, max_buffer: int = DEFAULT_BUFFER, detach: Callable[[StateStream], None] | None = None
    ) -> None:
        super().__init__(max_buffer)
        self._detach = detach

    def __call__(self, state: ClientState) -> None:
        self._put(state)
        if state.is_final:
            self.close()

    async def aclose(self) -> None:
        """Stop listening and end the iteration."""
        self.close()
        if self._detach is not None:
            detach, self._detach = self._detach, None
            detach(self)
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
