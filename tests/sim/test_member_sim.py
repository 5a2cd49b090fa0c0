"""The whole-member simulator (coord.server.sim) over seeds, its replay, and its checkers.

A failing seed prints how to replay it:

    python -m coord.server.sim --seed 1234 --trace

or, in pytest, `MEMBER_SIM_SEED=1234 pytest tests/sim -k member_replay`. For
thousands of seeds: `python -m coord.server.sim --seeds 10000 --jobs 2`.

The checker tests break each guarantee on purpose, at the checker (a history
that violates it) and, for several, in the system itself (a client that
loses watch events, a server that forgets the writes it applied, one that
lists children wrongly, loses child events, forgets child watches in
SET_WATCHES, sends recursive events twice, or refuses deletes for no reason),
and show that the checker says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, cast

import pytest

from coord import paths
from coord.client.pending import Call
from coord.client.watches import WatchKind
from coord.errors import (
    NotEmptyError,
)
from coord.messages import CreateMode, EventType, OpCode, SetWatchesRequest, WatchedEvent
from coord.server.core import replica
from coord.server.core.dedupe import WriteResults
from coord.server.core.output import Children
from coord.server.core.prep import Preparer
from coord.server.core.tree import DataTree
from coord.server.core.txn import (
    CreateSessionTxn,
    CreateTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)
from coord.server.core.watches import WatchManager
from coord.server.sim import client as sim_client
from coord.server.sim.checks import History, Violation
from coord.server.sim.client import SimClient
from coord.server.sim.world import run_seed

CI_SEEDS = 300
STAT = [1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1]
"""A Stat on the wire (version 0), for replies built by hand."""


@pytest.mark.parametrize("seed", range(CI_SEEDS))
def test_member_seed(seed: int) -> None:
    result = run_seed(seed)
    if not result.ok:
        pytest.fail(
            f"{result.failure}\n  replay: python -m coord.server.sim --seed {seed} --trace",
            pytrace=False,
        )
    assert result.stats["acked_writes"] > 0


def test_member_replay() -> None:
    """Replay one seed with its trace: MEMBER_SIM_SEED from the environment, else seed 0."""
    seed = int(os.environ.get("MEMBER_SIM_SEED", "0"))
    result = run_seed(seed, trace=True)
    if not result.ok:
        tail = "\n".join(result.trace[-150:])
        pytest.fail(f"last events:\n{tail}\n\n{result.failure}", pytrace=False)


def test_a_member_seed_replays_exactly() -> None:
    first = run_seed(7, trace=True)
    second = run_seed(7, trace=True)
    assert first.trace == second.trace
    assert first.stats == second.stats
    assert first.stats["acked_writes"] > 100 and first.stats["sync_reads"] > 10


def test_the_seeds_exercise_every_fault_and_the_whole_api() -> None:
    totals: dict[str, int] = {}
    for seed in range(12):
        for name, value in run_seed(seed).stats.items():
            totals[name] = totals.get(name, 0) + value
    for name in (
        "crashes", "partitions", "clock_jumps", "torn_writes", "disconnects", "stalls",
        "dropped", "snapshots_installed", "sessions_expired", "events", "sync_reads",
        "children_read", "child_events", "child_watches_rearmed", "recursive_events",
        "failed_writes_checked", "pauses", "lease_expiries",
    ):  # fmt: skip
        assert totals.get(name, 0) > 0, name


# -- the system broken on purpose ------------------------------------------------------------


def _first_failure(seeds: range) -> str:
    for seed in seeds:
        result = run_seed(seed)
        if not result.ok:
            return result.failure
    return ""


def test_a_client_that_loses_watch_events_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = sim_client.ClientProtocol.receive_frame
    seen = {"events": 0}

    def lossy(self: Any, frame: Any) -> None:
        if isinstance(frame, list) and frame and frame[0] == -1:
            seen["events"] += 1
            if seen["events"] % 5 == 0:
                return  # dropped on the floor
        real(self, frame)

    monkeypatch.setattr(sim_client.ClientProtocol, "receive_frame", lossy)
    assert "watch" in _first_failure(range(10))


def test_a_server_that_forgets_applied_writes_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the write-retry table a resent write applies twice."""
    monkeypatch.setattr(WriteResults, "get", lambda self, session_id, xid: None)
    failure = _first_failure(range(20))
    assert "applied twice" in failure


