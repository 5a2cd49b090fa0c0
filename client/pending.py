"""Requests of one session: the ones waiting to be sent and the ones in flight.

Pure bookkeeping, no IO. A `Call` is one request from the moment a user
makes it until its reply (or failure) is known. The runtime gives each call
a `notify` hook (it sets a trio.Event) and waits; everything else happens
here:

- `RequestTable.enqueue` puts a call in the outbox, in the order the user
  made it. Requests take effect in the order they are sent, and the outbox
  is the only way onto the wire, so call order is effect order.
- `take_batch` hands the writer every call still wanted, assigning xids at
  that moment; xids therefore increase in wire order on every connection of
  the session, also when calls waited in the outbox through a reconnect.
- `pop_reply` matches a reply to the oldest call in flight. Replies come
  back in request order, so a reply for any other xid means the stream is
  broken (ZooKeeper's "Xid out of order") and raises MalformedFrameError.
- A call whose caller gave up (timeout, cancellation) is `abandoned`: if it
  is still in the outbox it is never sent; if it is in flight its reply is
  consumed and dropped, keeping the FIFO check intact.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from coord.errors import KeeperError, MalformedFrameError
from coord.messages import MAX_XID, OpCode

ReplyHook = Callable[[int, Any], None]
"""Called with (err, result) by the reader as the reply is taken, before the
caller wakes; used to register watches exactly when the server did."""


class Call:
    """One request and, once known, its outcome."""

    __slots__ = (
        "abandoned",
        "body",
        "done",
        "error",
        "notify",
        "on_reply",
        "op",
        "path",
        "result",
        "xid",
    )

    def __init__(
        self,
        op: int,
        body: dict[str, Any],
        *,
        path: str | None = None,
        on_reply: ReplyHook | None = None,
    ) -> None:
        self.op = op
        self.body = body
        self.path = path
        self.on_reply = on_reply
        self.xid = 0
        self.abandoned = False
        self.done = False
        self.error: BaseException | None = None
        self.result: Any = None
        self.notify: Callable[[], None] | None = None

    def describe(self) -> str:
        """'GET_DATA /a' for messages."""
        try:
            name = OpCode(self.op).name
        except ValueError:
            name = f"op {self.op}"
        return f"{name} {self.path!r}" if self.path is not None else name

    def resolve(self, err: int, result: Any) -> None:
        """Record a reply: the result, or the KeeperError for a non-zero code."""
        if err:
            self.fail(KeeperError.from_wire(err, result))
        else:
            self._finish(None, result)

    def fail(self, error: BaseException) -> None:
        """Record a failure that raises in the caller."""
        self._finish(error, None)

    def _finish(self, error: BaseException | None, result: Any) -> None:
        if self.done:
            return
        self.done = True
        self.error = error
        self.result = result
        if self.notify is not None:
            self.notify()

    def outcome(self) -> Any:
        """The result, or raise the recorded error. Only after `done`."""
        if self.error is not None:
            raise self.error
        return self.result


class RequestTable:
    """The outbox and the in-flight calls of one session, in order."""

    __slots__ = ("_in_flight", "_last_xid", "_outbox")

    def __init__(self) -> None:
        self._outbox: deque[Call] = deque()
        self._in_flight: deque[Call] = deque()
        self._last_xid = 0

    def enqueue(self, call: Call, *, first: bool = False) -> None:
        """Queue a call to send; `first` puts it ahead of the others (SET_WATCHES)."""
        if first:
            self._outbox.appendleft(call)
        else:
            self._outbox.append(call)

    def next_xid(self) -> int:
        """The next request xid: 1, 2, ... wrapping back to 1 after MAX_XID."""
        self._last_xid = 1 if self._last_xid >= MAX_XID else self._last_xid + 1
        return self._last_xid

    @property
    def has_outgoing(self) -> bool:
        """Whether some call still waits in the outbox (abandoned ones included)."""
        return bool(self._outbox)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def queued(self) -> int:
        return len(self._outbox)

    def abandon_queued(self, op: int) -> int:
        """Abandon every call of `op` still in the outbox; returns how many.

        A reconnect queues a fresh SET_WATCHES: one left unsent by the connection
        before would re-register stale watches and fire their events twice.
        """
        count = 0
        for call in self._outbox:
            if call.op == op and not call.abandoned:
                call.abandoned = True
                count += 1
        return count

    def take_batch(self, limit: int | None = None) -> list[Call]:
        """Move up to `limit` wanted calls from the outbox to in-flight, giving them xids."""
        batch: list[Call] = []
        outbox = self._outbox
        while outbox and (limit is None or len(batch) < limit):
            call = outbox.popleft()
            if call.abandoned or call.done:
                continue
            if not call.xid:  # a resent write keeps its xid: that is how the server knows it
                call.xid = self.next_xid()
            self._in_flight.append(call)
            batch.append(call)
        return batch

    def pop_reply(self, xid: int) -> Call:
        """The in-flight call this reply answers; it must be the oldest one."""
        if not self._in_flight:
            raise MalformedFrameError(f"reply for xid {xid} but no request is in flight")
        head = self._in_flight[0]
        if head.xid != xid:
            raise MalformedFrameError(f"reply for xid {xid} out of order: expected xid {head.xid}")
        return self._in_flight.popleft()

    def fail_in_flight(self, error_for: Callable[[Call], BaseException]) -> int:
        """Fail every call in flight (the connection is gone); returns how many."""
        count = 0
        while self._in_flight:
            call = self._in_flight.popleft()
            if not call.done:
                call.fail(error_for(call))
            count += 1
        return count

    def requeue_in_flight(
        self, resend: Callable[[Call], bool], error_for: Callable[[Call], BaseException]
    ) -> int:
        """The connection is gone: put the calls `resend` accepts back at the head of the
        outbox (in order, with their xids), fail the others; returns how many were kept.

        A resent write carries its first xid, so the server applies it at most once
        and answers a repeat with the first result.
        """
        kept: list[Call] = []
        while self._in_flight:
            call = self._in_flight.popleft()
            if call.done:
                continue
            if not call.abandoned and resend(call):
                kept.append(call)
            else:
                call.fail(error_for(call))
        self._outbox.extendleft(reversed(kept))
        return len(kept)

    def fail_all(self, error_for: Callable[[Call], BaseException]) -> int:
        """Fail every call in flight and in the outbox (the session is over)."""
        count = self.fail_in_flight(error_for)
        while self._outbox:
            call = self._outbox.popleft()
            if not call.done:
                call.fail(error_for(call))
            count += 1
        return count

    def statistics(self) -> dict[str, int]:
        """Counts for logs and tests (trio's `statistics()` convention)."""
        return {"queued": len(self._outbox), "in_flight": len(self._in_flight)}
