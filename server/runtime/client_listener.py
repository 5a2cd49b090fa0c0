"""The client listener both client ports share: accepting, limits, TLS, deadline, teardown.

The native port (coord.server.runtime.native_port) and the ZooKeeper port
(coord.server.runtime.zk_port) differ only in their wire: how the client's bytes
become requests for the core, and how the core's frames become bytes. The
rest of serving a client connection is the same for both and lives here, once:

- accepting: at most `max_client_connections` per client address (0: no
  limit); a refusal closes the new connection and is counted and logged;
- TLS (when the config has [tls]), whose handshake must finish within the
  handshake deadline; the client certificate's subject is the connection's
  x509 identity;
- the handshake deadline: a connection whose wire has not seen a complete
  handshake (`ClientLink.handshaken`) within `handshake_timeout_ms` is closed;
- the connection itself (coord.server.runtime.links.ClientLink): a byte-bounded
  outbound queue whose overflow cuts a slow consumer off, and the writer task
  that sends it in few socket writes;
- routing the core's output (`dispatch`): each connection's frames are
  encoded by its wire's codec, within its byte bound;
- teardown: `on_closed(conn_id)` tells the server the connection is gone (the
  core forgets it; the session lives on until its lease runs out);
- warnings about clients at a bounded rate (`warn_limited`): a flood of
  hostile connections must cost more than its log lines.

A port hands the listener a `Wire` per connection: the codec, and the read
loop (`serve`) that feeds the client's requests to the core. The listener
never looks inside either, and a port never looks inside the listener.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

import trio

from coord.server.config import ServerConfig
from coord.server.core.output import ClientOutput
from coord.server.core.replica import ServerCore
from coord.server.native.codec import OverBudget
from coord.server.runtime.clock import Clock
from coord.server.runtime.links import ClientLink, FrameCodec, write_loop
from coord.server.runtime.ratelimit import LogLimiter
from coord.server.runtime.stats import ServerStats
from coord.server.runtime.tls import handshake_subject, server_context

log = logging.getLogger(__name__)


class Wire(Protocol):
    """One client connection's protocol, as its port makes it."""

    @property
    def codec(self) -> FrameCodec:
        """Turns the core's frames for this connection into bytes."""
        ...

    async def serve(self, link: ClientLink) -> None:
        """Read the client's requests into the core until the client is done; then return.

        The listener ends the connection when this returns (or when the writer
        has sent a close), so a read loop that wants to close after a last
        reply calls `link.finish()`.
        """
        ...


class ClientPort(Protocol):
    """A client port: makes the wire of each connection the listener accepts for it."""

    def wire(self, host: str, address: str) -> Wire:
        """The wire for a new connection from `host` (`address`: host:port, for people)."""
        ...


class PortServer(Protocol):
    """The server behind a client port (a StandaloneServer, or an EnsembleMember).

    A port hands requests to `core` at `clock` time and then calls `kick`,
    which wakes the loop that carries out the core's Ready.
    """

    @property
    def config(self) -> ServerConfig: ...

    @property
    def stats(self) -> ServerStats: ...

    @property
    def core(self) -> ServerCore | None: ...

    @property
    def clock(self) -> Clock | None: ...

    @property
    def clients(self) -> ClientListener: ...

    def kick(self) -> None: ...


