"""ZooKeeper request bodies as native calls: what a jute packet asks of the core.

One pure function, `native_call(op, body)`: a decoded jute request becomes
the native `(op, body)` that `ServerCore.request` takes (coord.messages holds
the native layouts), or the ZooKeeper error code the translator answers at
once without asking the core (a create with an empty ACL, a read op inside a
multi, reconfig, an unknown op). The translator (coord.server.zk.translate)
keeps everything that depends on the connection: xids, the order of replies,
auth and whoAmI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from coord.errors import BadArgumentsError, InvalidACLError, InvalidPathError, UnimplementedError
from coord.messages import OpCode
from coord.paths import validate
from coord.server.zk.jute import (
    ACL,
    AddWatchRequest,
    CheckVersionRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    MultiRequest,
    PathRequest,
    PathWatchRequest,
    Record,
    SetACLRequest,
    SetDataRequest,
    SetWatches,
    SetWatches2,
    WatchesRequest,
    ZkOp,
)
from coord.server.zk.replies import CREATE_OPS

RECONFIG_DISABLED: Final = -123
"""ZooKeeper's answer to reconfig when dynamic reconfiguration is off (ours is always off)."""

_WRITE_SUB_OPS: Final = CREATE_OPS | {ZkOp.DELETE, ZkOp.SET_DATA, ZkOp.CHECK}
_READ_SUB_OPS: Final = frozenset({ZkOp.GET_DATA, ZkOp.GET_CHILDREN})

_PATH_OPS: Final = {
    ZkOp.SYNC: OpCode.SYNC,
    ZkOp.GET_ACL: OpCode.GET_ACL,
    ZkOp.GET_ALL_CHILDREN_NUMBER: OpCode.GET_ALL_CHILDREN_NUMBER,
}
"""Ops whose request is a bare path."""


