"""Leadership and followership as leases in time, with the time as an input.

Counting ticks is not enough: a leader whose process was paused for ten
seconds resumes, counts one more tick and still believes it leads for
`sync_limit` more, serving clients the ensemble has long handed to a new
leader (and expiring sessions that leader kept alive). So the peer also keeps
when it last heard from each member, in the runtime's milliseconds, and the
first input after a pause (any input: the runtime gives the time with each)
ends a lease that ran out:

- a leader holds its lease while a quorum of voters (itself included) was
  heard within `leader_ms`; it is shorter than a follower's limit by a tick,
  so a cut-off leader stops serving before its followers even start to elect;
- a follower gives its leader `follower_ms` of silence, then looks for a new one.

Stale messages that waited in a socket during the pause do not renew a lease:
the peer checks the lease with the new time before it reads them.
"""

from __future__ import annotations

from collections.abc import Iterable

from coord.server.zab.quorum import Quorum


class Leases:
    """When each member was last heard from, and whether a lease still holds."""

    def __init__(self, tick_ms: int, sync_limit: int) -> None:
        self.enabled = tick_ms > 0
        """Off (tick 0) for drivers that give no time, such as message-by-message tests."""
        self.follower_ms = sync_limit * tick_ms
        self.leader_ms = max(tick_ms, self.follower_ms - tick_ms)
        self.now_ms = 0
        self._heard: dict[int, int] = {}
        self._started_ms = 0

    def start(self) -> None:
        """A new role: every member counts as heard now (the lease starts whole)."""
        self._heard = {}
        self._started_ms = self.now_ms

    def heard(self, member: int) -> None:
        self._heard[member] = self.now_ms

    def _last(self, member: int) -> int:
        return self._heard.get(member, self._started_ms)

    def leader_lost(self, me: int, quorum: Quorum, voters: Iterable[int]) -> bool:
        """(Leader) No quorum of voters was heard within the lease."""
        if not self.enabled:
            return False
        oldest = self.now_ms - self.leader_ms
        heard = 0
        for voter in voters:
            if voter == me or self._last(voter) >= oldest:
                heard += 1
                if heard >= quorum.size:
                    return False
        return True

    def leader_silent(self, leader: int) -> bool:
        """(Follower) Nothing came from `leader` within the limit."""
        return self.enabled and self.now_ms - self._last(leader) > self.follower_ms


__all__ = ["Leases"]
