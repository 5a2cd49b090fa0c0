"""The runtime's wall clock, derived from trio's clock so that a MockClock drives it too."""

from __future__ import annotations

import time

import trio


class Clock:
    """Wall-clock milliseconds derived from trio's clock, so that MockClock drives it too."""

    def __init__(self) -> None:
        self._wall_base_ms = int(time.time() * 1000)
        self._trio_base = trio.current_time()

    def now_ms(self) -> int:
        return self._wall_base_ms + int((trio.current_time() - self._trio_base) * 1000)
