"""The ZooKeeper-compatible client port: jute connections served by the same core.

Its connections are accepted and served by the shared client listener
(coord.server.runtime.client_listener: the same connection limit, TLS, handshake
deadline, byte-bounded outbound queue, writer and teardown as the native
port); this module is only the jute wire. Each connection's codec is a
ZkConnectionTranslator (coord.server.zk.translate), which turns the core's native
frames into jute bytes, and its read loop (`ZkWire.serve`) feeds the
translator the bytes the client sent and hands its events to the core.
Sessions, ephemerals, watches, expiry and replication are the core's, so a
session made here is the same kind as one made on the native port, and
watches fire across the two.

The read loop also answers four-letter words (coord.server.zk.fourletter) and closes
the connection on a packet over jute.maxbuffer or one it cannot decode, as
ZooKeeper does; the server carries on.
"""

from __future__ import annotations

import functools
import getpass
import logging
import os
import platform
import secrets
import socket
from dataclasses import dataclass
from typing import Protocol

import trio

from coord.errors import ProtocolError
from coord.framing import NEED_DATA
from coord.server.runtime.client_listener import PortServer
from coord.server.runtime.links import ClientLink
from coord.server.zk.fourletter import ConnectionInfo, ServerInfo, answer, not_whitelisted
from coord.server.zk.translate import CoreRequest, FourLetterWord, Handshake, ZkConnectionTranslator

log = logging.getLogger(__name__)

ZK_COMPATIBLE_VERSION = "3.8.0"
"""The ZooKeeper release whose client protocol this port speaks (four-letter words say so)."""
COORD_VERSION = "0.1.0"


class ZkServer(PortServer, Protocol):
    """The server behind a ZooKeeper port: a PortServer that knows its two client ports."""

    @property
    def port(self) -> int: ...

    @property
    def zk_port(self) -> int: ...


@dataclass(eq=False)
class ZkWire:
    """One ZooKeeper connection's wire: its translator (its codec) and its read loop."""

    port: ZkPort
    address: str
    """host:port of the client, as four-letter words show it."""
    translator: ZkConnectionTranslator

    @property
    def codec(self) -> ZkConnectionTranslator:
        return self.translator

    async def serve(self, link: ClientLink) -> None:
        """Read the connection's packets through its translator into the core."""
        port = self.port
        server = port.server
        core, clock, stats = server.core, server.clock, server.stats
        assert core is not None and clock is not None
        translator, address = self.translator, self.address
        port.connections[link.conn_id] = self
        try:
            while data := await link.receive():
                translator.receive_data(data)
                while True:
                    try:
                        event = translator.next_event()
                    except ProtocolError as exc:
                        stats.bad_frames += 1
                        server.clients.warn_limited(
                            "closing ZooKeeper connection from %s: %s", address, exc
                        )
                        await _finish(server, link)
                        return
                    if event is NEED_DATA:
                        break
                    assert isinstance(event, FourLetterWord | Handshake | CoreRequest)
                    if isinstance(event, FourLetterWord):
                        link.send(port.answer(event.word).encode())
                        await _finish(server, link)
                        return
                    now = clock.now_ms()
                    if isinstance(event, Handshake):
                        link.handshaken = True
                        core.connect(
                            link.conn_id,
                            event.request,
                            now_ms=now,
                            password=secrets.token_bytes(16),
                            identity=link.identity,
                        )
                        continue
                    stats.requests += 1
                    try:
                        core.request(link.conn_id, event.xid, event.op, event.body, now_ms=now)
                    except Exception:  # a bug must not take the server down
                        # op and xid only: a body may carry credentials (auth packets)
                        log.exception(
                            "ZooKeeper request op %d xid %d failed inside the server",
                            event.op,
                            event.xid,
                        )
                        await _finish(server, link)
                        return
                local = translator.data_to_send()
                if local:
                    link.send(local)
                server.kick()
                if translator.finished:
                    await _finish(server, link)
                    return
        finally:
            if port.connections.pop(link.conn_id, None) is not None:
                port.closed_sent += translator.sent


async def _finish(server: PortServer, link: ClientLink) -> None:
    """Close after what is queued is sent: the writer ends the connection."""
    server.kick()
    await link.finish()


