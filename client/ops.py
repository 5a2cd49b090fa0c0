"""Request bodies and result decoding for each op, as pure functions.

The shapes are coord.messages' contract. Bodies are built as plain dicts
(the server validates them into its pydantic models); results are decoded
from the reply into what the client API returns, and a result of the wrong
shape raises MalformedFrameError instead of a confusing TypeError deep in
user code. Local validation (paths, data types, create flags) happens here
too, so that a bad argument fails before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from coord.acl import ACL, acl_from_wire
from coord.errors import (
    BadArgumentsError,
    InvalidTTLError,
    KeeperError,
    MalformedFrameError,
)
from coord.messages import CreateMode, OpCode, Stat, stat_from_wire
from coord.paths import validate


def to_bytes(value: object, what: str = "value") -> bytes:
    """Znode data must be bytes-like; str is refused, as kazoo does, to avoid encoding guesses."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, got {type(value).__name__}")


def check_version(version: object) -> int:
    if not isinstance(version, int) or isinstance(version, bool):
        raise TypeError(f"version must be an int, got {type(version).__name__}")
    return version


def create_mode(
    *, ephemeral: bool, sequential: bool, container: bool, ttl: float | None
) -> CreateMode:
    """The CreateMode for kazoo-style create flags; bad combinations fail here."""
    if container:
        if ephemeral or sequential or ttl is not None:
            raise BadArgumentsError(
                "a container node cannot be ephemeral, sequential or have a TTL"
            )
        return CreateMode.CONTAINER
    if ttl is not None:
        if ephemeral:
            raise InvalidTTLError("an ephemeral node cannot have a TTL")
        return (
            CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL
            if sequential
            else CreateMode.PERSISTENT_WITH_TTL
        )
    if ephemeral:
        return CreateMode.EPHEMERAL_SEQUENTIAL if sequential else CreateMode.EPHEMERAL
    return CreateMode.PERSISTENT_SEQUENTIAL if sequential else CreateMode.PERSISTENT


def ttl_ms(ttl: float | None) -> int:
    """Seconds to the wire's milliseconds; a TTL must be positive."""
    if ttl is None:
        return 0
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"ttl must be a number of seconds, got {type(ttl).__name__}")
    millis = round(ttl * 1000)
    if millis <= 0:
        raise InvalidTTLError(f"ttl must be positive, got {ttl} s", actual=ttl)
    return millis


def create_body(
    path: str,
    value: object = b"",
    *,
    ephemeral: bool = False,
    sequential: bool = False,
    container: bool = False,
    ttl: float | None = None,
    acl: Iterable[Any] | None = None,
) -> dict[str, Any]:
    mode = create_mode(ephemeral=ephemeral, sequential=sequential, container=container, ttl=ttl)
    body: dict[str, Any] = {
        "path": validate(path, sequential=sequential),
        "data": to_bytes(value),
        "mode": int(mode),
    }
    if mode.is_ttl:
        body["ttl_ms"] = ttl_ms(ttl)
    if acl is not None:
        body["acl"] = acl_body(acl)
    return body


def acl_body(acl: Iterable[Any]) -> list[list[Any]]:
    """The wire form of an ACL given as coord.acl.ACL entries (or kazoo's, which have the
    same `perms` and `id.scheme`/`id.id` fields); anything else is a TypeError here."""
    if isinstance(acl, (str, bytes)):
        raise TypeError("acl must be a list of ACL entries, not a string")
    out: list[list[Any]] = []
    for entry in acl:
        perms = getattr(entry, "perms", None)
        ident = getattr(entry, "id", None)
        scheme = getattr(ident, "scheme", None)
        name = getattr(ident, "id", None)
        if not (
            isinstance(perms, int)
            and not isinstance(perms, bool)
            and isinstance(scheme, str)
            and isinstance(name, str)
        ):
            raise TypeError(f"not an ACL entry (use coord.acl.make_acl): {entry!r}")
        out.append([int(perms), scheme, name])
    return out


def auth_pair(scheme: object, credential: object) -> tuple[str, bytes]:
    """An auth credential as the wire carries it: (scheme, credential bytes).

    A str credential is UTF-8 ("user:password" for digest), as kazoo sends it.
    """
    if not isinstance(scheme, str) or not scheme:
        raise TypeError(f"auth scheme must be a non-empty str, got {scheme!r}")
    if isinstance(credential, str):
        return scheme, credential.encode("utf-8")
    return scheme, to_bytes(credential, "auth credential")


