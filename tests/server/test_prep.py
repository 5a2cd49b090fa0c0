"""Preparer: requests become txns, checked against the tree plus the pending overlay."""

from __future__ import annotations

import pytest

from coord.errors import (
    BadArgumentsError,
    BadVersionError,
    DataTooLargeError,
    InvalidPathError,
    InvalidTTLError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
)
from coord.framing import MAX_DATA_SIZE
from coord.messages import (
    CheckRequest,
    CreateMode,
    CreateRequest,
    DeleteRequest,
    OpCode,
    SetDataRequest,
)
from coord.server.core.prep import MAX_TTL_MS, MultiFailed, Preparer
from coord.server.core.tree import DataTree
from coord.server.core.txn import (
    CheckTxn,
    CloseSessionTxn,
    CreateTxn,
    DeleteTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)

SESSION = 0x10
OTHER = 0x20


class Harness:
    """A tree, its preparer, and a log of prepared-but-unapplied txns."""

    def __init__(self) -> None:
        self.tree = DataTree()
        self.prep = Preparer(self.tree)
        self.zxid = 0
        self.now = 1_000
        self.unapplied: list[Txn] = []

    def _next(self) -> int:
        self.zxid += 1
        return self.zxid

    def _log(self, zxid, body, session_id=SESSION):
        self.unapplied.append(Txn(TxnHeader(zxid, self.now, session_id, 0), body))
        return body

    def write(self, op, request, *, session_id=SESSION):
        zxid = self._next()
        try:
            body = self.prep.prepare_write(
                op, request, session_id=session_id, zxid=zxid, now_ms=self.now
            )
        except BaseException:
            self.zxid -= 1
            raise
        return self._log(zxid, body, session_id)

    def create(self, path, data=b"", mode=CreateMode.PERSISTENT, *, session_id=SESSION, ttl=0):
        request = CreateRequest(path=path, data=data, mode=int(mode), ttl_ms=ttl)
        return self.write(OpCode.CREATE, request, session_id=session_id)

    def set(self, path, data=b"", version=-1):
        return self.write(OpCode.SET_DATA, SetDataRequest(path=path, data=data, version=version))

    def delete(self, path, version=-1, *, session_id=SESSION):
        return self.write(OpCode.DELETE, DeleteRequest(path=path, version=version))

    def check(self, path, version):
        return self.write(OpCode.CHECK, CheckRequest(path=path, version=version))

    def multi(self, ops, *, session_id=SESSION):
        zxid = self._next()
        try:
            body = self.prep.prepare_multi(ops, session_id=session_id, zxid=zxid, now_ms=self.now)
        except BaseException:
            self.zxid -= 1
            raise
        return self._log(zxid, body, session_id)

    def close(self, session_id, *, expired=False):
        zxid = self._next()
        body = self.prep.prepare_close_session(session_id, expired=expired, zxid=zxid)
        return self._log(zxid, body, session_id)

    def reap(self, path):
        zxid = self._next()
        body = self.prep.prepare_reap(path, now_ms=self.now, zxid=zxid)
        if body is None:
            self.zxid -= 1
            return None
        return self._log(zxid, body, 0)

    def apply(self, count=None):
        """Apply the oldest `count` unapplied txns (all by default); each must fit."""
        count = len(self.unapplied) if count is None else count
        results = []
        for txn in self.unapplied[:count]:
            result = self.tree.apply(txn)
            assert result.error == 0, (txn, result.error)
            self.prep.applied(txn.zxid)
            results.append(result)
        del self.unapplied[:count]
        return results


@pytest.fixture
def h():
    return Harness()


def _raises(exc_type, fn, *args, **kwargs):
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    return info.value


# -- plain creates -------------------------------------------------------------------


def test_create_txn_carries_everything_apply_needs(h):
    txn = h.create("/a", b"x")
    assert txn == CreateTxn("/a", b"x", CreateMode.PERSISTENT, 0, 0, parent_cversion=1)
    h.apply()
    assert h.tree.get("/a").data == b"x"
    assert h.tree.get("/").cversion == 1


