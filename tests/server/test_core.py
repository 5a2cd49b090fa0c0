"""ServerCore driven directly: handshakes, ordering, watches, sessions, multi, reaping.

Every frame the core emits goes through the real msgpack framing before the
test looks at it, so what is checked is what a client would receive.
"""

from __future__ import annotations

import pytest

from coord.errors import (
    BadArgumentsError,
    BadVersionError,
    KeeperError,
    MarshallingError,
    NodeExistsError,
    NoNodeError,
    NoWatcherError,
    RolledBackError,
    SessionExpiredError,
    SessionMovedError,
    UnimplementedError,
)
from coord.messages import (
    PING_XID,
    PROTOCOL_VERSION,
    ConnectResponse,
    CreateMode,
    EventType,
    OpCode,
    Stat,
    WatchedEvent,
    WatcherType,
)
from coord.server.core.output import (
    Children,
    Connected,
    Created,
    MultiResults,
    NodeData,
    Notice,
    Reply,
)
from tests.server.coredriver import PASSWORD, TICK, Driver, error_of, ok


@pytest.fixture
def d():
    return Driver()


@pytest.fixture
def two(d):
    """Two connections (1 and 2), each with its own session."""
    d.connect(1)
    d.connect(2)
    return d


# -- handshake ---------------------------------------------------------------------------


def test_new_session_handshake_response_shape(d):
    hello = d.hello(1, timeout_ms=1_500)
    (response,) = d.wire_of(1)  # the layout on the wire: a ConnectResponse map
    assert set(response) == {
        "protocol_version",
        "timeout_ms",
        "session_id",
        "password",
        "zxid",
        "server_id",
    }
    model = ConnectResponse.model_validate(response)
    assert model.protocol_version == PROTOCOL_VERSION
    assert model.timeout_ms == 1_500
    assert model.session_id != 0
    assert model.password == PASSWORD
    assert model.server_id == 1
    assert model.error == 0
    assert hello == Connected(
        model.session_id, model.timeout_ms, model.password, model.zxid, model.server_id
    )
    assert hello.timeout_ms == 1_500
    assert hello.session_id != 0
    assert hello.password == PASSWORD
    assert hello.server_id == 1
    # The zxid is the one of the txn that created the session, now applied.
    assert hello.zxid == d.core.tree.last_zxid == d.txns[-1].zxid
    assert hello.session_id in d.core.tree.sessions
    assert d.closed == []


def test_handshake_negotiates_the_timeout(d):
    assert d.hello(1, timeout_ms=1).timeout_ms == 2 * TICK
    assert d.hello(2, timeout_ms=10**9).timeout_ms == 40_000  # ZooKeeper's default ceiling


def test_each_new_session_has_its_own_id(d):
    ids = {d.hello(conn).session_id for conn in range(1, 6)}
    assert len(ids) == 5


def test_requests_pipelined_behind_the_handshake_are_answered_after_it(d):
    d.connect(1, run=False)
    xid = d.send(1, OpCode.CREATE, {"path": "/a"})
    d.run()
    frames = d.take(1)
    assert isinstance(frames[0], Connected)  # the connect response comes first
    assert isinstance(frames[1], Reply) and frames[1].xid == xid


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"protocol_version": 99}, BadArgumentsError.code),
        ({"last_zxid_seen": 1 << 60}, KeeperError.code),
    ],
)
def test_refused_handshake_is_answered_and_closed(d, kwargs, code):
    refused = d.refused(1, **kwargs)
    assert refused.error.code == code
    assert refused.error.message
    (response,) = d.wire_of(1)  # on the wire: a ConnectResponse map with no session
    model = ConnectResponse.model_validate(response)
    assert (model.session_id, model.error, model.message) == (0, code, refused.error.message)
    assert d.closed == [1]
    assert d.core.connection_count == 0
    d.send(1, OpCode.GET_DATA, {"path": "/"})
    d.run()
    assert d.take(1) == []  # a closed connection is ignored


