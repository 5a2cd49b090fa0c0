"""ZooKeeper's four-letter words, answered from a snapshot of the server's state.

Monitoring tools and clients send these on the client port (kazoo's
`command()` and `server_version()`, zkCli's `srvr`, Nagios checks on
`mntr`...). The runtime gathers a `ServerInfo` (it reads the clock, the
environment and the core) and this module only formats, in ZooKeeper's
layouts, so the text is tested without a server.

As in ZooKeeper: `ruok` answers `imok` whenever the process runs; `isro`
answers `rw` (this server never serves read-only) or `null` when the member is
not serving; the words that need a serving member say so when it is not; a
word ZooKeeper knows but we do not answer gets its "not in the whitelist" text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

ANSWERED: Final = ("ruok", "srvr", "stat", "envi", "mntr", "isro", "conf", "cons", "wchs")
NOT_SERVING: Final = "This ZooKeeper instance is not currently serving requests\n"


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """One client connection, for `cons` and `stat`."""

    address: str
    session_id: int = 0
    received: int = 0
    sent: int = 0
    outstanding: int = 0
    protocol: str = "zookeeper"


@dataclass(frozen=True, slots=True)
class ServerInfo:
    version: str
    """What `zookeeper.version=` says; kazoo parses the part before the first '-'."""
    mode: str
    """standalone, leader, follower or observer."""
    serving: bool
    zxid: int = 0
    node_count: int = 0
    data_size: int = 0
    ephemerals: int = 0
    sessions: int = 0
    watches: int = 0
    watched_paths: int = 0
    watching_connections: int = 0
    received: int = 0
    sent: int = 0
    uptime_ms: int = 0
    connections: tuple[ConnectionInfo, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    config: tuple[tuple[str, str], ...] = ()
    extra_metrics: tuple[tuple[str, str], ...] = ()

    @property
    def outstanding(self) -> int:
        return sum(c.outstanding for c in self.connections)


def not_whitelisted(word: str) -> str:
    """ZooKeeper's reply to a word its 4lw.commands.whitelist does not allow."""
    return f"{word} is not executed because it is not in the whitelist.\n"


def answer(word: str, info: ServerInfo) -> str:
    """The text ZooKeeper would send for `word` (the connection closes after it)."""
    if word == "ruok":
        return "imok"
    if word == "isro":
        return "rw" if info.serving else "null"
    if word == "envi":
        lines = ["Environment:", f"zookeeper.version={info.version}"]
        lines += [f"{key}={value}" for key, value in info.environment]
        return "\n".join(lines) + "\n"
    if word == "conf":
        return "".join(f"{key}={value}\n" for key, value in info.config)
    if word not in ANSWERED:
        return not_whitelisted(word)
    if not info.serving:
        return NOT_SERVING
    if word == "srvr":
        return _summary(info, clients=False)
    if word == "stat":
        return _summary(info, clients=True)
    if word == "cons":
        return "".join(_connection_line(c) for c in info.connections) + "\n"
    if word == "wchs":
        return (
            f"{info.watching_connections} connections watching {info.watched_paths} paths\n"
            f"Total watches:{info.watches}\n"
        )
    return _metrics(info)


def _summary(info: ServerInfo, *, clients: bool) -> str:
    lines = [f"Zookeeper version: {info.version}"]
    if clients:
        lines.append("Clients:")
        lines += [_connection_line(c).rstrip("\n") for c in info.connections]
        lines.append("")
    lines += [
        "Latency min/avg/max: 0/0.0/0",
        f"Received: {info.received}",
        f"Sent: {info.sent}",
        f"Connections: {len(info.connections)}",
        f"Outstanding: {info.outstanding}",
        f"Zxid: {info.zxid:#x}",
        f"Mode: {info.mode}",
        f"Node count: {info.node_count}",
    ]
    return "\n".join(lines) + "\n"


def _connection_line(conn: ConnectionInfo) -> str:
    details = f"queued={conn.outstanding},recved={conn.received},sent={conn.sent}"
    if conn.session_id:
        details += f",sid={conn.session_id:#x}"
    return f" /{conn.address}[1]({details},protocol={conn.protocol})\n"


def _metrics(info: ServerInfo) -> str:
    rows: list[tuple[str, object]] = [
        ("zk_version", info.version),
        ("zk_server_state", info.mode),
        ("zk_avg_latency", "0.0"),
        ("zk_max_latency", 0),
        ("zk_min_latency", 0),
        ("zk_packets_received", info.received),
        ("zk_packets_sent", info.sent),
        ("zk_num_alive_connections", len(info.connections)),
        ("zk_outstanding_requests", info.outstanding),
        ("zk_znode_count", info.node_count),
        ("zk_watch_count", info.watches),
        ("zk_ephemerals_count", info.ephemerals),
        ("zk_approximate_data_size", info.data_size),
        ("zk_global_sessions", info.sessions),
        ("zk_uptime", info.uptime_ms),
        *info.extra_metrics,
    ]
    return "".join(f"{key}\t{value}\n" for key, value in rows)
