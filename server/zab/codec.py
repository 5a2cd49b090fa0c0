"""Peer messages as msgpack values: [tag, fields...]. Pure; the tags are the wire format.

Txns inside messages use the log's encoding (coord.server.storage.codec). A Sync in
SNAP mode carries the leader's snapshot bytes (coord.server.storage.snapshot).

`decode_message` is the boundary: every field of every message is checked for
its exact type and the protocol's range (coord.server.zab.wire_checks) before a
message object exists, so nothing the ZAB core sees, and nothing it persists,
came unchecked. A message that fails raises `PeerDecodeError`, and the
transport drops that connection.

A message whose encoding is bigger than a frame may be travels as fragments
(`encode_wire` / `Reassembler`): tag 30 frames [30, index, last, bytes], put
back together on the receiving side under a byte budget. That is how a SNAP's
snapshot, or a large DIFF, crosses a link whose frames are a few MiB.
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from typing import Any, Final

import msgpack

from coord.server.core.forwarding import ForwardReply, ForwardRequest, SessionTouches
from coord.server.storage.codec import txn_from_list, txn_to_list
from coord.server.zab.messages import (
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
from coord.server.zab.wire_checks import (
    MAX_SESSIONS,
    MAX_SNAPSHOT_INLINE,
    WireCheckError,
    check_auth_pairs,
    check_bool,
    check_bytes,
    check_epoch,
    check_i64,
    check_int,
    check_list,
    check_member,
    check_role,
    check_sync_mode,
    check_txns,
    check_zxid,
)

FRAGMENT_TAG: Final = 30
CREATE_SESSION_OP: Final = -10
"""The sequencer's CREATE_SESSION: a forwarded session creation's body is [timeout, password]."""
_HEADER = struct.Struct(">I")
_FRAGMENT_OVERHEAD: Final = 64


class PeerDecodeError(ValueError):
    """A peer frame that is not a valid message: unknown, malformed or out of range."""


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
        return [20, message.origin, message.session_id, message.xid, message.op, message.body, auth,
                message.prev_xid]  # fmt: skip
    if isinstance(message, ForwardReply):
        return [21, message.session_id, message.xid, message.err, message.result, message.zxid]
    if isinstance(message, SessionTouches):
        return [22, list(message.session_ids)]
    raise TypeError(f"cannot encode {type(message).__name__}")


def decode_message(value: Any, members: Collection[int] | None = None) -> WireMessage:
    """Check `value` (a decoded msgpack frame) field by field, then build the message.

    `members` are the ensemble's member ids: a vote or a forwarded request naming
    anyone else is refused (without it, only the id range is checked).
    """
    try:
        _check(value, members)
        return _decode(value)
    except PeerDecodeError:
        raise
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise PeerDecodeError(f"bad peer message: {exc}") from None


_LENGTHS: Final = {1: 7, 2: 4, 3: 2, 4: 4, 5: 8, 6: 3, 7: 3, 8: 3, 9: 3, 10: 3, 11: 3, 12: 3,
                   20: 8, 21: 6, 22: 2}  # fmt: skip


def _check(value: Any, members: Collection[int] | None) -> None:
    if type(value) is not list or not value:
        raise WireCheckError(f"a peer message is a non-empty list, got {type(value).__name__}")
    tag = value[0]
    if type(tag) is not int or tag not in _LENGTHS:
        raise PeerDecodeError(f"unknown peer message tag {tag!r:.40}")
    check_list(value, 8, f"message {tag}", length=_LENGTHS[tag])
    if tag == 1:
        check_epoch(value[1], "vote epoch")
        check_zxid(value[2], "vote zxid")
        check_member(value[3], members, "vote leader")
        check_int(value[4], 0, 1 << 63, "election round")
        check_role(value[5])
        check_epoch(value[6], "sender epoch")
    elif tag == 2:
        check_epoch(value[1], "accepted epoch")
        check_zxid(value[2], "last zxid")
        check_bool(value[3], "observer")
    elif tag == 3:
        check_epoch(value[1])
    elif tag == 4:
        check_epoch(value[1])
        check_epoch(value[2], "current epoch")
        check_zxid(value[3], "last zxid", allow_minus_one=True)
    elif tag == 5:
        epoch = check_epoch(value[1])
        check_sync_mode(value[2])
        check_zxid(value[3], "truncate_to")
        check_zxid(value[4], "snapshot zxid")
        check_txns(value[5], max_epoch=epoch)
        check_zxid(value[6], "commit zxid")
        check_bytes(value[7], MAX_SNAPSHOT_INLINE, "snapshot", nullable=True)
    elif tag in (6, 7, 9, 10, 12):
        check_epoch(value[1])
        check_zxid(value[2])
    elif tag in (8, 11):
        check_txns(value[2], max_epoch=check_epoch(value[1]))
    elif tag == 20:
        check_member(value[1], members, "forwarding member")
        check_i64(value[2], "session id")
        check_i64(value[3], "xid")
        op = check_int(value[4], -(1 << 31), 1 << 31, "op")
        if op == CREATE_SESSION_OP:
            check_list(value[5], 2, "session request", length=2)
            check_int(value[5][0], 0, 1 << 31, "session timeout")
            check_bytes(value[5][1], 256, "session password")
        elif value[5] is not None and type(value[5]) is not dict:
            raise WireCheckError(f"a forwarded request body is a map, got {type(value[5])}")
        check_auth_pairs(value[6])
        check_i64(value[7], "previous xid")
    elif tag == 21:
        check_i64(value[1], "session id")
        check_i64(value[2], "xid")
        check_int(value[3], -(1 << 31), 1 << 31, "err")
        check_zxid(value[5])
    elif tag == 22:
        for session_id in check_list(value[1], MAX_SESSIONS, "session ids"):
            check_i64(session_id, "session id")


def _decode(value: Any) -> WireMessage:
    tag = value[0]
    if tag == 1:
        _, epoch, zxid, leader, round_, state, sender_epoch = value
        return Notification(Vote(epoch, zxid, leader), round_, Role(state), sender_epoch)
    if tag == 2:
        return FollowerInfo(value[1], value[2], value[3])
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
        return ForwardRequest(value[1], value[2], value[3], value[4], value[5], auth, value[7])
    if tag == 21:
        return ForwardReply(value[1], value[2], value[3], value[4], value[5])
    if tag == 22:
        return SessionTouches(tuple(value[1]))
    raise PeerDecodeError(f"unknown peer message tag {tag!r}")


# -- fragments: messages bigger than a frame -------------------------------------------


def encode_wire(message: WireMessage, max_frame: int) -> list[bytes]:
    """`message` as length-prefixed frames, none with a body over `max_frame` bytes.

    Most messages are one frame. A bigger one is cut into fragment frames
    [30, index, last, piece]; `Reassembler` puts them back together.
    """
    body = msgpack.packb(encode_message(message), use_bin_type=True)
    if len(body) <= max_frame:
        return [_HEADER.pack(len(body)) + body]
    step = max_frame - _FRAGMENT_OVERHEAD
    if step <= 0:
        raise ValueError(f"max_frame {max_frame} leaves no room for a fragment")
    frames = []
    count = (len(body) + step - 1) // step
    view = memoryview(body)
    for index in range(count):
        piece = view[index * step : (index + 1) * step]
        part = msgpack.packb([FRAGMENT_TAG, index, index == count - 1, piece], use_bin_type=True)
        frames.append(_HEADER.pack(len(part)) + part)
    return frames


class FragmentBudget:
    """Bytes of partly received messages one member holds, over all its peer connections.

    Shared by every connection's `Reassembler`, so the bound holds whatever the
    number of connections.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used = max(0, self.used - size)