# -- replies and ordering -----------------------------------------------------------------


def test_create_and_read_reply_shapes(two):
    d = two
    created = ok(d.create(1, "/a", b"hello"))
    assert isinstance(created, Created) and created.path == "/a"
    stat = created.stat
    assert stat.data_length == 5 and stat.version == 0 and stat.czxid == d.core.tree.last_zxid
    node = ok(d.get(2, "/a"))
    assert node == NodeData(b"hello", stat)
    assert ok(d.exists(2, "/a")) == stat
    assert ok(d.exists(2, "/nope")) is None
    assert ok(d.call(2, OpCode.GET_CHILDREN, {"path": "/"})) == Children(["a"], None)
    children = ok(d.call(2, OpCode.GET_CHILDREN, {"path": "/", "include_stat": True}))
    assert children.names == ["a"] and children.stat.num_children == 1
    assert ok(d.call(2, OpCode.SYNC, {"path": "/a"})) == "/a"
    assert ok(d.call(2, OpCode.CHECK, {"path": "/a", "version": 0})) is None
    assert isinstance(
        error_of(d.call(2, OpCode.CHECK, {"path": "/a", "version": 3})), BadVersionError
    )
    set_stat = ok(d.call(1, OpCode.SET_DATA, {"path": "/a", "data": b"x"}))
    assert isinstance(set_stat, Stat) and set_stat.version == 1
    assert ok(d.call(1, OpCode.DELETE, {"path": "/a"})) is None
    err = error_of(d.get(2, "/a"))
    assert isinstance(err, NoNodeError) and err.path == "/a"


def test_reply_carries_the_zxid_of_its_write(d):
    d.connect(1)
    reply = d.create(1, "/a")
    assert reply.zxid == d.core.tree.get("/a").czxid


def test_read_pipelined_behind_a_write_sees_the_write(d):
    d.connect(1)
    d.create(1, "/a", b"old")
    set_xid = d.send(1, OpCode.SET_DATA, {"path": "/a", "data": b"new"})
    get_xid = d.send(1, OpCode.GET_DATA, {"path": "/a"})
    exists_xid = d.send(1, OpCode.EXISTS, {"path": "/b"})
    create_xid = d.send(1, OpCode.CREATE, {"path": "/b"})
    children_xid = d.send(1, OpCode.GET_CHILDREN, {"path": "/"})
    d.run()
    frames = d.take(1)
    assert all(isinstance(f, Reply) for f in frames)
    assert [f.xid for f in frames] == [set_xid, get_xid, exists_xid, create_xid, children_xid]
    assert frames[1].result.data == b"new"
    assert frames[2].result is None  # evaluated before the create that follows it
    assert frames[4].result == Children(["a", "b"], None)


def test_replies_wait_for_the_write_in_front_of_them(d):
    d.connect(1)
    write = d.send(1, OpCode.CREATE, {"path": "/a"})
    read = d.send(1, OpCode.GET_DATA, {"path": "/"})
    bad = d.send(1, OpCode.CREATE, {"path": "/a"})  # fails at prep time, answered in order
    ready = d.core.ready()
    assert len(ready.txns) == 1
    assert ready.messages == []  # nothing may be answered before the txn is durable
    d.core.advance(ready, now_ms=d.now)
    d.run()
    frames = d.take(1)
    assert [f.xid for f in frames] == [write, read, bad]
    assert isinstance(error_of(frames[2]), NodeExistsError)


def test_ping_is_answered_at_once_even_behind_a_write(d):
    d.connect(1)
    write = d.send(1, OpCode.CREATE, {"path": "/a"})
    d.send(1, OpCode.PING, {}, xid=PING_XID)
    ready = d.core.ready()
    assert len(ready.txns) == 1
    assert [frame for _, frame in ready.messages] == [Reply(PING_XID, d.core.tree.last_zxid)]
    d.core.advance(ready, now_ms=d.now)
    d.run()
    assert [f.xid for f in d.take(1)] == [write]


