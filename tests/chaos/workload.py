"""The chaos suite's clients and what they record: register writes, reads after sync,
compare-and-set on a counter and adds to a set, through our client and through kazoo.

Every operation is recorded with the times it was invoked and completed
(time.monotonic, shared by trio tasks and kazoo's threads); one whose outcome
the client cannot know (a lost connection, a timeout) is recorded as never
completed, which the linearizability checker reads as "may or may not have
happened". Values are unique per client and operation, so a read names the
write it saw.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

import trio
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import BadVersionError as KazooBadVersion
from kazoo.exceptions import KazooException
from kazoo.exceptions import NodeExistsError as KazooNodeExists
from kazoo.exceptions import SessionExpiredError as KazooSessionExpired

from coord.client import Client
from coord.errors import BadVersionError, KeeperError, NodeExistsError, SessionExpiredError
from tests.linearizability import READ, WRITE, Operation

KEYS = ("/chaos/k0", "/chaos/k1", "/chaos/k2")
COUNTER = "/chaos/counter"
SET = "/chaos/set"
SESSION_TIMEOUT_S = 10.0


@dataclass
class Record:
    """Everything the clients saw, gathered from trio tasks and kazoo threads."""

    operations: list[Operation] = field(default_factory=list)
    cas_acked: int = 0
    cas_unknown: int = 0
    adds_acked: set[str] = field(default_factory=set)
    adds_tried: set[str] = field(default_factory=set)
    expired: list[str] = field(default_factory=list)
    """Clients told their live session expired (the target is none)."""
    acked_writes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 0

    def add(
        self, key: str, kind: str, value: str | None, invoke: float, done: float | None
    ) -> None:
        with self.lock:
            self._next_id += 1
            self.operations.append(Operation(self._next_id, key, kind, value, invoke, done))
            if kind == WRITE and done is not None:
                self.acked_writes += 1


class _Ops:
    """One client's choice of operations and its unique values (the same for both APIs)."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.rng = random.Random(seed)
        self.count = 0

    def value(self) -> str:
        self.count += 1
        return f"{self.name}-{self.count}"

    def pick(self) -> str:
        roll = self.rng.random()
        return "write" if roll < 0.35 else "read" if roll < 0.6 else "cas" if roll < 0.8 else "add"


async def native_client(name: str, hosts: str, seed: int, record: Record, stop: trio.Event) -> None:
    """Our client, on the native port, until `stop`."""
    ops = _Ops(name, seed)
    async with Client(hosts, session_timeout=SESSION_TIMEOUT_S, request_timeout=4) as zk:
        while not stop.is_set():
            kind = ops.pick()
            key = ops.rng.choice(KEYS)
            invoke = time.monotonic()
            try:
                if kind == "write":
                    value = ops.value()
                    try:
                        await zk.set(key, value.encode())
                        record.add(key, WRITE, value, invoke, time.monotonic())
                    except KeeperError:
                        record.add(key, WRITE, value, invoke, None)
                        raise
                elif kind == "read":
                    await zk.sync(key)
                    data, _ = await zk.get(key)
                    record.add(key, READ, data.decode(), invoke, time.monotonic())
                elif kind == "cas":
                    data, stat = await zk.get(COUNTER)
                    value = str(int(data) + 1)
                    try:
                        await zk.set(COUNTER, value.encode(), version=stat.version)
                    except BadVersionError:
                        continue  # lost the race: nothing happened
                    except KeeperError:
                        record.add(COUNTER, WRITE, value, invoke, None)
                        with record.lock:
                            record.cas_unknown += 1
                        raise
                    record.add(COUNTER, WRITE, value, invoke, time.monotonic())
                    with record.lock:
                        record.cas_acked += 1
                else:
                    path = f"{SET}/{ops.value()}"
                    with record.lock:
                        record.adds_tried.add(path)
                    try:
                        await zk.create(path, b"")
                    except NodeExistsError:
                        pass  # a resent create that had been applied: present, not acked
                    else:
                        with record.lock:
                            record.adds_acked.add(path)
            except SessionExpiredError as exc:
                record.expired.append(f"{name}: {exc}")
                return
            except KeeperError:
                await trio.sleep(0.05)  # failing over; the outcome is recorded as unknown


def kazoo_client(name: str, hosts: str, seed: int, record: Record, stop: threading.Event) -> None:
    """kazoo, on the ZooKeeper-compatible port, in a thread of its own, until `stop`."""
    ops = _Ops(name, seed)
    logging.getLogger("kazoo").setLevel(logging.ERROR)  # each failover is a warning there
    zk = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT_S, connection_retry={"max_tries": -1})
    lost = threading.Event()

    def on_state(state: str) -> None:
        if state == KazooState.LOST:
            lost.set()

    zk.add_listener(on_state)
    zk.start(timeout=30)
    try:
        while not stop.is_set() and not lost.is_set():
            kind = ops.pick()
            key = ops.rng.choice(KEYS)
            invoke = time.monotonic()
            try:
                if kind == "write":
                    value = ops.value()
                    try:
                        zk.set(key, value.encode())
                        record.add(key, WRITE, value, invoke, time.monotonic())
                    except KazooException:
                        record.add(key, WRITE, value, invoke, None)
                        raise
                elif kind == "read":
                    zk.sync(key)
                    data, _ = zk.get(key)
                    record.add(key, READ, data.decode(), invoke, time.monotonic())
                elif kind == "cas":
                    data, stat = zk.get(COUNTER)
                    value = str(int(data) + 1)
                    try:
                        zk.set(COUNTER, value.encode(), version=stat.version)
                    except KazooBadVersion:
                        continue
                    except KazooException:
                        record.add(COUNTER, WRITE, value, invoke, None)
                        with record.lock:
                            record.cas_unknown += 1
                        raise
                    record.add(COUNTER, WRITE, value, invoke, time.monotonic())
                    with record.lock:
                        record.cas_acked += 1
                else:
                    path = f"{SET}/{ops.value()}"
                    with record.lock:
                        record.adds_tried.add(path)
                    try:
                        zk.create(path, b"")
                    except KazooNodeExists:
                        pass
                    else:
                        with record.lock:
                            record.adds_acked.add(path)
            except KazooSessionExpired as exc:
                record.expired.append(f"{name}: {exc!r}")
                return
            except KazooException:
                time.sleep(0.05)
        if lost.is_set():
            record.expired.append(f"{name}: kazoo reported the session LOST")
    finally:
        zk.stop()
        zk.close()
