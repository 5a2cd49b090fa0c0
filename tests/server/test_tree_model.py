"""A stateful model test: ServerCore against a plain dict model of the tree.

Several sessions send creates (persistent, ephemeral, sequential), sets and
deletes with right and wrong versions, multis and session closes, often
pipelined: requests pile up before the core's Ready batches are carried out,
and batches are sometimes carried out one at a time. Every write is decided
when it is sent (the preparer works against the pending state), so the model
changes at send time and predicts each reply; the tree must equal the model
whenever nothing is pending, and the preparer's view must equal it always.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from coord import paths
from coord.errors import (
    BadVersionError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
)
from coord.framing import NEED_DATA, FrameDecoder
from coord.messages import PROTOCOL_VERSION, ConnectRequest, CreateMode, OpCode, Stat
from coord.server.core.replica import CoreConfig, ServerCore
from coord.server.native.codec import NativeEncoder

SLOTS = 3
NAMES = ["a", "b", "c", "s-"]
DATA = [b"", b"x", b"yy"]
MODES = [
    CreateMode.PERSISTENT,
    CreateMode.EPHEMERAL,
    CreateMode.PERSISTENT_SEQUENTIAL,
    CreateMode.EPHEMERAL_SEQUENTIAL,
]
VERSIONS = ["any", "right", "wrong"]


class Fail(Exception):
    """A predicted error: its code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class MNode:
    data: bytes = b""
    version: int = 0
    cversion: int = 0
    owner: int = 0
    children: set[str] = field(default_factory=set)


def _copy_model(model: dict[str, MNode]) -> dict[str, MNode]:
    return {p: replace(n, children=set(n.children)) for p, n in model.items()}


class Model:
    """The tree as a dict; each method mutates it or raises Fail with the expected code."""

    def __init__(self) -> None:
        self.nodes: dict[str, MNode] = {"/": MNode()}

    def create(self, path: str, data: bytes, mode: CreateMode, owner: int) -> str:
        parent_path = paths.parent(path + "0" if mode.is_sequential else path)
        parent = self.nodes.get(parent_path)
        if parent is None:
            raise Fail(NoNodeError.code)
        if parent.owner:
            raise Fail(NoChildrenForEphemeralsError.code)
        if mode.is_sequential:
            path = paths.sequential_name(path, parent.cversion)
        if path in self.nodes:
            raise Fail(NodeExistsError.code)
        parent.cversion += 1
        parent.children.add(paths.basename(path))
        self.nodes[path] = MNode(data, owner=owner if mode.is_ephemeral else 0)
        return path

    def set(self, path: str, data: bytes, version: int) -> int:
        node = self.nodes.get(path)
        if node is None:
            raise Fail(NoNodeError.code)
        if version not in (-1, node.version):
            raise Fail(BadVersionError.code)
        node.data = data
        node.version += 1
        return node.version

    def delete(self, path: str, version: int) -> None:
        node = self.nodes.get(path)
        if node is None:
            raise Fail(NoNodeError.code)
        if version not in (-1, node.version):
            raise Fail(BadVersionError.code)
        if node.children:
            raise Fail(NotEmptyError.code)
        self._remove(path)

    def check(self, path: str, version: int) -> None:
        node = self.nodes.get(path)
        if node is None:
            raise Fail(NoNodeError.code)
        if version not in (-1, node.version):
            raise Fail(BadVersionError.code)

    def _remove(self, path: str) -> None:
        del self.nodes[path]
        parent = self.nodes[paths.parent(path)]
        parent.children.discard(paths.basename(path))
        parent.cversion += 1

    def close(self, owner: int) -> None:
        for path in [p for p, n in self.nodes.items() if n.owner == owner]:
            self._remove(path)


class TreeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core = ServerCore(CoreConfig(tick_ms=1_000))
        self.now = 1_000_000
        self.model = Model()
        self.next_conn = 1
        self.slots: list[tuple[int, int] | None] = [None] * SLOTS  # (conn, session)
        self.xids: dict[int, int] = defaultdict(int)
        self.expected: dict[tuple[int, int], Any] = {}
        self.last_xid: dict[int, int] = defaultdict(int)
        self.seq_names: set[str] = set()
        self.ever: set[str] = {"/"}
        self.session_of_conn: dict[int, int] = {}

    # -- driving the core -------------------------------------------------------------

    def _step(self) -> None:
        """Carry out one Ready batch (and check the replies it holds)."""
        ready = self.core.ready()
        decoder = FrameDecoder()
        decoder.receive_data(NativeEncoder().encode([frame for _, frame in ready.messages]))
        for conn, _ in ready.messages:
            frame = decoder.next_frame()
            assert frame is not NEED_DATA
            self._receive(conn, frame)
        self.now += 1
        self.core.advance(ready, now_ms=self.now)

    def _drain(self) -> None:
        while self.core.has_ready():
            self._step()
        assert not self.expected, f"unanswered: {self.expected}"

    def _receive(self, conn: int, frame: Any) -> None:
        if isinstance(frame, dict):  # a connect response
            assert frame.get("error", 0) == 0, frame
            self.session_of_conn[conn] = frame["session_id"]
            return
        xid, _zxid, err, result = frame
        assert xid > 0, f"unexpected frame {frame}"  # no watches are set, no notices due
        assert xid > self.last_xid[conn], "replies out of order"
        self.last_xid[conn] = xid
        check = self.expected.pop((conn, xid))
        check(err, result)

    def _open(self, slot: int) -> None:
        conn = self.next_conn
        self.next_conn += 1
        request = ConnectRequest(protocol_version=PROTOCOL_VERSION, timeout_ms=60_000)
        self.core.connect(conn, request, now_ms=self.now, password=b"pw")
        self._drain()
        self.slots[slot] = (conn, self.session_of_conn[conn])

    def _send(self, slot: int, op: int, body: dict[str, Any], check: Any) -> None:
        entry = self.slots[slot]
        assert entry is not None
        conn = entry[0]
        self.xids[conn] += 1
        xid = self.xids[conn]
        self.expected[(conn, xid)] = check
        self.now += 1
        self.core.request(conn, xid, op, body, now_ms=self.now)

    # -- predictions --------------------------------------------------------------------

    @staticmethod
    def _predict(fn: Any, *args: Any) -> tuple[int, Any]:
        try:
            return 0, fn(*args)
        except Fail as fail:
            return fail.code, None

    @staticmethod
    def _expect_error(code: int) -> Any:
        def check(err: int, result: Any) -> None:
            assert err == code, (err, result, code)

        return check

    def _path(self, data: st.DataObject) -> str:
        """Mostly a path that exists; one time in five one that does not (any more)."""
        if data.draw(st.integers(0, 4)) == 0:
            choices = [*sorted(self.ever - set(self.model.nodes)), "/nope"]
        else:
            choices = sorted(self.model.nodes)
        return data.draw(st.sampled_from(choices))

    def _version(self, data: st.DataObject, path: str) -> int:
        kind = data.draw(st.sampled_from(VERSIONS))
        node = self.model.nodes.get(path)
        current = node.version if node else 0
        return {"any": -1, "right": current, "wrong": current + 1}[kind]

    def _create_body(self, data: st.DataObject, slot: int) -> tuple[dict[str, Any], Any]:
        parent = self._path(data)
        name = data.draw(st.sampled_from(NAMES))
        mode = data.draw(st.sampled_from(MODES))
        path = paths.join(parent, name)
        body = {"path": path, "data": data.draw(st.sampled_from(DATA)), "mode": int(mode)}
        return body, (path, body["data"], mode, self._session(slot))

    def _session(self, slot: int) -> int:
        entry = self.slots[slot]
        assert entry is not None
        return entry[1]

    def _created(self, path: str, owner: int, *, sequential: bool = False) -> Any:
        if sequential:
            assert path not in self.seq_names, f"sequential name {path} reused"
            self.seq_names.add(path)
        self.ever.add(path)

        def check(err: int, result: Any) -> None:
            assert err == 0, (err, result)
            got, stat = result
            assert got == path
            stat = Stat(*stat)
            assert (stat.version, stat.ephemeral_owner, stat.num_children) == (0, owner, 0)

        return check

    # -- rules --------------------------------------------------------------------------

    @initialize()
    def open_sessions(self) -> None:
        for slot in range(SLOTS):
            self._open(slot)

    def _open_slots(self) -> list[int]:
        return [i for i, entry in enumerate(self.slots) if entry is not None]

    @precondition(lambda self: any(self.slots))
    @rule(data=st.data())
    def create(self, data: st.DataObject) -> None:
        slot = data.draw(st.sampled_from(self._open_slots()))
        body, (path, payload, mode, session) = self._create_body(data, slot)
        code, created = self._predict(self.model.create, path, payload, mode, session)
        if code:
            check = self._expect_error(code)
        else:
            owner = session if mode.is_ephemeral else 0
            check = self._created(created, owner, sequential=mode.is_sequential)
        self._send(slot, OpCode.CREATE, body, check)

    @precondition(lambda self: any(self.slots))
    @rule(data=st.data())
    def create_more(self, data: st.DataObject) -> None:
        """Creates are the rule that grows the tree: give them twice the weight."""
        self.create(data)

    @precondition(lambda self: any(self.slots))
    @rule(data=st.data(), payload=st.sampled_from(DATA))
    def set_data(self, data: st.DataObject, payload: bytes) -> None:
        slot = data.draw(st.sampled_from(self._open_slots()))
        path = self._path(data)
        version = self._version(data, path)
        code, new_version = self._predict(self.model.set, path, payload, version)

        def check(err: int, result: Any) -> None:
            assert err == code, (err, result, code)
            if not code:
                assert Stat(*result).version == new_version
                assert Stat(*result).data_length == len(payload)

        body = {"path": path, "data": payload, "version": version}
        self._send(slot, OpCode.SET_DATA, body, check)

    @precondition(lambda self: any(self.slots))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        slot = data.draw(st.sampled_from(self._open_slots()))
        path = self._path(data)
        if path == "/":
            return
        version = self._version(data, path)
        code, _ = self._predict(self.model.delete, path, version)

        def check(err: int, result: Any) -> None:
            assert err == code, (err, result, code)
            if not code:
                assert result is None

        self._send(slot, OpCode.DELETE, {"path": path, "version": version}, check)

    def _draw_multi_op(self, data: st.DataObject, slot: int, scratch: Model) -> Any:
        """One op of a multi: (op, body, a prediction against `scratch`, create info)."""
        kind = data.draw(st.sampled_from(["create", "set", "delete", "check"]))
        if kind == "create":
            body, (path, payload, mode, session) = self._create_body(data, slot)
            owner = session if mode.is_ephemeral else 0
            return (
                OpCode.CREATE,
                body,
                lambda: scratch.create(path, payload, mode, session),
                (owner, mode.is_sequential),
            )
        path = self._path(data)
        version = self._version(data, path)
        if kind == "set":
            payload = data.draw(st.sampled_from(DATA))
            body = {"path": path, "data": payload, "version": version}
            return OpCode.SET_DATA, body, lambda: scratch.set(path, payload, version), None
        if kind == "delete" and path != "/":
            body = {"path": path, "version": version}
            return OpCode.DELETE, body, lambda: scratch.delete(path, version), None
        body = {"path": path, "version": version}
        return OpCode.CHECK, body, lambda: scratch.check(path, version), None

    @precondition(lambda self: any(self.slots))
    @rule(data=st.data(), count=st.integers(1, 3))
    def multi(self, data: st.DataObject, count: int) -> None:
        slot = data.draw(st.sampled_from(self._open_slots()))
        scratch = Model()
        scratch.nodes = _copy_model(self.model.nodes)
        ops: list[list[Any]] = []
        failure: tuple[int, int] | None = None  # (index, code)
        creates: dict[int, tuple[str, int, bool]] = {}  # index -> (path, owner, sequential)
        for index in range(count):
            op, body, predict, create_info = self._draw_multi_op(data, slot, scratch)
            ops.append([op, body])
            if failure is not None:
                continue  # the preparer stops at the first failure: nothing to predict
            code, value = self._predict(predict)
            if code:
                failure = (index, code)
            elif create_info is not None:
                creates[index] = (value, *create_info)

        if failure is None:
            self.model = scratch
            expected_codes = [0] * count
            create_checks = {
                index: self._created(path, owner, sequential=seq)
                for index, (path, owner, seq) in creates.items()
            }
        else:
            expected_codes = [RolledBackError.code] * count
            expected_codes[failure[0]] = failure[1]
            create_checks = {}

        def check(err: int, result: Any) -> None:
            assert err == 0, (err, result)  # a multi's own err stays 0, even when it fails
            assert [r[0] for r in result] == expected_codes, (result, expected_codes)
            for index, create_check in create_checks.items():
                create_check(0, result[index][1])

        self._send(slot, OpCode.MULTI, {"ops": ops}, check)

    @precondition(lambda self: len(self._open_slots()) >= 2)
    @rule(data=st.data())
    def hand_over(self, data: st.DataObject) -> None:
        """A lock recipe's hand-over: the owner deletes its ephemeral, another session
        creates the same path at once (both pipelined)."""
        owned = sorted(
            (path, slot)
            for slot in self._open_slots()
            for path, node in self.model.nodes.items()
            if node.owner == self._session(slot)
        )
        if not owned:
            return
        path, slot = data.draw(st.sampled_from(owned))
        other = data.draw(st.sampled_from([s for s in self._open_slots() if s != slot]))
        mode = data.draw(st.sampled_from([CreateMode.EPHEMERAL, CreateMode.PERSISTENT]))
        self.model.delete(path, -1)
        self._send(slot, OpCode.DELETE, {"path": path}, self._expect_error(0))
        session = self._session(other)
        self.model.create(path, b"", mode, session)
        body = {"path": path, "mode": int(mode)}
        owner = session if mode.is_ephemeral else 0
        self._send(other, OpCode.CREATE, body, self._created(path, owner))
        if data.draw(st.booleans()):
            self._close(slot)  # the old owner leaves, its close pipelined too

    @precondition(lambda self: len(self._open_slots()) >= 2)
    @rule(data=st.data())
    def close_session(self, data: st.DataObject) -> None:
        if data.draw(st.integers(0, 2)):
            return  # closes are rarer than the other rules, so ephemerals live a while
        self._close(data.draw(st.sampled_from(self._open_slots())))

    def _close(self, slot: int) -> None:
        session = self._session(slot)
        self.model.close(session)

        def check(err: int, result: Any) -> None:
            assert (err, result) == (0, None)

        self._send(slot, OpCode.CLOSE_SESSION, {}, check)
        self.slots[slot] = None

    @precondition(lambda self: not all(self.slots))
    @rule(data=st.data())
    def reopen(self, data: st.DataObject) -> None:
        slot = data.draw(st.sampled_from([i for i, e in enumerate(self.slots) if e is None]))
        self._open(slot)  # drains first: a new session's id is known once its txn lands

    @rule()
    def step_one_batch(self) -> None:
        if self.core.has_ready():
            self._step()

    @rule()
    def advance_all(self) -> None:
        self._drain()
        self._check_tree_equals_model()

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def preparer_view_matches_the_model(self) -> None:
        prep = self.core.preparer
        for path, node in self.model.nodes.items():
            view = prep.view(path)
            assert view is not None, path
            assert (view.version, view.cversion, view.num_children, view.ephemeral_owner) == (
                node.version,
                node.cversion,
                len(node.children),
                node.owner,
            ), path
        for path in self.ever - set(self.model.nodes):
            assert prep.view(path) is None, path

    @invariant()
    def tree_is_well_formed(self) -> None:
        tree = self.core.tree
        owners: dict[int, set[str]] = defaultdict(set)
        for path, node in tree.nodes.items():
            if path != "/":
                parent = tree.get(paths.parent(path))
                assert parent is not None, f"{path} has no parent"
                assert parent.children and paths.basename(path) in parent.children
            names = node.children or set()
            assert node.num_children == len(names) == node.stat().num_children
            for name in names:
                assert paths.join(path, name) in tree.nodes
            if node.ephemeral_owner:
                assert not node.children, f"ephemeral {path} has children"
                owners[node.ephemeral_owner].add(path)
        assert tree.ephemerals == dict(owners)
        live = [p for p in tree.nodes if p in self.seq_names]
        assert len(live) == len(set(live))

    def _check_tree_equals_model(self) -> None:
        tree = self.core.tree
        assert set(tree.nodes) == set(self.model.nodes)
        for path, mnode in self.model.nodes.items():
            node = tree.nodes[path]
            got = (node.data, node.version, node.cversion, node.ephemeral_owner)
            assert got == (mnode.data, mnode.version, mnode.cversion, mnode.owner), path
            assert set(node.children or ()) == mnode.children, path
        assert self.core.preparer.pending_count == 0

    def teardown(self) -> None:
        self._drain()
        self._check_tree_equals_model()


TreeMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    derandomize=True,
    database=None,
    deadline=None,
)
test_tree_model = TreeMachine.TestCase
