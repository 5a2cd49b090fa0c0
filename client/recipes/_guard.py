"""The hold guard: run a holder's body in a scope that ends when the hold can't be trusted.

Why this exists. A lock (or leadership, lease, partition) is an ephemeral
znode, and it ends when the server expires the session, whatever the holder
believes. kazoo's Lock never tells the holder; Curator's default policy
reacts to LOST, which its client posts only after it has been disconnected
for a whole session timeout, so the old holder keeps working while the
server has already handed the lock on (CURATOR-206, CURATOR-460, and the
bug behind CURATOR-465 and CURATOR-604). Chubby's answer is jeopardy: the
client keeps a conservative local copy of its lease and stops trusting it
before the server can possibly end it.

The rule implemented here. The server renews the session whenever it
receives anything from us, and expires it no earlier than one session
timeout `T` after the last such receipt (server/core/sessions.py rounds the
deadline up to the next tick, never down). So if a request we sent at local
time `s` got a reply, the session lives at least until `s + T` on the server.
The guard keeps `confirmed_at`, the send time of the latest request that
got a reply (a probe, `exists()` on the holder's own node, every T/4), and
trusts the hold until

    trusted_until = confirmed_at + T - margin,      margin = T/4 by default

At that moment, or at once when the session is LOST or CLOSED, or when the
holder's node is deleted or found owned by another session, the body's
scope is cancelled. A reconnect before `trusted_until` (a server restart,
a failover) renews the hold without disturbing the body.

The margin pays for what the arithmetic above leaves out: the time the body
needs to notice the cancellation and stop (trio delivers it at the body's
next checkpoint; a blocked event loop delays it), the event loop firing the
guard's own timer late, and any difference between the client's and the
server's clock rates. With the default 10 s session that is 2.5 s; and the
trust window left, 3T/4, is longer than the client's own 2T/3 read timeout,
so a connection that merely hiccups is noticed and replaced before the
guard gives up. Fencing tokens cover whatever still slips through.

Two pieces. `HoldGuard` is the scope itself, usable alone (the partitioner
guards its work with one). `GuardedHold` is the `async with` that every
recipe holding something shares (Lock and its kin, Semaphore, the lease):
take, guard, run the body, give back, and raise the recipe's lost error when
the guard ended the body; each recipe supplies only its own steps.
"""

from __future__ import annotations

import abc
import logging
import math
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

import trio

from coord.errors import KeeperError
from coord.messages import EventType, WatchedEvent

from ..states import ClientState
from ._support import RETRY_PAUSE, RETRYABLE, SESSION_OVER, describe

if TYPE_CHECKING:
    from ..client import Client

log = logging.getLogger(__name__)

DEFAULT_MARGIN: Final = 0.25
"""The default safety margin, as a fraction of the negotiated session timeout."""

PROBE_EVERY: Final = 0.25
"""How often the guard probes, as a fraction of the session timeout."""


class HoldGuard:
    """Guards one hold; use as `async with guard:` around the holder's body.

    `node` is the holder's ephemeral znode; `confirmed_at` is the send time
    (trio clock) of the request that showed the hold was ours. `margin` is
    in seconds (None: a quarter of the session timeout).

    After the block, `lost` says why the body was cancelled (None if it
    was not), and `cancelled_by_guard` whether the guard's cancellation is
    what ended the body.
    """

    def __init__(
        self,
        client: Client,
        node: str,
        *,
        confirmed_at: float,
        margin: float | None = None,
    ) -> None:
        if margin is not None and margin < 0:
            raise ValueError("margin must not be negative")
        self._client = client
        self._node = node
        self._confirmed_at = confirmed_at
        self._margin = margin
        self.lost: str | None = None
        self.stepped_down = False
        self._body = trio.CancelScope()
        self._nursery_cm: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._nursery: trio.Nursery | None = None
        self._exited = False

    # -- what the holder can ask ------------------------------------------------

    @property
    def margin(self) -> float:
        """The safety margin in seconds."""
        if self._margin is not None:
            return self._margin
        return self._client.session_timeout * DEFAULT_MARGIN

    @property
    def trusted_until(self) -> float:
        """The trio time until which the hold is trusted (-inf once lost)."""
        if self.lost is not None or self.stepped_down:
            return -math.inf
        return self._confirmed_at + self._client.session_timeout - self.margin

    def is_trusted(self) -> bool:
        """Whether the hold is trusted right now (check it before each side effect)."""
        return trio.current_time() < self.trusted_until

    def lose(self, reason: str) -> None:
        """Stop trusting the hold and cancel the body (idempotent; a no-op after the block)."""
        if self._exited:
            return
        if self.lost is None and not self.stepped_down:
            log.warning("%s: hold lost: %s", self._node, reason)
            self.lost = reason
        self._body.cancel()

    def step_down(self) -> None:
        """End the hold voluntarily: cancel the body without calling it lost."""
        if self.lost is None:
            self.stepped_down = True
        self._body.cancel()

    # -- the scope ---------------------------------------------------------------

    async def __aenter__(self) -> HoldGuard:
        manager = trio.open_nursery()
        nursery = await manager.__aenter__()
        self._nursery_cm, self._nursery = manager, nursery
        self._client.add_listener(self._on_state)
        nursery.start_soon(self._watch)
        if self._client.state.is_final:
            self.lose(f"the session is {self._client.state.value}")
        self._body.__enter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Leave the body's scope; True when it swallowed the guard's own cancellation."""
        assert self._nursery is not None and self._nursery_cm is not None
        try:
            swallowed = bool(self._body.__exit__(exc_type, exc, tb))
        finally:
            self._exited = True
            self._client.remove_listener(self._on_state)
            self._nursery.cancel_scope.cancel()
            await self._nursery_cm.__aexit__(None, None, None)
            self._nursery = self._nursery_cm = None
        return swallowed

    # -- the watcher -------------------------------------------------------------

    def _on_state(self, state: ClientState) -> None:
        if state.is_final:
            self.lose(f"the session is {state.value}")

    def _on_event(self, event: WatchedEvent) -> None:
        if event.type is EventType.DELETED:
            self.lose(f"{self._node} was deleted")

    async def _watch(self) -> None:
        """Probe the holder's node every T/4; declare jeopardy when no reply came in time."""
        try:
            await self._probe_loop()
        except Exception as exc:  # a bug here must fail safe: stop trusting the hold
            log.exception("hold guard of %s failed", self._node)
            self.lose(f"the guard failed: {exc!r}")

    async def _probe_loop(self) -> None:
        client = self._client
        while True:
            jeopardy = self.trusted_until
            now = trio.current_time()
            if now >= jeopardy:
                self.lose(
                    "jeopardy: no reply from the server since"
                    f" {now - self._confirmed_at:.3g} s ago; the session"
                    f" (timeout {client.session_timeout:g} s) could expire"
                    f" within the safety margin of {self.margin:.3g} s"
                )
                return
            sent = now
            with trio.move_on_at(jeopardy):
                try:
                    stat = await client.exists(self._node, watch=self._on_event)
                except RETRYABLE:
                    await trio.sleep(RETRY_PAUSE)
                    continue
                except SESSION_OVER as exc:
                    self.lose(describe(exc))
                    return
                except KeeperError as exc:
                    self.lose(describe(exc))
                    return
                if stat is None:
                    self.lose(f"{self._node} is gone")
                    return
                if stat.ephemeral_owner != client.session_id:
                    self.lose(f"{self._node} belongs to session 0x{stat.ephemeral_owner:x}")
                    return
                self._confirmed_at = max(self._confirmed_at, sent)
                next_probe = sent + client.session_timeout * PROBE_EVERY
                await trio.sleep_until(min(next_probe, self.trusted_until))


