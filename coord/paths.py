"""Znode paths: validation, splitting and joining, sequential suffixes.

The rules are ZooKeeper's (PathUtils.validatePath): a path starts with '/',
has no trailing '/', no empty segment, no '.' or '..' segment, and no NUL,
control or reserved-range character. We add limits on total length and depth
so that one request cannot make the server walk an unbounded path.
"""

from __future__ import annotations

from coord.errors import InvalidPathError

MAX_PATH_LENGTH = 4096
MAX_PATH_DEPTH = 256
SEQUENCE_DIGITS = 10


def _bad_char(ch: str) -> bool:
    code = ord(ch)
    return (
        code == 0
        or 0x01 <= code <= 0x1F
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xF8FF
        or 0xFFF0 <= code <= 0xFFFF
    )


def validate(path: object, *, sequential: bool = False) -> str:
    """Return `path` if it is a valid znode path, else raise InvalidPathError.

    With `sequential=True` the path is the prefix of a sequential create, so it
    may end in '/' (ZooKeeper allows `/queue/` to make `/queue/0000000001`).
    """
    if not isinstance(path, str):
        raise InvalidPathError(f"path must be a string, got {type(path).__name__}", path=None)
    if not path:
        raise InvalidPathError("path is empty", path=path)
    if path[0] != "/":
        raise InvalidPathError(f"path {path!r} must start with '/'", path=path)
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidPathError(
            f"path is {len(path)} characters long, the limit is {MAX_PATH_LENGTH}",
            path=path[:64] + "...",
        )
    if path == "/":
        return path
    body = path[1:-1] if (sequential and path.endswith("/")) else path[1:]
    if not sequential and path.endswith("/"):
        raise InvalidPathError(f"path {path!r} must not end with '/'", path=path)
    segments = body.split("/")
    if len(segments) > MAX_PATH_DEPTH:
        raise InvalidPathError(
            f"path {path!r} is {len(segments)} levels deep, the limit is {MAX_PATH_DEPTH}",
            path=path,
        )
    for segment in segments:
        if segment == "":
            raise InvalidPathError(f"path {path!r} has an empty segment", path=path)
        if segment in (".", ".."):
            raise InvalidPathError(f"path {path!r} has a relative segment {segment!r}", path=path)
    for index, ch in enumerate(path):
        if _bad_char(ch):
            raise InvalidPathError(
                f"path {path!r} has an invalid character U+{ord(ch):04X} at index {index}",
                path=path,
            )
    return path


def parent(path: str) -> str:
    """The parent of a valid path; the parent of '/' is '/'."""
    index = path.rfind("/")
    return "/" if index <= 0 else path[:index]


def basename(path: str) -> str:
    """The last segment of a valid path ('' for the root)."""
    return path[path.rfind("/") + 1 :]


def join(base: str, *names: str) -> str:
    """Join segments onto a base path without doubling slashes."""
    out = base.rstrip("/")
    for name in names:
        out = f"{out}/{name.strip('/')}"
    return out or "/"


def sequential_name(prefix: str, counter: int) -> str:
    """ZooKeeper's sequential name: the prefix and a 10-digit zero-padded counter.

    The counter is the parent's cversion at creation time; ZooKeeper formats
    it with %010d, and a negative value (after the int32 wraps) keeps its sign.
    """
    return f"{prefix}{counter:0{SEQUENCE_DIGITS}d}"


def ancestors(path: str) -> list[str]:
    """Every proper ancestor of `path`, root first: '/a/b/c' -> ['/', '/a', '/a/b']."""
    if path == "/":
        return []
    out = ["/"]
    index = path.find("/", 1)
    while index != -1:
        out.append(path[:index])
        index = path.find("/", index + 1)
    return out


def is_within(path: str, root: str) -> bool:
    """True when `path` is `root` or lies below it."""
    if root == "/":
        return True
    return path == root or path.startswith(root + "/")
