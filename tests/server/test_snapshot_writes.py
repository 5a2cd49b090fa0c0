"""Snapshots carry the table of recent write results, so a resent write is applied at most
once also by a member that loaded a snapshot (its own at restart, or its leader's in a
SNAP sync). Found by the whole-member simulator: a member paused long enough to need a
SNAP became leader and applied a resent write a second time."""

from __future__ import annotations

import msgpack
import pytest

from coord.messages import PROTOCOL_VERSION, ConnectRequest, OpCode, Stat
from coord.server.core.output import Connected, Created, MultiResults, OpOutcome, Reply
from coord.server.core.replica import CoreConfig, ServerCore
from coord.server.core.tree import DataTree
from coord.server.storage.records import encode_record
from coord.server.storage.snapshot import (
    SNAP_MAGIC,
    SnapshotError,
    load_snapshot,
    snapshot_chunks,
)

NOW = 1_000_000
STAT = Stat(5, 5, 1, 1, 0, 0, 0, 0, 1, 0, 5)


def _snapshot_bytes(tree: DataTree) -> bytes:
    return b"".join(snapshot_chunks(tree))


def test_the_table_round_trips_every_kind_of_result() -> None:
    tree = DataTree()
    multi = MultiResults((OpOutcome(Created("/m", STAT)), OpOutcome(STAT), OpOutcome()))
    for xid, result in enumerate([Created("/a-0000000001", STAT), STAT, None, multi], 1):
        tree.write_results.record(0x77, xid, 100 + xid, result)
    loaded = load_snapshot(_snapshot_bytes(tree)).tree
    assert loaded.write_results.entries() == tree.write_results.entries()


@pytest.mark.parametrize(
    "row",
    [
        [1, 2, 3, ["created", 5, list(STAT)]],
        [1, 2, 3, ["stat", [1, 2, 3]]],
        [1, 2, 3, ["stat", ["x"] * 11]],
        [1, 2, 3, ["surprise"]],
        [1, "2", 3, ["none"]],
        [1, 2, ["none"]],
        "row",
    ],
)
def test_a_bad_row_makes_the_snapshot_invalid(row: object) -> None:
    parts = list(snapshot_chunks(DataTree()))
    bad = encode_record(msgpack.packb({"writes": [row]}, use_bin_type=True))
    data = parts[0] + bad + b"".join(parts[1:])
    assert data.startswith(SNAP_MAGIC)
    with pytest.raises(SnapshotError, match="bad write result"):
        load_snapshot(data)


def _write_once(core: ServerCore, conn: int) -> tuple[int, bytes, Reply]:
    core.connect(
        conn,
        ConnectRequest(protocol_version=PROTOCOL_VERSION, timeout_ms=4000),
        now_ms=NOW,
        password=b"p" * 16,
    )
    core.advance(core.ready(), now_ms=NOW)
    (hello,) = [out for c, out in core.ready().messages if c == conn]
    assert isinstance(hello, Connected)
    core.request(conn, 5, OpCode.CREATE, {"path": "/q-", "mode": 2}, now_ms=NOW)
    core.advance(core.ready(), now_ms=NOW)
    (reply,) = [out for c, out in core.ready().messages if c == conn]
    assert isinstance(reply, Reply)
    return hello.session_id, hello.password, reply


def test_a_leader_that_loaded_a_snapshot_answers_a_resent_write_without_applying_it() -> None:
    first = ServerCore(CoreConfig(tick_ms=100))
    session, password, original = _write_once(first, conn=1)
    loaded = load_snapshot(_snapshot_bytes(first.tree)).tree
    leader = ServerCore(CoreConfig(tick_ms=100, server_id=2, standalone=False), tree=loaded)
    leader.become_leader(epoch=2, now_ms=NOW)
    resume = ConnectRequest(
        protocol_version=PROTOCOL_VERSION, timeout_ms=4000, session_id=session, password=password
    )
    leader.connect(7, resume, now_ms=NOW, password=b"x" * 16)
    leader.request(7, 5, OpCode.CREATE, {"path": "/q-", "mode": 2}, now_ms=NOW)  # resent
    ready = leader.ready()
    assert ready.txns == []  # not applied again
    replies = [out for c, out in ready.messages if isinstance(out, Reply) and out.xid == 5]
    assert [r.result for r in replies] == [original.result]
    assert loaded.children_of("/") == ["q-0000000000"]
