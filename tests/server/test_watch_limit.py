"""The optional cap on watches per session (max_watches_per_session), at the core."""

from __future__ import annotations

from coord.errors import TooManyWatchesError
from coord.messages import OpCode
from tests.server.coredriver import Driver, error_of, ok


def _driver(cap: int) -> Driver:
    d = Driver(max_watches_per_session=cap)
    d.connect(1)
    d.connect(2)
    for name in "abcd":
        ok(d.create(1, f"/{name}"))
    return d


def test_over_the_cap_the_watch_setting_request_fails_clearly() -> None:
    d = _driver(3)
    ok(d.get(1, "/a", watch=True))
    ok(d.call(1, OpCode.GET_CHILDREN, {"path": "/b", "watch": True}))
    ok(d.exists(1, "/missing", watch=True))
    error = error_of(d.get(1, "/c", watch=True))
    assert isinstance(error, TooManyWatchesError)
    assert error.code == -207 and error.path == "/c" and error.expected == 3
    assert "max_watches_per_session" in error.message
    error = error_of(d.call(1, OpCode.ADD_WATCH, {"path": "/d", "mode": 0}))
    assert isinstance(error, TooManyWatchesError)
    assert d.core.watches.count_of(1) == 3
    # A watch it already holds is set again for free; a read without a watch still works.
    ok(d.get(1, "/a", watch=True))
    ok(d.get(1, "/c"))
    # Another session has its own allowance.
    ok(d.get(2, "/c", watch=True))


def test_a_fired_watch_frees_its_place() -> None:
    d = _driver(1)
    ok(d.get(1, "/a", watch=True))
    assert isinstance(error_of(d.get(1, "/b", watch=True)), TooManyWatchesError)
    ok(d.call(2, OpCode.SET_DATA, {"path": "/a", "data": b"new"}))
    assert d.events(1)
    ok(d.get(1, "/b", watch=True))


def test_no_cap_by_default() -> None:
    d = Driver()
    d.connect(1)
    ok(d.create(1, "/p"))
    for i in range(200):
        ok(d.exists(1, f"/p/{i}", watch=True))
    assert d.core.watches.count_of(1) == 200


def test_set_watches_over_the_cap_sets_none_of_them() -> None:
    d = _driver(3)
    ok(d.get(1, "/a", watch=True))
    body = {
        "relative_zxid": d.core.tree.last_zxid,
        "data": ["/a", "/b"],
        "exist": ["/missing"],
        "child": ["/c"],
    }
    error = error_of(d.call(1, OpCode.SET_WATCHES, body))  # /a is held: 3 new, 4 in all
    assert isinstance(error, TooManyWatchesError) and error.actual == 4
    assert d.core.watches.count_of(1) == 1  # nothing of it was set
    body["child"] = []
    ok(d.call(1, OpCode.SET_WATCHES, body))  # 2 new: fits
    assert d.core.watches.count_of(1) == 3
