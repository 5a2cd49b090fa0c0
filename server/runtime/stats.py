"""A server's counters: what `srvr`/`mntr`, the benchmarks and the tests read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ServerStats:
    """Counters for people and benchmarks."""

    connections_accepted: int = 0
    connections_refused: int = 0
    requests: int = 0
    batches: int = 0
    txns: int = 0
    bad_frames: int = 0
    snapshots: int = 0
    snapshots_refused: int = 0
    """Leaders' snapshots (SNAP syncs) that did not load; the member recovered and rejoined."""
    cut_off: int = 0
    """Connections closed because they did not read their replies (their sessions live on)."""
    outbound_peak_bytes: int = 0
    """The most reply bytes ever queued unsent for one connection (<= max_outbound_bytes)."""
    handshake_timeouts: int = 0
    """Connections closed for sending no complete handshake within handshake_timeout_ms."""
    warnings_suppressed: int = 0
    by_address: Counter[str] = field(default_factory=Counter)
