"""WatchManager: which watcher hears of which change (ZooKeeper's rules)."""

from __future__ import annotations

import pytest

from coord.messages import EventType, WatchedEvent, WatcherType
from coord.server.core.watches import WatchManager

CREATED, DELETED, CHANGED, CHILD = (
    EventType.CREATED,
    EventType.DELETED,
    EventType.CHANGED,
    EventType.CHILD,
)
ALL_KINDS = (CREATED, DELETED, CHANGED, CHILD)


def _fired(wm, kind, path, zxid=7):
    """The watchers that hear of the change; each delivery carries the event."""
    out = []
    for watcher, event in wm.trigger(kind, path, zxid):
        assert event == WatchedEvent(kind, path, zxid)
        out.append(watcher)
    return out


@pytest.fixture
def wm():
    return WatchManager()


# -- one-shot data / exist watches -------------------------------------------------------


@pytest.mark.parametrize("kind", [CREATED, CHANGED, DELETED])
def test_data_watch_fires_once_on_data_events(wm, kind):
    wm.add_data_watch("/a", "w")
    assert _fired(wm, kind, "/a") == ["w"]
    assert _fired(wm, kind, "/a") == []
    assert wm.count() == 0


def test_data_watch_ignores_child_events_and_other_paths(wm):
    wm.add_data_watch("/a", "w")
    assert _fired(wm, CHILD, "/a") == []
    assert _fired(wm, CHANGED, "/a/b") == []
    assert _fired(wm, CHANGED, "/") == []
    assert _fired(wm, CHANGED, "/ab") == []
    assert wm.count() == 1
    assert _fired(wm, CHANGED, "/a") == ["w"]


# -- one-shot child watches ----------------------------------------------------------------


@pytest.mark.parametrize("kind", [CHILD, DELETED])
def test_child_watch_fires_once_on_child_and_deleted(wm, kind):
    wm.add_child_watch("/a", "w")
    assert _fired(wm, kind, "/a") == ["w"]
    assert _fired(wm, kind, "/a") == []
    assert wm.count() == 0


@pytest.mark.parametrize("kind", [CREATED, CHANGED])
def test_child_watch_ignores_data_events(wm, kind):
    wm.add_child_watch("/a", "w")
    assert _fired(wm, kind, "/a") == []
    assert _fired(wm, CHILD, "/a/b") == []
    assert wm.count() == 1


def test_delete_fires_data_and_child_watch_of_one_watcher_once(wm):
    wm.add_data_watch("/a", "w")
    wm.add_child_watch("/a", "w")
    assert _fired(wm, DELETED, "/a") == ["w"]
    assert wm.count() == 0


def test_child_event_leaves_the_data_watch_of_the_same_watcher(wm):
    wm.add_data_watch("/a", "w")
    wm.add_child_watch("/a", "w")
    assert _fired(wm, CHILD, "/a") == ["w"]
    assert wm.data.has("/a", "w")
    assert not wm.child.has("/a", "w")


# -- persistent watches --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_persistent_watch_hears_every_kind_and_stays(wm, kind):
    wm.add_persistent("/a", "w", recursive=False)
    assert _fired(wm, kind, "/a") == ["w"]
    assert _fired(wm, kind, "/a") == ["w"]
    assert wm.count() == 1


def test_persistent_watch_is_not_recursive(wm):
    wm.add_persistent("/a", "w", recursive=False)
    assert _fired(wm, CREATED, "/a/b") == []
    assert _fired(wm, CHANGED, "/a/b") == []


# -- persistent recursive watches --------------------------------------------------------------


@pytest.mark.parametrize("kind", [CREATED, CHANGED, DELETED])
@pytest.mark.parametrize("path", ["/a", "/a/b", "/a/b/c/d"])
def test_recursive_watch_hears_data_events_in_its_subtree_and_stays(wm, kind, path):
    wm.add_persistent("/a", "w", recursive=True)
    assert _fired(wm, kind, path) == ["w"]
    assert _fired(wm, kind, path) == ["w"]
    assert wm.count() == 1


@pytest.mark.parametrize("path", ["/a", "/a/b"])
def test_recursive_watch_does_not_hear_child_events(wm, path):
    wm.add_persistent("/a", "w", recursive=True)
    assert _fired(wm, CHILD, path) == []


@pytest.mark.parametrize("path", ["/", "/ab", "/b", "/b/a"])
def test_recursive_watch_ignores_paths_outside_its_subtree(wm, path):
    wm.add_persistent("/a", "w", recursive=True)
    assert _fired(wm, CHANGED, path) == []


def test_recursive_watch_on_root_hears_everything(wm):
    wm.add_persistent("/", "w", recursive=True)
    for path in ("/", "/x", "/x/y/z"):
        assert _fired(wm, CREATED, path) == ["w"]