def test_ping_extends_the_session(d):
    d.connect(1, timeout_ms=2 * TICK)
    for _ in range(10):
        d.now += TICK
        d.send(1, OpCode.PING, {}, xid=PING_XID)
        d.tick(0)
    assert d.closed == []
    d.take(1)
    d.tick(10 * TICK)
    assert d.closed == [1]


def test_watch_event_comes_before_the_reply_that_shows_the_change(two):
    d = two
    d.create(1, "/a", b"v0")
    ok(d.get(2, "/a", watch=True))
    d.send(1, OpCode.SET_DATA, {"path": "/a", "data": b"v1"})  # conn 1's change
    write = d.send(2, OpCode.CREATE, {"path": "/b"})  # conn 2 has a write in flight ...
    read = d.send(2, OpCode.GET_DATA, {"path": "/a"})  # ... so this read waits
    d.run()
    frames = d.take(2)
    kinds = ["event" if isinstance(f, WatchedEvent) else f.xid for f in frames]
    assert kinds == ["event", write, read]
    assert frames[0] == WatchedEvent(EventType.CHANGED, "/a", d.core.tree.get("/a").mzxid)
    assert frames[2].result.data == b"v1"


def test_watch_event_is_in_an_earlier_or_the_same_batch_as_any_reply_showing_it(two):
    d = two
    d.create(1, "/a")
    ok(d.exists(2, "/a", watch=True))
    d.call(1, OpCode.DELETE, {"path": "/a"})
    reply = d.exists(2, "/a")
    conn2 = [frame for conn, frame in d.log if conn == 2]
    assert conn2.index(WatchedEvent(EventType.DELETED, "/a", reply.zxid)) < conn2.index(reply)


# -- bad requests ---------------------------------------------------------------------------


def test_unknown_op_is_unimplemented_and_the_session_goes_on(d):
    d.connect(1)
    err = error_of(d.call(1, 77, {}))
    assert isinstance(err, UnimplementedError)
    assert err.code == -6 and err.actual == 77
    assert d.closed == []
    ok(d.create(1, "/still-fine"))


@pytest.mark.parametrize(
    ("op", "body"),
    [
        (OpCode.CREATE, {"path": 5}),
        (OpCode.CREATE, {"path": "/a", "surprise": 1}),
        (OpCode.SET_DATA, {"path": "/a", "data": "not bytes"}),
        (OpCode.GET_DATA, ["/a"]),
        (OpCode.MULTI, {"ops": [[1]]}),
        (OpCode.MULTI, {"ops": [[1, {"path": "/a", "bogus": True}]]}),
    ],
)
def test_bad_body_is_a_marshalling_error_and_the_session_goes_on(d, op, body):
    d.connect(1)
    err = error_of(d.call(1, op, body))
    assert isinstance(err, MarshallingError)
    assert err.code == -5
    assert d.closed == []
    ok(d.create(1, "/fine"))
    assert d.core.tree.get("/a") is None


def test_read_errors(d):
    d.connect(1)
    err = error_of(d.get(1, "bad"))
    assert err.code == -201 and err.path == "bad"
    err = error_of(d.call(1, OpCode.GET_CHILDREN, {"path": "/none"}))
    assert isinstance(err, NoNodeError)
    err = error_of(d.call(1, OpCode.ADD_WATCH, {"path": "/", "mode": 9}))
    assert isinstance(err, BadArgumentsError)
    err = error_of(d.call(1, OpCode.REMOVE_WATCHES, {"path": "/", "watcher_type": 9}))
    assert isinstance(err, BadArgumentsError)


def test_non_multi_op_inside_a_multi_is_refused(d):
    d.connect(1)
    err = error_of(d.call(1, OpCode.MULTI, {"ops": [[OpCode.GET_DATA, {"path": "/"}]]}))
    assert isinstance(err, UnimplementedError)


