"""Config watches: the current value first, then every change, never a stale last value.

    async for data, stat in zk.DataWatch("/config/db"):      # an async iterator
        apply(data)

    async for children in zk.ChildrenWatch("/services/api"):
        update(children)

    async def on_change(data, stat): ...                      # or a callback
    await nursery.start(zk.DataWatch("/config/db", on_change).run)

How they stay correct. Each step reads the node and sets a one-shot watch in
the same request, so no change can fall between the read and the watch.
When the watch fires, the next step reads again (and re-arms). A value is
delivered only if it differs from the last one delivered (by the node's
czxid/mzxid, or the children list), so a burst of changes collapses to the
latest value, never to an intermediate one, and the newest value is always
delivered last. Across a reconnect, or a failover to another server, the
client re-registers the watch with the last zxid it saw (SET_WATCHES) and the
server fires it at once if the node changed meanwhile, so a change made
while we were disconnected is not missed. A node that does not exist is
reported as (None, None) (children: []) and watched for its creation.

kazoo's DataWatch/ChildrenWatch call the function from a thread and stop for
good on some errors; here errors propagate to the iterating task
(SessionExpiredError when the session is lost: a new Client must watch
again), and `run()` lets a callback return False to stop (kazoo's rule).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

import trio

from coord.errors import KeeperError, NoNodeError
from coord.messages import Stat, WatcherType
from coord.paths import validate

from ..streams import WatchStream
from ._support import retry_read

if TYPE_CHECKING:
    from ..client import Client

V = TypeVar("V")

_UNSET: Any = object()


class _OneShotWatch(Generic[V]):
    """Read-and-watch, wait for the event, read again; deliver only what changed."""

    watcher_type: WatcherType

    def __init__(self, client: Client, path: str, func: Callable[..., Any] | None = None) -> None:
        self.client = client
        self.path = validate(path)
        self.func = func
        self._stream = WatchStream()
        self._stale = True
        self._last_key: Any = _UNSET
        self._closed = False

    async def _read(self) -> tuple[V, Any]:
        """The current value and its change key, with the watch set by the same request."""
        raise NotImplementedError

    def _deliver(self, func: Callable[..., Any], value: V) -> Any:
        raise NotImplementedError

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> V:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._stale:
                self._stale = False
                value, key = await self._read()
                if key != self._last_key:
                    self._last_key = key
                    return value
            try:
                await self._stream.next()
            except trio.EndOfChannel:
                raise StopAsyncIteration from None
            while True:  # several events since the last read: one read covers them all
                try:
                    self._stream.next_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            self._stale = True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Call the function with every value until it returns False (or the task is cancelled).

        `task_status.started()` comes after the first call, so
        `await nursery.start(watch.run)` returns once the current value is applied.
        """
        if self.func is None:
            raise TypeError("run() needs the watch's function")
        started = False
        try:
            async for value in self:
                result = self._deliver(self.func, value)
                if inspect.isawaitable(result):
                    result = await result
                if not started:
                    started = True
                    task_status.started()
                if result is False:
                    return
        finally:
            with trio.CancelScope(shield=True):
                await self.aclose()

    async def aclose(self) -> None:
        """Stop: end the iteration and drop the local watch registration."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        self._stream.close()
        for watcher_type in dict.fromkeys((self.watcher_type, WatcherType.DATA)):
            try:
                await self.client.remove_watches(self.path, watcher_type, self._stream)
            except KeeperError:
                pass

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with trio.CancelScope(shield=True):
            await self.aclose()


class DataWatch(_OneShotWatch[tuple[bytes | None, Stat | None]]):
    """A node's (data, stat), first the current one, then after every change.

    (None, None) while the node does not exist. `func(data, stat)` for `run()`.
    """

    watcher_type = WatcherType.DATA

    async def _read(self) -> tuple[tuple[bytes | None, Stat | None], Any]:
        client, stream = self.client, self._stream
        while True:
            try:
                data, stat = await retry_read(client.get, self.path, watch=stream)
                return (data, stat), (stat.czxid, stat.mzxid)
            except NoNodeError:
                pass
            if await retry_read(client.exists, self.path, watch=stream) is None:
                return (None, None), None
            # Created between the two reads: read it properly (the data watch is set).

    def _deliver(self, func: Callable[..., Any], value: tuple[bytes | None, Stat | None]) -> Any:
        return func(*value)


class ChildrenWatch(_OneShotWatch[list[str]]):
    """A node's children (sorted), first the current list, then after every change.

    [] while the node does not exist (kazoo stops the watch instead; a
    service-discovery watch wants to see the node come back). `func(children)`
    for `run()`.
    """

    watcher_type = WatcherType.CHILDREN

    async def _read(self) -> tuple[list[str], Any]:
        client, stream = self.client, self._stream
        while True:
            try:
                children = await retry_read(client.get_children, self.path, watch=stream)
                return children, tuple(children)
            except NoNodeError:
                pass
            if await retry_read(client.exists, self.path, watch=stream) is None:
                return [], ()

    def _deliver(self, func: Callable[..., Any], value: list[str]) -> Any:
        return func(value)