def test_ephemeral_create_is_owned_by_the_session(h):
    txn = h.create("/e", mode=CreateMode.EPHEMERAL)
    assert txn.ephemeral_owner == SESSION
    persistent = h.create("/p")
    assert persistent.ephemeral_owner == 0


def test_create_existing_node_fails(h):
    h.create("/a")
    h.apply()
    err = _raises(NodeExistsError, h.create, "/a")
    assert err.path == "/a"


def test_create_existing_pending_node_fails(h):
    h.create("/a")
    _raises(NodeExistsError, h.create, "/a")


def test_create_root_fails(h):
    _raises(NodeExistsError, h.create, "/")


def test_create_without_parent_fails(h):
    err = _raises(NoNodeError, h.create, "/x/y")
    assert err.path == "/x/y"
    assert "'/x'" in err.message


def test_create_under_pending_parent_succeeds(h):
    h.create("/a")
    h.create("/a/b")
    h.create("/a/b/c")
    h.apply()
    assert [p for p in h.tree.walk()] == ["/", "/a", "/a/b", "/a/b/c"]


def test_create_under_pending_deleted_parent_fails(h):
    h.create("/a")
    h.apply()
    h.delete("/a")
    _raises(NoNodeError, h.create, "/a/b")


def test_create_under_ephemeral_fails(h):
    h.create("/e", mode=CreateMode.EPHEMERAL)
    err = _raises(NoChildrenForEphemeralsError, h.create, "/e/child")
    assert err.path == "/e/child"
    h.apply()
    _raises(NoChildrenForEphemeralsError, h.create, "/e/child", session_id=OTHER)
    _raises(NoChildrenForEphemeralsError, h.create, "/e/", b"", CreateMode.PERSISTENT_SEQUENTIAL)


def test_invalid_path_is_rejected(h):
    _raises(InvalidPathError, h.create, "/a/")
    _raises(InvalidPathError, h.set, "relative")
    _raises(InvalidPathError, h.delete, "/a/../b")
    _raises(InvalidPathError, h.check, "/a\x00", 0)


def test_unknown_create_mode_is_bad_arguments(h):
    request = CreateRequest(path="/a", mode=99)
    err = _raises(BadArgumentsError, h.write, OpCode.CREATE, request)
    assert err.actual == 99


def test_op_that_is_not_a_write_is_bad_arguments(h):
    _raises(BadArgumentsError, h.write, OpCode.GET_DATA, CreateRequest(path="/a"))
    assert h.prep.pending_count == 0


# -- data size -----------------------------------------------------------------------


def test_data_of_exactly_max_size_is_fine(h):
    h.create("/a", b"x" * MAX_DATA_SIZE)
    h.set("/a", b"y" * MAX_DATA_SIZE)


def test_data_over_max_size_is_too_large(h):
    err = _raises(DataTooLargeError, h.create, "/a", b"x" * (MAX_DATA_SIZE + 1))
    assert (err.path, err.expected, err.actual) == ("/a", MAX_DATA_SIZE, MAX_DATA_SIZE + 1)
    h.create("/b")
    _raises(DataTooLargeError, h.set, "/b", b"y" * (MAX_DATA_SIZE + 1))


# -- sequential names ------------------------------------------------------------------


def test_sequential_name_comes_from_the_parent_cversion(h):
    h.create("/q")
    h.create("/q/x")
    h.delete("/q/x")
    h.apply()
    assert h.tree.get("/q").cversion == 2
    txn = h.create("/q/item-", mode=CreateMode.PERSISTENT_SEQUENTIAL)
    assert txn.path == "/q/item-0000000002"
    assert txn.parent_cversion == 3


def test_sequential_prefix_ending_in_slash(h):
    h.create("/q")
    txn = h.create("/q/", mode=CreateMode.EPHEMERAL_SEQUENTIAL)
    assert txn.path == "/q/0000000000"
    assert txn.ephemeral_owner == SESSION


