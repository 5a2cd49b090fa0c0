"""One seeded run of the whole-member simulator: members, network, clients, faults, checks.

A step is 10 ms of true time. In each step: peer packets and client frames
that are due arrive; each member's clock runs on (at its own rate, with
jumps) and ticks when a tick is due; slow Readys make progress and every
member carries out its Readys; clients read what arrived and send what they
decide; faults strike; the checkers run.

`run_seed(seed)` has a safety phase under the seed's faults, then a
liveness phase: the network heals, every member restarts, faults stop, and
the clients go quiet; by its end a leader must serve, every member's tree
must be the chain's head, and some write made in the liveness phase must
have succeeded.
"""

from __future__ import annotations

import random
import traceback
from typing import Any

from coord.messages import parse_connect
from coord.server.core.identity import UNKNOWN
from coord.server.core.txn import Txn
from coord.server.native.codec import to_wire
from coord.server.sim.checks import History, Violation
from coord.server.sim.client import SimClient
from coord.server.sim.config import STEP_MS, Result, SimConfig
from coord.server.sim.model import tree_digest
from coord.server.sim.net import ClientConnection, Network, through_msgpack
from coord.server.sim.node import SimMember
from coord.server.zab.codec import WireMessage
from coord.server.zab.messages import Role


class World:
    def __init__(self, config: SimConfig, *, trace: bool = False) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        voters = frozenset(range(1, config.voters + 1))
        observers = frozenset(range(config.voters + 1, config.voters + 1 + config.observers))
        self.ids = sorted(voters | observers)
        self.voters = voters
        self.members: dict[int, SimMember] = {
            i: SimMember(
                i,
                voters,
                observers,
                self.rng,
                max_history=config.max_history,
                on_commit=self._committed,
                clock_rate=1 + self.rng.uniform(-config.drift, config.drift),
            )
            for i in self.ids
        }
        self.network = Network(self.rng, frozenset(self.ids))
        self.network.drop = config.faults.drop
        self.history = History(voters)
        self.history.holders = self._holders
        self.history.assigned = self._assigned
        self._assigned_max = 0
        self.clients = [SimClient(i + 1, self.rng, self.history) for i in range(config.clients)]
        self.connections: dict[int, ClientConnection] = {}
        self.conn_of_client: dict[int, int] = {}
        self._next_conn = 1
        self.time = 0
        self.trace: list[str] | None = [] if trace else None
        self.counts: dict[str, int] = {}
        self.faults = config.faults
        self.paused_until: dict[int, int] = {}
        """Members whose process is frozen, until which step."""
        self.backlog: dict[int, list[tuple[int, WireMessage]]] = {}
        """Peer messages that reached a frozen member: read when it resumes."""
        for member in self.members.values():
            member.boot()

    # -- bookkeeping -------------------------------------------------------------------

    def _note(self, text: str) -> None:
        if self.trace is not None:
            self.trace.append(f"{self.time} {text}")

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def _committed(self, member_id: int, txns: list[Txn]) -> None:
        """A member commits `txns`: its log before them is committed too.

        A member applies what its log holds when it starts (recovery replays it
        all), so txns that commit while it is down, or through its own sync as a
        new leader, never pass through a Ready's commit there. Committing a txn
        commits the log before it, so that part joins the chain first (from a
        member that took a snapshot past it, the part comes from the leader).
        """
        self.history.committed(member_id, self._log_before(member_id, txns[0].zxid) + txns)

    def _log_before(self, member_id: int, upto: int) -> list[Txn]:
        """The member's logged txns after the chain's head and before `upto`."""
        head = self.history.model.last_zxid
        if upto <= head + 1:
            return []
        sources = [self.members[member_id]]
        leader = self.serving_leader()
        if sources[0].disk.snapshot_zxid > head and leader is not None:
            sources.append(self.members[leader])
        found = {t.zxid: t for m in sources for t in m.disk.log if head < t.zxid < upto}
        return [found[z] for z in sorted(found)]

    def _serving_is_committed(self, member_id: int) -> None:
        """A member that serves has synced with its leader: its whole tree is committed."""
        core = self.members[member_id].core
        if core is not None and core.replica.serving and not core.zab.has_ready():
            last = core.replica.tree.last_zxid
            if last > self.history.model.last_zxid:
                self.history.committed(member_id, self._log_before(member_id, last + 1))

    def _lives(self) -> dict[int, int]:
        return {i: m.incarnation for i, m in self.members.items()}

    def _holders(self, zxid: int) -> list[int]:
        """The members whose disks hold the txn at `zxid`."""
        return [i for i, member in self.members.items() if member.disk.holds(zxid)]

    def _assigned(self) -> int:
        """The highest zxid any leader has handed out (a failed write's window ends there)."""
        for member in self.members.values():
            sequencer = member.core.replica.sequencer if member.core is not None else None
            if sequencer is not None:
                self._assigned_max = max(self._assigned_max, sequencer.next_zxid - 1)
        return self._assigned_max

    @property
    def now_ms(self) -> int:
        return self.time * STEP_MS

    # -- the loop ------------------------------------------------------------------------

    def step(self, *, faults: bool = True) -> None:
        self.time += 1
        self.history.now_ms = self.now_ms
        lives = self._lives()
        up = {i for i, m in self.members.items() if m.up}
        self._resume_due()
        for source, target, message in self.network.due(self.time, lives, up):
            if target in self.paused_until:
                self.backlog.setdefault(target, []).append((source, message))
                continue
            core = self.members[target].core
            assert core is not None
            core.receive(source, message, self.members[target].now_ms)
        self._frames_to_members()
        for member_id in self.ids:
            member = self.members[member_id]
            member.advance_clock(STEP_MS)
            if member.core is None or member_id in self.paused_until:
                continue
            for _ in range(member.due_ticks()):
                member.core.tick(member.now_ms)
            member.progress(self._sender(member_id))
            self._pump(member_id)
        self._frames_to_clients()
        for client in self.clients:
            self._client_acts(client)
        for member_id in self.ids:
            self._pump(member_id)
            self._serving_is_committed(member_id)
        self._assigned()  # (before a crash takes a leader's sequencer with it)
        if faults:
            self._faults()
        if self.time % 25 == 0:
            self._check_trees()

    def _sender(self, member_id: int) -> Any:
        def send(target: int, message: WireMessage) -> None:
            self.network.send(self.time, member_id, target, message, self._lives())

        return send

    def _resume_due(self) -> None:
        """Frozen members whose pause is over: they read what queued up, with a clock that
        ran on meanwhile (the first input after a pause comes with the jumped time)."""
        for member_id, until in list(self.paused_until.items()):
            if until > self.time:
                continue
            del self.paused_until[member_id]
            member = self.members[member_id]
            self._note(f"resume member {member_id}")
            for source, message in self.backlog.pop(member_id, []):
                if member.core is not None:
                    member.core.receive(source, message, member.now_ms)

    def _pump(self, member_id: int) -> None:
        member = self.members[member_id]
        core = member.core
        if core is None or member_id in self.paused_until:
            return

        def deliver(frames: list[tuple[int, Any]], closes: list[int]) -> None:
            for conn_id, frame in frames:
                conn = self.connections.get(conn_id)
                if conn is not None and conn.open:
                    arrives = self._arrival(conn.to_client)
                    conn.to_client.append((arrives, through_msgpack(to_wire(frame))))
            for conn_id in closes:
                conn = self.connections.get(conn_id)
                if conn is not None and conn.open:
                    conn.closing = True

        member.pump(self._sender(member_id), deliver, self.faults.slow_disk, self.faults.slow_steps)

    def _arrival(self, queue: list[tuple[int, Any]]) -> int:
        """When a frame sent now arrives: a step or two later, never before the one ahead."""
        at = self.time + self.rng.randint(1, 2)
        return max(at, queue[-1][0]) if queue else at

    def _frames_to_members(self) -> None:
        for conn in list(self.connections.values()):
            if not conn.open:
                continue
            member = self.members[conn.member]
            if member.core is None or member.incarnation != conn.member_life:
                self._end(conn, member_side=False)
                continue
            if conn.member in self.paused_until:
                continue  # frozen: what the client sent waits in the socket
            for frame in conn.take(conn.to_member, self.time):
                replica = member.core.replica
                if not conn.handshake_sent:
                    conn.handshake_sent = True
                    replica.connect(
                        conn.conn_id,
                        parse_connect(frame),
                        now_ms=member.now_ms,
                        password=self.rng.randbytes(16),
                        identity=UNKNOWN,
                    )
                else:
                    xid, op, body = frame
                    replica.request(conn.conn_id, xid, op, body, now_ms=member.now_ms)

    def _frames_to_clients(self) -> None:
        for conn in list(self.connections.values()):
            if not conn.open:
                continue
            client = self.clients[conn.client - 1]
            for frame in conn.take(conn.to_client, self.time):
                if not client.connected and client.member == conn.member:
                    if not client.on_connect_response(frame, self.now_ms):
                        self._end(conn, member_side=False)
                        break
                    self._note(f"client {client.client_id} session {client.session_id:#x} "
                               f"on member {conn.member}")  # fmt: skip
                elif not client.receive(frame, self.now_ms):
                    self._end(conn, member_side=False)
                    break
            if conn.open and conn.closing and not conn.to_client:
                self._end(conn, member_side=True)

    def _end(self, conn: ClientConnection, *, member_side: bool) -> None:
        """The connection is over, for both ends."""
        if not conn.open:
            return
        conn.open = False
        self.connections.pop(conn.conn_id, None)
        member = self.members[conn.member]
        if not member_side and member.core is not None and member.incarnation == conn.member_life:
            member.core.replica.connection_lost(conn.conn_id)
        client = self.clients[conn.client - 1]
        if self.conn_of_client.get(client.client_id) == conn.conn_id:
            del self.conn_of_client[client.client_id]
            client.connection_lost()

    def _client_acts(self, client: SimClient) -> None:
        now = self.now_ms
        if now < client.silent_until_ms:
            return
        conn_id = self.conn_of_client.get(client.client_id)
        conn = self.connections.get(conn_id) if conn_id is not None else None
        if client.take_closed() and conn is not None:
            self._end(conn, member_side=False)
            conn = None
        if conn is None:
            self._open(client)
            return
        if not client.connected:
            if now - conn.opened_at * STEP_MS > client.timeout_ms // 3:
                self._end(conn, member_side=False)  # no answer to the handshake: next member
            return
        if client.wants_new_member(now):
            self._note(f"client {client.client_id} gives up on member {conn.member}")
            self._end(conn, member_side=False)
            return
        for frame in client.frames_to_send(now):
            conn.to_member.append((self._arrival(conn.to_member), through_msgpack(frame)))

    def _open(self, client: SimClient) -> None:
        member_id = self.rng.choice(self.ids)
        member = self.members[member_id]
        conn = ClientConnection(
            self._next_conn, client.client_id, member_id, member.incarnation, opened_at=self.time
        )
        self._next_conn += 1
        self.connections[conn.conn_id] = conn
        self.conn_of_client[client.client_id] = conn.conn_id
        client.member = member_id
        client.last_sent_ms = self.now_ms
        conn.to_member.append((self.time + 1, through_msgpack(client.handshake())))

    # -- faults ----------------------------------------------------------------------------

    def _faults(self) -> None:
        f, rng = self.faults, self.rng
        for member_id in self.ids:
            member = self.members[member_id]
            torn = member.busy and f.torn and rng.random() < f.torn
            if member.up and (torn or (f.crash and rng.random() < f.crash)):
                self.crash(member_id)
            elif not member.up and rng.random() < f.restart:
                self.restart(member_id)
        if not self.network.sides and f.partition and rng.random() < f.partition:
            self.network.partition()
            self._count("partitions")
            self._note(f"partition {[sorted(s) for s in self.network.sides]}")
        elif self.network.sides and rng.random() < f.heal:
            self.network.heal()
            self._note("heal")
        if f.pause and rng.random() < f.pause:
            member_id = rng.choice(self.ids)
            if self.members[member_id].up and member_id not in self.paused_until:
                steps = rng.randint(10, 600)  # 0.1-6 s, past a session timeout at times
                self.paused_until[member_id] = self.time + steps
                self._count("pauses")
                self._note(f"pause member {member_id} for {steps * STEP_MS} ms")
        if f.clock_jump and rng.random() < f.clock_jump:
            member = self.members[rng.choice(self.ids)]
            jump = rng.randint(1, 30) * 100
            member.jump_clock(jump)
            self._count("clock_jumps")
            self._note(f"clock jump member {member.member_id} +{jump} ms")
        for client in self.clients:
            conn_id = self.conn_of_client.get(client.client_id)
            if conn_id is not None and f.disconnect and rng.random() < f.disconnect:
                self._count("disconnects")
                self._note(f"disconnect client {client.client_id}")
                self._end(self.connections[conn_id], member_side=False)
            if f.stall and rng.random() < f.stall:
                client.silent_until_ms = self.now_ms + rng.randint(1, 3) * client.timeout_ms
                self._count("stalls")
                self._note(f"stall client {client.client_id} until {client.silent_until_ms}")

    def crash(self, member_id: int) -> None:
        self.paused_until.pop(member_id, None)
        self.backlog.pop(member_id, None)
        member = self.members[member_id]
        if member.busy:
            self._count("torn_readys")
        member.crash()
        self._count("crashes")
        self._note(f"crash member {member_id}")
        for conn in list(self.connections.values()):
            if conn.member == member_id:
                self._end(conn, member_side=True)

    def restart(self, member_id: int) -> None:
        self.members[member_id].boot()
        self._count("restarts")
        self._note(f"restart member {member_id}")

    # -- checks ------------------------------------------------------------------------------

    def _check_trees(self) -> None:
        for member_id in self.ids:
            core = self.members[member_id].core
            if core is not None:
                self.history.check_tree(member_id, core.replica.tree)

    def serving_leader(self) -> int | None:
        for member_id in self.ids:
            core = self.members[member_id].core
            if core is not None and core.zab.role is Role.LEADING and core.replica.serving:
                return member_id
        return None

    def converged(self) -> bool:
        head = self.history.model.last_zxid
        for member in self.members.values():
            if member.core is None or member.core.replica.tree.last_zxid != head:
                return False
        return True


