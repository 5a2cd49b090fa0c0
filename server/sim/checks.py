"""What the simulator checks, after every step and at the end: the service's guarantees.

The committed chain is the order ZooKeeper's guarantees are stated in (zxid
order), so the write history is checked against it directly, a linearizability
check with the order as witness:

- one chain: every txn a member commits is the chain's txn at that zxid, or
  extends it; the model (coord.server.sim.model) checks each new txn against
  the tree it had, and every member's tree, when compared, equals the model's
  at the member's zxid;
- a client write that succeeded is in the chain under its session and xid,
  with the result the client was told (a create's name, a set's version),
  durable on a quorum of voters' disks, and ordered after every write that
  had succeeded before it was sent; a resent write is in the chain at most
  once;
- a write that failed got an error some committed state in its window gives
  (coord.server.sim.outcomes);
- a read returns the model's node (get_children: the node's children) at the
  zxid its reply carries; a read after a sync carries a zxid at or after
  every write that had succeeded before the sync was sent;
- a client never sees a zxid older than one it saw, on any member, in the
  replies to its requests (what it counts as seen, as ZooKeeper's client
  does; an event names the zxid of its change, and one that SET_WATCHES fires
  after a reconnect names an older change than the member's);
- every watch event answers a watch the client holds, for the first change
  it is owed after the watch was set (a persistent watch: for every change,
  in order; a recursive one: of its whole subtree; a child watch: of the
  node's children), and arrives before any frame whose zxid shows that
  change, also across a failover (coord.server.sim.watchcheck);
- an ephemeral node's owner is a live session in every member's tree.

A broken guarantee raises `Violation` naming the client, path or zxid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coord.client.ops import (
    parse_children,
    parse_create,
    parse_exists,
    parse_get,
    parse_multi,
    parse_stat,
)
from coord.client.pending import Call
from coord.client.watches import WatchKind
from coord.errors import KeeperError, NoNodeError, RolledBackError
from coord.messages import WATCH_XID, OpCode, WatchedEvent, event_from_wire
from coord.server.core.tree import DataTree
from coord.server.core.txn import CheckTxn, CloseSessionTxn, CreateTxn, SetDataTxn, Txn
from coord.server.sim.model import ModelViolation, TreeModel, Violation, tree_digest
from coord.server.sim.outcomes import MODEL_ERRORS, Failure, FailureChecker
from coord.server.sim.watchcheck import WatchChecker, Watches

if TYPE_CHECKING:
    from coord.server.sim.client import SimClient

__all__ = ["History", "Violation"]

WRITES = frozenset({OpCode.CREATE, OpCode.DELETE, OpCode.SET_DATA, OpCode.MULTI})
READS = frozenset({OpCode.GET_DATA, OpCode.EXISTS, OpCode.GET_CHILDREN})


@dataclass
class OpRecord:
    client: int
    call: Call
    invoked_ms: int
    acked_before: int
    """The highest zxid of a write that had succeeded when this call was made."""
    session_id: int = 0
    xid: int = 0
    reply_zxid: int = 0
    seen_at_send: int = 0
    """The last zxid the client had seen when it first sent the call."""
    after_sync: OpRecord | None = None


@dataclass
class ClientView:
    last_zxid: int = 0
    calls: dict[int, OpRecord] = field(default_factory=dict)
    """xid -> the call sent with it (this session)."""
    pending: list[OpRecord] = field(default_factory=list)
    """Invoked, not sent yet (in order)."""
    armed: Watches = field(default_factory=dict)
    frame_zxid: int = 0
    """The zxid of the frame being handled (a watch set by its reply starts there)."""
    set_watches_xids: set[int] = field(default_factory=set)
    own_max: int = 0
    """The highest zxid of this client's own writes that succeeded."""


