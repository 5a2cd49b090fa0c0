"""NonBlockingLease: a time-bounded claim, timed by the server's clock, not the clients'.

    lease = zk.NonBlockingLease("/leases/nightly-report", duration=3600, identifier="host-a")
    if await lease.obtain():
        async with lease:          # cancelled when the lease runs out
            await make_report(token=lease.token)

What kazoo's NonBlockingLease gets wrong: it writes the lease's end as a
wall-clock time read on the client (`utcnow() + duration`) and other
clients compare it with their own wall clocks, so two clients whose clocks
disagree by more than the margin of the job both hold the lease. Here no
client clock is compared with another's:

- the lease node's `mtime` is the server's time when the lease was written;
  its data says how long it lasts; it has ended when the server's time is
  past `mtime + duration`;
- a contender learns the server's current time by writing a scratch node
  (`path/clock`) and reading that write's `mtime`, and takes an ended lease
  with a set on the lease node's version, so two contenders cannot both
  take it;
- the holder times its lease with its own monotonic clock from the moment
  it *sent* the write (which is before the server stamped it), so the
  holder's end comes no later than the end anyone else computes. The body
  of `async with` is cancelled a margin (default: a tenth of the duration)
  before that.

The same identifier may renew its own lease before it ends (kazoo's rule).
`token` is the zxid of the write that granted the lease; it grows from
grant to grant. Servers of an ensemble must keep their clocks within the
margin of each other (leadership can move); a single server needs nothing.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import trio

from coord.errors import BadVersionError, ConnectionLossError, NodeExistsError, NoNodeError
from coord.paths import join, validate

from ._guard import GuardedHold, HoldGuard
from ._support import retry_read
from .errors import LockLostError, LockTimeout

if TYPE_CHECKING:
    from ..client import Client

FORMAT_VERSION: Final = 1
DEFAULT_MARGIN: Final = 0.1
"""The holder stops this fraction of the duration before its lease ends."""


def _seconds(duration: float | timedelta) -> float:
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    if seconds <= 0:
        raise ValueError("a lease's duration must be positive")
    return seconds


class NonBlockingLease(GuardedHold):
    """Try once to obtain a lease for `duration` (seconds or a timedelta)."""

    def __init__(
        self,
        client: Client,
        path: str,
        duration: float | timedelta,
        identifier: str = "",
        *,
        margin: float | None = None,
    ) -> None:
        self.client = client
        self.path = validate(path)
        self.duration = _seconds(duration)
        self.identifier = identifier
        self.margin = self.duration * DEFAULT_MARGIN if margin is None else margin
        self.holder_path = join(self.path, "lease_holder")
        self.clock_path = join(self.path, "clock")
        self.obtained = False
        self.token: int | None = None
        self.expires_at = -math.inf
        """Trio time at which this holder's lease ends, by its own (conservative) reckoning."""
        self._version = -1

    def __bool__(self) -> bool:
        """Whether the lease is held and not yet run out (kazoo's truth test)."""
        return self.obtained and trio.current_time() < self.expires_at

    @property
    def _holds(self) -> bool:
        return self.obtained

    @property
    def trusted_until(self) -> float:
        """When the holder must stop: the lease's end less the margin."""
        return self.expires_at - self.margin if self.obtained else -math.inf

    async def _server_now_ms(self) -> int:
        """The server's clock, read from the mtime of a write to the scratch node."""
        try:
            stat = await self.client.set(self.clock_path, b"")
        except NoNodeError:
            try:
                _, stat = await self.client.create(
                    self.clock_path, b"", makepath=True, include_data=True
                )
            except NodeExistsError:
                stat = await self.client.set(self.clock_path, b"")
        return stat.mtime

    def _encode(self) -> bytes:
        body = {
            "version": FORMAT_VERSION,
            "holder": self.identifier,
            "duration_ms": round(self.duration * 1000),
        }
        return json.dumps(body).encode()

    async def obtain(self) -> bool:
        """Try to obtain (or renew) the lease; True if this client holds it now."""
        client = self.client
        now_ms = await self._server_now_ms()
        try:
            data, stat = await retry_read(client.get, self.holder_path)
        except NoNodeError:
            sent = trio.current_time()
            try:
                _, stat = await client.create(self.holder_path, self._encode(), include_data=True)
            except (NodeExistsError, ConnectionLossError):
                return self._fail()
            return self._grant(sent, stat.mzxid, stat.version)
        try:
            held = json.loads(data)
            holder = str(held["holder"])
            end_ms = stat.mtime + int(held["duration_ms"])
        except (ValueError, KeyError, TypeError):
            holder, end_ms = "", 0  # unreadable: treat as ended
        if holder != self.identifier and now_ms < end_ms:
            return self._fail()
        sent = trio.current_time()
        try:
            new = await client.set(self.holder_path, self._encode(), version=stat.version)
        except (BadVersionError, NoNodeError, ConnectionLossError):
            return self._fail()
        return self._grant(sent, new.mzxid, new.version)

    def _grant(self, sent: float, zxid: int, version: int) -> bool:
        self.obtained = True
        self.token = zxid
        self._version = version
        self.expires_at = sent + self.duration
        return True

    def _fail(self) -> bool:
        self.obtained = False
        self.token = None
        self.expires_at = -math.inf
        return False

    async def release(self) -> None:
        """End our lease early, if it is still ours (a versioned delete)."""
        if not self.obtained:
            await trio.lowlevel.checkpoint()
            return
        self._fail()
        with trio.CancelScope(shield=True):
            try:
                await self.client.delete(self.holder_path, version=self._version)
            except (BadVersionError, NoNodeError, ConnectionLossError):
                pass

    # -- async with: the body runs while the lease lasts -------------------------------

    async def _take(self) -> None:
        """Obtain the lease first if it is not held (LockTimeout if someone else holds it)."""
        if not self and not await self.obtain():
            raise LockTimeout(f"lease {self.path} is held by someone else")

    def _new_guard(self) -> HoldGuard:
        return _LeaseGuard(self)

    def _lost_error(self, why: str) -> LockLostError:
        return LockLostError(f"lease {self.path}: {why}")

    async def _give_back(self) -> None:
        """Nothing: the lease lasts its duration after the block too (`release()` ends it)."""


