"""Majority quorums over the voting members: pure arithmetic, table-tested."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class Quorum:
    """A strict majority of `voters`; observers and strangers never count."""

    def __init__(self, voters: Iterable[int]) -> None:
        self.voters = frozenset(voters)
        if not self.voters:
            raise ValueError("an ensemble needs at least one voter")
        self.size = len(self.voters) // 2 + 1

    def is_quorum(self, members: Iterable[int]) -> bool:
        return len(self.voters.intersection(members)) >= self.size

    def committed(self, acked: Mapping[int, int]) -> int:
        """The highest zxid that a quorum of voters has acknowledged (0 if none)."""
        values = sorted((z for peer, z in acked.items() if peer in self.voters), reverse=True)
        if len(values) < self.size:
            return 0
        return values[self.size - 1]
