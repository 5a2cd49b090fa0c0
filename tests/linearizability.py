"""A linearizability checker for key-value register histories (pure; no IO, no clock).

A history is a set of operations, each with the time it was invoked and the
time it completed. Reads return a value (None for "absent"); writes set one.
The history is linearizable when every operation can be given one instant
inside its [invoke, complete] interval such that, taken in that order, each
read returns the value of the last write before it (Herlihy & Wing, 1990).

A write that never completed (``complete is None``) may or may not have
happened: it may take effect at any instant after its invocation, or never.
A read that never completed tells nothing and is dropped.

How it decides. Keys are independent registers and linearizability is local
(Herlihy & Wing's locality theorem), so each key is checked on its own.

When every write to a key writes a distinct value (as the simulator's clients
do), the check is the polynomial one of Gibbons & Korach (SIAM J. Comput.
1997), as restated by Horn & Kroening (2015): group each write with the reads
that returned its value (reads of the initial value go with a virtual write
before everything) into a cluster; a cluster spans from the earliest
completion to the latest invocation among its operations. If the earliest
completion comes first, the cluster has a "forward zone" it must occupy alone;
otherwise a "backward zone" it can be squeezed into. The history is
linearizable iff no read completes before its write is invoked, no two
forward zones overlap, and no backward zone lies inside another cluster's
forward zone.

Otherwise (values repeat) it is the Wing & Gong search with Lowe's memo ("WGL",
as in Knossos and Porcupine): the calls and returns are one list sorted by
time; the search tries to linearize the earliest pending call whose
preconditions hold, lifts it out of the list, starts again from the front, and
backtracks when it meets the return of an operation it has not linearized. A
cache of (linearized set, state) prunes states already seen. An incomplete
write returns at "infinity", so it can always fall to the end, which is the
same as never having happened. The search is exponential in the worst case;
`max_states` bounds it, and a history it cannot decide within the bound is
reported as not shown linearizable.

Both ways, an incomplete write whose value no read returned is dropped first:
placing it last is always possible, so it cannot change the verdict.

Equal timestamps count as overlapping (a call at t is ordered before a return
at t), so ties never produce a false alarm.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from itertools import pairwise

READ = "read"
WRITE = "write"
_INFINITY = float("inf")


@dataclass(frozen=True, slots=True)
class Operation:
    op_id: int
    key: Hashable
    kind: str
    """READ or WRITE."""
    value: Hashable
    """For a write the value written; for a read the value it returned (None: absent)."""
    invoke: float
    complete: float | None
    """None: no reply was seen (a write that may or may not have happened)."""

    def __post_init__(self) -> None:
        if self.kind not in (READ, WRITE):
            raise ValueError(f"unknown operation kind {self.kind!r}")
        if self.complete is not None and self.complete < self.invoke:
            raise ValueError(f"operation {self.op_id} completes before it is invoked")


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    key: Hashable = None
    """The first key (in sorted order) whose history is not linearizable."""
    operations: tuple[Operation, ...] = ()
    """That key's operations, by invocation time."""
    reason: str = ""
    culprits: tuple[int, ...] = ()
    """op_ids at the heart of the failure, where the method can tell."""
    explored: int = 0
    """States the search visited, over all keys (a measure of its cost)."""

    def explain(self, context: int = 8) -> str:
        """The failing key's operations near the culprits (all of them if none are named)."""
        if self.ok:
            return "linearizable"
        lines = [f"key {self.key!r} is not linearizable: {self.reason}"]
        ops = self.operations
        shown = set(range(len(ops)))
        if self.culprits:
            shown = set()
            for i, op in enumerate(ops):
                if op.op_id in self.culprits:
                    shown.update(range(max(0, i - context), min(len(ops), i + context + 1)))
        skipped = 0
        for i, op in enumerate(ops):
            if i not in shown:
                skipped += 1
                continue
            if skipped:
                lines.append(f"  ... {skipped} operations")
                skipped = 0
            end = "..." if op.complete is None else f"{op.complete}"
            mark = "  <--" if op.op_id in self.culprits else ""
            lines.append(f"  #{op.op_id} {op.kind} {op.value!r}  [{op.invoke}, {end}]{mark}")
        if skipped:
            lines.append(f"  ... {skipped} operations")
        return "\n".join(lines)


def check(
    history: Iterable[Operation],
    initial: Hashable = None,
    *,
    method: str = "auto",
    max_states: int = 2_000_000,
) -> Verdict:
    """Is the history linearizable for registers that all start at `initial`?

    `method`: "auto" (zones when writes are unique, else the search), "zones"
    or "search" (the tests compare the two).
    """
    by_key: dict[Hashable, list[Operation]] = defaultdict(list)
    for op in history:
        by_key[op.key].append(op)
    explored = 0
    for key in sorted(by_key, key=repr):
        ops = _relevant(by_key[key])
        use_zones = method == "zones" or (method == "auto" and _unique_writes(ops, initial))
        if use_zones:
            reason, culprits = _check_zones(ops, initial)
            explored += len(ops)
        else:
            reason, culprits, visited = _check_search(ops, initial, max_states)
            explored += visited
        if reason:
            shown = tuple(sorted(ops, key=lambda o: (o.invoke, o.op_id)))
            return Verdict(False, key, shown, reason, culprits, explored)
    return Verdict(True, explored=explored)


