"""Lock: a fair, herd-free distributed mutex with fencing tokens and a trusted body scope.

    async with zk.Lock("/locks/db", identifier="worker-7", timeout=5) as lock:
        await storage.write(key, value, token=lock.token)

How it works (ZooKeeper's lock recipe, with what kazoo and Curator get wrong
fixed):

- Each acquire creates an ephemeral-sequential znode `<uuid>__lock__<seq>`
  under the lock's path, holding the identifier. The lowest sequence number
  holds the lock; every other contender watches only its predecessor
  (`_contenders.py`), so a release wakes exactly one waiter.
- `lock.token` is the zxid that created the holder's znode (its Stat.czxid).
  Holders are granted in sequence order and sequence order is creation
  order, so tokens strictly increase from one holder to the next; a
  storage service that remembers the highest token it saw
  (`fencing.FencingVerifier`) refuses a stale holder, as Chubby's
  sequencers do.
- The body of the `async with` runs in a scope that HoldGuard
  (`_guard.py`) cancels as soon as the lock can no longer be trusted:
  jeopardy (no reply from the server for long enough that the session
  could expire, with a safety margin), a lost or closed session, or the
  holder's node deleted. The `async with` then raises LockLostError, so
  the holder never goes on believing it holds a lock another client now
  holds (kazoo never tells; Curator waits for LOST, a session timeout too
  late).
- An acquire that times out or is cancelled removes its contender node,
  also when the cancellation lands while the create is in flight (kazoo
  #732): the node's uuid finds it, and the cleanup retries, shielded, until
  the node or the session is gone.
- `lock_delay` (Chubby, Consul): when the previous holder did not release
  cleanly (its session expired, or it crashed), the next holder waits this
  long before it takes the lock, so that a holder cut off mid-write has
  time to stop. A clean release writes `free <name>` into the lock's node
  in the same transaction as the delete; an acquire writes `held <name>`.
  Without lock_delay neither write happens, so the option costs nothing
  unless used.

`Lock` excludes every contender in its directory, readers included, so it
is the same as `WriteLock` (kazoo's Lock ignores `__rlock__` nodes, so a
Lock and a ReadLock on one path could both hold; we do not copy that).
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import TYPE_CHECKING, ClassVar

import trio

from coord.errors import ConnectionLossError, NoNodeError, RolledBackError
from coord.paths import basename, join, validate

from ._contenders import EXCLUSIVE, LOCK, blocker, lock_delay_marker, parse_marker, queue_of
from ._guard import GuardedHold, HoldGuard
from ._support import (
    RETRY_PAUSE,
    RETRYABLE,
    SESSION_OVER,
    Waker,
    create_protected,
    delete_all_own,
    delete_reliably,
    retry_read,
)
from .errors import LockLostError, LockTimeout

if TYPE_CHECKING:
    from ..client import Client

log = logging.getLogger(__name__)


class Contender:
    """One place in a lock's queue, from the create to the delete.

    `run()` creates the node and waits for its turn; `leave()` deletes it;
    `abandon()` is the cleanup after a timeout, an error or a cancellation,
    and also finds a node whose create was in flight.
    """

    def __init__(
        self,
        client: Client,
        path: str,
        kind: str,
        data: bytes,
        blocked_by: frozenset[str],
        *,
        lock_delay: float = 0.0,
    ) -> None:
        self.client = client
        self.path = path
        self.kind = kind
        self.data = data
        self.blocked_by = blocked_by
        self.lock_delay = lock_delay
        self.prefix = uuid.uuid4().hex + kind
        self.node: str | None = None
        self.token: int | None = None
        self.confirmed_at = -math.inf
        """Send time of the request that showed we hold (the guard starts from it)."""
        self._create_started = False

    async def run(self, *, wait: bool) -> bool:
        """Create the node (once) and wait for our turn; False if `wait` is off and we must wait."""
        client = self.client
        waker = Waker()
        client.add_listener(waker)
        delayed = False
        try:
            while True:
                if self.node is None:
                    self._create_started = True
                    self.node, stat = await create_protected(
                        client, self.path, self.prefix, self.data, sequential=True
                    )
                    self.token = stat.czxid
                sent = trio.current_time()
                children = await retry_read(client.get_children, self.path)
                me = basename(self.node)
                queue = queue_of(children)
                if me not in children:
                    # Deleted under us while the session lives (by hand, or a
                    # kick): take a new place at the end of the queue.
                    log.warning("contender %s vanished; queueing again", self.node)
                    self.node = self.token = None
                    continue
                ours = [e for e in queue if e.name.startswith(self.prefix) and e.name != me]
                for orphan in ours:  # a create retried after a lost reply made two
                    await delete_reliably(client, join(self.path, orphan.name))
                queue = [e for e in queue if e not in ours]
                ahead = blocker(queue, me, self.blocked_by)
                if ahead is None:
                    if self.lock_delay > 0 and not delayed and await self._unclean_handover(me):
                        delayed = True
                        await trio.sleep(self.lock_delay)
                        continue
                    if self.lock_delay > 0:
                        await client.set(self.path, lock_delay_marker("held", me))
                    self.confirmed_at = sent
                    return True
                if not wait:
                    return False
                watched = join(self.path, ahead.name)
                if await retry_read(client.exists, watched, watch=waker) is None:
                    continue
                await waker.wait()
        finally:
            client.remove_listener(waker)

    async def _unclean_handover(self, me: str) -> bool:
        """Whether the previous holder left without a clean release (lock-delay applies)."""
        data, _ = await retry_read(self.client.get, self.path)
        marker = parse_marker(data)
        return marker is not None and marker[0] == "held" and marker[1] != me

    async def leave(self) -> None:
        """Delete our node until it is gone (or the session is); the clean release."""
        node, self.node = self.node, None
        if node is None:
            return
        if self.lock_delay <= 0:
            await delete_reliably(self.client, node)
            return
        while True:
            txn = self.client.transaction()
            txn.delete(node)
            txn.set_data(self.path, lock_delay_marker("free", basename(node)))
            try:
                results = await txn.commit()
            except SESSION_OVER:
                return
            except RETRYABLE:
                await trio.sleep(RETRY_PAUSE)
                continue
            if isinstance(results[0], NoNodeError) or isinstance(results[1], RolledBackError):
                return  # the node was gone already
            if isinstance(results[1], NoNodeError):
                await delete_reliably(self.client, node)  # the lock's own node vanished
            return

    async def abandon(self) -> None:
        """Remove whatever this contender created; run it shielded."""
        node, self.node = self.node, None
        if node is not None:
            await delete_reliably(self.client, node)
        elif self._create_started:
            await delete_all_own(self.client, self.path, self.prefix)


class Lock(GuardedHold):
    """A fair distributed mutex; see the module docstring. kazoo's `Lock` names.

    `identifier` is stored in the contender node (see `contenders()`).
    `timeout` bounds the acquire of `async with` (LockTimeout when it passes).
    `lock_delay` is in seconds (0: off). `margin` is the guard's safety
    margin in seconds (None: a quarter of the session timeout).
    """

    kind: ClassVar[str] = LOCK
    blocked_by: ClassVar[frozenset[str]] = EXCLUSIVE
    lost_error: ClassVar[type[LockLostError]] = LockLostError

    def __init__(
        self,
        client: Client,
        path: str,
        identifier: str = "",
        *,
        timeout: float | None = None,
        lock_delay: float = 0.0,
        margin: float | None = None,
    ) -> None:
        if lock_delay < 0:
            raise ValueError("lock_delay must not be negative")
        self.client = client
        self.path = validate(path)
        self.identifier = identifier
        self.timeout = timeout
        self.lock_delay = lock_delay
        self.margin = margin
        self._contender: Contender | None = None

    def __repr__(self) -> str:
        state = "acquired" if self.is_acquired else "free"
        return f"<{type(self).__name__} {self.path} {self.identifier!r} {state}>"

    # -- state -----------------------------------------------------------------

    @property
    def _holds(self) -> bool:
        return self._contender is not None

    @property
    def node(self) -> str | None:
        """The holder's (or waiter's) znode path."""
        return None if self._contender is None else self._contender.node

    @property
    def token(self) -> int | None:
        """The fencing token: the zxid that created our node; grows from holder to holder."""
        return None if self._contender is None else self._contender.token

    # -- acquire and release ---------------------------------------------------

    def _new_contender(self) -> Contender:
        return Contender(
            self.client,
            self.path,
            self.kind,
            self.identifier.encode(),
            self.blocked_by,
            lock_delay=self.lock_delay,
        )

    async def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Wait for the lock; False if `timeout` passed (or, with blocking off, it is taken).

        Either way the contender node is gone when this returns False or
        raises. Prefer `async with`, which also guards the body.
        """
        if self._contender is not None:
            raise RuntimeError(f"{self!r} is already acquired; release it first")
        contender = self._new_contender()
        got = False
        try:
            if not blocking:
                got = await contender.run(wait=False)
            else:
                deadline = math.inf if timeout is None else trio.current_time() + timeout
                with trio.move_on_at(deadline):
                    got = await contender.run(wait=True)
        finally:
            if not got:
                with trio.CancelScope(shield=True):
                    await contender.abandon()
        if not got:
            return False
        self._contender = contender
        return True

    async def release(self) -> bool:
        """Release the lock (delete our node); False if it was not held (kazoo's contract)."""
        contender, self._contender = self._contender, None
        if contender is None:
            await trio.lowlevel.checkpoint()
            return False
        with trio.CancelScope(shield=True):
            await contender.leave()
        return True

    async def contenders(self) -> list[str]:
        """The identifiers of every contender, holder first (kazoo's `contenders()`)."""
        return await contender_identifiers(self.client, self.path)

    # -- async with ------------------------------------------------------------

    async def _take(self) -> None:
        if not await self.acquire(timeout=self.timeout):
            raise LockTimeout(f"could not acquire {self.path} within {self.timeout:g} s")

    def _new_guard(self) -> HoldGuard:
        contender = self._contender
        assert contender is not None and contender.node is not None
        return HoldGuard(
            self.client, contender.node, confirmed_at=contender.confirmed_at, margin=self.margin
        )

    def _lost_error(self, why: str) -> LockLostError:
        return self.lost_error(f"{self.path}: {why}")


async def contender_identifiers(client: Client, path: str) -> list[str]:
    """The data of every contender node under `path`, in queue order; vanished ones skipped."""
    try:
        children = await client.get_children(path)
    except NoNodeError:
        return []
    out: list[str] = []
    for entry in queue_of(children):
        try:
            data, _ = await client.get(join(path, entry.name))
        except NoNodeError:
            continue
        except ConnectionLossError:
            continue
        out.append(data.decode(errors="replace"))
    return out
