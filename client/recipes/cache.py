"""TreeCache: a subtree mirrored in memory, kept current by one persistent recursive watch.

    async with zk.TreeCache("/config") as cache:
        node = cache.get_data("/config/db")        # NodeData(data, stat) or None
        names = cache.get_children("/config")      # frozenset or None
        async for event in cache.events():         # NODE_ADDED/UPDATED/REMOVED, ...
            ...

How it works. `async with` adds a persistent recursive watch on the root
(ZooKeeper 3.6 addWatch; the server never has to be asked again), reads the
whole subtree, and returns once the cache is complete (INITIALIZED). A
background task then turns each event into a fresh read of that one node,
so the cache holds what the server holds, never what an old event said; a
DELETED older than the cached node's creation is ignored (the node was
deleted and created again). Persistent watches are not replayed after a
reconnect (in ZooKeeper as here), so on every reconnect the cache reads the
subtree again and reports the differences: a change made while the client
was disconnected, or behind a server failover, is not missed. If events
arrive faster than the task handles them, the backlog is dropped and the
tree is read again rather than memory growing without bound.

kazoo's TreeCache (from Curator) keeps one data and one child watch per
node, so a tree of N nodes costs 2N watches and 2N re-registrations per
reconnect; this costs one.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import trio

from coord.errors import KeeperError, NoNodeError
from coord.messages import EventType, Stat, WatchedEvent, WatcherType
from coord.paths import is_within, join, parent, validate

from ..states import ClientState
from ..streams import StreamOverflowError
from ._support import retry_read

if TYPE_CHECKING:
    from ..client import Client

log = logging.getLogger(__name__)

INBOX: Final = 10_000
"""Watch events and state changes queued for the cache task before it resyncs instead."""


class TreeEventType(enum.Enum):
    """kazoo's TreeEvent types."""

    NODE_ADDED = 0
    NODE_UPDATED = 1
    NODE_REMOVED = 2
    CONNECTION_SUSPENDED = 3
    CONNECTION_RECONNECTED = 4
    CONNECTION_LOST = 5
    INITIALIZED = 6


@dataclass(frozen=True, slots=True)
class NodeData:
    data: bytes
    stat: Stat


@dataclass(frozen=True, slots=True)
class TreeEvent:
    """What changed: the type, the node's path (None for connection events), its new data."""

    event_type: TreeEventType
    path: str | None = None
    data: NodeData | None = None


class TreeEventStream:
    """An async iterator of TreeEvents; a consumer that falls behind gets StreamOverflowError."""

    def __init__(self, max_buffer: int) -> None:
        self._send, self._receive = trio.open_memory_channel[TreeEvent](max_buffer)
        self._error: BaseException | None = None

    def __call__(self, event: TreeEvent) -> None:
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self.close(StreamOverflowError("TreeCache event stream is full; events were dropped"))
        except trio.ClosedResourceError:
            pass

    def close(self, error: BaseException | None = None) -> None:
        if self._error is None:
            self._error = error
        self._send.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> TreeEvent:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            if self._error is not None:
                raise self._error from None
            raise StopAsyncIteration from None


class _Inbox:
    """The watch callable and state listener of the cache: queues, never blocks the reader."""

    def __init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel[WatchedEvent | ClientState](INBOX)
        self.overflowed = False

    def __call__(self, item: WatchedEvent | ClientState) -> None:
        try:
            self.send.send_nowait(item)
        except trio.WouldBlock:
            self.overflowed = True
        except trio.ClosedResourceError:
            pass