def test_sequential_under_root(h):
    txn = h.create("/", mode=CreateMode.PERSISTENT_SEQUENTIAL)
    assert txn.path == "/0000000000"
    txn = h.create("/n", mode=CreateMode.PERSISTENT_SEQUENTIAL)
    assert txn.path == "/n0000000001"


def test_pipelined_sequential_creates_get_distinct_increasing_names(h):
    h.create("/q")
    h.apply()
    names = [h.create("/q/n-", mode=CreateMode.PERSISTENT_SEQUENTIAL).path for _ in range(5)]
    assert names == [f"/q/n-{i:010d}" for i in range(5)]
    assert len(h.tree.children_of("/q")) == 0  # none applied yet
    h.apply()
    assert h.tree.children_of("/q") == [n.rsplit("/", 1)[1] for n in names]
    assert h.tree.get("/q").cversion == 5


def test_sequential_names_in_one_multi_are_distinct(h):
    h.create("/q")
    request = CreateRequest(path="/q/", mode=int(CreateMode.PERSISTENT_SEQUENTIAL))
    multi = h.multi([(OpCode.CREATE, request), (OpCode.CREATE, request)])
    assert [t.path for t in multi.txns] == ["/q/0000000000", "/q/0000000001"]


def test_sequential_name_colliding_with_a_node_is_node_exists(h):
    h.create("/q")
    h.create("/q/n0000000001")
    err = _raises(NodeExistsError, h.create, "/q/n", b"", CreateMode.PERSISTENT_SEQUENTIAL)
    assert err.path == "/q/n0000000001"


# -- versions --------------------------------------------------------------------------


def test_pipelined_sets_check_versions_against_the_pending_state(h):
    h.create("/a")
    h.apply()
    assert h.set("/a", b"1", version=0) == SetDataTxn("/a", b"1", 1)
    assert h.set("/a", b"2", version=1) == SetDataTxn("/a", b"2", 2)
    err = _raises(BadVersionError, h.set, "/a", b"3", version=0)
    assert (err.path, err.expected, err.actual) == ("/a", 0, 2)
    h.apply()
    assert h.tree.get("/a").version == 2
    assert h.tree.get("/a").data == b"2"


def test_version_minus_one_matches_anything(h):
    h.create("/a")
    h.set("/a", version=-1)
    h.set("/a", version=-1)
    h.delete("/a", version=-1)


def test_set_on_pending_create_starts_at_version_zero(h):
    h.create("/a")
    h.set("/a", b"x", version=0)
    _raises(BadVersionError, h.delete, "/a", version=0)
    h.delete("/a", version=1)


def test_set_missing_node_fails(h):
    err = _raises(NoNodeError, h.set, "/nope")
    assert err.path == "/nope"


def test_delete_checks_the_version(h):
    h.create("/a")
    h.apply()
    err = _raises(BadVersionError, h.delete, "/a", version=3)
    assert (err.expected, err.actual) == (3, 0)
    h.delete("/a", version=0)


def test_check_checks_the_version(h):
    h.create("/a")
    h.set("/a")
    assert h.check("/a", 1) == CheckTxn("/a", 1)
    err = _raises(BadVersionError, h.check, "/a", 0)
    assert (err.expected, err.actual) == (0, 1)
    _raises(NoNodeError, h.check, "/missing", 0)


# -- deletes ---------------------------------------------------------------------------


def test_delete_root_is_bad_arguments(h):
    _raises(BadArgumentsError, h.delete, "/")


def test_delete_missing_and_pending_deleted(h):
    _raises(NoNodeError, h.delete, "/a")
    h.create("/a")
    h.apply()
    h.delete("/a")
    _raises(NoNodeError, h.delete, "/a")
    _raises(NoNodeError, h.set, "/a")


