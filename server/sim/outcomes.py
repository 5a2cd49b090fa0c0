"""Failed writes, held to the model: the error a write got must be one the tree had reason for.

A write that fails leaves no txn (the preparer refuses it against the
leader's pending state, coord.server.core.prep), so the chain holds nothing
to check it by. Its linearization point is a state of the chain in a window:
not before what the client could already know (a write that had succeeded
when the call was made, the zxid the client had seen when it sent it, its own
earlier writes), and not after the last zxid any leader had handed out when
the reply arrived (the pending state it was refused against). Some committed
state in that window must give the error:

    NoNode                   the node (a create's parent) is absent
    NodeExists               the node is there (a create that is not sequential)
    BadVersion               the node is there at another version
    NotEmpty                 the node has children
    NoChildrenForEphemerals  a create's parent is ephemeral

and for a failed multi, the ops before the failing one must pass in turn from
that state (each applied before the next is judged), every other op must be
rolled back, and the failing one must fail so. A failure the model says could
not have happened anywhere in its window raises `Violation`. While the window
still reaches past the chain's head, the check waits for the chain (or for
the end of the run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coord import paths
from coord.errors import (
    BadVersionError,
    KeeperError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
)
from coord.messages import CreateMode, OpCode
from coord.server.sim.model import NodeState, TreeModel

MODEL_ERRORS = (
    NoNodeError,
    NodeExistsError,
    BadVersionError,
    NotEmptyError,
    NoChildrenForEphemeralsError,
)
"""The errors a write gets from the tree's state (the rest: from sessions and links)."""


@dataclass
class Failure:
    who: str
    what: str
    ops: list[tuple[int, dict[str, Any]]]
    """The write's ops, (op, body), in order: one, or a multi's."""
    index: int
    """Which op failed."""
    error: KeeperError
    lower: int
    upper: int


class FailureChecker:
    """Judges failed writes against the model; `fail` makes the Violation."""

    def __init__(self, model: TreeModel, fail: Callable[[str], Exception]) -> None:
        self.model = model
        self._fail = fail
        self.waiting: list[Failure] = []
        self.checked = 0

    def failed(self, failure: Failure) -> None:
        """A write failed: judge it now, or once the chain has reached its window's end."""
        if self._explained(failure):
            self.checked += 1
        elif failure.upper > self.model.last_zxid:
            self.waiting.append(failure)
        else:
            raise self._unexplained(failure)

    def chain_grew(self) -> None:
        """Judge the failures whose windows the chain now covers."""
        head = self.model.last_zxid
        if self.waiting and min(f.upper for f in self.waiting) <= head:
            ready = [f for f in self.waiting if f.upper <= head]
            self.waiting = [f for f in self.waiting if f.upper > head]
            for failure in ready:
                self._judge(failure)

    def finish(self) -> None:
        """The run is over: what is still waiting is judged on the chain as it is."""
        waiting, self.waiting = self.waiting, []
        for failure in waiting:
            self._judge(failure)

    def _judge(self, failure: Failure) -> None:
        if not self._explained(failure):
            raise self._unexplained(failure)
        self.checked += 1

    def _unexplained(self, failure: Failure) -> Exception:
        return self._fail(
            f"{failure.who}: {failure.what} failed with {type(failure.error).__name__} (op "
            f"{failure.index}), which no state of the chain in {failure.lower:#x}.."
            f"{failure.upper:#x} gives"
        )

    def _explained(self, failure: Failure) -> bool:
        """Some committed state in the window gives the failure."""
        model = self.model
        lower, upper = failure.lower, min(failure.upper, model.last_zxid)
        points = {lower}
        for _, body in failure.ops:
            path = body["path"]
            for watched in (path, paths.parent(path) if path != "/" else path):
                points.update(z for z, _ in model.changes(watched, lower, upper))
            points.update(model.child_changes(path, lower, upper))
        return any(self._fails_at(failure, z) for z in sorted(points))

    def _fails_at(self, failure: Failure, zxid: int) -> bool:
        """From the chain's state at `zxid`, the ops fail as the reply said."""
        model = self.model
        nodes: dict[str, NodeState | None] = {}
        kids: dict[str, int] = {}

        def node(path: str) -> NodeState | None:
            if path not in nodes:
                nodes[path] = model.state_at(path, zxid)
            return nodes[path]

        def children(path: str) -> int:
            if path not in kids:
                kids[path] = len(model.children_at(path, zxid))
            return kids[path]

        for i, (op, body) in enumerate(failure.ops):
            errors = _errors(op, body, node, children)
            if i == failure.index:
                return isinstance(failure.error, errors)
            if errors:
                return False  # (this earlier op would have failed the multi first)
            _apply(op, body, node, children, nodes, kids)
        return False


def _errors(
    op: int,
    body: dict[str, Any],
    node: Callable[[str], NodeState | None],
    children: Callable[[str], int],
) -> tuple[type[KeeperError], ...]:
    """The errors the state gives one op (none: it would succeed)."""
    path = body["path"]
    out: list[type[KeeperError]] = []
    if op == OpCode.CREATE:
        parent = node(paths.parent(path))
        if parent is None:
            return (NoNodeError,)
        if parent.owner:
            out.append(NoChildrenForEphemeralsError)
        if not CreateMode(body.get("mode", 0)).is_sequential and node(path) is not None:
            out.append(NodeExistsError)
        return tuple(out)
    state = node(path)
    if state is None:
        return (NoNodeError,)
    version = body.get("version", -1)
    if version not in (-1, state.version):
        out.append(BadVersionError)
    if op == OpCode.DELETE and children(path):
        out.append(NotEmptyError)
    return tuple(out)


def _apply(
    op: int,
    body: dict[str, Any],
    node: Callable[[str], NodeState | None],
    children: Callable[[str], int],
    nodes: dict[str, NodeState | None],
    kids: dict[str, int],
) -> None:
    """An op that passed, applied to the scratch state for the ops after it."""
    path = body["path"]
    if op == OpCode.CREATE:
        parent = paths.parent(path)
        kids[parent] = children(parent) + 1
        mode = CreateMode(body.get("mode", 0))
        if not mode.is_sequential:
            ephemeral = mode in (CreateMode.EPHEMERAL, CreateMode.EPHEMERAL_SEQUENTIAL)
            nodes[path] = NodeState(body.get("data"), 0, 1 if ephemeral else 0)
            kids[path] = 0
    elif op == OpCode.DELETE:
        parent = paths.parent(path)
        kids[parent] = children(parent) - 1
        nodes[path] = None
    elif op == OpCode.SET_DATA:
        state = node(path)
        assert state is not None
        nodes[path] = NodeState(body.get("data"), state.version + 1, state.owner)
