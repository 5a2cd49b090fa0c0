"""Peer messages as msgpack values: [tag, fields...]. Pure; the tags are the wire format.

Txns inside messages use the log's encoding (server.storage.codec). A Sync in
SNAP mode carries the leader's snapshot bytes (server.storage.snapshot).
"""

from __future__ import annotations

from typing import Any

from server.core import ForwardReply, ForwardRequest, SessionTouches
from server.storage.codec import txn_from_list, txn_to_list
from server.zab.messages import (
    Ack,
    AckEpoch,
    Commit,
    FollowerInfo,
    Inform,
    LeaderInfo,
    NewLeader,
    Notification,
    PeerMessage,
    Ping,
    Proposal,
    Role,
    Sync,
    SyncMode,
    UpToDate,
    Vote,
)


class PeerDecodeError(ValueError):
    """A peer frame that is not a message this version knows."""


WireMessage = PeerMessage | ForwardRequest | ForwardReply | SessionTouches
"""Everything that travels between members: the broadcast's messages and the
request path's (forwarded writes, their refusals, session touches)."""


def encode_message(message: WireMessage) -> list[Any]:
    if isinstance(message, Notification):
        vote = message.vote
        return [1, vote.epoch, vote.zxid, vote.leader, message.round, message.state.value,
                message.sender_epoch]  # fmt: skip
    if isinstance(message, FollowerInfo):
        return [2, message.accepted_epoch, message.last_zxid, message.observer]
    if isinstance(message, LeaderInfo):
        return [3, message.epoch]
    if isinstance(message, AckEpoch):
        return [4, message.epoch, message.current_epoch, message.last_zxid]
    if isinstance(message, Sync):
        txns = [txn_to_list(t) for t in message.txns]
        return [5, message.epoch, message.mode.value, message.truncate_to, message.snapshot_zxid,
                txns, message.commit_zxid, message.snapshot]  # fmt: skip
    if isinstance(message, NewLeader):
        return [6, message.epoch, message.zxid]
    if isinstance(message, UpToDate):
        return [7, message.epoch, message.commit_zxid]
    if isinstance(message, Proposal):
        return [8, message.epoch, [txn_to_list(t) for t in message.txns]]
    if isinstance(message, Ack):
        return [9, message.epoch, message.zxid]
    if isinstance(message, Commit):
        return [10, message.epoch, message.zxid]
    if isinstance(message, Inform):
        return [11, message.epoch, [txn_to_list(t) for t in message.txns]]
    if isinstance(message, Ping):
        return [12, message.epoch, message.commit_zxid]
    if isinstance(message, ForwardRequest):
        auth = [list(pair) for pair in message.auth]
        return [20, message.origin, message.session_id, message.xid, message.op, message.body, auth]
    if isinstance(message, ForwardReply):
        return [21, message.session_id, message.xid, message.err, message.result, message.zxid]
    if isinstance(message, SessionTouches):
        return [22, list(message.session_ids)]
    raise TypeError(f"cannot encode {type(message).__name__}")


def decode_message(value: Any) -> WireMessage:
    try:
        return _decode(value)
    except PeerDecodeError:
        raise
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise PeerDecodeError(f"bad peer message: {exc}") from None


def _decode(value: Any) -> WireMessage:
    tag = value[0]
    if tag == 1:
        _, epoch, zxid, leader, round_, state, sender_epoch = value
        return Notification(Vote(epoch, zxid, leader), round_, Role(state), sender_epoch)
    if tag == 2:
        return FollowerInfo(value[1], value[2], bool(value[3]))
    if tag == 3:
        return LeaderInfo(value[1])
    if tag == 4:
        return AckEpoch(value[1], value[2], value[3])
    if tag == 5:
        _, epoch, mode, truncate_to, snapshot_zxid, txns, commit_zxid, snapshot = value
        return Sync(epoch, SyncMode(mode), truncate_to, snapshot_zxid,
                    tuple(txn_from_list(t) for t in txns), commit_zxid, snapshot)  # fmt: skip
    if tag == 6:
        return NewLeader(value[1], value[2])
    if tag == 7:
        return UpToDate(value[1], value[2])
    if tag == 8:
        return Proposal(value[1], tuple(txn_from_list(t) for t in value[2]))
    if tag == 9:
        return Ack(value[1], value[2])
    if tag == 10:
        return Commit(value[1], value[2])
    if tag == 11:
        return Inform(value[1], tuple(txn_from_list(t) for t in value[2]))
    if tag == 12:
        return Ping(value[1], value[2])
    if tag == 20:
        auth = tuple((str(scheme), str(ident)) for scheme, ident in value[6])
        return ForwardRequest(value[1], value[2], value[3], value[4], value[5], auth)
    if tag == 21:
        return ForwardReply(value[1], value[2], value[3], value[4], value[5])
    if tag == 22:
        return SessionTouches(tuple(value[1]))
    raise PeerDecodeError(f"unknown peer message tag {tag!r}")