# -- multi ---------------------------------------------------------------------------------------


def test_multi_success_results(two):
    d = two
    d.create(1, "/a")
    body = {
        "ops": [
            [OpCode.CREATE, {"path": "/a/b", "data": b"1"}],
            [OpCode.SET_DATA, {"path": "/a", "data": b"22", "version": 0}],
            [OpCode.CHECK, {"path": "/a", "version": 1}],
            [OpCode.DELETE, {"path": "/a/b"}],
        ]
    }
    reply = d.call(1, OpCode.MULTI, body)
    results = ok(reply)
    assert isinstance(results, MultiResults) and not results.failed
    outcomes = results.outcomes
    assert len(outcomes) == 4
    assert [o.error for o in outcomes] == [None, None, None, None]
    created = outcomes[0].result
    assert created.path == "/a/b"
    assert created.stat.czxid == reply.zxid
    assert outcomes[1].result.version == 1
    assert outcomes[2].result is None
    assert outcomes[3].result is None
    assert d.core.tree.get("/a").data == b"22"
    assert d.core.tree.get("/a/b") is None


def test_multi_failure_results(two):
    d = two
    d.create(1, "/a")
    last = d.core.tree.last_zxid
    body = {
        "ops": [
            [OpCode.CREATE, {"path": "/a/new"}],
            [OpCode.SET_DATA, {"path": "/a", "data": b"", "version": 5}],
            [OpCode.DELETE, {"path": "/a"}],
        ]
    }
    results = ok(d.call(1, OpCode.MULTI, body))  # the reply itself succeeds
    assert isinstance(results, MultiResults) and results.failed
    errors = [o.error for o in results.outcomes]
    assert [type(e) for e in errors] == [RolledBackError, BadVersionError, RolledBackError]
    assert [e.code for e in errors] == [-203, BadVersionError.code, -203]
    assert all(o.result is None for o in results.outcomes)
    failure = errors[1]
    assert (failure.path, failure.expected, failure.actual) == ("/a", 5, 0)
    assert d.core.tree.get("/a/new") is None
    assert d.core.tree.last_zxid == last  # nothing was proposed
    ok(d.create(1, "/a/new"))  # and nothing is pending


def test_sequential_names_in_replies(d):
    d.connect(1)
    d.create(1, "/q")
    xids = [
        d.send(1, OpCode.CREATE, {"path": "/q/", "mode": int(CreateMode.PERSISTENT_SEQUENTIAL)})
        for _ in range(3)
    ]
    d.run()
    names = [ok(d.reply(1, xid)).path for xid in xids]
    assert names == ["/q/0000000000", "/q/0000000001", "/q/0000000002"]


# -- sessions ------------------------------------------------------------------------------------


def test_session_expiry_deletes_ephemerals_fires_watches_and_notifies(d):
    d.connect(1, timeout_ms=2 * TICK)
    d.connect(2, timeout_ms=20 * TICK)
    ok(d.create(1, "/e", b"", CreateMode.EPHEMERAL))
    ok(d.exists(2, "/e", watch=True))
    ok(d.call(2, OpCode.GET_CHILDREN, {"path": "/", "watch": True}))
    expired = d.session_of[1]
    d.take(1)
    d.tick(TICK)
    assert d.core.tree.get("/e") is not None  # not yet
    d.tick(5 * TICK)
    assert d.core.tree.get("/e") is None
    assert expired not in d.core.tree.sessions
    assert d.core.sessions.get(expired) is None
    assert sorted(d.events(2)) == sorted([(EventType.DELETED, "/e"), (EventType.CHILD, "/")])
    notice = d.take(1)[-1]
    assert isinstance(notice, Notice)
    assert isinstance(notice.error, SessionExpiredError)
    assert notice.zxid == d.core.tree.last_zxid
    assert d.closed == [1]
    assert 2 not in d.closed
    ok(d.get(2, "/"))  # the other session is untouched