def test_delete_with_applied_children_is_not_empty(h):
    h.create("/a")
    h.create("/a/b")
    h.apply()
    err = _raises(NotEmptyError, h.delete, "/a")
    assert (err.path, err.expected, err.actual) == ("/a", 0, 1)


def test_delete_with_pending_child_create_is_not_empty(h):
    h.create("/a")
    h.apply()
    h.create("/a/b")
    h.create("/a/c")
    err = _raises(NotEmptyError, h.delete, "/a")
    assert err.actual == 2


def test_delete_after_pending_child_deletes_is_fine(h):
    h.create("/a")
    h.create("/a/b")
    h.apply()
    h.delete("/a/b")
    h.delete("/a")
    h.apply()
    assert h.tree.get("/a") is None


def test_recreate_after_pending_delete(h):
    h.create("/a", b"old")
    h.apply()
    h.delete("/a")
    h.create("/a", b"new")
    h.apply()
    assert h.tree.get("/a").data == b"new"
    assert h.tree.get("/a").version == 0


# -- TTL --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode", [CreateMode.PERSISTENT_WITH_TTL, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL]
)
def test_ttl_modes_need_a_ttl_in_range(h, mode):
    for bad in (0, -1, MAX_TTL_MS + 1):
        err = _raises(InvalidTTLError, h.create, "/t", b"", mode, ttl=bad)
        assert err.actual == bad
        assert isinstance(err, BadArgumentsError)
    txn = h.create("/t", b"", mode, ttl=MAX_TTL_MS)
    assert txn.ttl_ms == MAX_TTL_MS
    assert h.create("/u", b"", mode, ttl=1).ttl_ms == 1


@pytest.mark.parametrize(
    "mode",
    [
        CreateMode.PERSISTENT,
        CreateMode.EPHEMERAL,
        CreateMode.PERSISTENT_SEQUENTIAL,
        CreateMode.EPHEMERAL_SEQUENTIAL,
        CreateMode.CONTAINER,
    ],
)
def test_ttl_on_a_mode_without_one_is_invalid(h, mode):
    err = _raises(InvalidTTLError, h.create, "/t", b"", mode, ttl=1000)
    assert (err.expected, err.actual) == (0, 1000)


# -- multi ---------------------------------------------------------------------------------


def _c(path, data=b"", mode=CreateMode.PERSISTENT):
    return (OpCode.CREATE, CreateRequest(path=path, data=data, mode=int(mode)))


def _s(path, data=b"", version=-1):
    return (OpCode.SET_DATA, SetDataRequest(path=path, data=data, version=version))


def _d(path, version=-1):
    return (OpCode.DELETE, DeleteRequest(path=path, version=version))


def _k(path, version):
    return (OpCode.CHECK, CheckRequest(path=path, version=version))


def test_multi_ops_see_each_other(h):
    multi = h.multi([_c("/a"), _c("/a/b"), _s("/a", b"x", 0), _k("/a", 1), _d("/a/b", 0)])
    assert [type(t) for t in multi.txns] == [CreateTxn, CreateTxn, SetDataTxn, CheckTxn, DeleteTxn]
    h.apply()
    assert h.tree.get("/a").data == b"x"
    assert h.tree.get("/a").version == 1
    assert h.tree.get("/a/b") is None
    assert h.tree.get("/a").cversion == 2


