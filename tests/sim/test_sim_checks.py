"""The simulator's checkers for children, child and recursive watches and failed writes,
on histories that break them (and ones that keep them, so the checks are not simply
refusing everything). The system broken on purpose is in test_member_sim.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from coord.client.pending import Call
from coord.client.watches import WatchKind
from coord.errors import (
    BadVersionError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
)
from coord.messages import CreateMode, EventType, OpCode, WatchedEvent
from coord.server.core.txn import CreateTxn, SetDataTxn
from coord.server.sim.checks import History, Violation
from coord.server.sim.client import SimClient
from tests.sim.test_member_sim import _answered, _client, _history_with_node, _txn


def _watching(history: History, kind: WatchKind, path: str, at: int = 1) -> SimClient:
    """A client whose reply at zxid `at` set a watch of `kind` on `path`."""
    client = _client()
    history.frame(client, [4, at, 0, None])
    history.watch_set(client, kind, path)
    return client


def _event(history: History, client: SimClient, kind: EventType, path: str, zxid: int) -> None:
    history.frame(client, [-1, zxid, 0, {"type": int(kind), "path": path}])
    history.event_seen(client, WatchedEvent(kind, path, zxid))


def test_a_children_list_the_chain_never_had_is_caught() -> None:
    history = _history_with_node()
    _answered(history, Call(OpCode.GET_CHILDREN, {"path": "/"}), 5, 2, [["a"], None])
    with pytest.raises(Violation, match="read"):
        _answered(history, Call(OpCode.GET_CHILDREN, {"path": "/"}), 6, 2, [["a", "b"], None])


def test_a_reply_that_overtakes_a_child_event_is_caught() -> None:
    history = _history_with_node()
    client = _watching(history, WatchKind.CHILD, "/")
    with pytest.raises(Violation, match="before the child watch event"):
        history.frame(client, [5, 2, 0, None])  # shows /a, a child of / made at 2


def test_a_child_event_delivered_twice_is_caught() -> None:
    history = _history_with_node()
    client = _watching(history, WatchKind.CHILD, "/")
    _event(history, client, EventType.CHILD, "/", 2)
    with pytest.raises(Violation, match="answers no watch"):
        _event(history, client, EventType.CHILD, "/", 2)


def test_a_child_watch_moved_by_set_watches_that_misses_a_change_is_caught() -> None:
    history = _history_with_node()
    client = _watching(history, WatchKind.CHILD, "/")
    history.reconnected(client)
    history.sent(client, 9, OpCode.SET_WATCHES)
    with pytest.raises(Violation, match="SET_WATCHES at 0x2 sent no event for its child watch"):
        history.frame(client, [9, 2, 0, None])


def test_a_child_watch_moved_by_set_watches_that_fires_passes() -> None:
    history = _history_with_node()
    client = _watching(history, WatchKind.CHILD, "/")
    history.reconnected(client)
    history.sent(client, 9, OpCode.SET_WATCHES)
    _event(history, client, EventType.CHILD, "/", 2)  # the member fires it at its pzxid
    history.frame(client, [9, 2, 0, None])
    assert not history.view(client).armed


def _history_with_two_nodes() -> History:
    history = _history_with_node()
    history.committed(1, [_txn(3, CreateTxn("/b", b"x", CreateMode.PERSISTENT, 0, 0, 2), xid=2)])
    return history


def test_recursive_events_in_zxid_order_pass_and_stay_armed() -> None:
    history = _history_with_two_nodes()
    client = _watching(history, WatchKind.PERSISTENT_RECURSIVE, "/")
    _event(history, client, EventType.CREATED, "/a", 2)
    _event(history, client, EventType.CREATED, "/b", 3)
    history.frame(client, [5, 3, 0, None])
    assert history.view(client).armed


def test_a_recursive_event_out_of_zxid_order_is_caught() -> None:
    history = _history_with_two_nodes()
    client = _watching(history, WatchKind.PERSISTENT_RECURSIVE, "/")
    with pytest.raises(Violation, match="before the persistent_recursive watch event on /a"):
        _event(history, client, EventType.CREATED, "/b", 3)


def test_a_recursive_event_delivered_twice_is_caught() -> None:
    history = _history_with_two_nodes()
    client = _watching(history, WatchKind.PERSISTENT_RECURSIVE, "/")
    _event(history, client, EventType.CREATED, "/a", 2)
    with pytest.raises(Violation, match="answers no watch"):
        _event(history, client, EventType.CREATED, "/a", 2)


def test_a_reply_that_overtakes_a_recursive_event_is_caught() -> None:
    history = _history_with_two_nodes()
    client = _watching(history, WatchKind.PERSISTENT_RECURSIVE, "/")
    _event(history, client, EventType.CREATED, "/a", 2)
    with pytest.raises(Violation, match="before the persistent_recursive watch event on /b"):
        history.frame(client, [5, 3, 0, None])


def _refused(history: History, call: Call, xid: int, error: Exception) -> None:
    """Send `call` and answer it with `error`, at the chain's head."""
    client = _client()
    history.invoked(client, call)
    call.xid = xid
    history.sent(client, xid, call.op)
    history.frame(client, [xid, history.model.last_zxid, 0, None])
    call.fail(error)


