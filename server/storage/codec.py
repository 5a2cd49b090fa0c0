"""Txns as msgpack values, for the log (and, later, for the wire between peers).

A txn is encoded as a flat list: the header fields, a kind tag, then the
body's fields in declaration order. A multi nests its sub-txns' body lists.
The tags are part of the on-disk format: never renumber them.
"""

from __future__ import annotations

from typing import Any

import msgpack

from coord.acl import OPEN_ACL_UNSAFE, acl_from_wire, acl_to_wire
from coord.messages import CreateMode
from coord.server.core.txn import (
    CheckTxn,
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    DeleteTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnBody,
    TxnHeader,
)


class TxnDecodeError(ValueError):
    """Bytes that passed the CRC but do not hold a txn this version understands."""


_TAGS: dict[type, int] = {
    CreateTxn: 1,
    DeleteTxn: 2,
    SetDataTxn: 3,
    CheckTxn: 4,
    MultiTxn: 5,
    CreateSessionTxn: 6,
    CloseSessionTxn: 7,
    SetACLTxn: 8,
}


def body_to_list(body: TxnBody) -> list[Any]:
    tag = _TAGS[type(body)]
    if isinstance(body, CreateTxn):
        out = [
            tag,
            body.path,
            body.data,
            int(body.mode),
            body.ephemeral_owner,
            body.ttl_ms,
            body.parent_cversion,
        ]
        if body.acl != OPEN_ACL_UNSAFE:
            out.append(acl_to_wire(body.acl))  # the open ACL is the absent eighth field
        return out
    if isinstance(body, DeleteTxn):
        return [tag, body.path, body.parent_cversion]
    if isinstance(body, SetDataTxn):
        return [tag, body.path, body.data, body.version]
    if isinstance(body, SetACLTxn):
        return [tag, body.path, acl_to_wire(body.acl), body.aversion]
    if isinstance(body, CheckTxn):
        return [tag, body.path, body.version]
    if isinstance(body, MultiTxn):
        return [tag, [body_to_list(sub) for sub in body.txns]]
    if isinstance(body, CreateSessionTxn):
        return [tag, body.session_id, body.timeout_ms, body.password]
    if isinstance(body, CloseSessionTxn):
        return [
            tag,
            body.session_id,
            body.expired,
            [[d.path, d.parent_cversion] for d in body.deletes],
        ]
    raise TypeError(f"cannot encode {type(body).__name__}")


def body_from_list(value: list[Any]) -> TxnBody:
    tag = value[0]
    if tag == 1:
        _, path, data, mode, owner, ttl, parent_cversion, *acl = value
        if len(acl) > 1:
            raise TxnDecodeError(f"a create txn has {len(value)} fields")
        return CreateTxn(
            path,
            data,
            CreateMode(mode),
            owner,
            ttl,
            parent_cversion,
            acl_from_wire(acl[0]) if acl else OPEN_ACL_UNSAFE,
        )
    if tag == 2:
        return DeleteTxn(value[1], value[2])
    if tag == 3:
        return SetDataTxn(value[1], value[2], value[3])
    if tag == 4:
        return CheckTxn(value[1], value[2])
    if tag == 5:
        subs = tuple(body_from_list(sub) for sub in value[1])
        return MultiTxn(subs)  # type: ignore[arg-type]
    if tag == 6:
        return CreateSessionTxn(value[1], value[2], value[3])
    if tag == 8:
        return SetACLTxn(value[1], acl_from_wire(value[2]), value[3])
    if tag == 7:
        deletes = tuple(DeleteTxn(path, cversion) for path, cversion in value[3])
        return CloseSessionTxn(value[1], value[2], deletes)
    raise TxnDecodeError(f"unknown txn tag {tag!r}")


def txn_to_list(txn: Txn) -> list[Any]:
    header = txn.header
    return [header.zxid, header.time_ms, header.session_id, header.xid, body_to_list(txn.body)]


def txn_from_list(value: Any) -> Txn:
    try:
        zxid, time_ms, session_id, xid, body = value
        return Txn(TxnHeader(zxid, time_ms, session_id, xid), body_from_list(body))
    except TxnDecodeError:
        raise
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise TxnDecodeError(f"not a txn: {exc}") from None


def encode_txn(txn: Txn) -> bytes:
    return msgpack.packb(txn_to_list(txn), use_bin_type=True)


def decode_txn(data: bytes) -> Txn:
    try:
        value = msgpack.unpackb(data, raw=False)
    except Exception as exc:
        raise TxnDecodeError(f"not msgpack: {exc}") from None
    return txn_from_list(value)


def peek_zxid(data: bytes) -> int | None:
    """A logged txn's zxid without decoding the rest (None if the encoding is unusual).

    A txn is a 5-element msgpack array whose first item is the zxid; zxids past
    epoch 0 always take msgpack's 8-byte unsigned form.
    """
    if len(data) >= 10 and data[0] == 0x95 and data[1] == 0xCF:
        return int.from_bytes(data[2:10], "big")
    return None
