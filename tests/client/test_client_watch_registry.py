"""The pure watch registry: who gets which event, and what a reconnect re-registers."""

from __future__ import annotations

from typing import Any

import pytest

from coord.client.watches import WatchKind, WatchRegistry, split_set_watches
from coord.messages import EventType, WatchedEvent, WatcherType


class Recorder:
    """A named, hashable callable."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, event: WatchedEvent) -> None:  # pragma: no cover - never called here
        pass

    def __repr__(self) -> str:
        return self.name


def ev(type_: EventType, path: str, zxid: int = 1) -> WatchedEvent:
    return WatchedEvent(type_, path, zxid)


@pytest.fixture
def registry() -> WatchRegistry:
    return WatchRegistry()


# (kinds registered on /a) x event type on /a -> fires?
FIRES = {
    WatchKind.DATA: {EventType.CREATED, EventType.CHANGED, EventType.DELETED},
    WatchKind.EXIST: {EventType.CREATED, EventType.CHANGED, EventType.DELETED},
    WatchKind.CHILD: {EventType.CHILD, EventType.DELETED},
    WatchKind.PERSISTENT: {
        EventType.CREATED,
        EventType.CHANGED,
        EventType.DELETED,
        EventType.CHILD,
    },
    WatchKind.PERSISTENT_RECURSIVE: {EventType.CREATED, EventType.CHANGED, EventType.DELETED},
}


@pytest.mark.parametrize("kind", list(WatchKind))
@pytest.mark.parametrize(
    "type_", [EventType.CREATED, EventType.CHANGED, EventType.DELETED, EventType.CHILD]
)
def test_which_kinds_fire(registry: WatchRegistry, kind: WatchKind, type_: EventType) -> None:
    cb = Recorder("cb")
    registry.add(kind, "/a", cb)
    expected = [cb] if type_ in FIRES[kind] else []
    assert registry.fire(ev(type_, "/a")) == expected
    # One-shot kinds are used up by firing; persistent ones stay.
    stays = kind.is_persistent or not expected
    assert registry.has(kind, "/a") == stays


def test_other_paths_do_not_fire(registry: WatchRegistry) -> None:
    for kind in (WatchKind.DATA, WatchKind.CHILD, WatchKind.PERSISTENT):
        registry.add(kind, "/a", Recorder(kind.value))
    assert registry.fire(ev(EventType.CHANGED, "/a/b")) == []
    assert registry.fire(ev(EventType.CHILD, "/ab")) == []
    assert len(registry) == 3


def test_recursive_watch_covers_the_subtree_but_not_child_events(registry: WatchRegistry) -> None:
    root, sub, other = Recorder("root"), Recorder("sub"), Recorder("other")
    registry.add(WatchKind.PERSISTENT_RECURSIVE, "/", root)
    registry.add(WatchKind.PERSISTENT_RECURSIVE, "/a", sub)
    registry.add(WatchKind.PERSISTENT_RECURSIVE, "/b", other)
    assert registry.fire(ev(EventType.CREATED, "/a/x/y")) == [root, sub]
    assert registry.fire(ev(EventType.DELETED, "/a")) == [root, sub]
    assert registry.fire(ev(EventType.CHANGED, "/ab")) == [root]
    assert registry.fire(ev(EventType.CHILD, "/a")) == []


def test_callable_fires_once_per_event_and_once_per_registration(registry: WatchRegistry) -> None:
    cb, other = Recorder("cb"), Recorder("other")
    registry.add(WatchKind.DATA, "/a", cb)
    registry.add(WatchKind.DATA, "/a", cb)
    registry.add(WatchKind.CHILD, "/a", cb)
    registry.add(WatchKind.PERSISTENT, "/a", cb)
    registry.add(WatchKind.CHILD, "/a", other)
    assert len(registry) == 4
    assert registry.fire(ev(EventType.DELETED, "/a")) == [cb, other]
    assert registry.fire(ev(EventType.DELETED, "/a")) == [cb]  # only the persistent one is left


def test_removal_events_are_never_dispatched(registry: WatchRegistry) -> None:
    registry.add(WatchKind.PERSISTENT, "/a", Recorder("p"))
    assert registry.fire(ev(EventType.DATA_WATCH_REMOVED, "/a")) == []


def test_unhashable_callable_is_refused(registry: WatchRegistry) -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self, event: Any) -> None:  # pragma: no cover
            pass

    with pytest.raises(TypeError, match="hashable"):
        registry.add(WatchKind.DATA, "/a", Unhashable())


def test_remove_by_type(registry: WatchRegistry) -> None:
    d, e, c, p, r = (Recorder(n) for n in "decpr")
    registry.add(WatchKind.DATA, "/a", d)
    registry.add(WatchKind.EXIST, "/a", e)
    registry.add(WatchKind.CHILD, "/a", c)
    registry.add(WatchKind.PERSISTENT, "/a", p)
    registry.add(WatchKind.PERSISTENT_RECURSIVE, "/a", r)
    assert registry.remove("/a", WatcherType.DATA) == [(WatchKind.DATA, d), (WatchKind.EXIST, e)]
    assert registry.remove("/a", WatcherType.DATA) == []
    assert registry.remove("/a", WatcherType.CHILDREN) == [(WatchKind.CHILD, c)]
    assert registry.any_of("/a", WatcherType.ANY)
    assert registry.remove("/a", WatcherType.ANY) == [
        (WatchKind.PERSISTENT, p),
        (WatchKind.PERSISTENT_RECURSIVE, r),
    ]
    assert not registry.any_of("/a", WatcherType.ANY)
    assert len(registry) == 0


def test_remove_one_callable_keeps_the_others(registry: WatchRegistry) -> None:
    a, b = Recorder("a"), Recorder("b")
    registry.add(WatchKind.PERSISTENT, "/a", a)
    registry.add(WatchKind.PERSISTENT, "/a", b)
    assert registry.remove("/a", WatcherType.PERSISTENT, a) == [(WatchKind.PERSISTENT, a)]
    assert registry.any_of("/a", WatcherType.PERSISTENT)
    assert registry.remove("/a", WatcherType.PERSISTENT, a) == []
    assert registry.remove("/a", WatcherType.PERSISTENT, b) == [(WatchKind.PERSISTENT, b)]
    assert not registry.any_of("/a", WatcherType.PERSISTENT)
    assert registry.set_watches() == {}


def test_set_watches_lists_every_watched_path_once(registry: WatchRegistry) -> None:
    a, b = Recorder("a"), Recorder("b")
    registry.add(WatchKind.DATA, "/d", a)
    registry.add(WatchKind.DATA, "/d", b)
    registry.add(WatchKind.EXIST, "/e", a)
    registry.add(WatchKind.CHILD, "/c1", a)
    registry.add(WatchKind.CHILD, "/c2", b)
    registry.add(WatchKind.PERSISTENT_RECURSIVE, "/r", a)
    assert registry.set_watches() == {
        "data": ["/d"],
        "exist": ["/e"],
        "child": ["/c1", "/c2"],
        "persistent_recursive": ["/r"],
    }


def test_clear_returns_each_callable_once(registry: WatchRegistry) -> None:
    a, b = Recorder("a"), Recorder("b")
    registry.add(WatchKind.DATA, "/d", a)
    registry.add(WatchKind.CHILD, "/d", a)
    registry.add(WatchKind.PERSISTENT, "/x", b)
    assert registry.clear() == [a, b]
    assert len(registry) == 0


def test_split_set_watches_respects_the_budget() -> None:
    lists = {"data": [f"/d{i:03d}" for i in range(10)], "child": ["/c"]}
    bodies = split_set_watches(lists, 77, budget=40)  # each path costs 5 + 8 bytes
    assert all(body["relative_zxid"] == 77 for body in bodies)
    assert [len(b.get("data", [])) + len(b.get("child", [])) for b in bodies] == [3, 3, 3, 2]
    merged: dict[str, list[str]] = {}
    for body in bodies:
        for field in ("data", "child"):
            merged.setdefault(field, []).extend(body.get(field, []))
    assert merged == lists
    assert split_set_watches({}, 1, budget=40) == []