class Reassembler:
    """One connection's fragments back into whole message values (sans-IO).

    Feed it each decoded frame with `add`: it returns the frame itself when it
    is not a fragment, the whole message's value once the last fragment of one
    arrived, or None while more are due. Fragments out of order, a message over
    the budget, or anything else between two fragments raise PeerDecodeError
    (the connection is then dropped; call `close` to give the bytes back).
    """

    def __init__(self, budget: FragmentBudget) -> None:
        self._budget = budget
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, value: Any) -> Any:
        is_fragment = type(value) is list and len(value) == 4 and value[0] == FRAGMENT_TAG
        if not is_fragment:
            if self._parts:
                self.close()
                raise PeerDecodeError("a message arrived between the fragments of another")
            return value
        try:
            index = check_int(value[1], 0, 1 << 32, "fragment index")
            last = check_bool(value[2], "fragment last")
            piece = check_bytes(value[3], 1 << 32, "fragment")
        except WireCheckError as exc:
            self.close()
            raise PeerDecodeError(str(exc)) from None
        assert piece is not None
        if index != len(self._parts):
            self.close()
            raise PeerDecodeError(f"fragment {index} arrived, expected {len(self._parts)}")
        if not self._budget.take(len(piece)):
            self.close()
            raise PeerDecodeError(
                f"a fragmented message is over the budget of {self._budget.limit} bytes"
            )
        self._parts.append(piece)
        self._size += len(piece)
        if not last:
            return None
        body = b"".join(self._parts)
        self.close()
        try:
            return msgpack.unpackb(body, raw=False, use_list=True, strict_map_key=True)
        except Exception as exc:  # msgpack raises several unrelated types
            raise PeerDecodeError(f"a fragmented message is not msgpack: {exc}") from None

    def close(self) -> None:
        """Drop what is held, giving its bytes back to the budget."""
        self._budget.give(self._size)
        self._parts = []
        self._size = 0
