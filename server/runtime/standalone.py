"""The trio runtime of a standalone server: sockets, timers, and the Ready loop.

This module moves bytes and time between the world and the pure `ServerCore`;
it decides nothing. Tasks, all in the nursery of `serve`:

- the client listener (coord.server.runtime.client_listener), shared by the native
  port (coord.server.runtime.native_port) and the ZooKeeper port
  (coord.server.runtime.zk_port): per connection, a reader that decodes the wire
  and hands requests to the core, and a writer that sends whole reply
  batches (one socket write per connection per batch);
- the driver, which takes the core's `Ready` batches: persist the txns (one
  write and one fsync for the whole batch), queue the messages, close what
  must close, then `advance`;
- the ticker, which tells the core that time passed (session expiry, TTLs).

A connection whose outbound queue is full is cut off (its client reconnects):
a slow reader never makes the server hold unbounded memory.

Storage calls go through `_offload`: a worker thread for the real data
directory, inline for a storage that says it never blocks (the in-memory disk
of coord.server.testing, which must run under a MockClock).
"""

from __future__ import annotations

import functools
import gc
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, TypeVarTuple, Unpack

import trio

from coord.server.config import ServerConfig
from coord.server.core.replica import CoreConfig, ServerCore
from coord.server.core.tree import DataTree
from coord.server.core.txn import Txn
from coord.server.runtime.client_listener import ClientListener
from coord.server.runtime.clock import Clock
from coord.server.runtime.disk import DataDir, Recovered, Storage
from coord.server.runtime.native_port import NativePort
from coord.server.runtime.stats import ServerStats
from coord.server.runtime.tls import is_loopback
from coord.server.runtime.zk_port import ZkPort
from coord.server.storage.snapshot import FuzzySnapshot

log = logging.getLogger(__name__)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

DiskFactory = Callable[[ServerConfig], Storage]
"""config -> the server's storage (not yet locked); `open_data_dir` by default."""


def open_data_dir(config: ServerConfig) -> Storage:
    """The real data directory that `config` names."""
    return DataDir(config.data_dir, fsync=config.fsync, segment_bytes=config.segment_bytes)