def run_seed(seed: int, *, config: SimConfig | None = None, trace: bool = False) -> Result:
    config = config or SimConfig.from_seed(seed)
    world = World(config, trace=trace)
    try:
        for _ in range(config.safety_steps):
            world.step()
        world.network.heal()
        world.network.drop = 0.0
        for member_id in world.ids:
            if not world.members[member_id].up:
                world.restart(member_id)
        acked_before = len(world.history.acked)
        for client in world.clients:
            client.silent_until_ms = 0
        quiet_at = config.liveness_steps * 2 // 3
        for i in range(config.liveness_steps):
            if i in (0, quiet_at // 2):
                for client in world.clients:
                    client.probe()
            if i == quiet_at:
                for client in world.clients:
                    client.pipeline = 0
            world.step(faults=False)
        world._check_trees()
        if world.serving_leader() is None:
            raise Violation("no leader serves at the end of the liveness phase")
        if len(world.history.acked) == acked_before:
            raise Violation("no write succeeded in the liveness phase")
        if not world.converged():
            heads = {i: (m.core.replica.tree.last_zxid if m.core else None)
                     for i, m in world.members.items()}  # fmt: skip
            raise Violation(
                f"members did not converge on {world.history.model.last_zxid:#x}: {heads}"
            )
        for member_id, member in world.members.items():
            assert member.core is not None
            if tree_digest(member.core.replica.tree) != world.history.model.digest:
                raise Violation(f"member {member_id}'s final tree differs from the chain's")
        for zxid in world.history.acked:
            world.history.durable_on_quorum(zxid)
        world.history.finish()
    except Exception as exc:  # a checker's Violation, or anything a core raised
        text = (
            str(exc)
            if isinstance(exc, Violation)
            else "".join(traceback.format_exception(exc)[-6:])
        )
        return Result(
            seed, False, f"seed {seed}, step {world.time}: {text}", world.trace or [], _stats(world)
        )
    return Result(seed, True, "", world.trace or [], _stats(world))


def _stats(world: World) -> dict[str, int]:
    members = world.members.values()
    stats = {
        "steps": world.time,
        **world.history.stats(),
        "delivered": world.network.delivered,
        "dropped": world.network.dropped,
        "torn_writes": sum(m.torn_writes for m in members),
        "snapshots_installed": sum(m.snapshots_installed for m in members),
        "truncations": sum(m.truncations for m in members),
        "lease_expiries": sum(m.core.zab.lease_expiries for m in members if m.core is not None),
    }
    stats.update(world.counts)
    return stats