@pytest.mark.parametrize(
    ("ops", "index", "error"),
    [
        ([_c("/a"), _c("/a")], 1, NodeExistsError),
        ([_c("/a"), _s("/a", version=5), _c("/b")], 1, BadVersionError),
        ([_k("/missing", 0), _c("/b")], 0, NoNodeError),
        ([_c("/a"), _c("/a/b"), _d("/a")], 2, NotEmptyError),
        ([_c("/e", mode=CreateMode.EPHEMERAL), _c("/e/x")], 1, NoChildrenForEphemeralsError),
        ([_c("/a"), _c("/b", b"x" * (MAX_DATA_SIZE + 1))], 1, DataTooLargeError),
        ([_c("/a"), _d("/a"), _s("/a")], 2, NoNodeError),
    ],
)
def test_multi_failure_reports_the_real_error_at_its_index(h, ops, index, error):
    h.create("/keep")
    pending_before = h.prep.pending_count
    views_before = {p: h.prep.view(p) for p in ("/", "/keep", "/a", "/b", "/e")}
    with pytest.raises(MultiFailed) as info:
        h.multi(ops)
    failed = info.value
    assert failed.index == index
    assert isinstance(failed.error, error)
    results = failed.results()
    assert len(results) == len(ops)
    for i, result in enumerate(results):
        if i == index:
            assert result is failed.error
        else:
            assert type(result) is RolledBackError
            assert result.code == -203
    # The pending overlay is untouched: nothing of the multi is visible.
    assert h.prep.pending_count == pending_before
    assert {p: h.prep.view(p) for p in views_before} == views_before
    # And later requests behave as if the multi never happened.
    h.create("/a")
    h.apply()
    assert sorted(h.tree.children_of("/")) == ["a", "keep"]


def test_empty_multi(h):
    assert h.multi([]).txns == ()


# -- sessions ---------------------------------------------------------------------------------


def test_close_session_deletes_its_ephemerals_pending_and_applied(h):
    h.create("/e1", mode=CreateMode.EPHEMERAL)
    h.apply()
    h.create("/e2", mode=CreateMode.EPHEMERAL)  # still pending
    h.create("/o", mode=CreateMode.EPHEMERAL, session_id=OTHER)
    assert h.prep.ephemerals_of(SESSION) == ["/e1", "/e2"]
    txn = h.close(SESSION)
    assert isinstance(txn, CloseSessionTxn)
    assert txn.session_id == SESSION and txn.expired is False
    assert h.prep.view("/e1") is None
    assert h.prep.view("/e2") is None
    assert h.prep.view("/o") is not None
    assert h.prep.ephemerals_of(SESSION) == []
    h.apply()
    assert h.tree.get("/e1") is None and h.tree.get("/e2") is None
    assert h.tree.ephemerals == {OTHER: {"/o"}}


def test_another_session_can_create_the_path_before_the_close_is_applied(h):
    h.create("/lock", mode=CreateMode.EPHEMERAL)
    h.apply()
    h.close(SESSION, expired=True)
    assert h.prep.view("/lock") is None
    txn = h.create("/lock", b"mine", CreateMode.EPHEMERAL, session_id=OTHER)
    assert txn.ephemeral_owner == OTHER
    h.apply()
    node = h.tree.get("/lock")
    assert node.data == b"mine"
    assert node.ephemeral_owner == OTHER
    assert h.tree.ephemerals == {OTHER: {"/lock"}}


def test_close_does_not_take_a_path_its_ephemeral_no_longer_holds(h):
    """The session deleted its ephemeral and another session re-created the path
    (all pending): closing the first session must not delete the new node."""
    h.create("/e", mode=CreateMode.EPHEMERAL)
    h.apply()
    h.delete("/e")
    h.create("/e", b"theirs", session_id=OTHER)
    h.close(SESSION)
    assert h.prep.view("/e") is not None
    assert h.prep.view("/").num_children == 1
    # Anything prepared against that view must fit the tree when applied.
    h.set("/e", b"again", version=0)
    _raises(NodeExistsError, h.create, "/e")
    h.apply()
    assert h.tree.get("/e").data == b"again"
    assert h.tree.get("/").num_children == 1


def test_close_with_ephemeral_taken_over_by_another_owner(h):
    h.create("/e", mode=CreateMode.EPHEMERAL)
    h.apply()
    h.delete("/e")
    h.create("/e", mode=CreateMode.EPHEMERAL, session_id=OTHER)
    h.close(SESSION)
    assert h.prep.view("/e").ephemeral_owner == OTHER
    assert h.prep.ephemerals_of(OTHER) == ["/e"]
    h.apply()
    assert h.tree.ephemerals == {OTHER: {"/e"}}


