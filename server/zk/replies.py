"""The ZooKeeper wire's codec for the core's results: typed values in, jute records out.

The core answers with the values of coord.server.core.output; the connection
translator (coord.server.zk.translate) keeps each connection's order and
xids, and asks here how one result reads in jute. What differs from the
native wire is decided here too, as ZooKeeper does it:

- Error codes are ZooKeeper's, except ours below -200, which fold into the
  nearest ZooKeeper code (`zk_error_code`).
- The op the client asked decides the body: create and create2 differ only in
  their reply, getChildren and getChildren2 too.
- In a failed multi the ops before the failing one answer 0, the failing one
  its code, and the ops after it RuntimeInconsistency (-2).
- In a multi_read an invalid path answers NoNode, as a lone read does.
"""

from __future__ import annotations

from typing import Final, TypeVar

from coord.errors import (
    BadArgumentsError,
    ChildListTooLargeError,
    DataTooLargeError,
    InvalidPathError,
    InvalidTTLError,
    NoNodeError,
    ReplyTooLargeError,
    RolledBackError,
    RuntimeInconsistencyError,
    ServerSystemError,
    SessionClosedError,
    SessionExpiredError,
    TooManyWatchesError,
)
from coord.messages import Stat
from coord.server.core.output import (
    Children,
    Created,
    MultiResults,
    NodeAcl,
    NodeData,
    OpOutcome,
    Result,
)
from coord.server.zk.jute import (
    ACL,
    Create2Response,
    CreateResponse,
    ErrorResponse,
    GetACLResponse,
    GetAllChildrenNumberResponse,
    GetChildren2Response,
    GetChildrenResponse,
    GetDataResponse,
    GetEphemeralsResponse,
    Id,
    MultiResponse,
    OpResult,
    PathResponse,
    Record,
    StatResponse,
    ZkOp,
)

T = TypeVar("T")

CREATE_OPS: Final = frozenset({ZkOp.CREATE, ZkOp.CREATE2, ZkOp.CREATE_CONTAINER, ZkOp.CREATE_TTL})

_NATIVE_ONLY_CODES: Final = {
    InvalidPathError.code: BadArgumentsError.code,
    DataTooLargeError.code: BadArgumentsError.code,
    InvalidTTLError.code: BadArgumentsError.code,
    ChildListTooLargeError.code: BadArgumentsError.code,
    TooManyWatchesError.code: BadArgumentsError.code,
    ReplyTooLargeError.code: BadArgumentsError.code,
    RolledBackError.code: RuntimeInconsistencyError.code,
    SessionClosedError.code: SessionExpiredError.code,
}


def zk_error_code(code: int) -> int:
    """A native error code as ZooKeeper's (ours below -200 fold into ZooKeeper's)."""
    mapped = _NATIVE_ONLY_CODES.get(code)
    if mapped is not None:
        return mapped
    return ServerSystemError.code if code <= -200 else code


class ResultMismatch(ValueError):
    """The core's result is not what the op answers (a bug: that request fails with
    SystemError, logged; the connection and its other requests carry on)."""


