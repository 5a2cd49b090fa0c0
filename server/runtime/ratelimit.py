"""A pure rate limiter for log lines: the first few per interval, then a count.

Why: a client (or an attacker) can open hundreds of bad connections a second;
a warning for each would flood the log and cost more than the connection.
`LogLimiter` lets `burst` lines through per `interval_ms`; the rest are only
counted, and the count comes back once, as "suppressed K", when the next
interval starts (with the next line, or from `flush` on a timer tick). It
takes the time as an argument and has no clock of its own, so tests drive it
with plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to log for one event."""

    emit: bool
    """Log this event's line."""
    suppressed: int
    """Lines dropped in the interval that just ended: log one summary of them first (0: none)."""


class LogLimiter:
    """At most `burst` lines per interval of `interval_ms`; counts what it drops."""

    __slots__ = ("_count", "_suppressed", "_window_start", "burst", "interval_ms")

    def __init__(self, *, burst: int = 10, interval_ms: int = 10_000) -> None:
        if burst < 1 or interval_ms < 1:
            raise ValueError("burst and interval_ms must be at least 1")
        self.burst = burst
        self.interval_ms = interval_ms
        self._window_start: int | None = None
        self._count = 0
        self._suppressed = 0

    def note(self, now_ms: int) -> Verdict:
        """One event at `now_ms`: whether to log it, and any summary owed from before."""
        owed = self._roll(now_ms)
        if self._count < self.burst:
            self._count += 1
            return Verdict(True, owed)
        self._suppressed += 1
        return Verdict(False, owed)

    def flush(self, now_ms: int) -> int:
        """The count of dropped lines to summarize, once their interval is over (else 0)."""
        return self._roll(now_ms)

    @property
    def pending(self) -> int:
        """Lines dropped in the current interval, not yet summarized."""
        return self._suppressed

    def _roll(self, now_ms: int) -> int:
        start = self._window_start
        if start is not None and now_ms - start < self.interval_ms:
            return 0
        owed = self._suppressed
        self._window_start = now_ms
        self._count = 0
        self._suppressed = 0
        return owed
