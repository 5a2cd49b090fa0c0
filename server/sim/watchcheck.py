"""What the simulator checks of watch events: each owed once, in zxid order, before replies.

A client's watch is `Armed` from the frame that set it: the reply that set a
one-shot watch (get_data, exists, get_children) or a persistent one
(add_watch). From then on the model (coord.server.sim.model) says what the
watch is owed, as (zxid, path, event type) items in zxid order:

- a data watch: the CHANGED or DELETED of its node (the first one);
- an exist watch: the CREATED, CHANGED or DELETED of its node (the first);
- a child watch: a CHILD of its node at each zxid a child came or went, or
  the node's DELETED (the first of these);
- a persistent watch (the simulator sets them on nodes without children):
  every CREATED, CHANGED and DELETED of its node;
- a persistent recursive watch: every CREATED, CHANGED and DELETED of its
  node and every node under it (never CHILD, as in ZooKeeper). One txn may
  owe it several (a session's close deletes its ephemerals at one zxid), so
  it remembers which paths it has heard of at its last zxid.

The rules, the same for every kind: an event must be owed by some watch the
client holds, as the earliest thing that watch is still owed (so a second
delivery, or one out of zxid order, answers nothing); a reply whose zxid shows
a change must come after every event owed for it, and so must an event of a
later zxid. A reconnect moves the one-shot watches to the new member with
SET_WATCHES: that member fires at once what changed since the client's last
zxid, naming the latest change (the one it sees), and a watch it leaves armed
must not have been owed anything up to its reply's zxid. Persistent watches
are suspended from the reconnect to that reply: as in ZooKeeper, changes made
while the client was away are not replayed to it, and from the reply on it is
owed every change again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from coord.client.watches import WatchKind
from coord.messages import EventType, WatchedEvent
from coord.server.sim.model import CHANGED, CREATED, DELETED, TreeModel

EVENT_OF = {
    CREATED: EventType.CREATED,
    CHANGED: EventType.CHANGED,
    DELETED: EventType.DELETED,
}
HEARS = {
    WatchKind.DATA: (CHANGED, DELETED),
    WatchKind.EXIST: (CREATED, CHANGED, DELETED),
    WatchKind.PERSISTENT: (CREATED, CHANGED, DELETED),
    WatchKind.CHILD: (DELETED,),
}
"""The changes of its own node each non-recursive kind of watch is told of."""

Item = tuple[int, str, EventType]
"""(zxid, path, event type): one event a watch is owed."""


@dataclass
class Armed:
    kind: WatchKind
    path: str
    after: int
    """Changes after this zxid are still to be heard of."""
    heard: set[str] = field(default_factory=set)
    """The paths already heard of at zxid `after` (a persistent watch's last event's
    txn may have changed several); empty when `after` is where the watch was set."""
    moved: bool = False
    """Re-registered on another connection (SET_WATCHES): the member that fires it knows
    only the node's state now, so the event names the latest change, not the first."""
    suspended: bool = False
    """A persistent watch between a reconnect and its SET_WATCHES reply. As in
    ZooKeeper, changes made while the client was away are not replayed to it."""


Watches = dict[tuple[WatchKind, str], Armed]


