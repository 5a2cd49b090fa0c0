"""Connection strings: "host:port,host:port" into a list of addresses.

The format is ZooKeeper's and kazoo's, minus the chroot suffix (we do not
support chroot, and silently ignoring one would point a client at the wrong
subtree, so it is refused). A missing port means DEFAULT_PORT; an IPv6
address is written in brackets, "[::1]:2281". Errors are ValueError with a
message that names the bad entry, because a typo here is the most common way
to get a client that can never connect.
"""

from __future__ import annotations

from typing import Final, NamedTuple

DEFAULT_PORT: Final = 2281


class HostPort(NamedTuple):
    """One server address."""

    host: str
    port: int

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def _parse_port(text: str, entry: str) -> int:
    if not text.isdigit():
        raise ValueError(f"bad port {text!r} in host entry {entry!r}: must be a number")
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"bad port {port} in host entry {entry!r}: must be 1..65535")
    return port


def parse_host(entry: str, default_port: int = DEFAULT_PORT) -> HostPort:
    """Parse one "host", "host:port", "[v6]" or "[v6]:port" entry."""
    text = entry.strip()
    if not text:
        raise ValueError("empty host entry in connection string")
    if text.startswith("["):
        close = text.find("]")
        if close == -1:
            raise ValueError(f"host entry {entry!r} opens '[' but never closes it")
        host = text[1:close]
        rest = text[close + 1 :]
        if rest == "":
            port = default_port
        elif rest.startswith(":"):
            port = _parse_port(rest[1:], entry)
        else:
            raise ValueError(f"unexpected {rest!r} after ']' in host entry {entry!r}")
    else:
        if text.count(":") > 1:
            raise ValueError(f"host entry {entry!r} looks like IPv6: write it as [address]:port")
        host, sep, port_text = text.partition(":")
        port = _parse_port(port_text, entry) if sep else default_port
    if not host or any(ch.isspace() or ch in "/@" for ch in host):
        raise ValueError(f"bad host name {host!r} in host entry {entry!r}")
    return HostPort(host, port)


def parse_hosts(hosts: str, default_port: int = DEFAULT_PORT) -> list[HostPort]:
    """Parse a connection string; duplicates are kept once, in first-seen order."""
    if not isinstance(hosts, str):
        raise TypeError(f"hosts must be a string like '127.0.0.1:{DEFAULT_PORT}'")
    if "/" in hosts:
        raise ValueError(f"connection string {hosts!r} has a chroot suffix; chroot is unsupported")
    entries = hosts.split(",")
    out: list[HostPort] = []
    for entry in entries:
        address = parse_host(entry, default_port)
        if address not in out:
            out.append(address)
    if not out:
        raise ValueError("connection string names no host")
    return out
