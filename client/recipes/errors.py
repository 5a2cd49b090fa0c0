"""The recipes' own errors (the client's KeeperErrors pass through unchanged).

kazoo's names where kazoo has one (LockTimeout, CancelledError); the others
are new because kazoo and Curator never tell a holder that its hold ended.
"""

from __future__ import annotations

from coord.errors import CoordError


class RecipeError(CoordError):
    """Base of the recipes' own errors."""


class LockTimeout(RecipeError):
    """An acquire with a timeout did not get the lock in time (kazoo's name).

    The contender znode has been removed by the time this is raised.
    """


class LockLostError(RecipeError):
    """The body of an `async with` on a lock (or semaphore, lease, partition) was
    cancelled because the hold could no longer be trusted: the session was in
    jeopardy, was lost, or the holder's znode went away.

    Raised from the `async with` so that the code after it never assumes that
    the critical section ran to its end.
    """


class LeadershipLostError(LockLostError):
    """The leader's work was cancelled because leadership could no longer be trusted."""


class StaleTokenError(RecipeError):
    """A write carried a fencing token older than one the storage already accepted."""

    def __init__(self, message: str, *, token: int, highest: int) -> None:
        super().__init__(message)
        self.token = token
        self.highest = highest