class WatchChecker:
    """Holds one client's watches to the module's rules; `fail` makes the Violation."""

    def __init__(self, model: TreeModel, fail: Callable[[str], Exception]) -> None:
        self.model = model
        self._fail = fail
        self.child_events = 0
        self.recursive_events = 0
        self.child_watches_rearmed = 0
        """Child watches that SET_WATCHES carried to another member, held to its rule."""

    def due(self, armed: Armed, upto: int) -> list[Item]:
        """What `armed` is still owed of the changes up to `upto`, in zxid order."""
        if armed.suspended:
            return []
        model, path = self.model, armed.path
        start = armed.after - 1 if armed.heard else armed.after
        items: list[Item]
        if armed.kind is WatchKind.PERSISTENT_RECURSIVE:
            items = [(z, p, EVENT_OF[k]) for z, p, k in model.subtree_changes(path, start, upto)]
        else:
            hears = HEARS[armed.kind]
            items = [
                (z, path, EVENT_OF[k]) for z, k in model.changes(path, start, upto) if k in hears
            ]
            if armed.kind is WatchKind.CHILD:
                children = model.child_changes(path, start, upto)
                items = sorted(items + [(z, path, EventType.CHILD) for z in children])
        if armed.heard:
            items = [i for i in items if i[0] != armed.after or i[1] not in armed.heard]
        return items

    def _moved_event(self, armed: Armed, zxid: int) -> EventType:
        """The event SET_WATCHES fires for a moved watch, from the node's state at `zxid`."""
        if self.model.state_at(armed.path, zxid) is None:
            return EventType.DELETED
        return {
            WatchKind.EXIST: EventType.CREATED,
            WatchKind.CHILD: EventType.CHILD,
        }.get(armed.kind, EventType.CHANGED)

    def check_event(self, who: str, watches: Watches, event: WatchedEvent) -> None:
        """An event arrived: it is owed, and nothing owed before it is still missing."""
        assert isinstance(event.path, str)
        wanted = (event.zxid, event.path, event.type)
        covered: set[WatchKind] = set()
        for armed in watches.values():
            due = self.due(armed, event.zxid)
            if not due:
                continue
            if armed.moved:  # (SET_WATCHES fires in path order, not zxid, naming the latest)
                if armed.path == event.path and event.type is self._moved_event(armed, event.zxid):
                    covered.add(armed.kind)
                continue
            first = due[0][0]
            if wanted in [d for d in due if d[0] == first]:
                covered.add(armed.kind)
            elif first < event.zxid:
                raise self._fail(
                    f"{who} got {event.type.name} {event.path} at {event.zxid:#x} before the "
                    f"{armed.kind.value} watch event on {due[0][1]} for {first:#x}"
                )
        if not covered:
            raise self._fail(
                f"{who}: {event.type.name} {event.path} at {event.zxid:#x} answers no watch it "
                "holds (fired twice, out of order, or never set)"
            )
        if event.type is EventType.CHILD:
            self.child_events += 1
        if WatchKind.PERSISTENT_RECURSIVE in covered:
            self.recursive_events += 1

    def check_reply(self, who: str, watches: Watches, zxid: int) -> None:
        """A reply at `zxid` shows every change up to it: no watch may still be owed one."""
        for armed in watches.values():
            if armed.moved:
                continue  # (its SET_WATCHES is not answered yet)
            due = self.due(armed, zxid)
            if due:
                raise self._fail(
                    f"{who} got a frame at {zxid:#x} before the {armed.kind.value} watch "
                    f"event on {due[0][1]} for {due[0][0]:#x}"
                )

    def event_seen(self, watches: Watches, event: WatchedEvent) -> None:
        """The client handed the event to its watchers: what it answered is heard."""
        wanted = (event.zxid, event.path, event.type)
        for key, armed in list(watches.items()):
            due = self.due(armed, event.zxid)
            if not due or not (armed.path == event.path if armed.moved else wanted in due):
                continue
            if not armed.kind.is_persistent:
                del watches[key]
            elif armed.after != event.zxid:
                armed.after, armed.heard = event.zxid, {event.path}
            else:
                armed.heard.add(event.path)

    def reconnected(self, watches: Watches) -> None:
        """The session moved to a new connection: its watches are re-registered there."""
        for armed in watches.values():
            if armed.kind.is_persistent:
                armed.suspended = True
            else:
                armed.moved = True

    def rearmed(self, who: str, watches: Watches, zxid: int) -> None:
        """The SET_WATCHES reply: every watch is registered again, on the member's tree at zxid.

        Before the reply, the member fired what its tree shows changed since the
        client's last zxid (ZooKeeper's rule): a data watch whose node changed or
        went, an exist watch whose node is there, a child watch whose node lost
        or gained a child or went. A watch still armed must not have been owed
        an event by that rule; from here on it hears of changes after `zxid`, as
        on any connection.
        """
        for armed in watches.values():
            if armed.moved:
                owed = (
                    self.model.state_at(armed.path, zxid) is not None
                    if armed.kind is WatchKind.EXIST
                    else bool(self.due(armed, zxid))
                )
                if owed:
                    raise self._fail(
                        f"{who}: SET_WATCHES at {zxid:#x} sent no event for its "
                        f"{armed.kind.value} watch on {armed.path}"
                    )
                if armed.kind is WatchKind.CHILD:
                    self.child_watches_rearmed += 1
            armed.moved = armed.suspended = False
            armed.after, armed.heard = zxid, set()

    def watch_set(self, watches: Watches, kind: WatchKind, path: str, zxid: int) -> None:
        """A watch is set by the frame at `zxid` (one already held stays as it was)."""
        watches.setdefault((kind, path), Armed(kind, path, zxid))
