"""Leader election: one leader at a time, with a fencing token and a trusted scope.

    election = zk.Election("/election/indexer", identifier="host-a")
    await election.run(lead)                # kazoo's form: lead() runs while leader

    async with election.lead() as leadership:   # or hold it as a block
        await work(token=leadership.token)

Candidates queue exactly like a Lock's contenders (kazoo's Election is a
Lock too, so the node names interoperate); the first one leads. The
leader's work runs under the Lock's guard, so it is cancelled as soon as
leadership can no longer be trusted (jeopardy, lost session, node deleted)
and `run()` / the block raise LeadershipLostError. That is the fix for
Curator's double leaders (CURATOR-460, -620, -696), where a leader kept
leading while suspended, or after its node was gone.

`leadership.token` is the zxid that created the leader's node; it grows from
one leader to the next, so whatever the leader writes to can refuse a
deposed leader. `step_down()` ends the term early (the block exits without
an error, the node is deleted, the next candidate takes over);
`cancel()` also withdraws a candidate that is still waiting (kazoo's name).
Everyone can ask `leader()` and `contenders()`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from .errors import LeadershipLostError
from .lock import Lock, contender_identifiers

if TYPE_CHECKING:
    from ..client import Client


class Leadership(Lock):
    """One term of leadership: a Lock whose loss raises LeadershipLostError."""

    lost_error = LeadershipLostError

    def step_down(self) -> None:
        """End the term: cancel the leader's body; the block exits without an error."""
        self._step_down()


class Election:
    """A leader election on `path` (kazoo's `Election`: run, cancel, contenders)."""

    def __init__(
        self,
        client: Client,
        path: str,
        identifier: str = "",
        *,
        margin: float | None = None,
    ) -> None:
        self.client = client
        self.path = path
        self.identifier = identifier
        self.margin = margin
        self.leadership: Leadership | None = None
        """The current term while this candidate leads (inside run() or lead())."""
        self._cancel: trio.CancelScope | None = None

    @property
    def is_leader(self) -> bool:
        return self.leadership is not None and self.leadership.is_acquired

    @property
    def token(self) -> int | None:
        """The fencing token of the current term, None when not leading."""
        return None if self.leadership is None else self.leadership.token

    def lead(self, timeout: float | None = None) -> _Term:
        """`async with election.lead() as leadership:` waits to lead, then runs the block.

        The block is cancelled when leadership can no longer be trusted
        (then LeadershipLostError) or on `step_down()` (no error). A
        `timeout` on the wait raises LockTimeout.
        """
        term = Leadership(
            self.client, self.path, self.identifier, timeout=timeout, margin=self.margin
        )
        return _Term(self, term)

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """Campaign, then call `func(*args)` (sync or async) as leader; returns its result.

        Raises LeadershipLostError when leadership was lost during `func`.
        Returns None without calling `func` if `cancel()` came first.
        """
        with trio.CancelScope() as self._cancel:
            async with self.lead():
                result = func(*args)
                if inspect.isawaitable(result):
                    result = await result
                return result
        return None

    def cancel(self) -> None:
        """Withdraw: stop waiting to lead, or step down (kazoo's `cancel`)."""
        if self.leadership is not None:
            self.leadership.step_down()
        if self._cancel is not None:
            self._cancel.cancel()

    async def contenders(self) -> list[str]:
        """Every candidate's identifier, the leader first."""
        return await contender_identifiers(self.client, self.path)

    async def leader(self) -> str | None:
        """The leader's identifier, None when nobody leads."""
        names = await self.contenders()
        return names[0] if names else None


class _Term:
    """The `async with` of one term: records it on the Election while it lasts."""

    def __init__(self, election: Election, term: Leadership) -> None:
        self._election = election
        self._term = term

    async def __aenter__(self) -> Leadership:
        await self._term.__aenter__()
        self._election.leadership = self._term
        return self._term

    async def __aexit__(self, *exc_info: Any) -> bool:
        try:
            return await self._term.__aexit__(*exc_info)
        finally:
            self._election.leadership = None
