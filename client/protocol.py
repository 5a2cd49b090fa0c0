"""The client side of the wire protocol, sans IO: frames in, frames out.

`ClientProtocol` holds what outlives a single connection of a session: the
request table (outbox and in-flight calls), the watch registry and the
highest zxid seen. The connection task feeds it every decoded frame with
`receive_frame` and asks it for frames to write with `take_frames`; the
protocol never touches a socket, a clock or trio, so tests drive it with
plain lists.

Theory of operation, for one incoming frame (coord.messages has the shapes):

1. The header is checked (a list of four, integer xid, zxid and err); a bad
   one raises MalformedFrameError and the connection must be dropped.
2. A reply to a request with a non-zero zxid raises `last_zxid`: the next
   connection presents it so the server never serves us older state, and
   SET_WATCHES uses it to find the changes we missed. Pings, notices and
   events do not, as in ZooKeeper: a ping's or a notice's zxid may run
   ahead of watch events this session has not been sent yet (before its
   SET_WATCHES is answered), and a SET_WATCHES whose relative zxid counted
   them would never send them.
3. WATCH_XID: the event goes to every callable the registry picks, right
   now. Because frames are handled strictly in order and a reply only wakes
   its caller (the caller runs later), a user always sees a watch event
   before any reply that shows the change.
4. PING_XID: nothing else to do. NOTICE_XID: raise NoticeReceived; the
   server is about to close the connection.
5. Any other xid is the reply to the oldest call in flight: its reply hook
   (watch registration) runs first, then the caller is woken.

Callables are user code: an exception from one is logged and dropped, it
must not break the connection or starve the other watchers.
"""

from __future__ import annotations

import logging
from typing import Any

from coord.errors import KeeperError, MalformedFrameError
from coord.messages import NOTICE_XID, PING_XID, WATCH_XID, OpCode, WatchedEvent, event_from_wire

from .pending import Call, RequestTable
from .watches import WatchCallback, WatchRegistry

log = logging.getLogger(__name__)

PING_FRAME: list[Any] = [PING_XID, int(OpCode.PING), {}]


class NoticeReceived(Exception):
    """The server sent a NOTICE: it is closing the connection, for `error`'s reason."""

    def __init__(self, error: KeeperError) -> None:
        super().__init__(f"server notice: {error}")
        self.error = error


def call_watcher(callback: WatchCallback, event: WatchedEvent) -> None:
    """Call user code for an event; its exceptions are logged, never raised."""
    try:
        callback(event)
    except Exception:
        log.exception("watch callable %r failed on %s", callback, event)


class ClientProtocol:
    """Frames in, frames out, for one session (see the module docstring)."""

    __slots__ = ("frames_received", "last_zxid", "requests", "watches")

    def __init__(self, last_zxid: int = 0) -> None:
        self.requests = RequestTable()
        self.watches = WatchRegistry()
        self.last_zxid = last_zxid
        self.frames_received = 0

    def take_frames(self, limit: int | None = None) -> list[list[Any]]:
        """The wire frames for the calls waiting in the outbox (they go in flight)."""
        return [[call.xid, call.op, call.body] for call in self.requests.take_batch(limit)]

    def see_zxid(self, zxid: int) -> None:
        if zxid > self.last_zxid:
            self.last_zxid = zxid

    def receive_frame(self, frame: Any) -> None:
        """Handle one decoded frame from the server (see the module docstring)."""
        if (
            not isinstance(frame, list)
            or len(frame) != 4
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in frame[:3])
        ):
            raise MalformedFrameError(f"bad frame from the server: {_short(frame)}")
        xid, zxid, err, payload = frame
        self.frames_received += 1
        if xid == WATCH_XID:
            self._event(zxid, payload)
        elif xid == PING_XID:
            pass
        elif xid == NOTICE_XID:
            raise NoticeReceived(KeeperError.from_wire(err, payload))
        else:
            self.see_zxid(zxid)
            self._reply(self.requests.pop_reply(xid), err, payload)

    def _event(self, zxid: int, payload: Any) -> None:
        try:
            event = event_from_wire(zxid, payload)
            if not isinstance(event.path, str):
                raise TypeError("path is not a string")
        except (TypeError, KeyError, ValueError) as exc:
            raise MalformedFrameError(f"bad watch event {_short(payload)}: {exc}") from None
        for callback in self.watches.fire(event):
            call_watcher(callback, event)

    def _reply(self, call: Call, err: int, payload: Any) -> None:
        if call.on_reply is not None and not call.abandoned:
            try:
                call.on_reply(err, payload)
            except Exception as exc:  # a malformed result: fail the call, keep the stream
                call.fail(exc)
                return
        call.resolve(err, payload)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