# -- several registrations, several watchers ---------------------------------------------------


def test_each_watcher_hears_an_event_once_across_kinds(wm):
    wm.add_data_watch("/a/b", "w")
    wm.add_child_watch("/a/b", "w")
    wm.add_persistent("/a/b", "w", recursive=False)
    wm.add_persistent("/a/b", "w", recursive=True)
    wm.add_persistent("/a", "w", recursive=True)
    wm.add_persistent("/", "w", recursive=True)
    assert _fired(wm, DELETED, "/a/b") == ["w"]


def test_adding_the_same_watch_twice_is_one_watch(wm):
    wm.add_data_watch("/a", "w")
    wm.add_data_watch("/a", "w")
    assert wm.count() == 1
    assert _fired(wm, CHANGED, "/a") == ["w"]


def test_many_watchers_each_hear_once_in_a_deterministic_order(wm):
    wm.add_data_watch("/a", 1)
    wm.add_data_watch("/a", 2)
    wm.add_persistent("/a", 3, recursive=False)
    wm.add_persistent("/", 4, recursive=True)
    wm.add_persistent("/a", 2, recursive=True)
    assert _fired(wm, CHANGED, "/a") == [1, 2, 3, 4]
    # One-shot ones are gone; the persistent ones stay.
    assert _fired(wm, CHANGED, "/a") == [3, 4, 2]


def test_no_watches_no_deliveries(wm):
    for kind in ALL_KINDS:
        assert wm.trigger(kind, "/a", 1) == []


# -- removal ---------------------------------------------------------------------------------


def _all_kinds_on(wm, path, watcher):
    wm.add_data_watch(path, watcher)
    wm.add_child_watch(path, watcher)
    wm.add_persistent(path, watcher, recursive=False)
    wm.add_persistent(path, watcher, recursive=True)


@pytest.mark.parametrize(
    ("watcher_type", "table"),
    [
        (WatcherType.DATA, "data"),
        (WatcherType.CHILDREN, "child"),
        (WatcherType.PERSISTENT, "persistent"),
        (WatcherType.PERSISTENT_RECURSIVE, "recursive"),
    ],
)
def test_remove_by_type_removes_only_that_type(wm, watcher_type, table):
    _all_kinds_on(wm, "/a", "w")
    _all_kinds_on(wm, "/a", "other")
    assert wm.remove("/a", "w", watcher_type) is True
    for name in ("data", "child", "persistent", "recursive"):
        assert getattr(wm, name).has("/a", "w") is (name != table)
        assert getattr(wm, name).has("/a", "other")
    assert wm.count() == 7
    assert wm.remove("/a", "w", watcher_type) is False


def test_remove_any_removes_every_type(wm):
    _all_kinds_on(wm, "/a", "w")
    wm.add_data_watch("/b", "w")
    assert wm.remove("/a", "w", WatcherType.ANY) is True
    assert wm.count() == 1
    assert wm.remove("/a", "w", WatcherType.ANY) is False
    assert _fired(wm, CHANGED, "/b") == ["w"]


def test_remove_with_nothing_to_remove_is_false(wm):
    wm.add_data_watch("/a", "other")
    wm.add_child_watch("/a", "w")
    assert wm.remove("/a", "w", WatcherType.DATA) is False
    assert wm.remove("/b", "w", WatcherType.CHILDREN) is False
    assert wm.remove("/a", "nobody", WatcherType.ANY) is False
    assert wm.count() == 2


def test_removed_watch_no_longer_fires(wm):
    wm.add_data_watch("/a", "w")
    wm.add_data_watch("/a", "v")
    wm.remove("/a", "w", WatcherType.DATA)
    assert _fired(wm, CHANGED, "/a") == ["v"]


def test_remove_watcher_cleans_everything(wm):
    for path in ("/a", "/b", "/a/c"):
        _all_kinds_on(wm, path, "gone")
    _all_kinds_on(wm, "/a", "stays")
    wm.remove_watcher("gone")
    assert wm.count() == 4
    for table in (wm.data, wm.child, wm.persistent, wm.recursive):
        assert "gone" not in table.by_watcher
        assert all("gone" not in watchers for watchers in table.by_path.values())
        assert set(table.by_path) == {"/a"}
    for kind in ALL_KINDS:
        assert "gone" not in _fired(wm, kind, "/a/c")
    wm.remove_watcher("gone")  # twice is harmless


def test_fired_one_shot_watches_leave_no_index_behind(wm):
    wm.add_data_watch("/a", "w")
    wm.add_child_watch("/a", "w")
    _fired(wm, DELETED, "/a")
    for table in (wm.data, wm.child):
        assert table.by_path == {}
        assert table.by_watcher == {}