def _relevant(ops: list[Operation]) -> list[Operation]:
    """Drop reads without a reply and incomplete writes that nobody observed."""
    observed = {op.value for op in ops if op.kind == READ and op.complete is not None}
    return [
        op
        for op in ops
        if (op.kind == READ and op.complete is not None)
        or (op.kind == WRITE and (op.complete is not None or op.value in observed))
    ]


def _unique_writes(ops: list[Operation], initial: Hashable) -> bool:
    values = [op.value for op in ops if op.kind == WRITE]
    return len(values) == len(set(values)) and initial not in values


# -- unique writes: zones (Gibbons & Korach) ------------------------------------------


def _check_zones(ops: list[Operation], initial: Hashable) -> tuple[str, tuple[int, ...]]:
    writes = {op.value: op for op in ops if op.kind == WRITE}
    clusters: dict[Hashable, list[Operation]] = {value: [op] for value, op in writes.items()}
    initial_reads: list[Operation] = []
    for op in ops:
        if op.kind != READ:
            continue
        if op.value in writes:
            write = writes[op.value]
            assert op.complete is not None
            if op.complete < write.invoke:
                return f"read #{op.op_id} returned a value written later", (op.op_id, write.op_id)
            clusters[op.value].append(op)
        elif op.value == initial:
            initial_reads.append(op)
        else:
            return f"read #{op.op_id} returned {op.value!r}, which nobody wrote", (op.op_id,)
    # (low, high, forward, op_ids): a forward zone [low, high] must hold its cluster alone.
    zones: list[tuple[float, float, bool, tuple[int, ...]]] = []
    for cluster in clusters.values():
        first_end = min(_INFINITY if o.complete is None else o.complete for o in cluster)
        last_start = max(o.invoke for o in cluster)
        ids = tuple(o.op_id for o in cluster)
        if first_end < last_start:
            zones.append((first_end, last_start, True, ids))
        else:
            zones.append((last_start, first_end, False, ids))
    if initial_reads:
        # The initial value was "written" before time began: a forward zone up to its last read.
        last_start = max(o.invoke for o in initial_reads)
        zones.append((-_INFINITY, last_start, True, tuple(o.op_id for o in initial_reads)))
    forward = sorted((z for z in zones if z[2]), key=lambda z: z[0])
    for a, b in pairwise(forward):
        if b[0] < a[1]:
            return "two writes' values were each seen while the other was current", a[3] + b[3]
    # A backward zone inside a forward zone: some write had to land inside another's span.
    starts = [z[0] for z in forward]
    for low, high, is_forward, ids in zones:
        if is_forward:
            continue
        # The forward zone starting last before `low` is the only candidate (they are disjoint).
        i = _last_before(starts, low)
        if i is not None and high < forward[i][1]:
            return "a write landed between another write and a read of it", ids + forward[i][3]
    return "", ()


def _last_before(starts: list[float], point: float) -> int | None:
    lo, hi = 0, len(starts)
    while lo < hi:
        mid = (lo + hi) // 2
        if starts[mid] < point:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1 if lo else None


# -- any register: the WGL search ------------------------------------------------------


class _Entry:
    """One call or return in the doubly linked list the search walks."""

    __slots__ = ("index", "is_call", "match", "next", "op", "prev")

    def __init__(self, op: Operation | None, index: int, is_call: bool) -> None:
        self.op = op
        self.index = index
        self.is_call = is_call
        self.match: _Entry | None = None
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _check_search(
    ops: list[Operation], initial: Hashable, max_states: int
) -> tuple[str, tuple[int, ...], int]:
    events: list[tuple[float, int, int, _Entry]] = []
    for index, op in enumerate(ops):
        invocation = _Entry(op, index, True)
        ret = _Entry(op, index, False)
        invocation.match = ret
        end = _INFINITY if op.complete is None else op.complete
        events.append((op.invoke, 0, index, invocation))
        events.append((end, 1, index, ret))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    head = _Entry(None, -1, False)
    last = head
    for *_, event in events:
        last.next = event
        event.prev = last
        last = event

    def lift(entry: _Entry) -> None:
        for e in (entry, entry.match):
            assert e is not None and e.prev is not None
            e.prev.next = e.next
            if e.next is not None:
                e.next.prev = e.prev

    def unlift(entry: _Entry) -> None:
        for e in (entry.match, entry):
            assert e is not None and e.prev is not None
            e.prev.next = e
            if e.next is not None:
                e.next.prev = e

    state: Hashable = initial
    linearized = 0
    stack: list[tuple[_Entry, Hashable]] = []
    cache: set[tuple[int, Hashable]] = set()
    visited = 0
    deepest, stuck = -1, -1
    entry: _Entry | None = head.next
    while head.next is not None:
        assert entry is not None, "every call is followed by its return"
        visited += 1
        if visited > max_states:
            return f"undecided after {max_states} search states", (), visited
        if entry.is_call:
            call = entry.op
            assert call is not None
            if call.kind == WRITE:
                ok, new_state = True, call.value
            else:
                ok, new_state = call.value == state, state
            if ok:
                mask = linearized | (1 << entry.index)
                if (mask, new_state) not in cache:
                    cache.add((mask, new_state))
                    stack.append((entry, state))
                    state, linearized = new_state, mask
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # The return of an operation not yet linearized: what came before was wrong.
            if len(stack) > deepest:
                deepest = len(stack)
                assert entry.op is not None
                stuck = entry.op.op_id
            if not stack:
                return "no order of the operations explains the reads", (stuck,), visited
            undone, state = stack.pop()
            linearized &= ~(1 << undone.index)
            unlift(undone)
            entry = undone.next
    return "", (), visited
