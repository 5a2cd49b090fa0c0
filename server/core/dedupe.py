"""Results of recent writes per session, so that a retried write is applied at most once.

A client that loses its connection with a write in flight cannot know whether
the write happened (ZooKeeper and etcd leave that to the user; it is why
kazoo's and Curator's lock recipes needed workarounds for orphaned nodes). Our
client resends such a write with the same xid; the member that sequences
writes looks here first: a write already applied is answered with its
original result and not applied again, one still in flight is joined.

Every member keeps this table, filled as it applies txns, so a new leader
knows what the old one applied. It is bounded per session (the retry window
is one session timeout, a few seconds of writes) and dropped with the session.
The table is part of the tree (DataTree.write_results): snapshots carry it
(coord.server.storage.snapshot), so a member that restarts from its own
snapshot or installs its leader's still has the results of the writes folded
into it, and a log replay adds the rest.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

MAX_PER_SESSION = 4096


class WriteResults:
    def __init__(self, per_session: int = MAX_PER_SESSION) -> None:
        self.per_session = per_session
        self._by_session: dict[int, OrderedDict[int, tuple[int, Any]]] = {}

    def record(self, session_id: int, xid: int, zxid: int, result: Any) -> None:
        results = self._by_session.setdefault(session_id, OrderedDict())
        results[xid] = (zxid, result)
        if len(results) > self.per_session:
            results.popitem(last=False)

    def get(self, session_id: int, xid: int) -> tuple[int, Any] | None:
        results = self._by_session.get(session_id)
        return None if results is None else results.get(xid)

    def forget(self, session_id: int) -> None:
        self._by_session.pop(session_id, None)

    def entries(self) -> list[tuple[int, int, int, Any]]:
        """Every (session, xid, zxid, result), oldest first per session (for snapshots)."""
        return [
            (session_id, xid, zxid, result)
            for session_id, results in self._by_session.items()
            for xid, (zxid, result) in results.items()
        ]

    def __len__(self) -> int:
        return sum(len(r) for r in self._by_session.values())