def test_expired_session_cannot_be_resumed(d):
    hello = d.hello(1, timeout_ms=2 * TICK)
    d.core.connection_lost(1)
    d.tick(10 * TICK)
    again = d.refused(3, session_id=hello.session_id, password=hello.password)
    assert isinstance(again.error, SessionExpiredError)
    assert d.closed == [3]


def test_close_session_deletes_ephemerals_at_once(two):
    d = two
    ok(d.create(1, "/e", b"", CreateMode.EPHEMERAL))
    ok(d.create(1, "/p"))
    ok(d.exists(2, "/e", watch=True))
    session = d.session_of[1]
    reply = d.call(1, OpCode.CLOSE_SESSION, {})
    assert ok(reply) is None
    assert d.core.tree.get("/e") is None
    assert d.core.tree.get("/p") is not None
    assert session not in d.core.tree.sessions
    assert d.events(2) == [(EventType.DELETED, "/e")]
    assert d.closed == [1]
    assert not any(isinstance(f, Notice) for f in d.take(1))  # no expiry notice for a clean close


def test_requests_after_close_session_are_refused(d):
    d.connect(1)
    close = d.send(1, OpCode.CLOSE_SESSION)
    after = d.send(1, OpCode.GET_DATA, {"path": "/"})
    d.run()
    frames = d.take(1)
    assert [f.xid for f in frames] == [close, after]
    assert isinstance(error_of(frames[1]), SessionExpiredError)


def test_lost_connection_keeps_the_session_until_its_lease_ends(d):
    hello = d.hello(1, timeout_ms=10 * TICK)
    ok(d.create(1, "/e", b"", CreateMode.EPHEMERAL))
    d.core.connection_lost(1)
    d.tick(5 * TICK)
    assert d.core.tree.get("/e") is not None
    again = d.hello(2, session_id=hello.session_id, password=hello.password)
    assert again.session_id == hello.session_id
    assert again.timeout_ms == hello.timeout_ms
    assert again.password == hello.password
    ok(d.get(2, "/e"))


def test_resume_with_wrong_password_is_refused_with_session_expired(d):
    hello = d.hello(1)
    refused = d.refused(2, session_id=hello.session_id, password=b"wrong")
    assert isinstance(refused.error, SessionExpiredError)  # a refusal names no session
    assert d.closed == [2]
    ok(d.get(1, "/"))  # the real owner is not disturbed
    assert d.closed == [2]


def test_resume_of_unknown_session_is_refused(d):
    refused = d.refused(1, session_id=12345, password=PASSWORD)
    assert isinstance(refused.error, SessionExpiredError)


def test_resume_while_attached_elsewhere_moves_the_session(d):
    hello = d.hello(1)
    ok(d.create(1, "/e", b"", CreateMode.EPHEMERAL))
    ok(d.exists(1, "/w", watch=True))
    moved = d.hello(2, session_id=hello.session_id, password=hello.password)
    assert moved.session_id == hello.session_id
    notice = d.take(1)[-1]
    assert isinstance(notice, Notice)
    assert isinstance(notice.error, SessionMovedError)
    assert d.closed == [1]  # the old connection is closed, not left hanging
    # The old connection is gone; the session lives on the new one.
    d.send(1, OpCode.GET_DATA, {"path": "/"})
    d.run()
    assert d.take(1) == []
    ok(d.get(2, "/e"))
    ok(d.create(2, "/w"))  # the old connection's watches went with it
    assert d.take(1) == []
    assert d.core.tree.get("/e").ephemeral_owner == hello.session_id


# -- watches through the core --------------------------------------------------------------------


