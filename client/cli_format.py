"""How the `coord` shell prints things: pure functions from values to text.

Kept apart from client/cli.py so that the output format, which scripts come to
depend on, is pinned by unit tests without a server. The rules:

- one fact per line, no decoration, so that `grep`, `cut` and `awk` work;
- znode data is printed as text when it is valid UTF-8 (the common case:
  config values, ids, JSON), and as a Python bytes literal otherwise, so that
  binary data is never written raw to a terminal and is still unambiguous;
- zxids and session ids are printed in hex, as ZooKeeper's tools do, because
  a zxid is `epoch << 32 | counter` and reads naturally that way
  (`int(s, 0)` parses it back).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from coord.errors import CoordError, KeeperError
from coord.messages import Stat, WatchedEvent

#: Stat fields shown in hex (ids and zxids); the others are decimal.
HEX_FIELDS = frozenset({"czxid", "mzxid", "pzxid", "ephemeral_owner"})
#: Stat fields that are millisecond timestamps; shown with a UTC date too.
TIME_FIELDS = frozenset({"ctime", "mtime"})


def format_data(data: bytes) -> str:
    """Znode data as text if it decodes as UTF-8, else as its repr (b'...')."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return repr(data)


def format_zxid(zxid: int) -> str:
    """A zxid (or session id) in hex, e.g. 0x100000002."""
    return hex(zxid)


def format_time_ms(ms: int) -> str:
    """A millisecond timestamp as ISO 8601 UTC with milliseconds."""
    moment = datetime.datetime.fromtimestamp(ms / 1000.0, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_stat(stat: Stat) -> list[str]:
    """Every Stat field, one `name = value` line each, in Stat's field order."""
    lines = []
    for name, value in zip(Stat._fields, stat, strict=True):
        if name in HEX_FIELDS:
            text = format_zxid(value)
        elif name in TIME_FIELDS:
            text = f"{value} ({format_time_ms(value)})"
        else:
            text = str(value)
        lines.append(f"{name} = {text}")
    return lines


def format_event(event: WatchedEvent) -> str:
    """A watch event as `TYPE PATH ZXID`, space separated (paths have no spaces)."""
    return f"{event.type.name} {event.path} {format_zxid(event.zxid)}"


def format_tree(root: str, entries: Iterable[tuple[int, str]], indent: str = "  ") -> list[str]:
    """An indented subtree: `root` on the first line, then (depth, name) entries.

    `entries` come in depth-first order, depth 1 for the root's children; each
    level is indented by `indent`, which is why names rather than full paths
    are printed (the indentation carries the parent).
    """
    lines = [root]
    for depth, name in entries:
        lines.append(f"{indent * depth}{name}")
    return lines


def format_error(exc: BaseException) -> str:
    """A one-line message for an error: the class name and the server's message.

    The server's messages already name the path and the expected/actual
    values; when a KeeperError carries a path its message does not mention,
    the path is added so that the user always learns which node failed.
    """
    if isinstance(exc, KeeperError):
        message = exc.message
        extras = []
        if exc.path is not None and exc.path not in message:
            extras.append(f"path {exc.path}")
        if exc.expected is not None and "expected" not in message:
            extras.append(f"expected {exc.expected!r}")
        if exc.actual is not None and "actual" not in message:
            extras.append(f"actual {exc.actual!r}")
        if extras:
            message = f"{message} ({', '.join(extras)})"
        return f"{type(exc).__name__}: {message}"
    if isinstance(exc, CoordError):
        return f"{type(exc).__name__}: {exc}"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