class GuardedHold(abc.ABC):
    """The `async with` of every recipe that holds something (Lock, Semaphore, lease, ...).

    The protocol is the same for all of them, so it lives here once: take the
    hold (or raise), start a HoldGuard around the body, and on the way out
    stop the guard, give the hold back, and turn a body that the guard
    cancelled because the hold was lost into the recipe's lost error, so the
    code after the block never assumes that the body ran to its end. A
    recipe supplies only what is its own: how it takes the hold, the guard of
    a fresh hold (which node, confirmed when), how it gives the hold back,
    and the error it raises when the hold is lost.
    """

    lost: str | None = None
    """Why the last `async with` body was cancelled by its guard (None: it was not)."""
    _guard: HoldGuard | None = None
    """The guard of the `async with` body that runs now (None outside the block)."""

    # -- what each recipe supplies ---------------------------------------------------

    @property
    @abc.abstractmethod
    def _holds(self) -> bool:
        """Whether the recipe holds (its node is there, as far as it knows)."""

    @abc.abstractmethod
    async def _take(self) -> None:
        """Take the hold for the block, or raise (LockTimeout when it cannot)."""

    @abc.abstractmethod
    def _new_guard(self) -> HoldGuard:
        """The guard of the hold just taken."""

    @abc.abstractmethod
    def _lost_error(self, why: str) -> BaseException:
        """The error the block ends in when its guard found the hold lost for `why`."""

    async def _give_back(self) -> object:
        """Give the hold back when the block ends (or its guard cannot start)."""
        return await self.release()

    @abc.abstractmethod
    async def release(self) -> object:
        """Give the hold back (shielded: it must finish also when the caller is cancelled)."""

    # -- what every holder can ask ---------------------------------------------------

    @property
    def is_acquired(self) -> bool:
        """Whether this object holds (and, inside `async with`, still trusts the hold)."""
        return self._holds and (self._guard is None or self._guard.lost is None)

    @property
    def trusted_until(self) -> float:
        """Trio time until which the hold is trusted (inside `async with`; -inf when not held)."""
        if not self._holds or self._guard is None:
            return -math.inf
        return self._guard.trusted_until

    def is_trusted(self) -> bool:
        """Whether the hold is trusted right now; check before each side effect that matters."""
        return trio.current_time() < self.trusted_until

    def _step_down(self) -> None:
        """Cancel the body voluntarily (the `async with` then exits without an error)."""
        if self._guard is not None:
            self._guard.step_down()

    # -- async with ------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._take()
        self.lost = None
        guard = self._new_guard()
        try:
            await guard.__aenter__()
        except BaseException:
            await self._give_back()
            raise
        self._guard = guard
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        guard, self._guard = self._guard, None
        assert guard is not None
        try:
            swallowed = await guard.__aexit__(exc_type, exc, tb)
        finally:
            self.lost = guard.lost
            await self._give_back()
        if swallowed and guard.lost is not None:
            raise self._lost_error(guard.lost)
        return swallowed