def reply_body(op: int, sub_ops: tuple[int, ...], result: Result) -> Record | None:
    """The jute body of a successful reply to ZooKeeper op `op`."""
    if op in CREATE_OPS:
        created = _expect(result, Created)
        if op == ZkOp.CREATE:
            return CreateResponse(created.path)
        return Create2Response(created.path, created.stat)
    if op in (ZkOp.EXISTS, ZkOp.SET_DATA, ZkOp.SET_ACL):
        return StatResponse(_expect(result, Stat))
    if op == ZkOp.GET_DATA:
        data = _expect(result, NodeData)
        return GetDataResponse(data.data, data.stat)
    if op in (ZkOp.GET_CHILDREN, ZkOp.GET_CHILDREN2):
        children = _expect(result, Children)
        if op == ZkOp.GET_CHILDREN:
            return GetChildrenResponse(list(children.names))
        return GetChildren2Response(list(children.names), _expect(children.stat, Stat))
    if op == ZkOp.GET_ACL:
        node_acl = _expect(result, NodeAcl)
        acl = [ACL(entry.perms, Id(entry.id.scheme, entry.id.id)) for entry in node_acl.acl]
        return GetACLResponse(acl, node_acl.stat)
    if op == ZkOp.SYNC:
        return PathResponse(_expect(result, str))
    if op == ZkOp.GET_ALL_CHILDREN_NUMBER:
        return GetAllChildrenNumberResponse(_expect(result, int))
    if op == ZkOp.GET_EPHEMERALS:
        return GetEphemeralsResponse(list(_expect(result, list)))
    if op == ZkOp.MULTI:
        return MultiResponse(_multi_results(sub_ops, _expect(result, MultiResults)))
    if op == ZkOp.MULTI_READ:
        return MultiResponse(_multi_read_results(sub_ops, _expect(result, MultiResults)))
    if op == ZkOp.ADD_WATCH:
        return ErrorResponse(0)  # what ZooKeeper sends, and the Java client reads
    return None  # delete, check, the other watch ops, closeSession: a header alone


def _expect(value: object, kind: type[T]) -> T:
    if not isinstance(value, kind):
        raise ResultMismatch(f"expected a {kind.__name__}, got {value!r}")
    return value


def _error_result(code: int) -> OpResult:
    return OpResult(ZkOp.ERROR, code, ErrorResponse(code))


def _code(outcome: OpOutcome) -> int:
    return 0 if outcome.error is None else outcome.error.code


def _multi_results(sub_ops: tuple[int, ...], result: MultiResults) -> tuple[OpResult, ...]:
    """Per-op results of a multi; ZooKeeper's convention when one op failed."""
    outcomes = result.outcomes
    if len(outcomes) != len(sub_ops):
        raise ResultMismatch(f"{len(outcomes)} results for {len(sub_ops)} ops")
    if result.failed:
        codes = [_code(outcome) for outcome in outcomes]
        failed = next(
            (i for i, c in enumerate(codes) if c not in (0, RolledBackError.code)),
            next(i for i, c in enumerate(codes) if c),
        )
        return tuple(
            _error_result(
                0
                if index < failed
                else zk_error_code(code)
                if index == failed
                else RuntimeInconsistencyError.code
            )
            for index, code in enumerate(codes)
        )
    out: list[OpResult] = []
    for op, outcome in zip(sub_ops, outcomes, strict=True):
        if op in CREATE_OPS:
            created = _expect(outcome.result, Created)
            if op == ZkOp.CREATE:
                out.append(OpResult(ZkOp.CREATE, 0, CreateResponse(created.path)))
            else:
                response = Create2Response(created.path, created.stat)
                out.append(OpResult(ZkOp.CREATE2, 0, response))
        elif op == ZkOp.SET_DATA:
            out.append(OpResult(ZkOp.SET_DATA, 0, StatResponse(_expect(outcome.result, Stat))))
        else:
            out.append(OpResult(op, 0, None))  # delete, check
    return tuple(out)


def _multi_read_results(sub_ops: tuple[int, ...], result: MultiResults) -> tuple[OpResult, ...]:
    if len(result.outcomes) != len(sub_ops):
        raise ResultMismatch(f"{len(result.outcomes)} results for {len(sub_ops)} ops")
    out: list[OpResult] = []
    for op, outcome in zip(sub_ops, result.outcomes, strict=True):
        code = _code(outcome)
        if code == InvalidPathError.code:
            out.append(_error_result(NoNodeError.code))  # as for a lone read
        elif code:
            out.append(_error_result(zk_error_code(code)))
        elif op == ZkOp.GET_DATA:
            data = _expect(outcome.result, NodeData)
            out.append(OpResult(ZkOp.GET_DATA, 0, GetDataResponse(data.data, data.stat)))
        else:
            names = _expect(outcome.result, Children).names
            out.append(OpResult(ZkOp.GET_CHILDREN, 0, GetChildrenResponse(list(names))))
    return tuple(out)


__all__ = ["CREATE_OPS", "ResultMismatch", "reply_body", "zk_error_code"]
