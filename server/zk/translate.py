"""ZkConnectionTranslator: one ZooKeeper client connection, spoken to the native core.

Why a translator. The ServerCore is the single source of truth for sessions,
watches, ordering and replication; it speaks the native protocol
(coord.messages). A ZooKeeper client (kazoo, the Java client, Curator, zkCli)
speaks jute. This object sits between the two for one connection and decides
nothing about the tree: it turns decoded jute packets into native
`(xid, op, body)` calls for `core.request` (or a native ConnectRequest for
`core.connect`), and the core's native output frames for this connection back
into jute bytes. Sans-IO, as h11: `receive_data(bytes)`, then `next_event()`
until `NEED_DATA`; `encode(outputs)` for what the core sent; `data_to_send()`
for replies the translator made itself.

Theory of operation.

- Order. The core answers a connection's requests in order, so every request
  sent to the core goes on `_pending` with its ZooKeeper op and xid, and each
  native reply pops the head: the reply is encoded for the op that was asked
  (create and create2 differ only in their reply; getChildren and
  getChildren2 too; exists turns a missing node into NoNode). A few requests
  are answered here (auth, whoAmI, an unknown op, a refused ACL): such an
  answer waits behind the requests already at the core, attached to the last
  pending one, so replies still leave in request order. Watch events and ping
  replies are not in the queue: the core already placed them where they go.
- Xids. The native xid of a forwarded request is ours, not the client's: the
  core deduplicates positive xids per session (a native client's retry), and
  a ZooKeeper client reuses xids on every new connection, which must never be
  mistaken for a retry. So native xids are negative, below -2**32:
  -(tag << 32 | counter), with a random per-connection `tag` from the runtime
  so that two connections of one session do not collide. The core never
  deduplicates non-positive xids, which is ZooKeeper's at-most-as-sent rule.
- Results. The core answers with typed values (coord.server.core.output);
  how each reads in jute, and how our error codes fold into ZooKeeper's, is
  coord.server.zk.replies. A handshake refused with SessionExpired answers
  timeOut=0, sessionId=0 (clients raise SessionExpired); any other refusal (a
  client that has seen a newer zxid, a member without a leader) gets no
  answer: the core closes the connection.
- Four-letter words. A new connection whose first four bytes are a known
  word is a command, not a session: `next_event` returns FourLetterWord.
- Auth. An auth packet for `digest`, `ip` or `x509` goes to the core as a
  native AUTH (the core keeps the connection's ids and checks every ACL with
  them); any other scheme, or a credential the core refuses, gets AuthFailed
  and the connection closes after it (`finished`), as in ZooKeeper. whoAmI
  reports the ids the core accepted.
- Null data. A null buffer in a create or setData stays null (nil on the
  native side), and reads back as a null buffer.

After `next_event` raises (a bad packet), the stream cannot be trusted: the
runtime closes the connection.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from coord.acl import digest_credential
from coord.errors import (
    AuthFailedError,
    InvalidPathError,
    NoNodeError,
    NoWatcherError,
    ServerSystemError,
    SessionExpiredError,
)
from coord.framing import NEED_DATA, NeedData
from coord.messages import (
    PROTOCOL_VERSION,
    ConnectRequest,
    OpCode,
    WatchedEvent,
)
from coord.server.core.output import (
    ClientOutput,
    Connected,
    ConnectRefused,
    ErrorReply,
    Notice,
    Reply,
    Result,
)
from coord.server.zk import jute
from coord.server.zk.jute import (
    MAX_PACKET,
    AuthPacket,
    ClientInfo,
    Id,
    KeeperState,
    PacketDecoder,
    Record,
    ReplyHeader,
    WatcherEvent,
    WhoAmIResponse,
    ZkOp,
)
from coord.server.zk.replies import ResultMismatch, reply_body, zk_error_code
from coord.server.zk.requests import Refused, native_call

ZK_PROTOCOL_VERSION: Final = 0
PASSWORD_BYTES: Final = 16
FOUR_LETTER_WORDS: Final = frozenset(
    {"ruok", "stat", "srvr", "envi", "mntr", "isro", "conf", "cons", "wchs"}
    | {"dump", "wchc", "wchp", "crst", "srst", "dirs", "gtmk", "stmk", "reqs", "kill"}
)
"""Every word ZooKeeper knows: the first nine are answered, the others get ZooKeeper's
"not in the whitelist" text. As a packet length each is far above the limit."""

_BAD_PATH_ANSWERS: Final = {
    ZkOp.EXISTS: NoNodeError.code,
    ZkOp.GET_DATA: NoNodeError.code,
    ZkOp.GET_CHILDREN: NoNodeError.code,
    ZkOp.GET_CHILDREN2: NoNodeError.code,
    ZkOp.GET_ACL: NoNodeError.code,
    ZkOp.GET_ALL_CHILDREN_NUMBER: NoNodeError.code,
    ZkOp.DELETE: NoNodeError.code,
    ZkOp.CHECK_WATCHES: NoWatcherError.code,
    ZkOp.REMOVE_WATCHES: NoWatcherError.code,
    ZkOp.ADD_WATCH: 0,
    ZkOp.SYNC: 0,
}
"""What ZooKeeper answers when these ops name an invalid path: it looks the path up
without validating it, and a node with an invalid path cannot exist. (Creates, sets
and ACL changes validate, and answer BadArguments like ours.)"""

log = logging.getLogger(__name__)

_FORWARDED_AUTH_SCHEMES: Final = frozenset({"digest", "ip", "x509"})


# --------------------------------------------------------------------------
# Events for the runtime


@dataclass(frozen=True, slots=True)
class FourLetterWord:
    """The connection is a four-letter command: answer it and close."""

    word: str


@dataclass(frozen=True, slots=True)
class Handshake:
    """Pass `request` to `core.connect`."""

    request: ConnectRequest
    read_only: bool


@dataclass(frozen=True, slots=True)
class CoreRequest:
    """Pass to `core.request(conn_id, xid, op, body)`."""

    xid: int
    op: int
    body: dict[str, Any]


Event = FourLetterWord | Handshake | CoreRequest


class _State(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    DONE = "done"


class _Close:
    """In a local-reply queue: the connection closes here (after AuthFailed)."""

    __slots__ = ()


_CLOSE: Final = _Close()
_Item = bytes | _Close


class _Pending:
    """A request at the core: how to encode its reply, and what follows it."""

    __slots__ = ("after", "auth_id", "native_xid", "path", "sub_ops", "zk_op", "zk_xid")

    def __init__(
        self, native_xid: int, zk_xid: int, zk_op: int, sub_ops: tuple[int, ...], path: str
    ) -> None:
        self.native_xid = native_xid
        self.zk_xid = zk_xid
        self.zk_op = zk_op
        self.sub_ops = sub_ops
        self.path = path
        self.after: list[_Item] = []
        self.auth_id: Id | None = None
        """For an auth: the id whoAmI reports once the core accepts it."""


class ZkConnectionTranslator:
    """One ZooKeeper connection's translation (see the module docstring)."""

    def __init__(
        self, *, xid_tag: int, client_host: str = "", max_packet: int = MAX_PACKET
    ) -> None:
        if not 0 < xid_tag < 1 << 30:
            raise ValueError(f"xid_tag must be in 1..2**30-1, got {xid_tag}")
        self._tag = xid_tag
        self._counter = 0
        self._decoder = PacketDecoder(max_packet)
        self._state = _State.HANDSHAKE
        self._pending: deque[_Pending] = deque()
        self._outbox: list[_Item] = []
        self._auth_ids: list[Id] = []
        self.client_host = client_host
        self.finished = False
        """The connection must close once the bytes handed out so far are sent."""
        self._closing = False
        """A close is queued (after AuthFailed): nothing more is read, as in ZooKeeper."""
        self.session_id = 0
        self.last_zxid = 0
        self.received = 0
        self.sent = 0

    @property
    def outstanding(self) -> int:
        """Requests at the core not yet answered."""
        return len(self._pending)

    # -- input: bytes from the client ----------------------------------------------

    def receive_data(self, data: bytes | bytearray) -> None:
        self._decoder.receive_data(data)

    def next_event(self) -> Event | NeedData:
        """The next thing for the runtime to do, or NEED_DATA. Raises ProtocolError
        (FrameTooLargeError, JuteDecodeError) when the stream is broken."""
        while not self._closing:
            if self._state is _State.HANDSHAKE:
                if self._decoder.buffered < 4:
                    return NEED_DATA
                word = self._decoder.peek(4).decode("latin-1")
                if word in FOUR_LETTER_WORDS:
                    self._state = _State.DONE
                    return FourLetterWord(word)
            if self._state is _State.DONE:
                return NEED_DATA
            packet = self._decoder.next_packet()
            if isinstance(packet, NeedData):
                return NEED_DATA
            self.received += 1
            if self._state is _State.HANDSHAKE:
                self._state = _State.OPEN
                return self._handshake(jute.ConnectRequest.from_bytes(packet))
            header, body = jute.decode_request(packet)
            event = self._translate(header.xid, header.type, body)
            if event is not None:
                return event
        return NEED_DATA

    def _handshake(self, request: jute.ConnectRequest) -> Handshake:
        native = ConnectRequest(
            protocol_version=PROTOCOL_VERSION,
            last_zxid_seen=max(0, request.last_zxid_seen),
            timeout_ms=max(0, request.timeout_ms),
            session_id=request.session_id,
            password=request.password or b"",
        )
        return Handshake(native, bool(request.read_only))

    def _forward(
        self, zk_xid: int, zk_op: int, op: int, body: dict[str, Any], sub_ops: Iterable[int] = ()
    ) -> CoreRequest:
        self._counter = (self._counter + 1) & 0xFFFFFFFF or 1
        native_xid = -((self._tag << 32) | self._counter)
        path = str(body.get("path", ""))
        self._pending.append(_Pending(native_xid, zk_xid, zk_op, tuple(sub_ops), path))
        return CoreRequest(native_xid, op, body)

    def _translate(self, xid: int, op: int, body: Record | None) -> CoreRequest | None:
        """One request: a native call for the core, or None when answered here."""
        if op == ZkOp.PING:
            return CoreRequest(jute.PING_XID, OpCode.PING, {})
        if op == ZkOp.AUTH:
            assert isinstance(body, AuthPacket)
            return self._auth(xid, op, body)
        if op == ZkOp.WHO_AM_I:
            infos = [ClientInfo("ip", self.client_host)] if self.client_host else []
            # ZooKeeper reports a digest id by its user name alone.
            infos += [ClientInfo(i.scheme, (i.id or "").split(":", 1)[0]) for i in self._auth_ids]
            self._local(xid, 0, WhoAmIResponse(infos))
            return None
        call = native_call(op, body)
        if isinstance(call, Refused):
            self._local(xid, call.err)
            return None
        return self._forward(xid, op, call.op, call.body, call.sub_ops)

    def _auth(self, xid: int, op: int, body: AuthPacket) -> CoreRequest | None:
        scheme = body.scheme or ""
        credential = body.auth or b""
        if scheme not in _FORWARDED_AUTH_SCHEMES:
            self._local(xid, AuthFailedError.code)
            self._queue_local(_CLOSE)
            self._closing = True
            return None
        request = self._forward(xid, op, OpCode.AUTH, {"scheme": scheme, "credential": credential})
        if scheme == "digest" and b":" in credential:
            self._pending[-1].auth_id = Id("digest", digest_credential(credential))
        return request

    # -- local replies ------------------------------------------------------------

    def _local(self, xid: int, err: int, body: Record | None = None) -> None:
        """A reply made here; it leaves in its place in the reply order."""
        self._queue_local(jute.encode_reply(ReplyHeader(xid, self.last_zxid, err), body))

    def _queue_local(self, item: _Item) -> None:
        if self._pending:
            self._pending[-1].after.append(item)
        else:
            self._outbox.append(item)

    def data_to_send(self) -> bytes:
        """Replies made here that may go now (nothing is ahead of them at the core)."""
        if not self._outbox:
            return b""
        out: list[bytes] = []
        self._flush_items(self._outbox, out)
        self._outbox = []
        return b"".join(out)

    def _flush_items(self, items: list[_Item], out: list[bytes]) -> None:
        for item in items:
            if self.finished:
                return
            if isinstance(item, _Close):
                self.finished = True
            else:
                out.append(item)
                self.sent += 1

    # -- output: the core's frames for this connection ------------------------------

    def encode(self, frames: list[ClientOutput]) -> bytes:
        """Jute bytes for the core's output frames (and the local replies behind them)."""
        out: list[bytes] = []
        if self._outbox:
            self._flush_items(self._outbox, out)
            self._outbox = []
        for frame in frames:
            if self.finished:
                break
            kind = type(frame)
            if kind is WatchedEvent:
                assert isinstance(frame, WatchedEvent)
                event = WatcherEvent(int(frame.type), KeeperState.SYNC_CONNECTED, frame.path)
                out.append(jute.encode_reply(ReplyHeader(jute.WATCH_XID, -1, 0), event))
                self.sent += 1
                continue
            if kind is Connected or kind is ConnectRefused:
                assert isinstance(frame, Connected | ConnectRefused)
                self._connect_response(frame, out)
                continue
            self.last_zxid = max(self.last_zxid, frame.zxid)
            if kind is Notice:
                continue  # ZooKeeper says nothing before it closes a connection
            assert isinstance(frame, Reply | ErrorReply)
            if frame.xid == jute.PING_XID:
                out.append(jute.encode_reply(ReplyHeader(jute.PING_XID, frame.zxid, 0)))
                self.sent += 1
                continue
            pending = self._pop_pending(frame.xid)
            if pending is None:
                continue
            out.append(self._reply(pending, frame))
            self.sent += 1
            if pending.zk_op == ZkOp.AUTH:
                if kind is ErrorReply:
                    self.finished = True  # AuthFailed closes the connection, as in ZooKeeper
                    break
                if pending.auth_id is not None and pending.auth_id not in self._auth_ids:
                    self._auth_ids.append(pending.auth_id)
            self._flush_items(pending.after, out)
        return b"".join(out)

    def _pop_pending(self, native_xid: int) -> _Pending | None:
        """The pending request this reply answers: always the head, as the core keeps order."""
        while self._pending:
            pending = self._pending.popleft()
            if pending.native_xid == native_xid:
                return pending
        return None

    def _connect_response(self, frame: Connected | ConnectRefused, out: list[bytes]) -> None:
        self.last_zxid = max(self.last_zxid, frame.zxid)
        if isinstance(frame, ConnectRefused):
            if not isinstance(frame.error, SessionExpiredError):
                return  # refused: the core closes the connection, and ZooKeeper says nothing
            response = jute.ConnectResponse(ZK_PROTOCOL_VERSION, 0, 0, bytes(PASSWORD_BYTES), False)
        else:
            self.session_id = frame.session_id
            response = jute.ConnectResponse(
                ZK_PROTOCOL_VERSION, frame.timeout_ms, frame.session_id, frame.password, False
            )
        out.append(jute.frame(response.to_bytes()))
        self.sent += 1

    def _reply(self, pending: _Pending, frame: Reply | ErrorReply) -> bytes:
        op, zxid = pending.zk_op, frame.zxid
        if isinstance(frame, ErrorReply):
            err = frame.error.code
            if err == InvalidPathError.code and op in _BAD_PATH_ANSWERS:
                err = _BAD_PATH_ANSWERS[ZkOp(op)]
                if not err:  # sync and addWatch succeed, as in ZooKeeper
                    return self._success(pending, zxid, pending.path)
            return jute.encode_reply(ReplyHeader(pending.zk_xid, zxid, zk_error_code(err)))
        if op == ZkOp.EXISTS and frame.result is None:
            # The exists-watch is set all the same (the core did it).
            return jute.encode_reply(ReplyHeader(pending.zk_xid, zxid, NoNodeError.code))
        return self._success(pending, zxid, frame.result)

    def _success(self, pending: _Pending, zxid: int, result: Result) -> bytes:
        try:
            body = reply_body(pending.zk_op, pending.sub_ops, result)
        except ResultMismatch as exc:  # a bug: this request fails, the connection lives on
            log.error("no jute reply for op %d: %s", pending.zk_op, exc)
            return jute.encode_reply(ReplyHeader(pending.zk_xid, zxid, ServerSystemError.code))
        return jute.encode_reply(ReplyHeader(pending.zk_xid, zxid, 0), body)


__all__ = [
    "FOUR_LETTER_WORDS",
    "CoreRequest",
    "Event",
    "FourLetterWord",
    "Handshake",
    "ZkConnectionTranslator",
]
