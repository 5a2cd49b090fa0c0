"""The native wire's codec for the core's output: frozen values in, msgpack frames out.

The layouts are coord.messages' contract (a reply is `[xid, zxid, err,
result]`, a handshake answer a map); this module is the only place on the
server that builds them. `send(output) -> bytes` is one frame, as h11's
`send(event)`; `NativeEncoder.send_within` encodes a batch under a byte
budget, so an over-long batch is never built whole.

The reverse, `result_from_wire` and `output_from_wire`, reads the same
layouts back into values: the follower uses it for a result the leader sent
over the peer link (a retried write's first result, a multi's errors), and
tests read what a client received by field name. Both treat their input as
hostile: a shape that does not fit raises `ValueError`.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from coord.acl import acl_from_wire, acl_to_wire
from coord.errors import KeeperError
from coord.messages import (
    NOTICE_XID,
    PROTOCOL_VERSION,
    WATCH_XID,
    EventType,
    OpCode,
    Stat,
    WatchedEvent,
)
from coord.server.core.output import (
    Children,
    ClientOutput,
    Connected,
    ConnectRefused,
    Created,
    ErrorReply,
    MultiResults,
    NodeAcl,
    NodeData,
    Notice,
    OpOutcome,
    Reply,
    Result,
)

_HEADER = struct.Struct(">I")
_EVENT_TYPES = frozenset(int(kind) for kind in EventType)


class OverBudget(Exception):
    """A batch would pass its byte budget (the connection is cut off)."""


# -- encoding ------------------------------------------------------------------------


def result_to_wire(result: Result) -> Any:
    """A reply's result in the native layout (coord.messages lists them by op)."""
    kind = type(result)
    if kind is Created:
        assert isinstance(result, Created)
        return [result.path, result.stat]
    if kind is NodeData:
        assert isinstance(result, NodeData)
        return [result.data, result.stat]
    if kind is Children:
        assert isinstance(result, Children)
        return [result.names, result.stat]
    if kind is NodeAcl:
        assert isinstance(result, NodeAcl)
        return [acl_to_wire(result.acl), result.stat]
    if kind is MultiResults:
        assert isinstance(result, MultiResults)
        return [
            [0, result_to_wire(o.result)] if o.error is None else [o.error.code, o.error.to_wire()]
            for o in result.outcomes
        ]
    return result  # a Stat (a tuple: a msgpack array), a path, a count, paths, None


def to_wire(output: ClientOutput) -> Any:
    """The msgpack value of one frame."""
    kind = type(output)
    if kind is Reply:
        reply: Any = output  # (the hot path: no isinstance narrowing, no asserts)
        result: Any = reply.result
        rkind = type(result)
        if rkind is NodeData:
            return [reply.xid, reply.zxid, 0, [result.data, result.stat]]
        if result is None or rkind is Stat:
            return [reply.xid, reply.zxid, 0, result]
        return [reply.xid, reply.zxid, 0, result_to_wire(result)]
    if kind is WatchedEvent:
        assert isinstance(output, WatchedEvent)
        return [WATCH_XID, output.zxid, 0, {"type": int(output.type), "path": output.path}]
    if kind is ErrorReply:
        assert isinstance(output, ErrorReply)
        return [output.xid, output.zxid, output.error.code, output.error.to_wire()]
    if kind is Notice:
        assert isinstance(output, Notice)
        return [NOTICE_XID, output.zxid, output.error.code, output.error.to_wire()]
    if kind is Connected:
        assert isinstance(output, Connected)
        return {
            "protocol_version": PROTOCOL_VERSION,
            "timeout_ms": output.timeout_ms,
            "session_id": output.session_id,
            "password": output.password,
            "zxid": output.zxid,
            "server_id": output.server_id,
        }
    assert isinstance(output, ConnectRefused), output
    return {
        "protocol_version": PROTOCOL_VERSION,
        "timeout_ms": 0,
        "session_id": 0,
        "password": b"",
        "zxid": output.zxid,
        "server_id": output.server_id,
        "error": output.error.code,
        "message": output.error.message,
    }


def send(output: ClientOutput) -> bytes:
    """One frame's bytes, length prefix included."""
    body = msgpack.packb(to_wire(output), use_bin_type=True)
    return _HEADER.pack(len(body)) + body


class NativeEncoder:
    """Encodes a connection's frames; the native wire keeps no state between them."""

    finished = False
    """(The ZooKeeper wire may end a connection after a reply; this one never does.)"""

    def encode(self, outputs: list[ClientOutput]) -> bytes:
        return self.send_within(outputs, budget=1 << 62)

    def send_within(self, outputs: list[ClientOutput], budget: int) -> bytes:
        """The frames' bytes; raises OverBudget as soon as they would pass `budget`."""
        packer = msgpack.Packer(use_bin_type=True)
        parts: list[bytes] = []
        size = 0
        for output in outputs:
            body = packer.pack(to_wire(output))
            size += 4 + len(body)
            if size > budget:
                raise OverBudget(f"over {size} bytes")
            parts.append(_HEADER.pack(len(body)))
            parts.append(body)
        return b"".join(parts)