class StandaloneServer:
    """Owns one ServerCore and the tasks that serve it over TCP.

    `disk_factory` and `clock` are for in-process tests (coord.server.testing): a
    storage that lives in memory, and one clock shared by every member so that
    txn times agree across a failover. By default each run opens the data
    directory of its config and starts its own clock.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        disk_factory: DiskFactory | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self._disk_factory = disk_factory or open_data_dir
        self._given_clock = clock
        self.clock: Clock | None = None
        self.core: ServerCore | None = None
        self.stats = ServerStats()
        self.clients = ClientListener(
            config, self.stats, now_ms=self._now_ms, on_closed=self._connection_closed
        )
        """Accepts and serves the connections of both client ports."""
        self.native = NativePort(self)
        self._wake = trio.Event()
        self.port = 0
        self.zk_port = 0
        """The ZooKeeper-compatible port once listening (config.zk_port; 0: not open)."""
        self.zk: ZkPort | None = None
        self.disk: Storage | None = None
        self._disk_threads = True
        self.recovered: Recovered | None = None
        self._nursery: trio.Nursery | None = None
        self._since_snapshot = 0
        self._snapshot_idle = trio.Event()
        self._snapshot_idle.set()

    # -- lifecycle ---------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on TCP and serve until cancelled; `task_status.started(port)` once listening."""
        listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        self.port = listeners[0].socket.getsockname()[1]
        zk_listeners: list[trio.SocketListener] = []
        if self.config.zk_port is not None:
            zk_listeners = await trio.open_tcp_listeners(self.config.zk_port, host=self.config.host)
            self.zk_port = zk_listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(self.run)
            nursery.start_soon(self.clients.serve_listeners, listeners, self.native)
            log.info("serving on %s:%d", self.config.host, self.port)
            if not is_loopback(self.config.host) and self.clients.tls_context is None:
                log.warning(
                    "SECURITY: the client ports listen on %s, beyond this machine, without TLS:"
                    " credentials and data cross the network in clear text and anyone who can"
                    " connect may use every node whose ACL is open. Configure [tls], and ACLs.",
                    self.config.host,
                )
            if zk_listeners:
                self.zk = ZkPort(self)
                nursery.start_soon(self.clients.serve_listeners, zk_listeners, self.zk)
                log.info("ZooKeeper-compatible port on %s:%d", self.config.host, self.zk_port)
            task_status.started(self.port)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the core's tasks without a listener; feed it streams with `serve_connection`.

        This is how tests run the real server over in-memory streams with a MockClock.
        """
        self.clock = self._given_clock or Clock()
        tree = None
        if not self.config.in_memory:
            tree = await self._open_storage()
        now = self.clock.now_ms()
        self.core = ServerCore(
            CoreConfig(
                tick_ms=self.config.tick_ms,
                min_session_timeout_ms=self.config.min_session_timeout_ms,
                max_session_timeout_ms=self.config.max_session_timeout_ms,
                server_id=self.config.server_id,
                session_id_base=(self.config.server_id << 56) | ((now << 24) & ((1 << 56) - 1)),
                super_digest=self.config.super_digest,
                max_watches_per_session=self.config.max_watches_per_session,
            ),
            tree=tree,
        )
        restored = self.core.restore_sessions(now)
        if restored:
            log.info("restored %d sessions; each has a full timeout to reconnect", restored)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._drive)
                nursery.start_soon(self._tick)
                task_status.started()
        finally:
            if self.disk is not None:
                disk = self.disk
                if disk.appends:
                    log.info(
                        "wrote %d txns with %d fsyncs (%.1f txns per fsync)",
                        disk.appended_txns,
                        disk.appends,
                        disk.appended_txns / disk.appends,
                    )
                disk.close()

    async def _open_storage(self) -> DataTree:
        config = self.config
        if not config.fsync:
            log.warning(
                "fsync is OFF: acknowledged writes can be lost on a crash. "
                "This setting is for tests and benchmarks only."
            )
        disk = self._disk_factory(config)
        self._disk_threads = disk.blocking
        await self._offload(disk.lock)
        self.disk = disk
        started = trio.current_time()
        recovered = await self._offload(
            functools.partial(disk.recover, truncate_corrupt=config.truncate_corrupt_log)
        )
        self.recovered = recovered
        log.info(
            "loaded %s: snapshot at zxid %#x (%d nodes), replayed %d txns, %d znodes, in %.2f s",
            config.data_dir,
            recovered.snapshot_zxid,
            recovered.snapshot_nodes,
            recovered.replayed,
            len(recovered.tree),
            trio.current_time() - started,
        )
        return recovered.tree

    async def _offload(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        """Run one storage call: in a worker thread if the storage blocks, else inline.

        Inline, it behaves as a thread call does for the calling task: a
        cancellation is seen before the call starts or after it returns, never
        in the middle, so a call that returned is durable and a crash (a
        cancelled member) keeps exactly the calls that completed.
        """
        if self._disk_threads:
            return await trio.to_thread.run_sync(fn, *args)
        await trio.lowlevel.checkpoint_if_cancelled()
        result = fn(*args)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return result

    def kick(self) -> None:
        """Wake the Ready loop: the core may have something to do."""
        self._wake.set()

    _kick = kick  # the name the ensemble member (coord.server.runtime.member) wakes the loop by

    def _connection_closed(self, conn_id: int) -> None:
        """A client connection is gone: the core forgets it (its session lives on)."""
        if self.core is not None:
            self.core.connection_lost(conn_id)
        self.kick()

    # -- the Ready loop ----------------------------------------------------------

    async def _drive(self) -> None:
        assert self.core is not None and self.clock is not None
        core = self.core
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            while core.has_ready():
                ready = core.ready()
                await self._persist(ready.txns)
                self._dispatch(ready.messages, ready.closes)
                self.stats.batches += 1
                self.stats.txns += len(ready.txns)
                core.advance(ready, now_ms=self.clock.now_ms())

    async def _persist(self, txns: list[Txn]) -> None:
        """Make a batch of txns durable: one write and one fsync for the whole batch."""
        if self.disk is None or not txns:
            return
        await self._offload(self.disk.append, txns)
        self._note_appended(len(txns))

    def _note_appended(self, count: int) -> None:
        """Start a background snapshot once enough txns were logged since the last one."""
        self._since_snapshot += count
        if self._since_snapshot >= self.config.snapshot_every and self._snapshot_idle.is_set():
            self._since_snapshot = 0
            self._snapshot_idle = trio.Event()
            assert self._nursery is not None
            self._nursery.start_soon(self._take_snapshot)

    async def _take_snapshot(self) -> None:
        """A fuzzy snapshot: encode a batch of nodes, let writes run, repeat."""
        assert self.disk is not None and self.core is not None
        disk = self.disk
        tree = self.core.tree
        try:
            snapshot = FuzzySnapshot(tree)
            zxid = snapshot.zxid
            started = trio.current_time()
            temp, handle = await self._offload(disk.begin_snapshot, zxid)
            size = 0
            for chunk in snapshot.chunks():
                size += len(chunk)
                await self._offload(handle.write, chunk)
            path = await self._offload(disk.finish_snapshot, zxid, temp, handle)
            self._snapshot_written(zxid)
            removed = await self._offload(disk.purge, self.config.keep_snapshots)
            self.stats.snapshots += 1
            # Znodes are long-lived and acyclic: take them out of the cyclic collector's
            # full scans, which otherwise grow with the tree and stall every request.
            gc.freeze()
            log.info(
                "snapshot %s: %d bytes in %.2f s; purged %d old files",
                path.name,
                size,
                trio.current_time() - started,
                len(removed),
            )
        finally:
            self._snapshot_idle.set()

    def _snapshot_written(self, zxid: int) -> None:
        """Hook for subclasses: a snapshot at `zxid` is durable (the member tells its peer)."""

    async def wait_snapshot_idle(self) -> None:
        """Return once no snapshot is being written (tests and orderly shutdown use it)."""
        await self._snapshot_idle.wait()

    def _dispatch(self, messages: list[tuple[int, Any]], closes: list[int]) -> None:
        """Carry out the client side of a Ready: its messages, then its closes."""
        self.clients.dispatch(messages, closes)

    def _now_ms(self) -> int:
        return self.clock.now_ms() if self.clock is not None else int(time.time() * 1000)

    async def _tick(self) -> None:
        assert self.core is not None and self.clock is not None
        interval = self.config.tick_ms / 1000.0
        while True:
            await trio.sleep(interval)
            self.core.tick(self.clock.now_ms())
            self.clients.flush_warnings()
            if self.core.has_ready():
                self.kick()

    # -- one client connection ---------------------------------------------------

    async def serve_connection(self, stream: trio.abc.Stream, host: str) -> None:
        """Serve one native client connection (any trio stream) until it closes.

        `host` counts against the per-address limit. This is how tests and the
        in-process ensemble (coord.server.testing) connect clients without sockets.
        """
        await self.clients.serve_connection(stream, host, self.native)