@dataclass(frozen=True, slots=True)
class NativeCall:
    """What to ask the core: a native op and body (`sub_ops`: a multi's ZooKeeper ops)."""

    op: int
    body: dict[str, Any]
    sub_ops: tuple[int, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Refused:
    """Answered at once with ZooKeeper error code `err`; the core is not asked."""

    err: int


def native_call(op: int, body: Record | None) -> NativeCall | Refused:
    """The native call for ZooKeeper request `op` (not ping, auth or whoAmI: the
    translator answers those with what it knows of the connection)."""
    if op in CREATE_OPS:
        assert isinstance(body, CreateRequest | CreateTTLRequest)
        if not body.acl:
            return Refused(InvalidACLError.code)
        return NativeCall(OpCode.CREATE, _create_body(body))
    if op in (ZkOp.DELETE, ZkOp.CHECK):
        assert isinstance(body, DeleteRequest | CheckVersionRequest)
        native = OpCode.DELETE if op == ZkOp.DELETE else OpCode.CHECK
        return NativeCall(native, {"path": _text(body.path), "version": body.version})
    if op in (ZkOp.EXISTS, ZkOp.GET_DATA):
        assert isinstance(body, PathWatchRequest)
        native = OpCode.EXISTS if op == ZkOp.EXISTS else OpCode.GET_DATA
        return NativeCall(native, {"path": _text(body.path), "watch": body.watch})
    if op in (ZkOp.GET_CHILDREN, ZkOp.GET_CHILDREN2):
        assert isinstance(body, PathWatchRequest)
        request = {
            "path": _text(body.path),
            "watch": body.watch,
            "include_stat": op == ZkOp.GET_CHILDREN2,
        }
        return NativeCall(OpCode.GET_CHILDREN, request)
    if op == ZkOp.SET_DATA:
        assert isinstance(body, SetDataRequest)
        request = {"path": _text(body.path), "data": body.data, "version": body.version}
        return NativeCall(OpCode.SET_DATA, request)
    if op in _PATH_OPS:
        assert isinstance(body, PathRequest)
        return NativeCall(_PATH_OPS[ZkOp(op)], {"path": _text(body.path)})
    if op == ZkOp.GET_EPHEMERALS:
        assert isinstance(body, PathRequest)
        prefix = (body.path or "").strip() or "/"
        return NativeCall(OpCode.GET_EPHEMERALS, {"prefix": prefix})
    if op == ZkOp.SET_ACL:
        assert isinstance(body, SetACLRequest)
        if not body.acl:
            return Refused(InvalidACLError.code)
        request = {"path": _text(body.path), "acl": _acl(body.acl), "version": body.version}
        return NativeCall(OpCode.SET_ACL, request)
    if op in (ZkOp.MULTI, ZkOp.MULTI_READ):
        assert isinstance(body, MultiRequest)
        return _multi(op, body)
    if op in (ZkOp.CHECK_WATCHES, ZkOp.REMOVE_WATCHES):
        assert isinstance(body, WatchesRequest)
        native = OpCode.CHECK_WATCHES if op == ZkOp.CHECK_WATCHES else OpCode.REMOVE_WATCHES
        return NativeCall(native, {"path": _text(body.path), "watcher_type": body.type})
    if op == ZkOp.ADD_WATCH:
        assert isinstance(body, AddWatchRequest)
        return NativeCall(OpCode.ADD_WATCH, {"path": _text(body.path), "mode": body.mode})
    if op in (ZkOp.SET_WATCHES, ZkOp.SET_WATCHES2):
        # Paths that cannot exist are left out (ZooKeeper would keep a watch that never
        # fires): one of them must not cost the client the rest of its watches.
        assert isinstance(body, SetWatches | SetWatches2)
        return NativeCall(OpCode.SET_WATCHES, _set_watches_body(body))
    if op == ZkOp.CLOSE_SESSION:
        return NativeCall(OpCode.CLOSE_SESSION, {})
    if op == ZkOp.RECONFIG:
        return Refused(RECONFIG_DISABLED)
    return Refused(UnimplementedError.code)


def _multi(op: int, body: MultiRequest) -> NativeCall | Refused:
    allowed = _WRITE_SUB_OPS if op == ZkOp.MULTI else _READ_SUB_OPS
    ops: list[list[Any]] = []
    for sub_op, sub in body.ops:
        if sub_op not in allowed:
            return Refused(BadArgumentsError.code)
        if sub_op in CREATE_OPS:
            assert isinstance(sub, CreateRequest | CreateTTLRequest)
            if not sub.acl:
                return Refused(InvalidACLError.code)
            ops.append([OpCode.CREATE, _create_body(sub)])
        elif isinstance(sub, DeleteRequest | CheckVersionRequest):
            native = OpCode.DELETE if sub_op == ZkOp.DELETE else OpCode.CHECK
            ops.append([native, {"path": _text(sub.path), "version": sub.version}])
        elif isinstance(sub, SetDataRequest):
            set_body = {"path": _text(sub.path), "data": sub.data, "version": sub.version}
            ops.append([OpCode.SET_DATA, set_body])
        else:
            assert isinstance(sub, PathWatchRequest)
            native = OpCode.GET_DATA if sub_op == ZkOp.GET_DATA else OpCode.GET_CHILDREN
            ops.append([native, {"path": _text(sub.path), "watch": sub.watch}])
    native_op = OpCode.MULTI if op == ZkOp.MULTI else OpCode.MULTI_READ
    return NativeCall(native_op, {"ops": ops}, tuple(o for o, _ in body.ops))


def _valid(path: str) -> bool:
    try:
        validate(path)
    except InvalidPathError:
        return False
    return True


def _text(value: str | None) -> str:
    """A null ustring as the empty string: path validation then refuses it (BadArguments)."""
    return "" if value is None else value


def _acl(acl: list[ACL] | None) -> list[list[Any]]:
    """jute ACL entries as native `[perms, scheme, id]` (a null string as "": refused)."""
    return [[a.perms, a.id.scheme or "", a.id.id or ""] for a in acl or ()]


def _create_body(body: CreateRequest | CreateTTLRequest) -> dict[str, Any]:
    return {
        "path": _text(body.path),
        "data": body.data,
        "mode": body.flags,
        "ttl_ms": body.ttl if isinstance(body, CreateTTLRequest) else 0,
        "acl": _acl(body.acl),
    }


def _set_watches_body(body: SetWatches | SetWatches2) -> dict[str, Any]:
    def paths(values: list[str | None] | None) -> list[str]:
        return [v for v in values or () if v is not None and _valid(v)]

    request = {
        "relative_zxid": body.relative_zxid,
        "data": paths(body.data),
        "exist": paths(body.exist),
        "child": paths(body.child),
    }
    if isinstance(body, SetWatches2):
        request["persistent"] = paths(body.persistent)
        request["persistent_recursive"] = paths(body.persistent_recursive)
    return request


__all__ = ["RECONFIG_DISABLED", "NativeCall", "Refused", "native_call"]
