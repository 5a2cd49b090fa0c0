"""Small pieces the recipes share: a wake-up callable, protected creates, reliable deletes.

These encode three lessons from kazoo and Curator:

- A create whose reply was lost (connection loss) or whose caller was
  cancelled may still have happened. Contender names carry a uuid so the
  creator can find its node again (Curator's protected mode), and a node
  found that way counts as ours only if its ephemeral owner is our session
  (CURATOR-604: an old session's node, not yet reaped, was taken for ours).
- The server must have applied every write we sent before we look for the
  node, so the search starts with sync() (FIFO order alone does not cover a
  failover to a server that is behind).
- Cleaning up a contender must not give up while the session lives (kazoo
  #732: a swallowed error left an orphan contender that later became a lock
  nobody held). `delete_reliably` retries until the node is gone or the
  session is, which the client always decides within about one session
  timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, ParamSpec, TypeVar

import trio

from coord.errors import (
    ConnectionLossError,
    KeeperError,
    NodeExistsError,
    NoNodeError,
    RequestTimeoutError,
    SessionClosedError,
    SessionExpiredError,
)
from coord.messages import Stat
from coord.paths import join

if TYPE_CHECKING:
    from ..client import Client

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

RETRY_PAUSE: Final = 0.05
"""Seconds between retries of a cleanup whose outcome was unknown."""

RETRYABLE: Final = (ConnectionLossError, RequestTimeoutError)
"""Failures after which the same idempotent request may simply be sent again."""

SESSION_OVER: Final = (SessionExpiredError, SessionClosedError)
"""Failures that mean the session, and every ephemeral node of it, is gone (or going)."""


class Waker:
    """A hashable callable that wakes one waiting task; for watches and state listeners.

    Several wake-ups before a wait count as one; a wake-up that lands while
    nobody waits is kept for the next wait. Waiters re-check their condition
    after every wake-up, so a spurious one costs a read and nothing else.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = trio.Event()

    def __call__(self, _what: object = None) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = trio.Event()


async def retry_read(read: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """`await read(*args, **kwargs)`, again after a connection loss (the client queues
    it until the reconnect); other errors, RequestTimeoutError included, propagate.
    Only for idempotent requests: reads, sync, add_watch."""
    while True:
        try:
            return await read(*args, **kwargs)
        except ConnectionLossError:
            await trio.sleep(RETRY_PAUSE)


async def find_own(client: Client, directory: str, prefix: str) -> list[tuple[str, Stat]]:
    """Our session's nodes in `directory` whose names start with `prefix`, in name order."""
    await retry_read(client.sync, directory)
    try:
        children = await retry_read(client.get_children, directory)
    except NoNodeError:
        return []
    found: list[tuple[str, Stat]] = []
    for name in sorted(children):
        if not name.startswith(prefix):
            continue
        path = join(directory, name)
        stat = await retry_read(client.exists, path)
        if stat is not None and stat.ephemeral_owner == client.session_id:
            found.append((path, stat))
    return found


async def create_protected(
    client: Client, directory: str, prefix: str, data: bytes, *, sequential: bool
) -> tuple[str, Stat]:
    """Create the ephemeral node `directory/prefix[seq]`, surviving a lost reply.

    On a connection loss the outcome is unknown: look for the node by its
    prefix (after a sync) and create it only if it is not there. A
    non-sequential name that exists already is ours if our session owns it.
    """
    path = join(directory, prefix)
    while True:
        try:
            return await client.create(
                path, data, ephemeral=True, sequential=sequential, makepath=True, include_data=True
            )
        except ConnectionLossError:
            pass
        except NodeExistsError:
            if sequential:
                raise
        found = await find_own(client, directory, prefix)
        if found:
            for extra, _ in found[1:]:
                await delete_reliably(client, extra)
            return found[0]


CLEANUP_BOUND: Final = 60.0
"""Seconds (at least; see `cleanup_deadline`) a cleanup keeps retrying before it gives up."""


def cleanup_deadline(client: Client) -> float:
    """When a shielded cleanup stops retrying: only ever reached if the client is broken.

    A healthy client answers or declares its session lost (which ends the
    node anyway) within about one session timeout; this bound only stops a
    shielded cleanup from hanging forever on a client whose session task is
    gone (for example one cancelled from outside while a cleanup runs).
    """
    return trio.current_time() + max(CLEANUP_BOUND, 3 * client.session_timeout)


async def delete_reliably(client: Client, path: str) -> None:
    """Delete `path` until it is gone or our session is; never gives up in between.

    Run it shielded when it cleans up after a cancellation. It returns
    within about one session timeout in the worst case: a request waits in
    the outbox while the connection is down, and the client turns a
    connection that stays down into a lost session. (Past `cleanup_deadline`
    it logs and gives up: that only happens when the client itself is broken.)
    """
    with trio.move_on_at(cleanup_deadline(client)) as bound:
        while True:
            try:
                await client.delete(path)
                return
            except NoNodeError:
                return
            except SESSION_OVER:
                return
            except RETRYABLE:
                await trio.sleep(RETRY_PAUSE)
    if bound.cancelled_caught:
        log.error("gave up deleting %s: the client neither answered nor ended its session", path)


async def delete_all_own(client: Client, directory: str, prefix: str) -> None:
    """Delete every node of ours under `directory` whose name starts with `prefix`.

    For a create whose outcome is unknown (cancelled in flight, reply lost):
    kazoo #732 and Curator's protected mode are about exactly this node.
    """
    while True:
        try:
            found = await find_own(client, directory, prefix)
        except SESSION_OVER:
            return
        except RequestTimeoutError:
            await trio.sleep(RETRY_PAUSE)
            continue
        for path, _ in found:
            await delete_reliably(client, path)
        return


def describe(exc: KeeperError) -> str:
    """A short 'ClassName: message' for the reasons recipes record."""
    return f"{type(exc).__name__}: {exc}"