def set_acl_body(path: str, acl: Iterable[Any], version: int = -1) -> dict[str, Any]:
    return {"path": validate(path), "acl": acl_body(acl), "version": check_version(version)}


def delete_body(path: str, version: int = -1) -> dict[str, Any]:
    return {"path": validate(path), "version": check_version(version)}


def set_body(path: str, value: object, version: int = -1) -> dict[str, Any]:
    return {"path": validate(path), "data": to_bytes(value), "version": check_version(version)}


def check_body(path: str, version: int) -> dict[str, Any]:
    return {"path": validate(path), "version": check_version(version)}


# --------------------------------------------------------------------------
# Results.


def _malformed(op: OpCode, result: Any) -> MalformedFrameError:
    text = repr(result)
    if len(text) > 120:
        text = text[:117] + "..."
    return MalformedFrameError(f"bad {op.name} result from the server: {text}")


def parse_stat(op: OpCode, value: Any) -> Stat:
    if not isinstance(value, list) or len(value) != len(Stat._fields):
        raise _malformed(op, value)
    if not all(isinstance(x, int) for x in value):
        raise _malformed(op, value)
    return stat_from_wire(value)


def parse_create(result: Any) -> tuple[str, Stat]:
    if not isinstance(result, list) or len(result) != 2 or not isinstance(result[0], str):
        raise _malformed(OpCode.CREATE, result)
    return result[0], parse_stat(OpCode.CREATE, result[1])


def parse_exists(result: Any) -> Stat | None:
    return None if result is None else parse_stat(OpCode.EXISTS, result)


def parse_get(result: Any) -> tuple[bytes, Stat]:
    """Data and Stat; a node created with null data (through the ZooKeeper port) reads b""."""
    if not isinstance(result, list) or len(result) != 2:
        raise _malformed(OpCode.GET_DATA, result)
    data = b"" if result[0] is None else result[0]
    if not isinstance(data, bytes):
        raise _malformed(OpCode.GET_DATA, result)
    return data, parse_stat(OpCode.GET_DATA, result[1])


def parse_acls(result: Any) -> tuple[list[ACL], Stat]:
    """GET_ACL's [acl, stat]: the entries as coord.acl.ACL, and the node's Stat."""
    if not isinstance(result, list) or len(result) != 2 or not isinstance(result[0], list):
        raise _malformed(OpCode.GET_ACL, result)
    entries = result[0]
    for entry in entries:
        if not (
            isinstance(entry, list)
            and len(entry) == 3
            and isinstance(entry[0], int)
            and isinstance(entry[1], str)
            and isinstance(entry[2], str)
        ):
            raise _malformed(OpCode.GET_ACL, result)
    return list(acl_from_wire(entries)), parse_stat(OpCode.GET_ACL, result[1])


def parse_children(result: Any) -> tuple[list[str], Stat | None]:
    if not isinstance(result, list) or len(result) != 2 or not isinstance(result[0], list):
        raise _malformed(OpCode.GET_CHILDREN, result)
    names = result[0]
    if not all(isinstance(name, str) for name in names):
        raise _malformed(OpCode.GET_CHILDREN, result)
    stat = None if result[1] is None else parse_stat(OpCode.GET_CHILDREN, result[1])
    return names, stat


def parse_multi(ops: list[int], result: Any) -> list[Any]:
    """One entry per op: created path, Stat for set, True for check/delete, or the error.

    When the multi failed, every entry is an exception instance (the failing
    op's own error, RolledBackError for the rest), as kazoo reports it.
    """
    if not isinstance(result, list) or len(result) != len(ops):
        raise _malformed(OpCode.MULTI, result)
    out: list[Any] = []
    for op, item in zip(ops, result, strict=True):
        if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], int):
            raise _malformed(OpCode.MULTI, result)
        code, value = item
        if code != 0:
            out.append(KeeperError.from_wire(code, value))
        elif op == OpCode.CREATE:
            if isinstance(value, list):
                value = value[0] if value else None
            if not isinstance(value, str):
                raise _malformed(OpCode.MULTI, result)
            out.append(value)
        elif op == OpCode.SET_DATA:
            out.append(parse_stat(OpCode.MULTI, value))
        else:
            out.append(True)
    return out
