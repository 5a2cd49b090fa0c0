"""The log limiter, pure: times are plain numbers."""

from __future__ import annotations

import pytest

from coord.server.runtime.ratelimit import LogLimiter, Verdict


def test_first_burst_passes_then_the_rest_are_counted_and_summarized_once() -> None:
    limiter = LogLimiter(burst=3, interval_ms=1000)
    verdicts = [limiter.note(now_ms=i) for i in range(500)]  # 500 events in 0.5 s
    assert [v.emit for v in verdicts[:3]] == [True, True, True]
    assert not any(v.emit for v in verdicts[3:])
    assert all(v.suppressed == 0 for v in verdicts)
    assert limiter.pending == 497
    # The next interval: the first event carries the summary, and passes.
    assert limiter.note(now_ms=1000) == Verdict(emit=True, suppressed=497)
    assert limiter.pending == 0
    assert limiter.note(now_ms=1001) == Verdict(emit=True, suppressed=0)


def test_flush_gives_the_count_only_after_the_interval() -> None:
    limiter = LogLimiter(burst=1, interval_ms=100)
    limiter.note(0)
    limiter.note(10)
    limiter.note(20)
    assert limiter.flush(50) == 0
    assert limiter.flush(100) == 2
    assert limiter.flush(300) == 0


def test_quiet_traffic_is_never_suppressed() -> None:
    limiter = LogLimiter(burst=2, interval_ms=100)
    assert all(limiter.note(t).emit for t in range(0, 10_000, 60))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        LogLimiter(burst=0)
    with pytest.raises(ValueError):
        LogLimiter(interval_ms=0)
