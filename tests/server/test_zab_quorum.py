"""Quorum: majority arithmetic as tables (after etcd raft's quorum/testdata)."""

from __future__ import annotations

import pytest

from coord.server.zab.quorum import Quorum

# voters -> the size of a quorum
SIZES = [
    ({1}, 1),
    ({1, 2}, 2),
    ({1, 2, 3}, 2),
    ({1, 2, 3, 4}, 3),
    ({1, 2, 3, 4, 5}, 3),
    ({1, 2, 3, 4, 5, 6}, 4),
    ({1, 2, 3, 4, 5, 6, 7}, 4),
]


@pytest.mark.parametrize(("voters", "size"), SIZES)
def test_quorum_size_is_a_strict_majority(voters: set[int], size: int) -> None:
    assert Quorum(voters).size == size


def test_an_ensemble_needs_a_voter() -> None:
    with pytest.raises(ValueError):
        Quorum([])


# voters, members -> is it a quorum?
IS_QUORUM = [
    ({1, 2, 3}, set(), False),
    ({1, 2, 3}, {1}, False),
    ({1, 2, 3}, {1, 2}, True),
    ({1, 2, 3}, {2, 3}, True),
    ({1, 2, 3}, {1, 2, 3}, True),
    ({1, 2, 3}, {1, 4}, False),  # 4 is an observer or a stranger: it never counts
    ({1, 2, 3}, {4, 5, 6}, False),
    ({1, 2, 3}, {1, 4, 5, 6, 7}, False),
    ({1, 2, 3, 4}, {1, 2}, False),  # even sizes: half is not enough
    ({1, 2, 3, 4}, {1, 2, 3}, True),
    ({1, 2, 3, 4, 5}, {1, 2}, False),
    ({1, 2, 3, 4, 5}, {3, 4, 5}, True),
    ({1, 2, 3, 4, 5}, {1, 5, 9}, False),
    ({1}, {1}, True),
    ({1}, {2}, False),
]


@pytest.mark.parametrize(("voters", "members", "expected"), IS_QUORUM)
def test_is_quorum(voters: set[int], members: set[int], expected: bool) -> None:
    assert Quorum(voters).is_quorum(members) is expected


def test_is_quorum_takes_any_iterable_and_ignores_repeats() -> None:
    quorum = Quorum([1, 2, 3])
    assert not quorum.is_quorum([1, 1, 1])
    assert quorum.is_quorum(iter([3, 1]))


# voters, acked (peer -> highest zxid it acked) -> the highest zxid a quorum acked
COMMITTED = [
    ({1, 2, 3}, {}, 0),
    ({1, 2, 3}, {1: 5}, 0),  # one of three
    ({1, 2, 3}, {1: 5, 2: 3}, 3),
    ({1, 2, 3}, {1: 3, 2: 5}, 3),
    ({1, 2, 3}, {1: 5, 2: 5, 3: 1}, 5),
    ({1, 2, 3}, {1: 7, 2: 6, 3: 5}, 6),
    ({1, 2, 3}, {1: 7, 4: 9, 5: 9}, 0),  # acks from non-voters never count
    ({1, 2, 3}, {1: 7, 2: 1, 4: 9}, 1),
    ({1, 2, 3, 4, 5}, {1: 9, 2: 9}, 0),
    ({1, 2, 3, 4, 5}, {1: 9, 2: 9, 3: 2}, 2),
    ({1, 2, 3, 4, 5}, {1: 9, 2: 8, 3: 7, 4: 6, 5: 5}, 7),
    ({1, 2, 3, 4, 5}, {1: 1, 2: 2, 3: 3, 4: 4, 5: 5}, 3),
    ({1, 2, 3, 4}, {1: 4, 2: 3, 3: 2, 4: 1}, 2),
    ({1}, {1: 42}, 42),
    ({1}, {}, 0),
]


@pytest.mark.parametrize(("voters", "acked", "expected"), COMMITTED)
def test_committed(voters: set[int], acked: dict[int, int], expected: int) -> None:
    assert Quorum(voters).committed(acked) == expected


@pytest.mark.parametrize(("voters", "acked", "expected"), COMMITTED)
def test_committed_does_not_depend_on_the_order_of_acks(
    voters: set[int], acked: dict[int, int], expected: int
) -> None:
    reordered = dict(reversed(list(acked.items())))
    assert Quorum(voters).committed(reordered) == expected
