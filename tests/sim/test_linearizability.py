"""The linearizability checker on small hand-made histories, with known answers."""

from __future__ import annotations

import random

import pytest

from tests.linearizability import READ, WRITE, Operation, check


def w(
    op_id: int, value: object, invoke: float, complete: float | None, key: str = "x"
) -> Operation:
    return Operation(op_id, key, WRITE, value, invoke, complete)


def r(
    op_id: int, value: object, invoke: float, complete: float | None, key: str = "x"
) -> Operation:
    return Operation(op_id, key, READ, value, invoke, complete)


LINEARIZABLE = {
    "empty": [],
    "read of the initial value": [r(1, None, 0, 1)],
    "sequential write then read": [w(1, "a", 0, 1), r(2, "a", 2, 3)],
    "two sequential writes, read the last": [w(1, "a", 0, 1), w(2, "b", 2, 3), r(3, "b", 4, 5)],
    "read concurrent with a write sees the old value": [
        w(1, "a", 0, 1),
        w(2, "b", 2, 6),
        r(3, "a", 3, 4),
    ],
    "read concurrent with a write sees the new value": [
        w(1, "a", 0, 1),
        w(2, "b", 2, 6),
        r(3, "b", 3, 4),
    ],
    "concurrent writes in either order": [
        w(1, "a", 0, 5),
        w(2, "b", 1, 6),
        r(3, "a", 7, 8),
    ],
    "reads order concurrent writes consistently": [
        w(1, "a", 0, 10),
        w(2, "b", 0, 10),
        r(3, "b", 1, 2),
        r(4, "a", 3, 4),
    ],
    "an incomplete write that took effect": [w(1, "a", 0, None), r(2, "a", 5, 6)],
    "an incomplete write that never took effect": [w(1, "a", 0, None), r(2, None, 5, 6)],
    "an incomplete write observed late, not early": [
        w(1, "a", 0, 1),
        w(2, "b", 2, None),
        r(3, "a", 3, 4),
        r(4, "b", 5, 6),
    ],
    "an incomplete read is ignored": [w(1, "a", 0, 1), r(2, "zzz", 2, None)],
    "touching intervals overlap": [w(1, "a", 0, 5), r(2, "a", 5, 6), r(3, None, 2, 5)],
    "keys are independent": [
        w(1, "a", 0, 1, key="x"),
        w(2, "b", 2, 3, key="y"),
        r(3, "a", 4, 5, key="x"),
        r(4, None, 0, 1, key="y"),
    ],
}

NOT_LINEARIZABLE = {
    "read of a value never written": [r(1, "a", 0, 1)],
    "stale read after a completed write": [w(1, "a", 0, 1), r(2, None, 2, 3)],
    "stale read of an overwritten value": [
        w(1, "a", 0, 1),
        w(2, "b", 2, 3),
        r(3, "a", 4, 5),
    ],
    "read from the future": [r(1, "a", 0, 1), w(2, "a", 2, 3)],
    "new value then old value in sequence": [
        w(1, "a", 0, 1),
        w(2, "b", 2, 10),
        r(3, "b", 3, 4),
        r(4, "a", 5, 6),
    ],
    "reads disagree on the order of two writes": [
        w(1, "a", 0, 10),
        w(2, "b", 0, 10),
        r(3, "a", 11, 12),
        r(4, "b", 13, 14),
        r(5, "a", 15, 16),
    ],
    "an incomplete write seen, then unseen": [
        w(1, "a", 0, None),
        r(2, "a", 1, 2),
        r(3, None, 3, 4),
    ],
    "an incomplete write seen before it was invoked": [r(1, "a", 0, 1), w(2, "a", 2, None)],
    "one bad key among good ones": [
        w(1, "a", 0, 1, key="good"),
        r(2, "a", 2, 3, key="good"),
        w(3, "a", 0, 1, key="bad"),
        r(4, None, 2, 3, key="bad"),
    ],
}


METHODS = ["zones", "search"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(LINEARIZABLE))
def test_linearizable_histories_pass(name: str, method: str) -> None:
    verdict = check(LINEARIZABLE[name], method=method)
    assert verdict.ok, verdict.explain()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(NOT_LINEARIZABLE))
def test_non_linearizable_histories_fail(name: str, method: str) -> None:
    verdict = check(NOT_LINEARIZABLE[name], method=method)
    assert not verdict.ok
    assert "not linearizable" in verdict.explain()


def test_the_failing_key_is_named() -> None:
    verdict = check(NOT_LINEARIZABLE["one bad key among good ones"])
    assert verdict.key == "bad"
    assert [op.op_id for op in verdict.operations] == [3, 4]


@pytest.mark.parametrize("method", METHODS)
def test_initial_value_is_honoured(method: str) -> None:
    assert check([r(1, 0, 0, 1)], initial=0, method=method).ok
    assert not check([r(1, None, 0, 1)], initial=0, method=method).ok


