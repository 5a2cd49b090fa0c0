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
- a read returns the model's node at the zxid its reply carries; a read
  after a sync carries a zxid at or after every write that had succeeded
  before the sync was sent;
- a client never sees a zxid older than one it saw, on any member, in the
  replies to its requests (what it counts as seen, as ZooKeeper's client
  does; an event names the zxid of its change, and one that SET_WATCHES fires
  after a reconnect names an older change than the member's);
- every watch event answers a watch the client holds, for the first change
  of that node after the watch was set (a persistent watch: for every change,
  in order), and arrives before any frame whose zxid shows that change, also
  across a failover;
- an ephemeral node's owner is a live session in every member's tree.

A broken guarantee raises `Violation` naming the client, path or zxid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coord.client.pending import Call
from coord.client.watches import WatchKind
from coord.errors import NoNodeError
from coord.messages import WATCH_XID, EventType, OpCode, Stat, WatchedEvent, event_from_wire
from coord.server.core.tree import DataTree
from coord.server.core.txn import CheckTxn, CreateTxn, SetDataTxn, Txn
from coord.server.sim.model import CHANGED, CREATED, DELETED, ModelViolation, TreeModel, tree_digest

if TYPE_CHECKING:
    from coord.server.sim.client import SimClient

WRITES = frozenset({OpCode.CREATE, OpCode.DELETE, OpCode.SET_DATA, OpCode.MULTI})
EVENT_OF = {
    CREATED: EventType.CREATED,
    CHANGED: EventType.CHANGED,
    DELETED: EventType.DELETED,
}
HEARS = {
    WatchKind.DATA: (CHANGED, DELETED),
    WatchKind.EXIST: (CREATED, CHANGED, DELETED),
    WatchKind.PERSISTENT: (CREATED, CHANGED, DELETED),
}
"""The changes each kind of watch (on a node with no children) is told of."""


class Violation(AssertionError):
    """A guarantee did not hold."""


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
    after_sync: OpRecord | None = None


@dataclass
class Armed:
    kind: WatchKind
    path: str
    after: int
    """Changes after this zxid are still to be heard of."""
    moved: bool = False
    """Re-registered on another connection (SET_WATCHES): the member that fires it knows
    only the node's state now, so the event names the latest change, not the first."""
    suspended: bool = False
    """A persistent watch between a reconnect and its SET_WATCHES reply. As in
    ZooKeeper, changes made while the client was away are not replayed to it."""


@dataclass
class ClientView:
    last_zxid: int = 0
    calls: dict[int, OpRecord] = field(default_factory=dict)
    """xid -> the call sent with it (this session)."""
    pending: list[OpRecord] = field(default_factory=list)
    """Invoked, not sent yet (in order)."""
    armed: dict[tuple[WatchKind, str], Armed] = field(default_factory=dict)
    frame_zxid: int = 0
    """The zxid of the frame being handled (a watch set by its reply starts there)."""
    set_watches_xids: set[int] = field(default_factory=set)


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
        self._records: dict[int, OpRecord] = {}
        """id(call) -> its record, while the call is open."""
        self.holders: Callable[[int], list[int]] | None = None
        """zxid -> the members whose disks hold it; the world sets it."""

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
        for armed in self.view(client).armed.values():
            if armed.kind is WatchKind.PERSISTENT:
                armed.suspended = True
            else:
                armed.moved = True

    def session_ended(self, client: SimClient, session_id: int, *, expired: bool) -> None:
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
        if event is not None:
            self.events += 1
            self._check_event(client, view, event)
        elif zxid and xid > 0:  # a reply to a request (pings and notices show no data)
            self.frame_zxid(client, zxid)
            for armed in view.armed.values():
                if armed.moved:
                    continue  # (its SET_WATCHES is not answered yet)
                due = self._due(armed, zxid)
                if due:
                    raise self._fail(
                        f"client {client.client_id} got a frame at {zxid:#x} before the "
                        f"{armed.kind.value} watch event on {armed.path} for {due[0][0]:#x}"
                    )
        record = view.calls.get(xid)
        if record is not None:
            record.reply_zxid = zxid

    def _rearmed(self, client: SimClient, view: ClientView, zxid: int) -> None:
        """The SET_WATCHES reply: every watch is registered again, on the member's tree at zxid.

        Before the reply, the member fired what its tree shows changed since the
        client's last zxid (ZooKeeper's rule): a data watch whose node changed or
        went, an exist watch whose node is there. A watch still armed must not
        have been owed an event by that rule; from here on it hears of changes
        after `zxid`, as on any connection.
        """
        for armed in view.armed.values():
            if armed.moved:
                owed = (
                    self.model.state_at(armed.path, zxid) is not None
                    if armed.kind is WatchKind.EXIST
                    else bool(self._due(armed, zxid))
                )
                if owed:
                    raise self._fail(
                        f"client {client.client_id}: SET_WATCHES at {zxid:#x} sent no event "
                        f"for its {armed.kind.value} watch on {armed.path}"
                    )
            armed.moved = armed.suspended = False
            armed.after = zxid

    def _due(self, armed: Armed, upto: int) -> list[tuple[int, str]]:
        if armed.suspended:
            return []
        hears = HEARS[armed.kind]
        return [c for c in self.model.changes(armed.path, armed.after, upto) if c[1] in hears]

    def _check_event(self, client: SimClient, view: ClientView, event: WatchedEvent) -> None:
        assert isinstance(event.path, str)
        covered = False
        for armed in view.armed.values():
            due = self._due(armed, event.zxid)
            if armed.path != event.path:
                if due and not armed.moved:  # (SET_WATCHES fires in path order, not zxid)
                    raise self._fail(
                        f"client {client.client_id} got an event at {event.zxid:#x} before "
                        f"the watch event on {armed.path} for {due[0][0]:#x}"
                    )
                continue
            if not due:
                continue
            first_zxid, kind = due[0]
            if armed.moved:
                state = self.model.state_at(armed.path, event.zxid)
                kind = (
                    DELETED
                    if state is None
                    else CREATED
                    if armed.kind is WatchKind.EXIST
                    else CHANGED
                )
                first_zxid = event.zxid
            if first_zxid != event.zxid or EVENT_OF[kind] != event.type:
                raise self._fail(
                    f"client {client.client_id}: {event.type.name} {event.path} at "
                    f"{event.zxid:#x}; the {armed.kind.value} watch expected {kind} at "
                    f"{first_zxid:#x}"
                )
            covered = True
        if not covered:
            raise self._fail(
                f"client {client.client_id}: {event.type.name} {event.path} at {event.zxid:#x} "
                "answers no watch it holds (fired twice, or never set)"
            )

    def event_seen(self, client: SimClient, event: WatchedEvent) -> None:
        view = self.view(client)
        for key, armed in list(view.armed.items()):
            if armed.path == event.path and self._due(armed, event.zxid):
                if armed.kind is WatchKind.PERSISTENT:
                    armed.after = event.zxid
                else:
                    del view.armed[key]

    def watch_set(self, client: SimClient, kind: WatchKind, path: str) -> None:
        view = self.view(client)
        view.armed.setdefault((kind, path), Armed(kind, path, view.frame_zxid))

    def _completed(self, client: SimClient, record: OpRecord) -> None:
        call = record.call
        op = call.op
        if isinstance(call.error, NoNodeError) and op == OpCode.GET_DATA:
            self._read_answered(client, record)
        if call.error is not None:
            return
        if op == OpCode.MULTI and any(code for code, _ in call.result):
            return  # the multi failed as a whole (its results carry the errors)
        if op == OpCode.SET_DATA:
            client.remember_version(call.body["path"], Stat(*call.result).version)
        if op in WRITES:
            self._write_succeeded(client, record)
        elif op in (OpCode.GET_DATA, OpCode.EXISTS):
            self._read_answered(client, record)

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
            if result[0] != body.path:
                raise self._fail(f"create answered {result[0]}, the txn made {body.path}")
        elif record.call.op == OpCode.SET_DATA:
            assert isinstance(body, SetDataTxn)
            if Stat(*result).version != body.version:
                raise self._fail(
                    f"set of {body.path} answered version {Stat(*result).version}, "
                    f"the txn made {body.version}"
                )
        self.durable_on_quorum(zxid)
        self.acked.append(zxid)
        self.acked_max = max(self.acked_max, zxid)

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
        got: tuple[bytes | None, int] | None = None
        if result is not None and call.op == OpCode.GET_DATA:
            got = (result[0], Stat(*result[1]).version)
        elif result is not None:
            got = (None, Stat(*result).version)
        want = None if state is None else (state.data, state.version)
        if call.op == OpCode.EXISTS and want is not None:
            want = (None, want[1])
        if got != want:
            raise self._fail(
                f"client {client.client_id}: {call.describe()} at {record.reply_zxid:#x} read "
                f"{got}, the chain has {want}"
            )
        client.remember_version(path, None if got is None else got[1])
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