def test_one_shot_watches_fire_once(two):
    d = two
    ok(d.exists(2, "/a", watch=True))
    ok(d.create(1, "/a"))
    assert d.events(2) == [(EventType.CREATED, "/a")]
    ok(d.call(1, OpCode.SET_DATA, {"path": "/a", "data": b"x"}))
    assert d.events(2) == []


def test_persistent_recursive_watch_and_remove(two):
    d = two
    ok(d.call(2, OpCode.ADD_WATCH, {"path": "/r", "mode": 1}))
    ok(d.create(1, "/r"))
    ok(d.create(1, "/r/x"))
    ok(d.call(1, OpCode.SET_DATA, {"path": "/r/x", "data": b"1"}))
    assert d.events(2) == [
        (EventType.CREATED, "/r"),
        (EventType.CREATED, "/r/x"),
        (EventType.CHANGED, "/r/x"),
    ]
    ok(d.call(2, OpCode.REMOVE_WATCHES, {"path": "/r", "watcher_type": 5}))
    ok(d.call(1, OpCode.DELETE, {"path": "/r/x"}))
    assert d.events(2) == []
    err = error_of(d.call(2, OpCode.REMOVE_WATCHES, {"path": "/r", "watcher_type": 5}))
    assert isinstance(err, NoWatcherError) and err.path == "/r"


def test_remove_data_watch(two):
    d = two
    ok(d.exists(2, "/a", watch=True))
    ok(d.call(2, OpCode.REMOVE_WATCHES, {"path": "/a", "watcher_type": int(WatcherType.DATA)}))
    ok(d.create(1, "/a"))
    assert d.events(2) == []


def test_watches_go_with_a_lost_connection(two):
    d = two
    ok(d.exists(2, "/a", watch=True))
    d.core.connection_lost(2)
    ok(d.create(1, "/a"))
    assert d.core.watches.count() == 0
    assert d.take(2) == []


def test_set_watches_fires_what_was_missed(two):
    d = two
    for path in ("/changed", "/same", "/deleted", "/parent", "/quiet", "/gone-parent"):
        ok(d.create(1, path))
    since = d.core.tree.last_zxid
    ok(d.call(1, OpCode.SET_DATA, {"path": "/changed", "data": b"x"}))
    ok(d.call(1, OpCode.DELETE, {"path": "/deleted"}))
    ok(d.create(1, "/parent/kid"))
    ok(d.create(1, "/appeared"))
    ok(d.call(1, OpCode.DELETE, {"path": "/gone-parent"}))
    body = {
        "relative_zxid": since,
        "data": ["/changed", "/same", "/deleted"],
        "exist": ["/appeared", "/absent"],
        "child": ["/parent", "/quiet", "/gone-parent"],
    }
    xid = d.send(2, OpCode.SET_WATCHES, body)
    d.run()
    frames = d.take(2)
    assert frames[-1] == Reply(xid, d.core.tree.last_zxid, None)  # the reply comes last
    assert all(isinstance(f, WatchedEvent) for f in frames[:-1])
    events = {(f.type, f.path): f.zxid for f in frames[:-1]}
    tree = d.core.tree
    assert events == {
        (EventType.CHANGED, "/changed"): tree.get("/changed").mzxid,
        (EventType.DELETED, "/deleted"): tree.last_zxid,
        (EventType.CREATED, "/appeared"): tree.get("/appeared").czxid,
        (EventType.CHILD, "/parent"): tree.get("/parent").pzxid,
        (EventType.DELETED, "/gone-parent"): tree.last_zxid,
    }
    # What did not fire is registered and fires on the next change.
    ok(d.call(1, OpCode.SET_DATA, {"path": "/same", "data": b"y"}))
    ok(d.create(1, "/absent"))
    ok(d.create(1, "/quiet/kid"))
    ok(d.call(1, OpCode.SET_DATA, {"path": "/changed", "data": b"z"}))  # fired: not re-armed
    assert d.events(2) == [
        (EventType.CHANGED, "/same"),
        (EventType.CREATED, "/absent"),
        (EventType.CHILD, "/quiet"),
    ]