# -- decoding --------------------------------------------------------------------------


def _stat(value: Any) -> Stat:
    if not isinstance(value, list | tuple) or len(value) != len(Stat._fields):
        raise ValueError(f"not a stat: {value!r}")
    if not all(type(field) is int for field in value):
        raise ValueError(f"not a stat: {value!r}")
    return Stat(*value)


def _pair(value: Any) -> tuple[Any, Any]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"not a pair: {value!r}")
    return value[0], value[1]


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"not a list of strings: {value!r}")
    return list(value)


def result_from_wire(op: int, value: Any, sub_ops: tuple[int, ...] = ()) -> Result:
    """The result of a successful `op` from its native layout (`sub_ops`: a multi's ops)."""
    if op == OpCode.CREATE:
        path, stat = _pair(value)
        if not isinstance(path, str):
            raise ValueError(f"not a path: {path!r}")
        return Created(path, _stat(stat))
    if op == OpCode.GET_DATA:
        data, stat = _pair(value)
        if data is not None and not isinstance(data, bytes):
            raise ValueError(f"not data: {data!r}")
        return NodeData(data, _stat(stat))
    if op == OpCode.GET_CHILDREN:
        names, stat = _pair(value)
        return Children(_strings(names), None if stat is None else _stat(stat))
    if op == OpCode.GET_ACL:
        acl, stat = _pair(value)
        try:
            return NodeAcl(acl_from_wire(acl), _stat(stat))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not an ACL: {acl!r}") from exc
    if op in (OpCode.SET_DATA, OpCode.SET_ACL) or (op == OpCode.EXISTS and value is not None):
        return _stat(value)
    if op in (OpCode.MULTI, OpCode.MULTI_READ):
        return _multi_from_wire(value, sub_ops)
    if op == OpCode.SYNC:
        if not isinstance(value, str):
            raise ValueError(f"not a path: {value!r}")
        return value
    if op == OpCode.GET_ALL_CHILDREN_NUMBER:
        if type(value) is not int:
            raise ValueError(f"not a count: {value!r}")
        return value
    if op == OpCode.GET_EPHEMERALS:
        return _strings(value)
    if value is not None:
        raise ValueError(f"op {op} answers nothing, not {value!r}")
    return None


def _multi_from_wire(value: Any, sub_ops: tuple[int, ...]) -> MultiResults:
    if not isinstance(value, list | tuple) or len(value) != len(sub_ops):
        raise ValueError(f"not {len(sub_ops)} multi results: {value!r}")
    outcomes = []
    for op, item in zip(sub_ops, value, strict=True):
        code, body = _pair(item)
        if type(code) is not int:
            raise ValueError(f"not an error code: {code!r}")
        if code:
            outcomes.append(OpOutcome(error=KeeperError.from_wire(code, body)))
        else:
            outcomes.append(OpOutcome(result_from_wire(op, body)))
    return MultiResults(tuple(outcomes))


def output_from_wire(frame: Any, op: int = 0, sub_ops: tuple[int, ...] = ()) -> ClientOutput:
    """One frame a client received, as the value the core sent (`op`: what a reply answers)."""
    if isinstance(frame, dict):
        return _handshake_from_wire(frame)
    if not isinstance(frame, list | tuple) or len(frame) != 4:
        raise ValueError(f"not a frame: {frame!r}")
    xid, zxid, err, body = frame
    if type(xid) is not int or type(zxid) is not int or type(err) is not int:
        raise ValueError(f"not a frame header: {frame!r}")
    if xid == WATCH_XID:
        if not isinstance(body, dict):
            raise ValueError(f"not a watch event: {body!r}")
        kind = body.get("type")
        if type(kind) is not int or kind not in _EVENT_TYPES:
            raise ValueError(f"not a watch event type: {kind!r}")
        return WatchedEvent(EventType(kind), _text(body.get("path")), zxid)
    if xid == NOTICE_XID:
        return Notice(zxid, KeeperError.from_wire(err, body))
    if err:
        return ErrorReply(xid, zxid, KeeperError.from_wire(err, body))
    return Reply(xid, zxid, result_from_wire(op, body, sub_ops))


def _handshake_from_wire(frame: dict[Any, Any]) -> Connected | ConnectRefused:
    zxid, server_id = _int(frame, "zxid"), _int(frame, "server_id")
    error = frame.get("error", 0)
    if error:
        if type(error) is not int:
            raise ValueError(f"not an error code: {error!r}")
        return ConnectRefused(zxid, server_id, KeeperError.from_wire(error, frame))
    password = frame.get("password")
    if not isinstance(password, bytes):
        raise ValueError(f"not a password: {password!r}")
    return Connected(
        _int(frame, "session_id"), _int(frame, "timeout_ms"), password, zxid, server_id
    )


def _int(frame: dict[Any, Any], name: str) -> int:
    value = frame.get(name)
    if type(value) is not int:
        raise ValueError(f"{name} is not an integer: {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not a path: {value!r}")
    return value


__all__ = [
    "NativeEncoder",
    "OverBudget",
    "output_from_wire",
    "result_from_wire",
    "result_to_wire",
    "send",
    "to_wire",
]