def test_repeated_values_use_the_search() -> None:
    """Zones need unique writes; with repeats the search decides (a, b, a is fine)."""
    ops = [w(1, "a", 0, 1), w(2, "b", 2, 3), w(3, "a", 4, 5), r(4, "a", 6, 7)]
    assert check(ops).ok
    ops = [w(1, "a", 0, 1), w(2, "b", 2, 3), r(3, "a", 4, 5)]
    assert not check(ops).ok
    # A write of the initial value is a repeat too.
    assert check([w(1, None, 0, 1), w(2, "b", 2, 3), r(3, "b", 4, 5)]).ok


def test_the_search_gives_up_past_its_budget() -> None:
    ops = [w(i, f"v{i}", 0, 100) for i in range(12)] + [r(99, "v0", 101, 102)]
    verdict = check(ops, method="search", max_states=20)
    assert not verdict.ok
    assert "undecided" in verdict.reason
    assert check(ops, method="search").ok


def test_an_operation_may_not_complete_before_it_starts() -> None:
    with pytest.raises(ValueError):
        w(1, "a", 5, 4)
    with pytest.raises(ValueError):
        Operation(1, "x", "cas", "a", 0, 1)


def _sequential_history(seed: int, count: int) -> list[Operation]:
    """A register run with random overlaps, built from a known linearization."""
    rng = random.Random(seed)
    value: object = None
    ops: list[Operation] = []
    for i in range(count):
        point = i * 10 + 5  # the linearization point
        invoke = point - rng.randint(0, 12)
        complete: float | None = point + rng.randint(0, 12)
        if rng.random() < 0.5:
            value = f"v{i}"
            if rng.random() < 0.2:
                complete = None
            ops.append(w(i, value, invoke, complete))
        else:
            ops.append(r(i, value, invoke, complete))
    return ops


@pytest.mark.parametrize("seed", range(30))
def test_histories_built_from_a_linearization_pass(seed: int) -> None:
    for method in METHODS:
        verdict = check(_sequential_history(seed, 60), method=method)
        assert verdict.ok, verdict.explain()


@pytest.mark.parametrize("seed", range(30))
def test_a_read_moved_far_into_the_past_fails(seed: int) -> None:
    """Give one late read an interval entirely before the write whose value it returns."""
    ops = _sequential_history(seed, 60)
    reads = [
        (i, op)
        for i, op in enumerate(ops)
        if op.kind == READ and op.value is not None and op.invoke > 100
    ]
    if not reads:
        pytest.skip("no late read of a written value")
    i, read = reads[-1]
    writer = next(op for op in ops if op.kind == WRITE and op.value == read.value)
    ops[i] = r(read.op_id, read.value, writer.invoke - 30, writer.invoke - 20)
    for method in METHODS:
        assert not check(ops, method=method).ok


def _random_history(seed: int) -> list[Operation]:
    """Small arbitrary histories (most are not linearizable): unique writes, random reads."""
    rng = random.Random(seed)
    ops: list[Operation] = []
    values: list[object] = [None]
    for i in range(rng.randint(1, 9)):
        invoke = rng.randint(0, 30)
        complete: int | None = invoke + rng.randint(0, 10)
        if rng.random() < 0.5:
            if rng.random() < 0.2:
                complete = None
            values.append(f"v{i}")
            ops.append(w(i, f"v{i}", invoke, complete))
        else:
            ops.append(r(i, rng.choice(values), invoke, complete))
    return ops


@pytest.mark.parametrize("seed", range(40))
def test_zones_and_search_agree(seed: int) -> None:
    """The polynomial check and the exhaustive search must give the same verdicts."""
    verdicts = []
    for sub in range(50):
        ops = _random_history(seed * 1000 + sub)
        zones, search = check(ops, method="zones"), check(ops, method="search")
        assert zones.ok == search.ok, (ops, zones.reason, search.reason)
        verdicts.append(zones.ok)
    assert len(set(verdicts)) == 2 or seed % 7 == 0  # both kinds show up


def test_an_explanation_points_at_the_culprits() -> None:
    ops = [w(i, f"v{i}", i * 10, i * 10 + 1) for i in range(40)]
    ops.append(r(100, "v3", 500, 501))  # long overwritten
    verdict = check(ops)
    text = verdict.explain(context=2)
    assert "<--" in text and "#100" in text
    assert "... " in text
    assert len(text.splitlines()) < 20


def test_many_concurrent_incomplete_writes_stay_cheap() -> None:
    """Unobserved incomplete writes are dropped before the search, so this is quick."""
    ops = [w(i, f"v{i}", i, None) for i in range(200)]
    ops.append(w(1000, "last", 300, 301))
    ops.append(r(1001, "last", 302, 303))
    verdict = check(ops, method="search")
    assert verdict.ok
    assert verdict.explored < 50