class ClientListener:
    """Accepts and serves one server's client connections, on every client port.

    `now_ms` dates the warnings' rate limit; `on_closed(conn_id)` is called
    once for every connection that was accepted, when it is gone.
    """

    def __init__(
        self,
        config: ServerConfig,
        stats: ServerStats,
        *,
        now_ms: Callable[[], int],
        on_closed: Callable[[int], None],
    ) -> None:
        self.config = config
        self.stats = stats
        self._now_ms = now_ms
        self._on_closed = on_closed
        self.links: dict[int, ClientLink] = {}
        """The open connections by connection id (read them; four-letter words do)."""
        self._next_conn_id = 1
        self._log_limiter = LogLimiter(burst=config.log_burst, interval_ms=config.log_interval_ms)
        self.tls_context: ssl.SSLContext | None = (
            None if config.tls is None else server_context(config.tls)
        )
        """Every client port serves TLS only when set (from config.tls)."""

    # -- accepting ---------------------------------------------------------------------

    async def serve_listeners(self, listeners: list[trio.SocketListener], port: ClientPort) -> None:
        """Accept connections on `listeners` for `port` until cancelled."""
        await trio.serve_listeners(functools.partial(self.serve_socket, port), listeners)

    async def serve_socket(self, port: ClientPort, stream: trio.SocketStream) -> None:
        """Serve one accepted TCP connection (over TLS when configured) until it closes."""
        try:
            peer = stream.socket.getpeername()
        except OSError:  # gone before we looked
            return
        host = str(peer[0])
        wire = port.wire(host, f"{peer[0]}:{peer[1]}")
        await self.serve_connection(self.wrap_tls(stream), host, wire)

    def wrap_tls(self, stream: trio.SocketStream) -> trio.abc.Stream:
        """The stream a client port serves: TLS over `stream` when [tls] is configured."""
        if self.tls_context is None:
            return stream
        return trio.SSLStream(stream, self.tls_context, server_side=True)

    async def serve_connection(self, stream: trio.abc.Stream, host: str, wire: Wire) -> None:
        """Serve one client connection (any trio stream) until it closes.

        `host` counts against the per-address limit and is the connection's ip
        identity; `wire` reads its requests and encodes its replies.
        """
        config, stats = self.config, self.stats
        limit = config.max_client_connections
        if limit and stats.by_address[host] >= limit:
            stats.connections_refused += 1
            self.warn_limited("refusing %s: already %d connections from it", host, limit)
            await stream.aclose()
            return
        stats.by_address[host] += 1
        stats.connections_accepted += 1
        conn_id = self._next_conn_id
        self._next_conn_id += 1
        send, receive = trio.open_memory_channel[bytes | None](config.max_outbound_batches)
        link = ClientLink(
            conn_id,
            stream,
            host,
            send,
            max_bytes=config.max_outbound_bytes,
            codec=wire.codec,
            on_cut=self._note_cut_off,
        )
        self.links[conn_id] = link
        try:
            async with trio.open_nursery() as nursery:
                link.scope = nursery.cancel_scope
                nursery.start_soon(write_loop, link, receive, nursery.cancel_scope)
                nursery.start_soon(self._handshake_deadline, link)
                if not isinstance(stream, trio.SSLStream) or await self._tls_handshake(link):
                    await wire.serve(link)
                nursery.cancel_scope.cancel()
        finally:
            self.links.pop(conn_id, None)
            stats.by_address[host] -= 1
            if stats.by_address[host] <= 0:
                del stats.by_address[host]
            stats.outbound_peak_bytes = max(stats.outbound_peak_bytes, link.peak_bytes)
            self._on_closed(conn_id)
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

    # -- the core's output ---------------------------------------------------------------

    def dispatch(self, messages: list[tuple[int, ClientOutput]], closes: list[int]) -> None:
        """Queue the core's frames for their connections (one encoding per connection per
        batch, within its byte bound), then close the connections in `closes`."""
        per_conn: dict[int, list[ClientOutput]] = defaultdict(list)
        for conn_id, frame in messages:
            per_conn[conn_id].append(frame)
        links, stats = self.links, self.stats
        for conn_id, frames in per_conn.items():
            link = links.get(conn_id)
            if link is None or link.cut_off:
                continue
            try:
                data = link.encode_bounded(frames)
            except OverBudget:
                link.cut()
                self._note_cut_off(link, f"over {link.max_bytes} bytes of replies unread")
                continue
            if data:
                reason = link.offer(data)
                if reason is not None:
                    self._note_cut_off(link, reason)
                if link.peak_bytes > stats.outbound_peak_bytes:
                    stats.outbound_peak_bytes = link.peak_bytes
            if link.codec.finished:
                link.close()
        for conn_id in closes:
            link = links.get(conn_id)
            if link is not None:
                link.close()

    # -- warnings --------------------------------------------------------------------------

    def _note_cut_off(self, link: ClientLink, reason: str) -> None:
        self.stats.cut_off += 1
        self.stats.outbound_peak_bytes = max(self.stats.outbound_peak_bytes, link.peak_bytes)
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

    def flush_warnings(self) -> None:
        """Log the count of warnings suppressed in an interval that has ended (each tick)."""
        suppressed = self._log_limiter.flush(self._now_ms())
        if suppressed:
            log.warning("suppressed %d similar warnings", suppressed)