def test_a_server_that_lists_children_wrongly_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = replica.evaluate_read

    def short(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if isinstance(result, Children) and result.names:
            return Children(result.names[:-1], result.stat)
        return result

    monkeypatch.setattr(replica, "evaluate_read", short)
    assert "GET_CHILDREN" in _first_failure(range(10))


def test_a_server_that_loses_child_events_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = WatchManager.trigger

    def lossy(self: WatchManager, kind: EventType, *args: Any, **kwargs: Any) -> Any:
        out = real(self, kind, *args, **kwargs)
        return [] if kind is EventType.CHILD else out

    monkeypatch.setattr(WatchManager, "trigger", lossy)
    assert "child watch event" in _first_failure(range(10))


def test_a_server_whose_set_watches_forgets_child_changes_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SET_WATCHES re-registers the child watches but fires none of what they missed."""
    real = replica.set_watches

    def forgetful(tree: Any, watches: Any, watcher: Any, request: SetWatchesRequest) -> Any:
        fired = real(tree, watches, watcher, request.model_copy(update={"child": []}))
        watches.add_many(watcher, child=[p for p in request.child if p in tree.nodes])
        return fired

    monkeypatch.setattr(replica, "set_watches", forgetful)
    assert "child watch" in _first_failure(range(30))


def test_a_server_that_sends_recursive_events_twice_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = WatchManager.trigger

    def twice(self: WatchManager, kind: EventType, path: str, *args: Any, **kw: Any) -> Any:
        out = real(self, kind, path, *args, **kw)
        roots = [r for r in paths.ancestors(path) if r in self.recursive.by_path]
        again = [(w, e) for w, e in out if any(self.recursive.has(r, w) for r in roots)]
        return out + again

    monkeypatch.setattr(WatchManager, "trigger", twice)
    assert "answers no watch" in _first_failure(range(10))


def test_a_server_that_refuses_deletes_for_no_reason_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = Preparer._delete

    def refusing(self: Preparer, request: Any, *args: Any) -> Any:
        if request.path in sim_client.KEYS:
            raise NotEmptyError(f"{request.path} has children (it has not)", path=request.path)
        return real(self, request, *args)

    monkeypatch.setattr(Preparer, "_delete", refusing)
    assert "failed with NotEmptyError" in _first_failure(range(10))


# -- the checkers, on histories that break them ----------------------------------------------


@dataclass
class FakeClient:
    client_id: int = 1
    session_id: int = 0x10

    def remember_version(self, path: str, version: int | None) -> None:
        pass


def _client() -> SimClient:
    return cast(SimClient, FakeClient())


def _txn(zxid: int, body: Any, session: int = 0x10, xid: int = 0) -> Txn:
    return Txn(TxnHeader(zxid, 0, session, xid), body)


def _history_with_node() -> History:
    history = History(frozenset({1, 2, 3}))
    history.committed(1, [_txn(1, CreateSessionTxn(0x10, 4000, b"p" * 16))])
    history.committed(1, [_txn(2, _create("/a"), xid=1)])
    return history


def _create(path: str) -> CreateTxn:
    return CreateTxn(path, b"x", CreateMode.PERSISTENT, 0, 0, 1)


def test_the_model_refuses_a_set_that_skips_a_version() -> None:
    history = _history_with_node()
    with pytest.raises(Violation, match="version"):
        history.committed(1, [_txn(3, SetDataTxn("/a", b"y", 2))])


def test_two_members_committing_different_txns_at_one_zxid_is_a_fork() -> None:
    history = _history_with_node()
    with pytest.raises(Violation, match="different txn"):
        history.committed(2, [_txn(2, _create("/b"), xid=1)])


def test_a_write_applied_twice_is_caught() -> None:
    history = _history_with_node()
    with pytest.raises(Violation, match="applied twice"):
        history.committed(1, [_txn(3, SetDataTxn("/a", b"y", 1), xid=1)])


def _answered(history: History, call: Call, xid: int, reply_zxid: int, result: Any) -> None:
    """Send `call` with `xid` and answer it, as the client protocol would."""
    client = _client()
    history.invoked(client, call)
    call.xid = xid
    history.sent(client, xid, call.op)
    history.frame(client, [xid, reply_zxid, 0, result])
    call.resolve(0, result)


def test_a_success_the_chain_does_not_hold_is_caught() -> None:
    history = _history_with_node()
    with pytest.raises(Violation, match="not in the chain"):
        _answered(history, Call(OpCode.CREATE, {"path": "/z"}), 9, 2, ["/z", STAT])


def test_a_read_that_returns_what_the_chain_never_had_is_caught() -> None:
    history = _history_with_node()
    with pytest.raises(Violation, match="read"):
        _answered(history, Call(OpCode.GET_DATA, {"path": "/a"}), 5, 2, [b"other", STAT])


def test_a_read_after_sync_that_misses_an_acknowledged_write_is_caught() -> None:
    history = _history_with_node()
    history.acked_max = 2  # the create of /a had succeeded when the sync was sent
    client = _client()
    sync = Call(OpCode.SYNC, {"path": "/a"})
    history.invoked(client, sync)
    read = Call(OpCode.EXISTS, {"path": "/a"})
    history.invoked(client, read, sync)
    for xid, call in ((5, sync), (6, read)):
        call.xid = xid
        history.sent(client, xid, call.op)
    history.frame(client, [5, 1, 0, "/a"])
    sync.resolve(0, "/a")
    history.frame(client, [6, 1, 0, None])  # the state at zxid 1: /a not there yet
    with pytest.raises(Violation, match="after sync"):
        read.resolve(0, None)


def test_a_zxid_older_than_one_the_client_saw_is_caught() -> None:
    history = _history_with_node()
    history.frame_zxid(_client(), 2)
    with pytest.raises(Violation, match="saw zxid"):
        history.frame_zxid(_client(), 1)


def test_an_event_nobody_registered_is_caught() -> None:
    history = _history_with_node()
    with pytest.raises(Violation, match="answers no watch"):
        history.frame(_client(), [-1, 2, 0, {"type": int(EventType.CREATED), "path": "/a"}])


def test_a_reply_that_overtakes_its_watch_event_is_caught() -> None:
    history = _history_with_node()
    client = _client()
    history.frame(client, [4, 1, 0, None])  # the exists() that set the watch, at zxid 1
    history.watch_set(client, WatchKind.EXIST, "/a")
    with pytest.raises(Violation, match="before the exist watch event"):
        history.frame(client, [5, 2, 0, None])  # shows /a (created at 2), no event yet


def test_a_watch_event_in_order_passes() -> None:
    history = _history_with_node()
    client = _client()
    history.frame(client, [4, 1, 0, None])
    history.watch_set(client, WatchKind.EXIST, "/a")
    history.frame(client, [-1, 2, 0, {"type": int(EventType.CREATED), "path": "/a"}])
    history.event_seen(client, WatchedEvent(EventType.CREATED, "/a", 2))
    history.frame(client, [5, 2, 0, None])
    assert not history.view(client).armed


def test_an_ephemeral_of_a_dead_session_in_a_members_tree_is_caught() -> None:
    history = History(frozenset({1}))
    tree = DataTree()
    tree.ephemerals[0x99] = {"/ghost"}
    with pytest.raises(Violation, match="ephemerals"):
        history.check_tree(1, tree)


def test_a_members_tree_that_differs_from_the_chain_is_caught() -> None:
    history = _history_with_node()
    tree = DataTree()
    tree.last_zxid = 2  # the chain has /a at 2; this tree does not
    with pytest.raises(Violation, match="differs"):
        history.check_tree(1, tree)


def test_an_acknowledged_write_on_too_few_disks_is_caught() -> None:
    history = _history_with_node()
    history.holders = lambda zxid: [1]
    with pytest.raises(Violation, match="durable only on"):
        history.durable_on_quorum(2)
