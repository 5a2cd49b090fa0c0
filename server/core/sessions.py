"""Session leases: negotiation of the timeout, and expiry by tick buckets.

Pure: time comes in as `now_ms`. Like ZooKeeper's ExpiryQueue, a session's
deadline is rounded up to the next multiple of the tick, so that expiry is
checked once per tick for a whole bucket of sessions, not per session. A
touch (any request or ping from the session's client) moves the session to
the bucket of `now + timeout`. A detached session (its connection dropped)
keeps its deadline: the client has until then to come back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Session:
    session_id: int
    timeout_ms: int
    password: bytes
    deadline_ms: int
    closing: bool = False
    """A close or expiry txn is pending: no new requests are accepted."""


DEFAULT_MAX_TIMEOUT_MS = 40_000
"""The ceiling when none is configured: ZooKeeper's default (20 ticks of its 2 s tick),
whatever the tick, so a GC or VM pause of seconds does not cost a client its session.
An ensemble's tick is short (elections are timed in ticks); the ceiling need not be."""


def default_timeouts(
    tick_ms: int, min_timeout_ms: int = 0, max_timeout_ms: int = 0
) -> tuple[int, int]:
    """The negotiation bounds (0: the default): min 2 ticks, max 40 s or 20 ticks if longer."""
    low = min_timeout_ms or 2 * tick_ms
    high = max_timeout_ms or max(DEFAULT_MAX_TIMEOUT_MS, 20 * tick_ms, low)
    if low > high:
        raise ValueError(f"min session timeout {low} ms is above the max, {high} ms")
    return low, high


class SessionTracker:
    """Tracks the live sessions' deadlines and reports the expired ones."""

    def __init__(self, tick_ms: int, min_timeout_ms: int = 0, max_timeout_ms: int = 0) -> None:
        if tick_ms <= 0:
            raise ValueError(f"tick must be positive, got {tick_ms} ms")
        self.tick_ms = tick_ms
        self.min_timeout_ms, self.max_timeout_ms = default_timeouts(
            tick_ms, min_timeout_ms, max_timeout_ms
        )
        self.sessions: dict[int, Session] = {}
        self._buckets: dict[int, set[int]] = {}

    def negotiate(self, requested_ms: int) -> int:
        """Clamp a requested timeout into [min, max] (see `default_timeouts`)."""
        return max(self.min_timeout_ms, min(self.max_timeout_ms, requested_ms))

    def _bucket(self, time_ms: int) -> int:
        tick = self.tick_ms
        return (time_ms // tick + 1) * tick

    def add(self, session_id: int, timeout_ms: int, password: bytes, now_ms: int) -> Session:
        session = Session(session_id, timeout_ms, password, 0)
        self.sessions[session_id] = session
        self._place(session, now_ms + timeout_ms)
        return session

    def _place(self, session: Session, deadline_ms: int) -> None:
        old = self._buckets.get(session.deadline_ms)
        if old is not None:
            old.discard(session.session_id)
            if not old:
                del self._buckets[session.deadline_ms]
        bucket = self._bucket(deadline_ms)
        session.deadline_ms = bucket
        self._buckets.setdefault(bucket, set()).add(session.session_id)

    def touch(self, session_id: int, now_ms: int) -> bool:
        """Renew the lease; False if the session is unknown or closing."""
        session = self.sessions.get(session_id)
        if session is None or session.closing:
            return False
        bucket = self._bucket(now_ms + session.timeout_ms)
        if bucket != session.deadline_ms:
            self._place(session, now_ms + session.timeout_ms)
        return True

    def get(self, session_id: int) -> Session | None:
        return self.sessions.get(session_id)

    def remove(self, session_id: int) -> None:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        bucket = self._buckets.get(session.deadline_ms)
        if bucket is not None:
            bucket.discard(session_id)
            if not bucket:
                del self._buckets[session.deadline_ms]

    def expired(self, now_ms: int) -> list[int]:
        """Sessions whose deadline has passed and that are not already closing.

        They are marked closing; the caller turns each into a close txn.
        """
        out: list[int] = []
        for bucket in sorted(b for b in self._buckets if b <= now_ms):
            for session_id in sorted(self._buckets.pop(bucket)):
                session = self.sessions.get(session_id)
                if session is None or session.closing:
                    continue
                session.closing = True
                out.append(session_id)
        return out

    def next_deadline(self) -> int | None:
        """The earliest bucket, so a runtime can sleep until then."""
        return min(self._buckets) if self._buckets else None
