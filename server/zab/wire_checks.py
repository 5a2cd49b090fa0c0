"""Range and type checks for peer messages, applied to the raw msgpack values before decoding.

Why raw values: the dataclasses do not check their fields, and the log's txn
decoder coerces (an ACL's scheme goes through str()), so a hostile value would
reach the ZAB core, and then the disk, with a type or range nobody planned
for. Here every field is checked for its exact type (an int is not a bool) and
for the protocol's range: an epoch and a zxid's counter each fit in 32 bits,
a member id names a configured member, a length stays under its limit. A check
that fails raises `WireCheckError` with a message that says which field.
Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from coord.errors import InvalidPathError
from coord.framing import MAX_DATA_SIZE
from coord.messages import CreateMode
from coord.paths import validate

U32: Final = 1 << 32
U64: Final = 1 << 64
I64_MIN: Final = -(1 << 63)
MAX_EPOCH: Final = U32 - 1
"""The largest epoch: a zxid is epoch << 32 | counter in 64 unsigned bits."""
MAX_MEMBER_ID: Final = 255
MAX_TXNS: Final = 1_000_000
"""Txns in one message (a DIFF carries at most the leader's history window)."""
MAX_MULTI_OPS: Final = 10_000
MAX_ACL_ENTRIES: Final = 1024
MAX_ID_CHARS: Final = 4096
MAX_PASSWORD: Final = 256
MAX_SESSIONS: Final = 1_000_000
MAX_SNAPSHOT_INLINE: Final = 1 << 40
"""The snapshot inside a Sync is bounded by the frame and reassembly limits; this is a backstop."""
_CREATE_MODES: Final = frozenset(int(m) for m in CreateMode)
_ROLES: Final = frozenset({"looking", "following", "leading", "observing"})
_SYNC_MODES: Final = frozenset({"diff", "trunc", "snap"})


class WireCheckError(ValueError):
    """A peer message field outside its type or range."""


def check_int(value: Any, lo: int, hi: int, what: str) -> int:
    """`value` is an int (not a bool) with lo <= value < hi."""
    if type(value) is not int:
        raise WireCheckError(f"{what} must be an int, got {type(value).__name__}")
    if not lo <= value < hi:
        raise WireCheckError(f"{what} {value} is out of range [{lo}, {hi})")
    return value


def check_epoch(value: Any, what: str = "epoch") -> int:
    return check_int(value, 0, MAX_EPOCH + 1, what)


def check_zxid(value: Any, what: str = "zxid", *, allow_minus_one: bool = False) -> int:
    if allow_minus_one and type(value) is int and value == -1:
        return value
    return check_int(value, 0, U64, what)


def check_i64(value: Any, what: str) -> int:
    return check_int(value, I64_MIN, U64, what)


def check_bool(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise WireCheckError(f"{what} must be a bool, got {type(value).__name__}")
    return value


def check_str(value: Any, limit: int, what: str) -> str:
    if type(value) is not str:
        raise WireCheckError(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise WireCheckError(f"{what} is {len(value)} characters, over {limit}")
    return value


def check_bytes(value: Any, limit: int, what: str, *, nullable: bool = False) -> bytes | None:
    if value is None and nullable:
        return None
    if type(value) is not bytes:
        raise WireCheckError(f"{what} must be bytes, got {type(value).__name__}")
    if len(value) > limit:
        raise WireCheckError(f"{what} is {len(value)} bytes, over {limit}")
    return value


def check_list(value: Any, limit: int, what: str, length: int | None = None) -> list[Any]:
    if type(value) is not list:
        raise WireCheckError(f"{what} must be a list, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise WireCheckError(f"{what} has {len(value)} fields, expected {length}")
    if len(value) > limit:
        raise WireCheckError(f"{what} has {len(value)} items, over {limit}")
    return value


def check_member(value: Any, members: Collection[int] | None, what: str) -> int:
    check_int(value, 1, MAX_MEMBER_ID + 1, what)
    if members is not None and value not in members:
        raise WireCheckError(f"{what} {value} is not a member of the ensemble")
    return value


def check_path(value: Any, what: str = "path") -> str:
    try:
        return validate(value)
    except InvalidPathError as exc:
        raise WireCheckError(f"{what}: {exc}") from None


def check_acl(value: Any, what: str = "acl") -> None:
    for entry in check_list(value, MAX_ACL_ENTRIES, what):
        check_list(entry, 3, f"{what} entry", length=3)
        perms, scheme, ident = entry
        check_int(perms, 0, 32, f"{what} perms")
        check_str(scheme, 64, f"{what} scheme")
        check_str(ident, MAX_ID_CHARS, f"{what} id")


def _check_create(body: list[Any]) -> None:
    if len(body) not in (7, 8):
        raise WireCheckError(f"a create txn has {len(body)} fields")
    check_path(body[1])
    check_bytes(body[2], MAX_DATA_SIZE, "create data", nullable=True)
    if type(body[3]) is not int or body[3] not in _CREATE_MODES:
        raise WireCheckError(f"create mode {body[3]!r} is not a mode")
    check_i64(body[4], "ephemeral owner")
    check_i64(body[5], "ttl")
    check_i64(body[6], "parent cversion")
    if len(body) == 8:
        check_acl(body[7])


def check_body(body: Any, *, in_multi: bool = False) -> None:
    """A txn body list as coord.server.storage.codec writes it: [tag, fields...]."""
    check_list(body, 8, "txn body")
    if not body:
        raise WireCheckError("empty txn body")
    tag = body[0]
    if type(tag) is not int:
        raise WireCheckError("txn tag must be an int")
    if tag == 1:
        _check_create(body)
    elif tag == 2:
        check_list(body, 3, "delete txn", length=3)
        check_path(body[1])
        check_i64(body[2], "parent cversion")
    elif tag == 3:
        check_list(body, 4, "set txn", length=4)
        check_path(body[1])
        check_bytes(body[2], MAX_DATA_SIZE, "set data", nullable=True)
        check_i64(body[3], "version")
    elif tag == 4:
        check_list(body, 3, "check txn", length=3)
        check_path(body[1])
        check_i64(body[2], "version")
    elif tag == 8:
        check_list(body, 4, "setacl txn", length=4)
        check_path(body[1])
        check_acl(body[2])
        check_i64(body[3], "aversion")
    elif in_multi:
        raise WireCheckError(f"txn tag {tag} cannot be inside a multi")
    elif tag == 5:
        check_list(body, 2, "multi txn", length=2)
        for sub in check_list(body[1], MAX_MULTI_OPS, "multi ops"):
            check_body(sub, in_multi=True)
    elif tag == 6:
        check_list(body, 4, "create session txn", length=4)
        check_i64(body[1], "session id")
        check_int(body[2], 0, 1 << 31, "session timeout")
        check_bytes(body[3], MAX_PASSWORD, "session password")
    elif tag == 7:
        check_list(body, 4, "close session txn", length=4)
        check_i64(body[1], "session id")
        check_bool(body[2], "expired")
        for delete in check_list(body[3], MAX_TXNS, "close session deletes"):
            check_list(delete, 2, "close session delete", length=2)
            check_path(delete[0])
            check_i64(delete[1], "parent cversion")
    else:
        raise WireCheckError(f"unknown txn tag {tag}")


def check_txns(value: Any, *, max_epoch: int | None = None) -> list[Any]:
    """A list of txns in strictly increasing zxid order (none above `max_epoch`)."""
    txns = check_list(value, MAX_TXNS, "txns")
    previous = 0
    for txn in txns:
        check_list(txn, 5, "txn", length=5)
        zxid = check_zxid(txn[0], "txn zxid")
        if zxid <= previous:
            raise WireCheckError(f"txn zxid {zxid:#x} does not follow {previous:#x}")
        if max_epoch is not None and zxid >> 32 > max_epoch:
            raise WireCheckError(f"txn zxid {zxid:#x} is from an epoch after {max_epoch}")
        previous = zxid
        check_i64(txn[1], "txn time")
        check_i64(txn[2], "txn session id")
        check_i64(txn[3], "txn xid")
        check_body(txn[4])
    return txns


def check_role(value: Any) -> str:
    if type(value) is not str or value not in _ROLES:
        raise WireCheckError(f"role {value!r} is not a role")
    return value


def check_sync_mode(value: Any) -> str:
    if type(value) is not str or value not in _SYNC_MODES:
        raise WireCheckError(f"sync mode {value!r} is not a mode")
    return value


def check_auth_pairs(value: Any) -> None:
    for pair in check_list(value, MAX_ACL_ENTRIES, "auth ids"):
        check_list(pair, 2, "auth id", length=2)
        check_str(pair[0], 64, "auth scheme")
        check_str(pair[1], MAX_ID_CHARS, "auth id")
