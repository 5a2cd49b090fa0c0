"""The trio runtime of a standalone server: sockets, timers, and the Ready loop.

This module moves bytes and time between the world and the pure `ServerCore`;
it decides nothing. Tasks, all in the nursery of `serve`:

- the listener, one task per client connection: a reader that decodes frames
  and hands them to the core, and a writer that sends whole reply batches
  (one socket write per connection per batch);
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
import ssl
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, TypeVarTuple, Unpack

import trio

from coord.server.config import ServerConfig
from coord.server.core.dedupe import WriteResults
from coord.server.core.replica import CoreConfig, ServerCore, remember_write
from coord.server.core.tree import DataTree
from coord.server.core.txn import Txn
from coord.server.runtime.disk import DataDir, Recovered, Storage
from coord.server.runtime.links import NATIVE_CODEC, ClientLink, FrameCodec, OverBudget, write_loop
from coord.server.runtime.native_port import read_native
from coord.server.runtime.ratelimit import LogLimiter
from coord.server.runtime.stats import ServerStats
from coord.server.runtime.tls import handshake_subject, is_loopback, server_context
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


class Clock:
    """Wall-clock milliseconds derived from trio's clock, so that MockClock drives it too."""

    def __init__(self) -> None:
        self._wall_base_ms = int(time.time() * 1000)
        self._trio_base = trio.current_time()

    def now_ms(self) -> int:
        return self._wall_base_ms + int((trio.current_time() - self._trio_base) * 1000)