def test_set_watches_registers_persistent_watches(two):
    d = two
    body = {"relative_zxid": 0, "persistent": ["/p"], "persistent_recursive": ["/r"]}
    ok(d.call(2, OpCode.SET_WATCHES, body))
    ok(d.create(1, "/p"))
    ok(d.create(1, "/r"))
    ok(d.create(1, "/r/x"))
    assert d.events(2) == [
        (EventType.CREATED, "/p"),
        (EventType.CREATED, "/r"),
        (EventType.CREATED, "/r/x"),
    ]


# -- containers and TTL nodes -----------------------------------------------------------------


def test_container_vanishes_when_its_last_child_is_deleted(two):
    d = two
    ok(d.create(1, "/c", b"", CreateMode.CONTAINER))
    ok(d.create(1, "/c/a"))
    ok(d.create(1, "/c/b"))
    ok(d.exists(2, "/c", watch=True))
    ok(d.call(1, OpCode.DELETE, {"path": "/c/a"}))
    assert d.core.tree.get("/c") is not None
    ok(d.call(1, OpCode.DELETE, {"path": "/c/b"}))
    assert d.core.tree.get("/c") is None
    assert d.events(2) == [(EventType.DELETED, "/c")]


def test_container_emptied_by_session_close_vanishes(d):
    d.connect(1)
    ok(d.create(1, "/c", b"", CreateMode.CONTAINER))
    ok(d.create(1, "/c/e", b"", CreateMode.EPHEMERAL))
    ok(d.call(1, OpCode.CLOSE_SESSION))
    assert d.core.tree.get("/c") is None


def test_container_that_never_had_a_child_stays(d):
    d.connect(1, timeout_ms=20 * TICK)
    ok(d.create(1, "/c", b"", CreateMode.CONTAINER))
    for _ in range(5):
        d.tick(TICK)
        d.send(1, OpCode.PING, {}, xid=PING_XID)
    assert d.core.tree.get("/c") is not None


def test_ttl_node_vanishes_after_its_ttl_when_unchanged_and_childless(d):
    d.connect(1, timeout_ms=20 * TICK)
    ok(d.create(1, "/t", b"", CreateMode.PERSISTENT_WITH_TTL, ttl_ms=500))
    ok(d.create(1, "/busy", b"", CreateMode.PERSISTENT_WITH_TTL, ttl_ms=500))
    ok(d.create(1, "/busy/kid"))
    d.tick(400)
    assert d.core.tree.get("/t") is not None
    ok(d.call(1, OpCode.SET_DATA, {"path": "/t", "data": b"touch"}))  # restarts the TTL
    d.tick(400)
    assert d.core.tree.get("/t") is not None
    d.tick(100)
    assert d.core.tree.get("/t") is None
    assert d.core.tree.get("/busy") is not None
    assert d.core.tree.ttl_nodes == {"/busy"}


def test_ttl_create_errors_reach_the_client(d):
    d.connect(1)
    err = error_of(d.create(1, "/t", b"", CreateMode.PERSISTENT_WITH_TTL))
    assert err.code == -205 and err.actual == 0


# -- the Ready contract ----------------------------------------------------------------------------


def test_idle_core_has_nothing_ready(d):
    assert not d.core.has_ready()
    assert not d.core.ready()
    d.connect(1)
    assert not d.core.has_ready()


def test_txn_zxids_increase_in_proposal_order(two):
    d = two
    for i in range(5):
        d.send(1, OpCode.CREATE, {"path": f"/n{i}"})
        d.send(2, OpCode.CREATE, {"path": f"/m{i}"})
    d.run()
    zxids = [txn.zxid for txn in d.txns]
    assert zxids == sorted(zxids) and len(set(zxids)) == len(zxids)
    assert zxids[0] >> 32 == 1  # the epoch