# -- the overlay's life cycle ---------------------------------------------------------------


def test_applied_drops_records_that_the_tree_caught_up_with(h):
    h.create("/a")
    h.create("/b")
    assert h.prep.pending_count == 3  # "/", "/a", "/b"
    h.apply(1)
    # "/" was touched again by the second create, so it stays until that lands.
    assert h.prep.pending_count == 2
    h.apply()
    assert h.prep.pending_count == 0
    view = h.prep.view("/")
    assert (view.cversion, view.num_children) == (2, 2)


def test_applied_keeps_a_record_touched_again_later(h):
    h.create("/a")
    h.apply()
    h.set("/a", b"1")
    h.set("/a", b"2")
    h.apply(1)
    assert h.prep.view("/a").version == 2  # still the pending view
    h.apply()
    assert h.prep.pending_count == 0
    assert h.prep.view("/a").version == 2


def test_clear_forgets_everything_pending(h):
    h.create("/a")
    h.prep.clear()
    assert h.prep.pending_count == 0
    assert h.prep.view("/a") is None


def test_views_match_the_tree_after_apply(h):
    h.create("/a", b"d", CreateMode.EPHEMERAL)
    h.create("/b")
    h.create("/b/c")
    h.set("/b", b"z")
    h.delete("/b/c")
    pending = {p: h.prep.view(p) for p in ("/", "/a", "/b", "/b/c")}
    h.apply()
    assert h.prep.pending_count == 0
    for path, view in pending.items():
        node = h.tree.get(path)
        if view is None:
            assert node is None
            continue
        assert (view.version, view.cversion, view.num_children, view.ephemeral_owner) == (
            node.version,
            node.cversion,
            node.num_children,
            node.ephemeral_owner,
        )


# -- reaping -----------------------------------------------------------------------------------


def test_container_is_reaped_only_after_having_had_a_child(h):
    h.create("/c", mode=CreateMode.CONTAINER)
    h.apply()
    assert h.reap("/c") is None  # never had a child
    h.create("/c/x")
    assert h.reap("/c") is None  # pending child
    h.apply()
    assert h.reap("/c") is None  # has a child
    h.delete("/c/x")
    txn = h.reap("/c")
    assert isinstance(txn, DeleteTxn) and txn.path == "/c"
    assert h.reap("/c") is None  # already pending delete
    _raises(NoNodeError, h.create, "/c/y")
    h.apply()
    assert h.tree.get("/c") is None


def test_ttl_node_is_reaped_once_expired_and_childless(h):
    h.now = 1_000
    h.create("/t", mode=CreateMode.PERSISTENT_WITH_TTL, ttl=500)
    h.apply()
    h.now = 1_499
    assert h.reap("/t") is None
    h.now = 1_500
    h.set("/t", b"touch")  # a change restarts the TTL
    assert h.reap("/t") is None
    h.apply()
    h.now = 1_999
    assert h.reap("/t") is None
    h.now = 2_000
    txn = h.reap("/t")
    assert isinstance(txn, DeleteTxn) and txn.path == "/t"
    assert h.prep.view("/t") is None
    h.apply()
    assert h.tree.get("/t") is None


def test_ttl_node_with_children_is_not_reaped(h):
    h.create("/t", mode=CreateMode.PERSISTENT_WITH_TTL, ttl=10)
    h.create("/t/kid")
    h.apply()
    h.now += 1_000
    assert h.reap("/t") is None


@pytest.mark.parametrize(
    "mode", [CreateMode.PERSISTENT, CreateMode.EPHEMERAL, CreateMode.PERSISTENT_SEQUENTIAL]
)
def test_other_nodes_are_never_reaped(h, mode):
    txn = h.create("/n", mode=mode)
    h.apply()
    h.now += 10**9
    assert h.reap(txn.path) is None
    assert h.reap("/missing") is None