ReadLoop = Callable[[ClientLink], Awaitable[None]]
"""Reads one connection's requests into the core (the native `_read_loop` by default)."""


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
        self._links: dict[int, ClientLink] = {}
        self._next_conn_id = 1
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
        self._log_limiter = LogLimiter(burst=config.log_burst, interval_ms=config.log_interval_ms)
        self.tls_context: ssl.SSLContext | None = (
            None if config.tls is None else server_context(config.tls)
        )
        """Both client ports serve TLS only when set (from config.tls)."""

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
            for listener in listeners:
                nursery.start_soon(trio.serve_listeners, self._serve_socket, [listener])
            log.info("serving on %s:%d", self.config.host, self.port)
            if not is_loopback(self.config.host) and self.tls_context is None:
                log.warning(
                    "SECURITY: the client ports listen on %s, beyond this machine, without TLS:"
                    " credentials and data cross the network in clear text and anyone who can"
                    " connect may use every node whose ACL is open. Configure [tls], and ACLs.",
                    self.config.host,
                )
            if zk_listeners:
                self.zk = ZkPort(self)
                nursery.start_soon(trio.serve_listeners, self.zk.serve_socket, zk_listeners)
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
            write_results=self._replayed_write_results(),
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

    def _replayed_write_results(self) -> WriteResults:
        """The results of the client writes the log replayed, for deduplicating resends."""
        results = WriteResults()
        if self.recovered is not None:
            for txn, applied in self.recovered.client_writes:
                remember_write(results, txn, applied)
            self.recovered.client_writes = []
        return results

    def kick(self) -> None:
        """Wake the Ready loop: the core may have something to do."""
        self._wake.set()

    _kick = kick  # the name the ensemble member (coord.server.runtime.member) wakes the loop by

    @property
    def links(self) -> dict[int, ClientLink]:
        """The open client connections by connection id (read-only use: four-letter words)."""
        return self._links

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
        per_conn: dict[int, list[Any]] = defaultdict(list)
        for conn_id, frame in messages:
            per_conn[conn_id].append(frame)
        for conn_id, frames in per_conn.items():
            link = self._links.get(conn_id)
            if link is None or link.cut_off:
                continue
            try:
                data = link.encode_bounded(frames)
            except OverBudget:
                link.cut()
                self._note_cut_off(link, f"over {link.max_bytes} bytes of replies unread")
                continue
            if data:
                self.queue(link, data)
            if link.codec.finished:
                self.queue(link, None)
        for conn_id in closes:
            link = self._links.get(conn_id)
            if link is not None:
                self.queue(link, None)

    def queue(self, link: ClientLink, data: bytes | None) -> None:
        """Queue bytes for one connection (None: close it after them), within its byte bound."""
        reason = link.offer(data)
        if reason is not None:
            self._note_cut_off(link, reason)
        self.stats.outbound_peak_bytes = max(self.stats.outbound_peak_bytes, link.peak_bytes)

    def _note_cut_off(self, link: ClientLink, reason: str) -> None:
        self.stats.cut_off += 1
        self.warn_limited(
            "client %s is not reading its replies (%s); closing the connection, "
            "its session lives on",
            link.address,
            reason,
        )

    def warn_limited(self, message: str, *args: object) -> None:
        """Log a warning about a client, at most a few per interval (then a count of the rest).

        Refusals and bad input are what a flood of hostile connections produces;
        their log lines must cost less than the connections do.
        """
        verdict = self._log_limiter.note(self._now_ms())
        if verdict.suppressed:
            log.warning("suppressed %d similar warnings", verdict.suppressed)
        if verdict.emit:
            log.warning(message, *args)
        else:
            self.stats.warnings_suppressed += 1

    def _flush_log_limiter(self) -> None:
        suppressed = self._log_limiter.flush(self._now_ms())
        if suppressed:
            log.warning("suppressed %d similar warnings", suppressed)

    def _now_ms(self) -> int:
        return self.clock.now_ms() if self.clock is not None else int(time.time() * 1000)

    async def _tick(self) -> None:
        assert self.core is not None and self.clock is not None
        interval = self.config.tick_ms / 1000.0
        while True:
            await trio.sleep(interval)
            self.core.tick(self.clock.now_ms())
            self._flush_log_limiter()
            if self.core.has_ready():
                self.kick()

    # -- one client connection ---------------------------------------------------

    async def _serve_socket(self, stream: trio.SocketStream) -> None:
        try:
            host = str(stream.socket.getpeername()[0])
        except OSError:
            return
        await self.serve_connection(self.wrap_tls(stream), host)

    def wrap_tls(self, stream: trio.SocketStream) -> trio.abc.Stream:
        """The stream a client port serves: TLS over `stream` when [tls] is configured."""
        if self.tls_context is None:
            return stream
        return trio.SSLStream(stream, self.tls_context, server_side=True)

    async def serve_connection(
        self,
        stream: trio.abc.Stream,
        host: str,
        *,
        codec: FrameCodec = NATIVE_CODEC,
        reader: ReadLoop | None = None,
    ) -> None:
        """Serve one client connection until it closes; `host` counts against the limit.

        `codec` and `reader` are the connection's protocol: native msgpack frames
        by default; the ZooKeeper port passes its translator and its read loop.
        """
        assert self.core is not None and self.clock is not None
        limit = self.config.max_client_connections
        if limit and self.stats.by_address[host] >= limit:
            self.stats.connections_refused += 1
            self.warn_limited("refusing %s: already %d connections from it", host, limit)
            await stream.aclose()
            return
        self.stats.by_address[host] += 1
        self.stats.connections_accepted += 1
        conn_id = self._next_conn_id
        self._next_conn_id += 1
        send, receive = trio.open_memory_channel[bytes | None](self.config.max_outbound_batches)
        link = ClientLink(
            conn_id, stream, host, send, max_bytes=self.config.max_outbound_bytes, codec=codec
        )
        self._links[conn_id] = link
        try:
            async with trio.open_nursery() as nursery:
                link.scope = nursery.cancel_scope
                nursery.start_soon(write_loop, link, receive, nursery.cancel_scope)
                nursery.start_soon(self._handshake_deadline, link)
                if isinstance(stream, trio.SSLStream) and not await self._tls_handshake(link):
                    return
                await (reader or functools.partial(read_native, self))(link)
                nursery.cancel_scope.cancel()
        finally:
            self._links.pop(conn_id, None)
            self.stats.by_address[host] -= 1
            if self.stats.by_address[host] <= 0:
                del self.stats.by_address[host]
            self.core.connection_lost(conn_id)
            self.kick()
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _tls_handshake(self, link: ClientLink) -> bool:
        """Complete a TLS handshake (within the handshake deadline); learn the client's
        certificate subject, its x509 ACL id."""
        assert isinstance(link.stream, trio.SSLStream)
        try:
            link.x509 = await handshake_subject(link.stream)
        except trio.BrokenResourceError as exc:
            self.stats.bad_frames += 1
            self.warn_limited(
                "TLS handshake with %s failed: %s", link.address, exc.__cause__ or exc
            )
            if link.scope is not None:
                link.scope.cancel()
            return False
        return True

    async def _handshake_deadline(self, link: ClientLink) -> None:
        """Close a connection that sends no complete handshake in time (ZooKeeper does too)."""
        await trio.sleep(self.config.handshake_timeout_ms / 1000.0)
        if not link.handshaken and not link.cut_off:
            self.stats.handshake_timeouts += 1
            self.warn_limited(
                "closing connection from %s: no handshake within %d ms",
                link.address,
                self.config.handshake_timeout_ms,
            )
            link.cut()
