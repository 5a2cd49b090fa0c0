"""SessionTracker: timeout negotiation and expiry by tick buckets."""

from __future__ import annotations

import pytest

from coord.server.core.sessions import SessionTracker

TICK = 100


@pytest.fixture
def st():
    return SessionTracker(TICK)


@pytest.mark.parametrize(
    ("requested", "negotiated"),
    [
        (0, 2 * TICK),
        (1, 2 * TICK),
        (2 * TICK - 1, 2 * TICK),
        (2 * TICK, 2 * TICK),
        (777, 777),
        (20 * TICK + 1, 20 * TICK + 1),
        (40_000, 40_000),
        (40_001, 40_000),
        (10**9, 40_000),
    ],
)
def test_negotiation_clamps_to_2_ticks_and_zookeepers_40_seconds(st, requested, negotiated):
    """The ceiling does not follow a short election tick: ZooKeeper's default 40 s holds."""
    assert st.negotiate(requested) == negotiated


def test_with_a_long_tick_the_ceiling_is_20_ticks_as_in_zookeeper():
    st = SessionTracker(5_000)
    assert (st.negotiate(1), st.negotiate(10**9)) == (10_000, 100_000)


def test_a_minimum_above_the_default_ceiling_raises_the_ceiling_with_it():
    st = SessionTracker(TICK, min_timeout_ms=60_000)
    assert st.negotiate(1) == st.negotiate(10**9) == 60_000


def test_bounds_out_of_order_are_refused():
    with pytest.raises(ValueError, match="above the max"):
        SessionTracker(TICK, min_timeout_ms=5_000, max_timeout_ms=1_000)


def test_explicit_bounds_replace_the_defaults():
    st = SessionTracker(TICK, min_timeout_ms=1_000, max_timeout_ms=5_000)
    assert st.negotiate(10) == 1_000
    assert st.negotiate(3_000) == 3_000
    assert st.negotiate(60_000) == 5_000


@pytest.mark.parametrize("tick", [0, -5])
def test_tick_must_be_positive(tick):
    with pytest.raises(ValueError):
        SessionTracker(tick)


def test_deadline_is_rounded_up_to_the_next_tick(st):
    assert st.add(1, 250, b"", now_ms=1_000).deadline_ms == 1_300
    assert st.add(2, 200, b"", now_ms=1_000).deadline_ms == 1_300  # a multiple goes one up
    assert st.add(3, 299, b"", now_ms=1_001).deadline_ms == 1_400
    assert st.next_deadline() == 1_300


def test_session_expires_when_its_bucket_passes(st):
    st.add(1, 250, b"pw", now_ms=1_000)  # bucket 1300
    assert st.expired(1_299) == []
    assert st.expired(1_300) == [1]
    assert st.get(1).closing is True


def test_expired_sessions_are_reported_once(st):
    st.add(1, 200, b"", now_ms=0)
    assert st.expired(10_000) == [1]
    assert st.expired(10_000) == []
    assert st.expired(20_000) == []
    assert st.next_deadline() is None


def test_sessions_in_one_bucket_expire_together_in_id_order(st):
    st.add(3, 200, b"", now_ms=0)
    st.add(1, 210, b"", now_ms=0)
    st.add(2, 250, b"", now_ms=0)
    st.add(9, 500, b"", now_ms=0)
    assert st.expired(300) == [1, 2, 3]
    assert st.expired(600) == [9]


def test_later_buckets_are_checked_in_deadline_order(st):
    st.add(5, 900, b"", now_ms=0)  # bucket 1000
    st.add(6, 300, b"", now_ms=0)  # bucket 400
    assert st.expired(5_000) == [6, 5]


def test_touch_extends_the_lease(st):
    st.add(1, 250, b"", now_ms=0)  # bucket 300
    assert st.touch(1, now_ms=200) is True  # 450 -> bucket 500
    assert st.get(1).deadline_ms == 500
    assert st.expired(300) == []
    assert st.expired(499) == []
    assert st.expired(500) == [1]


def test_touch_within_the_same_bucket_keeps_it(st):
    st.add(1, 250, b"", now_ms=0)  # bucket 300
    assert st.touch(1, now_ms=10) is True  # 260 -> bucket 300
    assert st.get(1).deadline_ms == 300
    assert st.expired(300) == [1]


def test_touch_unknown_or_closing_session_is_false(st):
    assert st.touch(42, now_ms=0) is False
    st.add(1, 200, b"", now_ms=0)
    st.expired(1_000)
    assert st.touch(1, now_ms=1_000) is False
    assert st.get(1).deadline_ms == 300  # not moved


def test_a_closing_session_is_not_reported(st):
    st.add(1, 200, b"", now_ms=0)
    st.get(1).closing = True  # a close txn is pending
    assert st.expired(10_000) == []


def test_detached_session_keeps_its_deadline(st):
    # Nothing touches it: the deadline stands.
    st.add(1, 1_000, b"", now_ms=0)
    assert st.expired(1_099) == []
    assert st.expired(1_100) == [1]


def test_remove_forgets_the_session_and_its_bucket(st):
    st.add(1, 200, b"", now_ms=0)
    st.add(2, 500, b"", now_ms=0)
    st.remove(1)
    assert st.get(1) is None
    assert st.next_deadline() == 600
    assert st.expired(10_000) == [2]
    st.remove(2)
    st.remove(2)  # twice is harmless
    assert st.sessions == {}
    assert st.next_deadline() is None


def test_remove_after_expiry(st):
    st.add(1, 200, b"", now_ms=0)
    assert st.expired(1_000) == [1]
    st.remove(1)
    assert st.sessions == {}


def test_add_keeps_the_password_and_timeout(st):
    session = st.add(7, 1_234, b"secret", now_ms=0)
    assert st.get(7) is session
    assert (session.session_id, session.timeout_ms, session.password) == (7, 1_234, b"secret")
    assert session.closing is False