class _LeaseGuard(HoldGuard):
    """The HoldGuard of a lease: the body ends when the lease's time is up.

    The lease node is persistent and its end is fixed by time alone, so a
    disconnection does not shorten it: only the clock (and a lost or closed
    session, after which the client can do nothing) ends the body.
    """

    def __init__(self, lease: NonBlockingLease) -> None:
        super().__init__(lease.client, lease.holder_path, confirmed_at=trio.current_time())
        self._lease = lease

    @property
    def trusted_until(self) -> float:
        if self.lost is not None or self.stepped_down:
            return -math.inf
        return self._lease.expires_at - self._lease.margin

    async def _probe_loop(self) -> None:
        await trio.sleep_until(self.trusted_until)
        self.lose("the lease's time is up")


class MultiNonBlockingLease:
    """One of `count` leases at `path/0 .. path/count-1` (kazoo's MultiNonBlockingLease)."""

    def __init__(
        self,
        client: Client,
        count: int,
        path: str,
        duration: float | timedelta,
        identifier: str = "",
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self.leases = [
            NonBlockingLease(client, join(path, str(i)), duration, identifier) for i in range(count)
        ]
        self.obtained: NonBlockingLease | None = None

    async def obtain(self) -> bool:
        """Try each slot in turn; True if one was obtained (or renewed)."""
        for lease in self.leases:
            if await lease.obtain():
                self.obtained = lease
                return True
        self.obtained = None
        return False

    def __bool__(self) -> bool:
        return self.obtained is not None and bool(self.obtained)
