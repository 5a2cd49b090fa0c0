"""The recipes' pure parts: queue order, who blocks whom, markers, fencing, partitioning."""

from __future__ import annotations

import functools
import operator

import pytest

from coord.client.recipes import FencingVerifier, StaleTokenError, default_partition
from coord.client.recipes._contenders import (
    EXCLUSIVE,
    LOCK,
    READ,
    SHARED,
    blocker,
    holders,
    lock_delay_marker,
    parse_entry,
    parse_marker,
    queue_of,
)

U = "0" * 32


def name(kind: str, seq: int, who: str = U) -> str:
    return f"{who}{kind}{seq:010d}"


def test_parse_entry() -> None:
    assert parse_entry(name(LOCK, 7)).seq == 7  # type: ignore[union-attr]
    assert parse_entry(name(READ, 3)).kind == READ  # type: ignore[union-attr]
    assert parse_entry("ready") is None
    assert parse_entry("x" * 20) is None
    assert parse_entry(f"{U}__other__0000000001") is None


def test_queue_orders_by_sequence_not_by_uuid() -> None:
    names = [name(LOCK, 3, "f" * 32), name(READ, 1, "a" * 32), name(LOCK, 2, "0" * 32), "junk"]
    assert [e.seq for e in queue_of(names)] == [1, 2, 3]


@pytest.mark.parametrize(
    ("kinds", "me", "blocked_by", "expected"),
    [
        ("LLL", 0, EXCLUSIVE, None),
        ("LLL", 2, EXCLUSIVE, 1),  # only the predecessor: no herd
        ("RRR", 2, SHARED, None),  # readers share
        ("RRR", 2, EXCLUSIVE, 1),  # a writer waits for the nearest reader
        ("LRR", 2, SHARED, 0),  # a reader waits for the nearest writer only
        ("RLR", 2, SHARED, 1),
        ("RLRR", 3, SHARED, 1),
        ("RRL", 2, EXCLUSIVE, 1),
    ],
)
def test_blocker(kinds: str, me: int, blocked_by: frozenset[str], expected: int | None) -> None:
    queue = queue_of(name(LOCK if k == "L" else READ, i) for i, k in enumerate(kinds))
    got = blocker(queue, queue[me].name, blocked_by)
    assert (None if got is None else got.seq) == expected


def test_blocker_of_a_vanished_node() -> None:
    with pytest.raises(ValueError):
        blocker(queue_of([name(LOCK, 1)]), name(LOCK, 2), EXCLUSIVE)


def test_holders() -> None:
    table = {LOCK: EXCLUSIVE, READ: SHARED}
    queue = queue_of(name(LOCK if k == "L" else READ, i) for i, k in enumerate("RRLR"))
    assert [h.seq for h in holders(queue, table)] == [0, 1]
    queue = queue_of(name(LOCK if k == "L" else READ, i) for i, k in enumerate("LRR"))
    assert [h.seq for h in holders(queue, table)] == [0]


def test_markers() -> None:
    assert parse_marker(lock_delay_marker("held", "n1")) == ("held", "n1")
    assert parse_marker(b"") is None
    assert parse_marker(b"\xff") is None
    assert parse_marker(b"other x") is None


def test_fencing_verifier() -> None:
    verifier = FencingVerifier()
    verifier.check(5, "a")
    verifier.check(5, "a")  # the same holder writes again
    verifier.check(9, "a")
    assert not verifier.accepts(5, "a")
    with pytest.raises(StaleTokenError) as info:
        verifier.check(8, "a")
    assert info.value.highest == 9 and info.value.token == 8
    verifier.check(1, "b")  # resources are independent
    assert verifier.highest("a") == 9 and verifier.highest("c") is None
    with pytest.raises(TypeError):
        verifier.check(True, "a")


def test_default_partition_covers_every_item_once() -> None:
    items = [f"q{i}" for i in range(10)]
    members = ["c", "a", "b"]
    parts = [default_partition(m, members, items) for m in members]
    assert sorted(functools.reduce(operator.iadd, parts, [])) == sorted(items)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