class History:
    """Records clients' calls, replies and events and the members' commits; checks them."""

    def __init__(self, voters: frozenset[int]) -> None:
        self.model = TreeModel()
        self.voters = voters
        self.chain: dict[int, Txn] = {}
        self.by_request: dict[tuple[int, int], int] = {}
        """(session, xid) -> the zxid of the client write it became."""
        self.views: dict[int, ClientView] = {}
        self.acked_max = 0
        self.acked: list[int] = []
        """zxids of client writes that succeeded."""
        self.now_ms = 0
        self.reads_checked = 0
        self.sync_reads = 0
        self.events = 0
        self.expired = 0
        self.closed_sessions: set[int] = set()
        """Sessions whose close the chain holds: only they may be called expired."""
        self._records: dict[int, OpRecord] = {}
        """id(call) -> its record, while the call is open."""
        self.holders: Callable[[int], list[int]] | None = None
        """zxid -> the members whose disks hold it; the world sets it."""
        self.assigned: Callable[[], int] | None = None
        """The highest zxid any leader has handed out so far; the world sets it (without
        it, the chain's head: a failure is judged at once)."""
        self.children_read = 0
        self.watches = WatchChecker(self.model, self._fail)
        self.failures = FailureChecker(self.model, self._fail)

    def stats(self) -> dict[str, int]:
        """What was checked, by name (the seeds' totals show each path is exercised)."""
        return {
            "acked_writes": len(self.acked),
            "chain": len(self.chain),
            "reads_checked": self.reads_checked,
            "sync_reads": self.sync_reads,
            "events": self.events,
            "children_read": self.children_read,
            "child_events": self.watches.child_events,
            "child_watches_rearmed": self.watches.child_watches_rearmed,
            "recursive_events": self.watches.recursive_events,
            "failed_writes_checked": self.failures.checked,
            "sessions_expired": self.expired,
        }

    def _fail(self, text: str) -> Violation:
        return Violation(text)

    # -- members ---------------------------------------------------------------------------

    def committed(self, member: int, txns: list[Txn]) -> None:
        for txn in txns:
            known = self.chain.get(txn.zxid)
            if known is not None:
                if known != txn:
                    raise self._fail(f"member {member} committed {txn.zxid:#x}: a different txn")
                continue
            if txn.zxid <= self.model.last_zxid:
                raise self._fail(
                    f"member {member} committed {txn.zxid:#x}, not in the chain, behind "
                    f"{self.model.last_zxid:#x}"
                )
            try:
                self.model.apply(txn)
            except ModelViolation as exc:
                raise self._fail(f"member {member}: {exc}") from None
            self.chain[txn.zxid] = txn
            if isinstance(txn.body, CloseSessionTxn):
                self.closed_sessions.add(txn.body.session_id)
            header = txn.header
            if header.xid > 0 and header.session_id and not isinstance(txn.body, CheckTxn):
                # (a top-level CheckTxn is a sync's marker: a resent sync may order again)
                key = (header.session_id, header.xid)
                if key in self.by_request:
                    raise self._fail(
                        f"session {key[0]:#x} xid {key[1]} applied twice: "
                        f"{self.by_request[key]:#x} and {txn.zxid:#x}"
                    )
                self.by_request[key] = txn.zxid
        self.failures.chain_grew()

    def check_tree(self, member: int, tree: DataTree) -> None:
        """The member's tree equals the model's at its zxid (when that zxid is committed)."""
        expected = self.model.digests.get(tree.last_zxid)
        if expected is not None and tree_digest(tree) != expected:
            raise self._fail(
                f"member {member}'s tree at {tree.last_zxid:#x} differs from the chain's"
            )
        for owner, paths in tree.ephemerals.items():
            if paths and owner not in tree.sessions:
                raise self._fail(
                    f"member {member}: ephemerals {sorted(paths)} of session {owner:#x}, "
                    "which its tree does not hold"
                )

    # -- clients ----------------------------------------------------------------------------

    def view(self, client: SimClient) -> ClientView:
        return self.views.setdefault(client.client_id, ClientView())

    def invoked(self, client: SimClient, call: Call, after_sync: Call | None = None) -> None:
        """A call is made; `after_sync`: the sync sent just ahead of it (a linearizable read)."""
        sync = self._records.get(id(after_sync)) if after_sync is not None else None
        record = OpRecord(client.client_id, call, self.now_ms, self.acked_max, after_sync=sync)
        self._records[id(call)] = record
        self.view(client).pending.append(record)

        def done() -> None:
            self._records.pop(id(call), None)
            self._completed(client, record)

        call.notify = done

    def sent(self, client: SimClient, xid: int, op: int) -> None:
        view = self.view(client)
        if op == OpCode.SET_WATCHES:
            view.set_watches_xids.add(xid)
            return
        for i, record in enumerate(view.pending):
            if record.call.xid == xid:
                record.xid, record.session_id = xid, client.session_id
                record.seen_at_send = view.last_zxid
                view.calls[xid] = record
                del view.pending[i]
                return
        resent = view.calls.get(xid)  # a resent call: same xid, same session
        if resent is not None:
            resent.session_id = client.session_id

    def session_started(self, client: SimClient, session_id: int) -> None:
        view = self.view(client)
        view.calls.clear()

    def reconnected(self, client: SimClient) -> None:
        """The session moved to a new connection: its watches are re-registered there."""
        self.watches.reconnected(self.view(client).armed)

    def session_ended(self, client: SimClient, session_id: int, *, expired: bool) -> None:
        if expired and session_id not in self.closed_sessions:
            raise self._fail(
                f"client {client.client_id} was told session {session_id:#x} expired, "
                "but no close of it is committed: a live session was given up"
            )
        view = self.view(client)
        view.armed.clear()
        view.calls.clear()
        view.pending.clear()
        if expired:
            self.expired += 1

    def frame_zxid(self, client: SimClient, zxid: int) -> None:
        view = self.view(client)
        if zxid and zxid < view.last_zxid:
            raise self._fail(
                f"client {client.client_id} saw zxid {zxid:#x} after {view.last_zxid:#x}"
            )
        view.last_zxid = max(view.last_zxid, zxid)

    def frame(self, client: SimClient, frame: Any) -> None:
        """A frame, before the protocol handles it: watch order, reply zxids."""
        if not (isinstance(frame, list) and len(frame) == 4):
            return
        xid, zxid, err, payload = frame
        view = self.view(client)
        view.frame_zxid = zxid
        if xid in view.set_watches_xids:
            view.set_watches_xids.discard(xid)
            if err == 0:  # (refused: the session is gone, and its watches with it)
                self._rearmed(client, view, zxid)
        event = event_from_wire(zxid, payload) if xid == WATCH_XID else None
        who = f"client {client.client_id}"
        if event is not None:
            self.events += 1
            self.watches.check_event(who, view.armed, event)
        elif zxid and xid > 0:  # a reply to a request (pings and notices show no data)
            self.frame_zxid(client, zxid)
            self.watches.check_reply(who, view.armed, zxid)
        record = view.calls.get(xid)
        if record is not None:
            record.reply_zxid = zxid

    def _rearmed(self, client: SimClient, view: ClientView, zxid: int) -> None:
        self.watches.rearmed(f"client {client.client_id}", view.armed, zxid)

    def event_seen(self, client: SimClient, event: WatchedEvent) -> None:
        self.watches.event_seen(self.view(client).armed, event)

    def watch_set(self, client: SimClient, kind: WatchKind, path: str) -> None:
        view = self.view(client)
        self.watches.watch_set(view.armed, kind, path, view.frame_zxid)

    def _completed(self, client: SimClient, record: OpRecord) -> None:
        call = record.call
        op = call.op
        if isinstance(call.error, NoNodeError) and op in READS:
            self._read_answered(client, record)
        if isinstance(call.error, MODEL_ERRORS) and op in WRITES:
            self._write_failed(client, record, [(op, call.body)], 0, call.error)
        if call.error is not None:
            return
        if op == OpCode.MULTI:
            outcomes = parse_multi([o for o, _ in call.body["ops"]], call.result)
            errors = [(i, e) for i, e in enumerate(outcomes) if isinstance(e, KeeperError)]
            if errors:  # the multi failed as a whole: one op's error, the rest rolled back
                self._multi_failed(client, record, errors)
                return
        if op == OpCode.SET_DATA:
            client.remember_version(
                call.body["path"], parse_stat(OpCode.SET_DATA, call.result).version
            )
        if op in WRITES:
            self._write_succeeded(client, record)
        elif op in READS:
            self._read_answered(client, record)

    def _multi_failed(
        self, client: SimClient, record: OpRecord, errors: list[tuple[int, KeeperError]]
    ) -> None:
        ops = [(op, body) for op, body in record.call.body["ops"]]
        failing = [(i, e) for i, e in errors if not isinstance(e, RolledBackError)]
        if len(failing) != 1 or len(errors) != len(ops):
            raise self._fail(
                f"client {client.client_id}: {record.call.describe()} failed with "
                f"{[type(e).__name__ for _, e in errors]}: not one failing op, the rest "
                "rolled back"
            )
        index, error = failing[0]
        if isinstance(error, MODEL_ERRORS):
            self._write_failed(client, record, ops, index, error)

    def _write_failed(
        self,
        client: SimClient,
        record: OpRecord,
        ops: list[tuple[int, dict[str, Any]]],
        index: int,
        error: KeeperError,
    ) -> None:
        """A write failed with an error of the tree's: some state in its window must give it."""
        view = self.view(client)
        lower = max(record.acked_before, record.seen_at_send, view.own_max)
        upper = max(self.model.last_zxid, self.assigned() if self.assigned else 0)
        who = f"client {client.client_id}"
        failure = Failure(who, record.call.describe(), ops, index, error, lower, upper)
        self.failures.failed(failure)

    def finish(self) -> None:
        """The run is over: judge the failed writes still waiting for the chain."""
        self.failures.finish()

    def _write_succeeded(self, client: SimClient, record: OpRecord) -> None:
        key = (record.session_id, record.xid)
        zxid = self.by_request.get(key)
        if zxid is None:
            raise self._fail(
                f"client {client.client_id}: {record.call.describe()} succeeded (session "
                f"{key[0]:#x} xid {key[1]}) but is not in the chain"
            )
        if zxid <= record.acked_before:
            raise self._fail(
                f"client {client.client_id}: {record.call.describe()} at {zxid:#x} is ordered "
                f"before a write that had succeeded ({record.acked_before:#x}) when it was made"
            )
        txn = self.chain[zxid]
        result = record.call.result
        body = txn.body
        if record.call.op == OpCode.CREATE:
            assert isinstance(body, CreateTxn)
            created = parse_create(result)[0]
            if created != body.path:
                raise self._fail(f"create answered {created}, the txn made {body.path}")
        elif record.call.op == OpCode.SET_DATA:
            assert isinstance(body, SetDataTxn)
            version = parse_stat(OpCode.SET_DATA, result).version
            if version != body.version:
                raise self._fail(
                    f"set of {body.path} answered version {version}, the txn made {body.version}"
                )
        self.durable_on_quorum(zxid)
        self.acked.append(zxid)
        self.acked_max = max(self.acked_max, zxid)
        view = self.view(client)
        view.own_max = max(view.own_max, zxid)

    def durable_on_quorum(self, zxid: int) -> None:
        """An acknowledged write is on the disks of a quorum of voters."""
        if self.holders is None:
            return
        holding = [m for m in self.holders(zxid) if m in self.voters]
        if len(holding) <= len(self.voters) // 2:
            raise self._fail(f"acknowledged write {zxid:#x} is durable only on {holding}")

    def _read_answered(self, client: SimClient, record: OpRecord) -> None:
        call = record.call
        path = call.body["path"]
        state = self.model.state_at(path, record.reply_zxid)
        result = None if call.error is not None else call.result
        got: tuple[bytes | None, int] | list[str] | None = None
        want: tuple[bytes | None, int] | list[str] | None = None
        if call.op == OpCode.GET_CHILDREN:
            got = None if result is None else parse_children(result)[0]
            want = None if state is None else self.model.children_at(path, record.reply_zxid)
            self.children_read += 1
        else:
            version: int | None = None
            if result is not None and call.op == OpCode.GET_DATA:
                data, stat = parse_get(result)
                got, version = (data, stat.version), stat.version
            elif result is not None:
                exists = parse_exists(result)
                version = None if exists is None else exists.version
                got = None if version is None else (None, version)
            if state is not None:
                want = (None if call.op == OpCode.EXISTS else state.data, state.version)
            client.remember_version(path, version)
        if got != want:
            raise self._fail(
                f"client {client.client_id}: {call.describe()} at {record.reply_zxid:#x} read "
                f"{got}, the chain has {want}"
            )
        self.reads_checked += 1
        sync = record.after_sync
        if sync is not None and sync.call.done and sync.call.error is None:
            # (after a failed sync the client never returns the read: Client.get raises)
            self.sync_reads += 1
            bound = sync.acked_before
            if record.reply_zxid < bound:
                raise self._fail(
                    f"client {client.client_id}: a read after sync at {record.reply_zxid:#x} "
                    f"misses a write that had succeeded at {bound:#x}"
                )
