"""The order of a lock's queue, as pure functions (no IO, no clock).

A contender is an ephemeral-sequential znode named `<uuid hex><kind><seq>`,
as kazoo names them (`3f1e...__lock__0000000007`): the uuid makes a node
findable by its creator when the reply to the create was lost (Curator's
"protected mode"), the kind says what it waits for, and the 10-digit
sequence number, from the parent's cversion, gives the queue its order.

Who blocks whom:
- an exclusive contender (LOCK) waits for its nearest predecessor of any kind;
- a shared contender (READ) waits only for its nearest exclusive predecessor.
Each waiter watches exactly that one node, so a release wakes one waiter and
never the whole queue (no herd effect). When the watched node goes, the
waiter looks again: it may now be first, or have a new nearest blocker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from coord.paths import SEQUENCE_DIGITS

LOCK = "__lock__"
READ = "__rlock__"
KINDS = (LOCK, READ)
EXCLUSIVE = frozenset(KINDS)
"""An exclusive contender is blocked by every kind."""
SHARED = frozenset({LOCK})
"""A shared (read) contender is blocked by exclusive ones only."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One contender znode: its name, its kind, and its sequence number."""

    name: str
    kind: str
    seq: int


def parse_entry(name: str, kinds: Iterable[str] = KINDS) -> Entry | None:
    """The Entry for a child name, or None if it is no contender of these kinds."""
    cut = len(name) - SEQUENCE_DIGITS
    if cut <= 0:
        return None
    digits = name[cut:]
    if not digits.isdigit():
        return None
    for kind in kinds:
        if name.endswith(kind, 0, cut):
            return Entry(name, kind, int(digits))
    return None


def queue_of(children: Iterable[str], kinds: Iterable[str] = KINDS) -> list[Entry]:
    """The contenders among `children`, in queue order (sequence number, then name)."""
    kinds = tuple(kinds)
    entries = [e for e in (parse_entry(c, kinds) for c in children) if e is not None]
    entries.sort(key=lambda e: (e.seq, e.name))
    return entries


def blocker(queue: list[Entry], me: str, blocked_by: frozenset[str]) -> Entry | None:
    """The node `me` must wait for, or None when `me` holds the lock.

    Raises ValueError when `me` is not in the queue (its node is gone).
    """
    for index, entry in enumerate(queue):
        if entry.name == me:
            for before in reversed(queue[:index]):
                if before.kind in blocked_by:
                    return before
            return None
    raise ValueError(f"{me!r} is not in the queue")


def holders(queue: list[Entry], blocked_by: dict[str, frozenset[str]]) -> list[Entry]:
    """The entries that hold the lock now (the head, plus readers not behind a writer)."""
    out: list[Entry] = []
    for index, entry in enumerate(queue):
        blocks = blocked_by.get(entry.kind, EXCLUSIVE)
        if not any(before.kind in blocks for before in queue[:index]):
            out.append(entry)
    return out


def lock_delay_marker(state: str, name: str) -> bytes:
    """What a lock's directory holds when lock-delay is on: b'held <name>' or b'free <name>'."""
    return f"{state} {name}".encode()


def parse_marker(data: bytes) -> tuple[str, str] | None:
    """(state, name) from a lock directory's data, None if it holds no marker."""
    try:
        state, _, name = data.decode().partition(" ")
    except UnicodeDecodeError:
        return None
    return (state, name) if state in ("held", "free") and name else None