class ZkPort:
    """The ZooKeeper port of one server (standalone or ensemble member)."""

    def __init__(self, server: ZkServer) -> None:
        self.server = server
        self.connections: dict[int, ZkWire] = {}
        """The open ZooKeeper connections by connection id (for the four-letter words)."""
        self.closed_sent = 0
        """Packets sent on connections that have closed (for the four-letter counters)."""
        self._started = trio.current_time()

    def wire(self, host: str, address: str) -> ZkWire:
        """A new connection's wire: a translator of its own."""
        translator = ZkConnectionTranslator(
            xid_tag=secrets.randbelow((1 << 30) - 1) + 1, client_host=host
        )
        return ZkWire(self, address or host, translator)

    async def serve_stream(self, stream: trio.abc.Stream, host: str, address: str = "") -> None:
        """Serve one ZooKeeper client connection until it closes (any trio stream)."""
        await self.server.clients.serve_connection(stream, host, self.wire(host, address))

    # -- four-letter words ---------------------------------------------------------

    def answer(self, word: str) -> str:
        """The reply to a four-letter word, if config.four_letter_words allows it.

        ZooKeeper's 4lw.commands.whitelist: by default only `srvr` is answered,
        since words like `cons`, `dump` and `envi` tell anyone who asks about
        clients, sessions and the host; the rest get ZooKeeper's refusal.
        """
        allowed = self.server.config.four_letter_words
        if "*" not in allowed and word not in allowed:
            return not_whitelisted(word)
        return answer(word, self.info(word))

    def info(self, word: str = "mntr") -> ServerInfo:
        """A snapshot of the server for the four-letter words.

        The data size walks every node, so only `mntr` (the word that reports it)
        pays for it; the rest is cheap.
        """
        server = self.server
        core = server.core
        assert core is not None
        tree = core.tree
        watches = core.watches
        tables = (watches.data, watches.child, watches.persistent, watches.recursive)
        watched_paths = set().union(*(t.by_path for t in tables))
        watchers = set().union(*(t.by_watcher for t in tables))
        connections = []
        for conn_id, link in list(server.clients.links.items()):
            zk = self.connections.get(conn_id)
            if zk is None:
                connections.append(ConnectionInfo(link.address, protocol="native"))
            else:
                t = zk.translator
                connections.append(
                    ConnectionInfo(zk.address, t.session_id, t.received, t.sent, t.outstanding)
                )
        sent = self.closed_sent + sum(c.translator.sent for c in self.connections.values())
        return ServerInfo(
            version=f"{ZK_COMPATIBLE_VERSION}-coord-{COORD_VERSION}",
            mode=self._mode(),
            serving=core.serving,
            zxid=tree.last_zxid,
            node_count=len(tree),
            data_size=(
                sum(len(path) + len(node.data or b"") for path, node in tree.nodes.items())
                if word == "mntr"
                else 0
            ),
            ephemerals=sum(len(owned) for owned in tree.ephemerals.values()),
            sessions=len(tree.sessions),
            watches=watches.count(),
            watched_paths=len(watched_paths),
            watching_connections=len(watchers),
            received=server.stats.requests,
            sent=sent,
            uptime_ms=int((trio.current_time() - self._started) * 1000),
            connections=tuple(connections),
            environment=_environment(),
            config=self._config(),
        )

    def _mode(self) -> str:
        zab = getattr(self.server, "zab", None)
        if zab is None:
            return "standalone"
        return {"leading": "leader", "following": "follower", "observing": "observer"}.get(
            zab.role.value, "looking"
        )

    def _config(self) -> tuple[tuple[str, str], ...]:
        server = self.server
        config = server.config
        sessions = server.core.sessions if server.core is not None else None
        rows = [
            ("clientPort", str(server.zk_port)),
            ("nativeClientPort", str(server.port)),
            ("dataDir", "" if config.in_memory else str(config.data_dir)),
            ("tickTime", str(config.tick_ms)),
            ("maxClientCnxns", str(config.max_client_connections)),
            ("minSessionTimeout", str(sessions.min_timeout_ms if sessions else 0)),
            ("maxSessionTimeout", str(sessions.max_timeout_ms if sessions else 0)),
            ("serverId", str(config.server_id)),
        ]
        if config.ensemble is not None:
            for m in config.ensemble.member:
                role = "observer" if m.observer else "participant"
                client = m.zk_port if m.zk_port is not None else m.client_port
                rows.append((f"server.{m.id}", f"{m.host}:{m.peer_port}:{role};{m.host}:{client}"))
        return tuple(rows)


@functools.cache
def _environment() -> tuple[tuple[str, str], ...]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "<NA>"
    return (
        ("host.name", socket.gethostname()),
        ("coord.version", COORD_VERSION),
        ("python.version", platform.python_version()),
        ("python.implementation", platform.python_implementation()),
        ("os.name", platform.system()),
        ("os.arch", platform.machine()),
        ("os.version", platform.release()),
        ("user.name", user),
        ("user.dir", os.getcwd()),
    )
