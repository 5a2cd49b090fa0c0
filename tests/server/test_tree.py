"""DataTree.apply: stats, triggers, indexes, session close, replay tolerance."""

from __future__ import annotations

import pytest

from coord.errors import NodeExistsError, NoNodeError
from coord.messages import CreateMode, EventType, Stat
from coord.server.core.tree import DataTree
from coord.server.core.txn import (
    CheckTxn,
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    DeleteTxn,
    MultiTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)

CREATED, DELETED, CHANGED, CHILD = (
    EventType.CREATED,
    EventType.DELETED,
    EventType.CHANGED,
    EventType.CHILD,
)


class Applier:
    """Applies txn bodies with increasing zxids and times, like a log would."""

    def __init__(self) -> None:
        self.tree = DataTree()
        self.zxid = 100
        self.time = 1_000_000

    def __call__(self, body, *, session_id=0):
        self.zxid += 1
        self.time += 10
        return self.tree.apply(Txn(TxnHeader(self.zxid, self.time, session_id, 1), body))

    def create(self, path, data=b"", *, owner=0, mode=None, ttl_ms=0):
        parent = self.tree.get(_parent(path))
        cversion = (parent.cversion if parent else 0) + 1
        if mode is None:
            mode = CreateMode.EPHEMERAL if owner else CreateMode.PERSISTENT
        return self(CreateTxn(path, data, mode, owner, ttl_ms, cversion))


def _parent(path):
    return path.rsplit("/", 1)[0] or "/"


@pytest.fixture
def ap():
    return Applier()


