"""An in-process ensemble for your trio tests, with the faults to inject into it.

    from coord.server.testing import open_test_ensemble

    async def test_my_data_survives_a_leader_crash(autojump_clock):  # pytest-trio's fixture
        async with open_test_ensemble(3) as ensemble:
            async with ensemble.client() as zk:
                await zk.create("/app", b"v1")
                await ensemble.kill(await ensemble.wait_for_leader())
                await ensemble.wait_for_leader()
                assert (await zk.get("/app"))[0] == b"v1"

What runs. Each member is the real server (coord.server.runtime.member.EnsembleMember:
the same ServerCore, ZabPeer, Ready loops, client handling and recovery as
`coord-server`), inside the caller's trio run. Only the edges are swapped:
its disk is a `MemoryDisk` (the real log and snapshot formats, in memory), its
peer links are a `MemoryNetwork` (the real message encoding, in memory), and
clients reach it over trio's in-memory streams. There are no sockets, files
or threads, so the whole ensemble runs under
`trio.testing.MockClock(autojump_threshold=0)`: election timeouts, session
leases and client backoff take virtual time, and a test that waits out a
session timeout takes milliseconds. It also runs on the real clock; then the
waits are real.

The faults, and what each one is:

- `kill(member)`: the member crashes. Its tasks are cancelled between two
  steps; its disk keeps every write that completed (a completed append is
  durable, as after fsync) and nothing else; its clients' connections break.
- `restart(member)`: a new server process on the same disk: it recovers
  from the log and snapshots, rejoins, and is synced by the leader.
- `partition({1}, {2, 3})` / `heal()`: peer messages between the sides are
  dropped. A side without a quorum stops serving after `sync_limit` ticks and
  closes its clients' connections, so they move to the other side. Client
  connections themselves are not cut.
- `disconnect(client)`: the client's connection breaks; it reconnects and
  resumes its session.
- `expire_session(client)`: the client is cut off from every member until
  the leader's lease on its session runs out, as happens to a client that is
  partitioned away for longer than its session timeout. The ensemble expires
  the session (its ephemerals go, through a committed close txn) and the
  client sees LOST. Virtual time advances by about the session timeout.

Not deterministic: trio shuffles the order of ready tasks on purpose, so two
runs of a test may interleave differently (`seed` fixes the clients' choice
of hosts, not trio's scheduling). For exact replay of the protocol under
faults, see the simulator in tests/sim, which drives the pure cores.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from trio.testing import MemoryReceiveStream, memory_stream_one_way_pair

from coord.client import Client
from coord.server.config import EnsembleSpec, MemberSpec, ServerConfig
from coord.server.runtime.clock import Clock
from coord.server.runtime.member import EnsembleMember
from coord.server.testing.memory_disk import DEFAULT_SEGMENT_BYTES, MemoryDataDir, MemoryDisk
from coord.server.testing.memory_peers import MemoryNetwork
from coord.server.zab.messages import Role

__all__ = ["InProcessEnsemble", "MemoryDisk", "MemoryNetwork", "open_test_ensemble"]

log = logging.getLogger(__name__)

CLIENT_PORT = 2281
PEER_PORT = 2888
DEFAULT_TIMEOUT = 60.0
"""Seconds (virtual, under a MockClock) that the wait_* calls allow by default."""


@asynccontextmanager
async def open_test_ensemble(
    size: int = 3,
    *,
    observers: int = 0,
    tick_ms: int = 100,
    init_limit: int = 10,
    sync_limit: int = 5,
    min_session_timeout_ms: int = 0,
    max_session_timeout_ms: int = 0,
    snapshot_every: int = 10_000,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    seed: int = 0,
    wait_ready: bool = True,
) -> AsyncIterator[InProcessEnsemble]:
    """Run `size` voting members (plus `observers`) in this trio run; stop them on exit.

    `tick_ms`, `init_limit` and `sync_limit` are the ensemble's settings
    (session timeouts are clamped to 2-20 ticks unless the two
    `*_session_timeout_ms` say otherwise). `snapshot_every` txns a member
    writes a snapshot, and `segment_bytes` rolls its log, both kept small
    enough that tests exercise them. `seed` seeds the clients' random choices.
    With `wait_ready` (the default) the block starts once a leader is
    established and every member serves.

    An exception raised in the block comes out as itself; a member that
    crashes with an error (a bug) ends the block with an ExceptionGroup.
    """
    if size < 1 or observers < 0:
        raise ValueError(f"an ensemble needs at least one voter, got {size}")
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            ensemble = InProcessEnsemble(
                nursery,
                _Settings(
                    size=size,
                    observers=observers,
                    tick_ms=tick_ms,
                    init_limit=init_limit,
                    sync_limit=sync_limit,
                    min_session_timeout_ms=min_session_timeout_ms,
                    max_session_timeout_ms=max_session_timeout_ms,
                    snapshot_every=snapshot_every,
                    segment_bytes=segment_bytes,
                ),
                seed=seed,
            )
            try:
                for member_id in ensemble.ids:
                    await ensemble.start(member_id)
                if wait_ready:
                    await ensemble.wait_serving()
                yield ensemble
            except BaseException as exc:
                body_error = exc
                raise
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The nursery wraps even a lone exception from the block; hand it back bare.
        if body_error is not None and list(group.exceptions) == [body_error]:
            raise body_error from None
        raise


@dataclass(frozen=True)
class _Settings:
    size: int
    observers: int
    tick_ms: int
    init_limit: int
    sync_limit: int
    min_session_timeout_ms: int
    max_session_timeout_ms: int
    snapshot_every: int
    segment_bytes: int


@dataclass(eq=False)
class _Slot:
    """One member id: its disk (kept across lives) and its current life, if running."""

    member_id: int
    disk: MemoryDisk
    member: EnsembleMember | None = None
    scope: trio.CancelScope | None = None
    connections: trio.Nursery | None = None
    """Where the current life serves its client connections (cancelled with it)."""
    stopped: trio.Event = field(default_factory=trio.Event)
    lives: int = 0


@dataclass(eq=False)
class _Pipe:
    """One client connection: the two receiving halves, whose closing cuts it both ways."""

    to_client: MemoryReceiveStream
    to_server: MemoryReceiveStream

    def cut(self) -> None:
        # Each side's reader fails at once, and its next write finds the line broken.
        self.to_client.close()
        self.to_server.close()


@dataclass(eq=False)
class _ClientRecord:
    label: str
    pipes: set[_Pipe] = field(default_factory=set)
    blocked: bool = False
    """Cut off from every member: connecting fails (expire_session)."""


class InProcessEnsemble:
    """A running in-process ensemble; made by `open_test_ensemble`, which see."""

    def __init__(self, nursery: trio.Nursery, settings: _Settings, *, seed: int = 0) -> None:
        self._nursery = nursery
        self._settings = settings
        self._rng = random.Random(seed)
        self._clock = Clock()
        """One clock for every member, so txn times agree across failovers."""
        self.network = MemoryNetwork()
        """The peer links; `partition` and `heal` act on it."""
        total = settings.size + settings.observers
        self._spec = EnsembleSpec(
            tick_ms=settings.tick_ms,
            init_limit=settings.init_limit,
            sync_limit=settings.sync_limit,
            data_root=Path("memory:"),
            member=[
                MemberSpec(
                    id=member_id,
                    host=f"member-{member_id}",
                    client_port=CLIENT_PORT,
                    peer_port=PEER_PORT,
                    observer=member_id > settings.size,
                )
                for member_id in range(1, total + 1)
            ],
        )
        self._slots = {m.id: _Slot(m.id, MemoryDisk(f"member-{m.id}")) for m in self._spec.member}
        self._clients: dict[Client, _ClientRecord] = {}
        self._poll = settings.tick_ms / 4000

    # -- who is who ----------------------------------------------------------------------

    @property
    def ids(self) -> list[int]:
        """Every member's id, running or not (voters 1..size, then observers)."""
        return sorted(self._slots)

    @property
    def running(self) -> list[int]:
        """The ids of the members that are running (not killed)."""
        return [i for i in self.ids if self._slots[i].member is not None]

    @property
    def hosts(self) -> str:
        """The connection string naming every member: "member-1:2281,member-2:2281,..."."""
        return self._spec.connection_string()

    def host(self, member_id: int) -> str:
        """The address of one member, as `Client.connected_host` reports it."""
        member = self._spec.get(member_id)
        return f"{member.host}:{member.client_port}"

    def member_of(self, host: str) -> int:
        """The member id at `host` ("member-2:2281" or "member-2")."""
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        for member in self._spec.member:
            if member.host == name:
                return member.id
        raise ValueError(f"no member at {host!r} (hosts: {self.hosts})")

    def member(self, member_id: int) -> EnsembleMember:
        """The running server of `member_id`, to look inside (its core, tree, zab, stats)."""
        member = self._slot(member_id).member
        if member is None:
            raise RuntimeError(f"member {member_id} is not running")
        return member

    def disk(self, member_id: int) -> MemoryDisk:
        """The disk of `member_id`, which outlives its crashes."""
        return self._slot(member_id).disk

    def leader(self) -> int | None:
        """The established leader that a quorum of voters follows, or None just now.

        Right after a partition the old leader may still count: the members
        notice only after `sync_limit` ticks. `wait_for_leader(among=...)`
        waits for a leader on a given side.
        """
        best: tuple[int, int] | None = None
        for member_id, member in self._members():
            zab, core = member.zab, member.core
            assert zab is not None and core is not None
            if not (zab.role is Role.LEADING and zab.serving and core.sequencer is not None):
                continue
            followers = {member_id}
            for other_id, other in self._members():
                other_zab = other.zab
                assert other_zab is not None
                if (
                    other_zab.serving
                    and other_zab.leader_id == member_id
                    and other_zab.epoch == zab.epoch
                ):
                    followers.add(other_id)
            if zab.quorum.is_quorum(followers) and (best is None or zab.epoch > best[0]):
                best = (zab.epoch, member_id)
        return best[1] if best is not None else None

    def serving(self, member_id: int) -> bool:
        """Whether `member_id` runs, is synced with a leader, and serves clients."""
        member = self._slot(member_id).member
        if member is None or member.zab is None or member.core is None:
            return False
        return member.zab.serving and member.core.serving

    def describe(self) -> str:
        """One line per member: its role, epoch and last zxid (for failure messages)."""
        lines = []
        for member_id in self.ids:
            member = self._slots[member_id].member
            if member is None or member.zab is None:
                lines.append(f"member {member_id}: down")
                continue
            zab = member.zab
            state = "serving" if self.serving(member_id) else "not serving"
            lines.append(
                f"member {member_id}: {zab.role.value}, {state}, leader {zab.leader_id}, "
                f"epoch {zab.epoch}, last zxid {zab.last_zxid:#x}"
            )
        return "\n".join(lines)

    # -- waiting -------------------------------------------------------------------------

    async def wait_for_leader(
        self, *, among: Iterable[int] | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> int:
        """Wait until a leader is established (one of `among`, if given); return its id."""
        allowed = set(among) if among is not None else None
        with self._fail_after(timeout, "no leader was established"):
            while True:
                leader = self.leader()
                if leader is not None and (allowed is None or leader in allowed):
                    return leader
                await trio.sleep(self._poll)

    async def wait_serving(self, *member_ids: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until every named member (default: every running one) serves clients.

        A member that serves is synced with an established leader; after a
        `heal()` or a `restart()` this is how a test knows it has caught up
        to (at least) what was committed when it synced.
        """
        with self._fail_after(timeout, f"members {list(member_ids) or 'all'} did not serve"):
            while True:
                wanted = member_ids or tuple(self.running)
                if self.leader() is not None and all(self.serving(m) for m in wanted):
                    return
                await trio.sleep(self._poll)

    # -- clients -------------------------------------------------------------------------

    def client(self, members: Iterable[int] | None = None, **kwargs: Any) -> Client:
        """A Client of this ensemble (use it as `async with`), connected in memory.

        `members` limits its connection string to those members (default:
        all). Other keyword arguments go to `Client` (`session_timeout`,
        `request_timeout`, ...); its `rng` is seeded from the ensemble's seed.
        """
        if "stream_factory" in kwargs:
            raise TypeError("the ensemble provides the stream factory")
        ids = sorted(set(members)) if members is not None else self.ids
        hosts = ",".join(self.host(m) for m in ids)
        record = _ClientRecord(f"client-{len(self._clients) + 1}")
        kwargs.setdefault("rng", random.Random(self._rng.getrandbits(64)))

        async def open_stream(host: str, port: int) -> trio.abc.Stream:
            return await self._open_stream(record, host)

        client = Client(hosts, stream_factory=open_stream, **kwargs)
        self._clients[client] = record
        return client

    async def _open_stream(self, record: _ClientRecord, host: str) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        if record.blocked:
            raise OSError(f"{host} is unreachable: the test cut {record.label} off")
        slot = self._slot(self.member_of(host))
        if slot.member is None or slot.connections is None:
            raise ConnectionRefusedError(f"{host}: connection refused (member is down)")
        to_server_send, to_server = memory_stream_one_way_pair()
        to_client_send, to_client = memory_stream_one_way_pair()
        pipe = _Pipe(to_client, to_server)
        record.pipes.add(pipe)
        slot.connections.start_soon(
            self._serve_client,
            slot.member,
            trio.StapledStream(to_client_send, to_server),
            record,
            pipe,
        )
        return trio.StapledStream(to_server_send, to_client)

    async def _serve_client(
        self, member: EnsembleMember, stream: trio.abc.Stream, record: _ClientRecord, pipe: _Pipe
    ) -> None:
        try:
            await member.serve_connection(stream, record.label)
        finally:
            record.pipes.discard(pipe)

    def _record(self, client: Client) -> _ClientRecord:
        record = self._clients.get(client)
        if record is None:
            raise ValueError(f"{client!r} is not a client of this ensemble (use ensemble.client())")
        return record

    # -- faults --------------------------------------------------------------------------

    async def kill(self, member_id: int) -> None:
        """Crash `member_id`: its tasks stop, its connections break, its disk stays."""
        slot = self._slot(member_id)
        if slot.scope is None:
            raise RuntimeError(f"member {member_id} is not running")
        slot.scope.cancel()
        await slot.stopped.wait()
        slot.disk.locked = False  # the OS drops a dead process's lock
        log.info("killed member %d", member_id)

    async def restart(self, member_id: int) -> None:
        """Start a new life of `member_id` on its disk (killing the current one, if any).

        Returns once the new server has recovered its disk and listens; it is
        serving only after it synced with a leader (`wait_serving`).
        """
        if self._slot(member_id).scope is not None:
            await self.kill(member_id)
        await self.start(member_id)

    async def start(self, member_id: int) -> None:
        """Start `member_id` on its disk, which must not be running; see `restart`."""
        slot = self._slot(member_id)
        if slot.scope is not None:
            raise RuntimeError(f"member {member_id} is already running")
        settings = self._settings
        member_spec = self._spec.get(member_id)
        config = ServerConfig(
            host=member_spec.host,
            port=CLIENT_PORT,
            data_dir=Path(f"memory:member-{member_id}"),
            server_id=member_id,
            tick_ms=settings.tick_ms,
            min_session_timeout_ms=settings.min_session_timeout_ms,
            max_session_timeout_ms=settings.max_session_timeout_ms,
            max_client_connections=0,
            snapshot_every=settings.snapshot_every,
            ensemble=self._spec,
        )
        disk = slot.disk

        def open_disk(config: ServerConfig) -> MemoryDataDir:
            return MemoryDataDir(disk, segment_bytes=settings.segment_bytes)

        member = EnsembleMember(
            config,
            disk_factory=open_disk,
            peer_network_factory=self.network.links_for,
            clock=self._clock,
        )
        slot.stopped = trio.Event()
        slot.lives += 1
        await self._nursery.start(self._run, slot, member)

    async def _run(
        self,
        slot: _Slot,
        member: EnsembleMember,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            with trio.CancelScope() as scope:
                slot.scope = scope
                async with trio.open_nursery() as connections:
                    await connections.start(member.run)
                    slot.member, slot.connections = member, connections
                    task_status.started()
        finally:
            slot.member = slot.connections = slot.scope = None
            slot.stopped.set()

    def partition(self, *sides: Iterable[int]) -> None:
        """Drop every peer message between members on different sides until `heal()`.

        Members named on no side form one more side together, so
        `partition({1})` cuts member 1 off from the others. Client
        connections are left alone: a member without a quorum closes them
        itself once it notices (after `sync_limit` ticks).
        """
        for side in sides:
            for member_id in side:
                self._slot(member_id)
        self.network.partition(*sides)

    def heal(self) -> None:
        """Undo `partition`: every peer link works again."""
        self.network.heal()

    def disconnect(self, client: Client) -> None:
        """Break the client's current connection; it reconnects and resumes its session."""
        for pipe in list(self._record(client).pipes):
            pipe.cut()

    async def expire_session(self, client: Client, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Make the ensemble expire the client's session, the way it happens in production.

        The client is cut off from every member (its connection breaks, and
        reconnecting fails) until the leader's lease on the session runs out
        and the close is committed. Returns once the session is gone from
        every serving member's tree (its ephemerals with it) and the client
        is LOST. Needs an established leader; takes about the session
        timeout of virtual time.
        """
        record = self._record(client)
        session_id = client.session_id
        if not session_id:
            raise RuntimeError(f"{client!r} has no session yet")
        record.blocked = True
        for pipe in list(record.pipes):
            pipe.cut()
        try:
            with self._fail_after(timeout, f"session {session_id:#x} did not expire"):
                while not (self._session_gone(session_id) and client.state.is_final):
                    await trio.sleep(self._poll)
        finally:
            record.blocked = False

    def _session_gone(self, session_id: int) -> bool:
        leader = self.leader()
        if leader is None:
            return False
        for member_id, member in self._members():
            assert member.core is not None and member.zab is not None
            applies = member_id == leader or (
                self.serving(member_id) and member.zab.leader_id == leader
            )
            if applies and session_id in member.core.tree.sessions:
                return False
        return True

    # -- internals -----------------------------------------------------------------------

    def _slot(self, member_id: int) -> _Slot:
        slot = self._slots.get(member_id)
        if slot is None:
            raise ValueError(f"no member {member_id} (members: {self.ids})")
        return slot

    def _members(self) -> list[tuple[int, EnsembleMember]]:
        """The running members whose cores exist (they have recovered and started)."""
        out = []
        for member_id in self.ids:
            member = self._slots[member_id].member
            if member is not None and member.zab is not None and member.core is not None:
                out.append((member_id, member))
        return out

    @contextmanager
    def _fail_after(self, timeout: float, what: str) -> Iterator[None]:
        """`trio.fail_after`, whose TooSlowError says what was awaited and how members stand."""
        with trio.move_on_after(timeout) as scope:
            yield
        if scope.cancelled_caught:
            raise trio.TooSlowError(f"{what} within {timeout:g} s:\n{self.describe()}")