def _multi_refused(history: History, ops: list[Any], errors: list[Exception]) -> None:
    client = _client()
    call = Call(OpCode.MULTI, {"ops": ops})
    history.invoked(client, call)
    call.xid = 7
    history.sent(client, 7, call.op)
    result = [[type(e).code, {"message": str(e)}] for e in errors]  # type: ignore[attr-defined]
    history.frame(client, [7, history.model.last_zxid, 0, result])
    call.resolve(0, result)


def test_a_failure_the_model_gives_passes() -> None:
    history = _history_with_node()
    _refused(history, Call(OpCode.CREATE, {"path": "/a"}), 5, NodeExistsError("/a"))
    _refused(history, Call(OpCode.DELETE, {"path": "/b", "version": -1}), 6, NoNodeError("/b"))
    _refused(history, Call(OpCode.SET_DATA, {"path": "/a", "version": 3}), 7, BadVersionError())
    assert history.failures.checked == 3


def test_a_create_refused_for_a_node_that_never_existed_is_caught() -> None:
    history = _history_with_node()
    with pytest.raises(Violation, match="failed with NodeExistsError"):
        _refused(history, Call(OpCode.CREATE, {"path": "/b"}), 5, NodeExistsError("/b"))


def test_a_delete_of_a_leaf_refused_as_not_empty_is_caught() -> None:
    history = _history_with_node()
    with pytest.raises(Violation, match="failed with NotEmptyError"):
        _refused(history, Call(OpCode.DELETE, {"path": "/a", "version": -1}), 5, NotEmptyError())


def test_a_failure_waits_for_the_chain_to_cover_its_window() -> None:
    """Refused against a txn still pending (the leader had handed out zxid 3): judged once
    the chain reaches 3, and caught if what came there does not give the error."""
    history = _history_with_node()
    history.assigned = lambda: 3
    _refused(history, Call(OpCode.CREATE, {"path": "/b"}), 5, NodeExistsError("/b"))
    assert history.failures.waiting
    with pytest.raises(Violation, match=r"in 0x0\.\.0x3 gives"):
        history.committed(1, [_txn(3, SetDataTxn("/a", b"y", 1), xid=2)])


def test_a_multis_failure_the_model_gives_passes() -> None:
    history = _history_with_node()
    ops = [[OpCode.CHECK, {"path": "/a", "version": 0}], [OpCode.SET_DATA, {"path": "/b"}]]
    _multi_refused(history, ops, [RolledBackError(), NoNodeError()])
    assert history.failures.checked == 1


def test_a_multi_failing_on_an_op_that_passes_is_caught() -> None:
    history = _history_with_node()
    ops = [[OpCode.CHECK, {"path": "/a", "version": 0}], [OpCode.SET_DATA, {"path": "/b"}]]
    with pytest.raises(Violation, match="failed with BadVersionError"):
        _multi_refused(history, ops, [BadVersionError(), RolledBackError()])


def test_a_multi_with_two_failing_ops_is_caught() -> None:
    history = _history_with_node()
    ops = [[OpCode.CHECK, {"path": "/a", "version": 1}], [OpCode.SET_DATA, {"path": "/b"}]]
    with pytest.raises(Violation, match="not one failing op"):
        _multi_refused(history, ops, [BadVersionError(), NoNodeError()])