class TreeCache:
    """A live in-memory copy of the subtree at `path` (kazoo's names)."""

    def __init__(self, client: Client, path: str) -> None:
        self.client = client
        self.path = validate(path)
        self._nodes: dict[str, NodeData] = {}
        self._children: dict[str, set[str]] = {}
        self._listeners: list[Callable[[TreeEvent], Any]] = []
        self._inbox = _Inbox()
        self.initialized = False
        self.syncs = 0
        """How many full reads of the subtree were made (1 + one per reconnect or overflow)."""
        self._nursery_cm: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._nursery: trio.Nursery | None = None

    # -- reading the cache -----------------------------------------------------

    def get_data(self, path: str) -> NodeData | None:
        """The cached (data, stat) of `path`, None if it is not in the tree."""
        return self._nodes.get(path)

    def get_children(self, path: str) -> frozenset[str] | None:
        """The cached child names of `path`, None if it is not in the tree."""
        names = self._children.get(path)
        return None if names is None else frozenset(names)

    def __len__(self) -> int:
        return len(self._nodes)

    def snapshot(self) -> dict[str, bytes]:
        """Every cached path and its data (for tests and debugging)."""
        return {path: node.data for path, node in self._nodes.items()}

    # -- listening -------------------------------------------------------------

    def listen(self, listener: Callable[[TreeEvent], Any]) -> None:
        """Call `listener(event)` for every TreeEvent (synchronously, from the cache task)."""
        self._listeners.append(listener)

    def unlisten(self, listener: Callable[[TreeEvent], Any]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def events(self, max_buffer: int = 1000) -> TreeEventStream:
        """TreeEvents from now on, as an async iterator; ends when the cache closes."""
        stream = TreeEventStream(max_buffer)
        self.listen(stream)
        return stream

    def _emit(self, event_type: TreeEventType, path: str | None = None) -> None:
        event = TreeEvent(event_type, path, None if path is None else self._nodes.get(path))
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("TreeCache listener %r failed on %s", listener, event)

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> Self:
        manager = trio.open_nursery()
        nursery = await manager.__aenter__()
        self._nursery_cm, self._nursery = manager, nursery
        try:
            await nursery.start(self._run)
        except BaseException:
            nursery.cancel_scope.cancel()
            await manager.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._nursery is not None and self._nursery_cm is not None
        self._nursery.cancel_scope.cancel()
        try:
            await self._nursery_cm.__aexit__(None, None, None)
        finally:
            self._nursery = self._nursery_cm = None
            await self._close()

    async def _close(self) -> None:
        self.client.remove_listener(self._inbox)
        self._inbox.send.close()
        self._close_streams()
        with trio.CancelScope(shield=True):
            try:
                await self.client.remove_watches(
                    self.path, WatcherType.PERSISTENT_RECURSIVE, self._inbox
                )
            except KeeperError:
                pass

    def _close_streams(self) -> None:
        for listener in list(self._listeners):
            if isinstance(listener, TreeEventStream):
                listener.close()
                self._listeners.remove(listener)

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        client, inbox = self.client, self._inbox
        client.add_listener(inbox)
        await retry_read(client.add_watch, self.path, inbox, recursive=True)
        await self._sync()
        self.initialized = True
        self._emit(TreeEventType.INITIALIZED)
        task_status.started()
        async for item in inbox.receive:
            if inbox.overflowed:
                inbox.overflowed = False
                while True:  # drop the backlog: one full read replaces it
                    try:
                        inbox.receive.receive_nowait()
                    except trio.WouldBlock:
                        break
                await self._sync()
                continue
            if isinstance(item, ClientState):
                if item is ClientState.SUSPENDED:
                    self._emit(TreeEventType.CONNECTION_SUSPENDED)
                elif item is ClientState.CONNECTED:
                    self._emit(TreeEventType.CONNECTION_RECONNECTED)
                    await self._sync()
                else:
                    self._emit(TreeEventType.CONNECTION_LOST)
                    self._close_streams()
                    return
            else:
                await self._apply(item)

    # -- keeping it current ----------------------------------------------------

    async def _apply(self, event: WatchedEvent) -> None:
        if not is_within(event.path, self.path):
            return
        if event.type is EventType.DELETED:
            cached = self._nodes.get(event.path)
            if cached is not None and cached.stat.czxid <= event.zxid:
                self._remove(event.path)
            return
        if event.type in (EventType.CREATED, EventType.CHANGED):
            await self._refresh(event.path)

    async def _refresh(self, path: str) -> None:
        """Read one node again and put what the server holds now into the cache."""
        try:
            data, stat = await retry_read(self.client.get, path)
        except NoNodeError:
            if path in self._nodes:
                self._remove(path)
            return
        if path != self.path and parent(path) not in self._nodes:
            await self._refresh(parent(path))  # an ancestor we have not seen yet
        self._put(path, NodeData(data, stat))

    def _put(self, path: str, node: NodeData) -> None:
        old = self._nodes.get(path)
        self._nodes[path] = node
        self._children.setdefault(path, set())
        if path != self.path:
            self._children.setdefault(parent(path), set()).add(path.rsplit("/", 1)[1])
        if old is None:
            self._emit(TreeEventType.NODE_ADDED, path)
        elif (old.stat.czxid, old.stat.mzxid) != (node.stat.czxid, node.stat.mzxid):
            self._emit(TreeEventType.NODE_UPDATED, path)

    def _remove(self, path: str) -> None:
        """Drop `path` and everything below it, deepest first, one NODE_REMOVED each."""
        for name in list(self._children.get(path, ())):
            self._remove(join(path, name))
        node = self._nodes.pop(path, None)
        self._children.pop(path, None)
        if path != self.path:
            siblings = self._children.get(parent(path))
            if siblings is not None:
                siblings.discard(path.rsplit("/", 1)[1])
        if node is not None:
            for listener in list(self._listeners):
                try:
                    listener(TreeEvent(TreeEventType.NODE_REMOVED, path, node))
                except Exception:
                    log.exception("TreeCache listener %r failed", listener)

    async def _sync(self) -> None:
        """Read the whole subtree, level by level (each level pipelined), and apply the diff."""
        self.syncs += 1
        seen: dict[str, tuple[NodeData, list[str]]] = {}
        level = [self.path]
        while level:
            results: dict[str, tuple[NodeData, list[str]]] = {}
            async with trio.open_nursery() as nursery:
                for path in level:
                    nursery.start_soon(self._read_node, path, results)
            seen.update(results)
            level = [join(p, name) for p, (_, names) in results.items() for name in names]
        for path in sorted(set(self._nodes) - set(seen), key=len, reverse=True):
            if path in self._nodes:
                self._remove(path)
        for path in sorted(seen, key=lambda p: (p.count("/"), p)):
            node, names = seen[path]
            self._put(path, node)
            self._children[path] = {n for n in names if join(path, n) in seen}

    async def _read_node(self, path: str, into: dict[str, tuple[NodeData, list[str]]]) -> None:
        try:
            data, stat = await retry_read(self.client.get, path)
            names = await retry_read(self.client.get_children, path)
        except NoNodeError:
            return
        into[path] = (NodeData(data, stat), names)
