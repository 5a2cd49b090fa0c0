"""Counter: an integer or float shared by many clients, changed atomically.

    counter = zk.Counter("/stats/jobs")            # int; Counter(path, default=0.0) for float
    value = await counter.add(1)                   # the value after the change
    await counter.get()

An add reads the value and its version, then sets the new value on that
version; a BadVersionError means someone else changed it first, so it reads
again (optimistic concurrency, as kazoo's Counter does). `pre_value` and
`post_value` are kazoo's names for the values around the last change.

The value is stored as its repr in ASCII, then a newline and the tags of the
last TAGS_KEPT writes, newest first (a tag is random and unique to one
write). The tags make an add exactly-once: a set that fails with a
connection loss may or may not have happened, and a blind retry (kazoo's)
can add twice. Here the add re-reads the node; if its tag is among the
recent ones its write landed (and later writers built on it), otherwise it
did not and the add tries again, after a pause: a member that has lost its
leader refuses every write at once until it finds a new one, and an
immediate retry would spin (and, under a MockClock, stop time). That is
exact unless more than TAGS_KEPT other writes land between the lost reply
and the re-read.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Final, Generic, TypeVar

import trio

from coord.errors import BadVersionError, ConnectionLossError, NodeExistsError, NoNodeError
from coord.paths import validate

from ._support import RETRY_PAUSE, retry_read

if TYPE_CHECKING:
    from ..client import Client

N = TypeVar("N", int, float)

TAGS_KEPT: Final = 32
"""Tags of recent writes kept in the node (17 bytes each)."""


def _tags(data: bytes) -> list[bytes]:
    _, _, tags = data.partition(b"\n")
    return tags.split()


class Counter(Generic[N]):
    """A shared number at `path`; its type is the type of `default`."""

    def __init__(self, client: Client, path: str, default: N = 0) -> None:
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            raise TypeError("default must be an int or a float")
        self.client = client
        self.path = validate(path)
        self.default: N = default
        self.default_type: type[N] = type(default)
        self.pre_value: N | None = None
        self.post_value: N | None = None

    @staticmethod
    def _encode(value: N, tag: bytes, previous: bytes = b"") -> bytes:
        tags = [tag, *_tags(previous)[: TAGS_KEPT - 1]]
        return repr(value).encode("ascii") + b"\n" + b" ".join(tags)

    def _decode(self, data: bytes) -> N:
        text = data.split(b"\n", 1)[0]
        if not text:
            return self.default
        return self.default_type(text.decode("ascii"))

    async def get(self) -> N:
        """The current value (the default if the node does not exist yet)."""
        try:
            data, _ = await retry_read(self.client.get, self.path)
        except NoNodeError:
            return self.default
        return self._decode(data)

    async def add(self, delta: N) -> N:
        """Add `delta` atomically; returns the new value."""
        client = self.client
        while True:
            tag = secrets.token_hex(8).encode()
            try:
                data, stat = await retry_read(client.get, self.path)
            except NoNodeError:
                old = self.default
                new = old + delta
                try:
                    await client.create(self.path, self._encode(new, tag), makepath=True)
                except NodeExistsError:
                    continue
                except ConnectionLossError:
                    if not await self._landed(tag):
                        await trio.sleep(RETRY_PAUSE)
                        continue
                return self._done(old, new)
            old = self._decode(data)
            new = old + delta
            try:
                await client.set(self.path, self._encode(new, tag, data), version=stat.version)
            except BadVersionError:
                continue
            except ConnectionLossError:
                if not await self._landed(tag):
                    await trio.sleep(RETRY_PAUSE)
                    continue
            return self._done(old, new)

    async def _landed(self, tag: bytes) -> bool:
        """After a lost reply: is our write's tag among the recent ones? (then it happened)

        Every later write read the value before it (the sets are versioned)
        and kept its tags, so a write that landed stays visible here for
        TAGS_KEPT more writes.
        """
        try:
            data, _ = await retry_read(self.client.get, self.path)
        except NoNodeError:
            return False
        return tag in _tags(data)

    def _done(self, old: N, new: N) -> N:
        self.pre_value, self.post_value = old, new
        return new

    async def subtract(self, delta: N) -> N:
        """Subtract `delta` atomically; returns the new value."""
        return await self.add(-delta)