def test_new_tree_has_only_the_root(ap):
    tree = ap.tree
    assert len(tree) == 1
    assert tree.get("/").stat() == Stat(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert tree.last_zxid == 0
    assert list(tree.walk()) == ["/"]


def test_create_sets_every_stat_field(ap):
    result = ap.create("/a", b"hello")
    zxid, time = ap.zxid, ap.time
    assert result.error == 0
    path, stat = result.result
    assert path == "/a"
    assert stat == Stat(
        czxid=zxid,
        mzxid=zxid,
        ctime=time,
        mtime=time,
        version=0,
        cversion=0,
        aversion=0,
        ephemeral_owner=0,
        data_length=5,
        num_children=0,
        pzxid=zxid,
    )
    assert ap.tree.get("/a").data == b"hello"
    assert ap.tree.last_zxid == zxid


def test_create_updates_the_parent(ap):
    ap.create("/a")
    before = ap.tree.get("/a").stat()
    ap.create("/a/b")
    zxid = ap.zxid
    after = ap.tree.get("/a").stat()
    assert after.num_children == 1
    assert after.cversion == 1
    assert after.pzxid == zxid
    # Data fields of the parent do not move.
    assert (after.mzxid, after.mtime, after.version) == (before.mzxid, before.mtime, 0)
    assert ap.tree.children_of("/a") == ["b"]


def test_parent_cversion_comes_from_the_txn(ap):
    ap(CreateTxn("/a", b"", CreateMode.PERSISTENT, 0, 0, 41))
    assert ap.tree.get("/").cversion == 41


def test_create_returns_created_and_child_triggers(ap):
    ap.create("/a")
    result = ap.create("/a/b")
    assert result.triggers == [(CREATED, "/a/b"), (CHILD, "/a")]


def test_set_data_updates_data_fields_only(ap):
    ap.create("/a", b"one")
    created = ap.tree.get("/a").stat()
    result = ap(SetDataTxn("/a", b"second", 1))
    zxid, time = ap.zxid, ap.time
    stat = result.result
    assert stat == ap.tree.get("/a").stat()
    assert stat.version == 1
    assert stat.mzxid == zxid
    assert stat.mtime == time
    assert stat.data_length == 6
    assert (stat.czxid, stat.ctime, stat.pzxid, stat.cversion) == (
        created.czxid,
        created.ctime,
        created.pzxid,
        created.cversion,
    )
    assert result.triggers == [(CHANGED, "/a")]


def test_set_data_takes_the_version_from_the_txn(ap):
    ap.create("/a")
    ap(SetDataTxn("/a", b"x", 7))
    assert ap.tree.get("/a").version == 7


def test_delete_updates_parent_and_returns_triggers(ap):
    ap.create("/a")
    ap.create("/a/b")
    ap.create("/a/c")
    result = ap(DeleteTxn("/a/b"))
    zxid = ap.zxid
    assert result.error == 0
    assert result.result is None
    assert ap.tree.get("/a/b") is None
    parent = ap.tree.get("/a").stat()
    assert parent.num_children == 1
    assert parent.cversion == 3  # two creates and one delete
    assert parent.pzxid == zxid
    assert result.triggers == [(DELETED, "/a/b"), (CHILD, "/a")]


def test_leaf_keeps_no_children_set(ap):
    ap.create("/a")
    ap.create("/a/b")
    ap(DeleteTxn("/a/b"))
    assert ap.tree.get("/a").children is None
    assert ap.tree.get("/a").num_children == 0


def test_check_and_create_session_do_not_touch_nodes(ap):
    ap.create("/a")
    before = {p: ap.tree.get(p).stat() for p in ap.tree.walk()}
    assert ap(CheckTxn("/a", 0)).triggers == []
    result = ap(CreateSessionTxn(77, 4000, b"pw"))
    assert result.triggers == []
    assert ap.tree.sessions[77] == (4000, b"pw")
    assert {p: ap.tree.get(p).stat() for p in ap.tree.walk()} == before
    assert ap.tree.last_zxid == ap.zxid


def test_multi_applies_in_order_and_returns_each_result(ap):
    ap.create("/a")
    result = ap(
        MultiTxn(
            (
                CreateTxn("/a/x", b"1", CreateMode.PERSISTENT, 0, 0, 2),
                SetDataTxn("/a", b"22", 1),
                CheckTxn("/a", 1),
                DeleteTxn("/a/x"),
            )
        )
    )
    assert result.error == 0
    create, set_stat, check, delete = result.result
    assert create[0] == "/a/x"
    assert set_stat.version == 1
    assert check is None and delete is None
    assert result.triggers == [
        (CREATED, "/a/x"),
        (CHILD, "/a"),
        (CHANGED, "/a"),
        (DELETED, "/a/x"),
        (CHILD, "/a"),
    ]
    # All sub-txns share the multi's zxid.
    assert ap.tree.get("/a").mzxid == ap.tree.get("/a").pzxid == ap.zxid


def test_walk_lists_parents_before_children(ap):
    for path in ["/b", "/a", "/a/y", "/a/x", "/a/x/1"]:
        ap.create(path)
    assert list(ap.tree.walk()) == ["/", "/a", "/a/x", "/a/x/1", "/a/y", "/b"]
    assert list(ap.tree.walk("/a/x")) == ["/a/x", "/a/x/1"]
    assert list(ap.tree.walk("/missing")) == []


# -- ephemerals and sessions ---------------------------------------------------------


def test_ephemeral_owner_and_index(ap):
    ap.create("/e1", owner=5)
    ap.create("/e2", owner=5)
    ap.create("/f", owner=6)
    ap.create("/p")
    assert ap.tree.get("/e1").stat().ephemeral_owner == 5
    assert ap.tree.get("/p").stat().ephemeral_owner == 0
    assert ap.tree.ephemerals == {5: {"/e1", "/e2"}, 6: {"/f"}}
    ap(DeleteTxn("/e1"))
    assert ap.tree.ephemerals == {5: {"/e2"}, 6: {"/f"}}
    ap(DeleteTxn("/f"))
    assert ap.tree.ephemerals == {5: {"/e2"}}  # no empty sets left behind


def test_close_session_deletes_all_its_ephemerals_and_reports_triggers(ap):
    ap(CreateSessionTxn(5, 4000, b"pw"))
    ap(CreateSessionTxn(6, 4000, b"pw"))
    ap.create("/d")
    ap.create("/d/e1", owner=5)
    ap.create("/e2", owner=5)
    ap.create("/other", owner=6)
    result = ap(CloseSessionTxn(5, expired=True))
    assert result.error == 0
    assert result.closed_session == 5
    assert ap.tree.get("/d/e1") is None
    assert ap.tree.get("/e2") is None
    assert ap.tree.get("/other") is not None
    assert 5 not in ap.tree.ephemerals
    assert ap.tree.ephemerals == {6: {"/other"}}
    assert 5 not in ap.tree.sessions
    assert 6 in ap.tree.sessions
    assert sorted(result.triggers) == sorted(
        [(DELETED, "/d/e1"), (CHILD, "/d"), (DELETED, "/e2"), (CHILD, "/")]
    )
    # Every delete bumps its parent.
    assert ap.tree.get("/d").pzxid == ap.zxid
    assert ap.tree.get("/").pzxid == ap.zxid


def test_close_session_without_ephemerals(ap):
    ap(CreateSessionTxn(5, 4000, b"pw"))
    result = ap(CloseSessionTxn(5, expired=False))
    assert result.triggers == []
    assert result.closed_session == 5
    assert ap.tree.sessions == {}


# -- containers and TTL nodes ----------------------------------------------------------


def test_container_and_ttl_indexes(ap):
    ap.create("/c", mode=CreateMode.CONTAINER)
    ap.create("/t", mode=CreateMode.PERSISTENT_WITH_TTL, ttl_ms=500)
    assert ap.tree.containers == {"/c"}
    assert ap.tree.ttl_nodes == {"/t"}
    assert ap.tree.get("/t").ttl_ms == 500
    ap(DeleteTxn("/t"))
    assert ap.tree.ttl_nodes == set()


def test_deleting_the_last_child_of_a_container_reports_it(ap):
    ap.create("/c", mode=CreateMode.CONTAINER)
    ap.create("/c/a")
    ap.create("/c/b")
    assert ap(DeleteTxn("/c/a")).emptied_containers == []
    assert ap(DeleteTxn("/c/b")).emptied_containers == ["/c"]
    # The tree does not reap it itself.
    assert ap.tree.get("/c") is not None
    result = ap(DeleteTxn("/c"))
    assert ap.tree.containers == set()
    assert result.emptied_containers == []


def test_ordinary_parent_emptied_is_not_reported(ap):
    ap.create("/p")
    ap.create("/p/a")
    assert ap(DeleteTxn("/p/a")).emptied_containers == []


def test_session_close_that_empties_a_container_reports_it(ap):
    ap.create("/c", mode=CreateMode.CONTAINER)
    ap.create("/c/e", owner=9)
    result = ap(CloseSessionTxn(9, expired=True))
    assert result.emptied_containers == ["/c"]


# -- replay tolerance -------------------------------------------------------------


def test_create_of_existing_node_records_error_and_keeps_the_node(ap):
    ap.create("/a", b"orig")
    ap.create("/a/kid")
    node_before = ap.tree.get("/a").stat()
    result = ap(CreateTxn("/a", b"new", CreateMode.EPHEMERAL, 5, 0, 99))
    assert result.error == NodeExistsError.code
    assert result.result is None
    assert result.triggers == []
    assert ap.tree.get("/a").data == b"orig"
    assert ap.tree.get("/a").stat() == node_before
    assert ap.tree.children_of("/") == ["a"]
    assert ap.tree.ephemerals == {}
    assert ap.tree.last_zxid == ap.zxid  # the zxid still counts as applied


def test_create_without_parent_records_no_node(ap):
    result = ap(CreateTxn("/x/y", b"", CreateMode.PERSISTENT, 0, 0, 1))
    assert result.error == NoNodeError.code
    assert ap.tree.get("/x/y") is None


def test_delete_and_set_of_missing_node_record_no_node(ap):
    assert ap(DeleteTxn("/missing")).error == NoNodeError.code
    assert ap(SetDataTxn("/missing", b"", 1)).error == NoNodeError.code
    assert len(ap.tree) == 1


def test_multi_keeps_the_first_error(ap):
    result = ap(
        MultiTxn(
            (
                DeleteTxn("/missing"),
                CreateTxn("/", b"", CreateMode.PERSISTENT, 0, 0, 1),
            )
        )
    )
    assert result.error == NoNodeError.code


def test_older_zxid_does_not_move_last_zxid_back(ap):
    ap.create("/a")
    last = ap.tree.last_zxid
    ap.tree.apply(Txn(TxnHeader(last - 50, 0, 0, 0), CheckTxn("/a", 0)))
    assert ap.tree.last_zxid == last


def test_unknown_body_raises_type_error(ap):
    with pytest.raises(TypeError):
        ap(object())
