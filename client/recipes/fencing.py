"""Fencing tokens on the storage side: refuse a write from a deposed holder.

A lock's token (`lock.token`, `leadership.token`) is the zxid that created
the holder's znode; it grows from one holder to the next. A holder sends it
with every write; the storage keeps the highest token it has accepted per
resource and refuses anything older. Even a holder that was paused past its
lease (a GC pause, a swapped-out VM) and wakes up believing it still holds
the lock cannot overwrite what its successor wrote. This is Chubby's
sequencer and Kleppmann's fencing token; kazoo and Curator offer neither.

    verifier = FencingVerifier()
    def write(key, value, token):
        verifier.check(token, resource=key)   # StaleTokenError if stale
        ...

The verifier is pure (no IO, no clock) and keeps state in memory; a real
store persists the highest token with the data it guards, in the same
atomic write. `is_current_holder` asks the coordination service directly
whether a token is still the holder's (Chubby's CheckSequencer), for a
storage service that can reach it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coord.errors import NoNodeError
from coord.paths import join

from ._contenders import EXCLUSIVE, LOCK, READ, SHARED, holders, queue_of
from .errors import StaleTokenError

if TYPE_CHECKING:
    from ..client import Client


class FencingVerifier:
    """The highest token accepted per resource; refuses older ones."""

    __slots__ = ("_highest",)

    def __init__(self) -> None:
        self._highest: dict[str, int] = {}

    def highest(self, resource: str = "") -> int | None:
        """The highest token accepted for `resource`, None before the first."""
        return self._highest.get(resource)

    def accepts(self, token: int, resource: str = "") -> bool:
        """Whether `check` would accept `token` (the same token again is fine)."""
        highest = self._highest.get(resource)
        return highest is None or token >= highest

    def check(self, token: int, resource: str = "") -> None:
        """Accept `token` (and remember it) or raise StaleTokenError."""
        if isinstance(token, bool) or not isinstance(token, int):
            raise TypeError(f"a fencing token is an int, got {type(token).__name__}")
        highest = self._highest.get(resource)
        if highest is not None and token < highest:
            raise StaleTokenError(
                f"token {token:#x} for {resource!r} is older than {highest:#x}; the writer"
                " no longer holds the lock",
                token=token,
                highest=highest,
            )
        self._highest[resource] = token


async def is_current_holder(client: Client, lock_path: str, token: int) -> bool:
    """Whether `token` belongs to a current holder of the lock at `lock_path`.

    One read of the queue plus one per holder; a sync() first makes the
    answer linearizable (the server we read from has seen every write).
    """
    await client.sync(lock_path)
    try:
        children = await client.get_children(lock_path)
    except NoNodeError:
        return False
    for entry in holders(queue_of(children), {LOCK: EXCLUSIVE, READ: SHARED}):
        stat = await client.exists(join(lock_path, entry.name))
        if stat is not None and stat.czxid == token:
            return True
    return False
