"""Znode path rules (ZooKeeper's PathUtils.validatePath plus our length and depth limits)."""

from __future__ import annotations

import pytest

from coord import paths
from coord.errors import BadArgumentsError, InvalidPathError


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/a",
        "/a/b/c",
        "/with space/and-dash_underscore.dot",
        "/a.b/..c/c..",  # dots inside a segment are fine, only '.' and '..' segments are not
        "/unicode/\u00e9\u4e2d",
        "/\u00a0",  # first character after the forbidden U+007F-U+009F range
        "/\ud7ff",  # last character before the forbidden U+D800-U+F8FF range
        "/\uf900",  # first character after it
        "/\uffef",  # last character before the forbidden U+FFF0-U+FFFF range
        "/\U0001f600",  # astral characters are fine
        "/" + "a" * (paths.MAX_PATH_LENGTH - 1),
        "/a" * paths.MAX_PATH_DEPTH,
    ],
)
def test_valid_paths_are_returned_unchanged(path):
    assert paths.validate(path) == path


def _invalid(path, **kwargs):
    with pytest.raises(InvalidPathError) as info:
        paths.validate(path, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("a", "must start with '/'"),
        ("a/b", "must start with '/'"),
        ("/a/", "must not end with '/'"),
        ("/a//b", "empty segment"),
        ("//a", "empty segment"),
        ("//", "must not end with '/'"),
        ("/.", "relative segment '.'"),
        ("/a/./b", "relative segment '.'"),
        ("/..", "relative segment '..'"),
        ("/a/../b", "relative segment '..'"),
        ("/a\x00b", "U+0000"),
    ],
)
def test_invalid_paths_name_the_path_and_the_rule(path, fragment):
    err = _invalid(path)
    assert fragment in err.message
    assert repr(path) in err.message
    assert err.path == path


def test_invalid_path_error_is_a_bad_arguments_error_with_its_own_code():
    err = _invalid("relative")
    assert isinstance(err, BadArgumentsError)
    assert err.code == InvalidPathError.code == -201


def test_empty_path_is_invalid():
    err = _invalid("")
    assert "empty" in err.message
    assert err.path == ""


@pytest.mark.parametrize("value", [None, 1, b"/a", ["/a"]])
def test_non_string_path_is_invalid(value):
    err = _invalid(value)
    assert type(value).__name__ in err.message


_BAD_RANGES = [
    (0x01, 0x1F),
    (0x7F, 0x9F),
    (0xD800, 0xF8FF),
    (0xFFF0, 0xFFFF),
]


def _bad_code_points():
    for low, high in _BAD_RANGES:
        # Both ends and a point inside each range; all of the small ranges.
        if high - low < 64:
            yield from range(low, high + 1)
        else:
            yield from (low, low + 1, (low + high) // 2, high - 1, high)


@pytest.mark.parametrize("code", list(_bad_code_points()), ids=lambda c: f"U+{c:04X}")
def test_forbidden_characters_are_rejected_with_their_code_point(code):
    path = f"/ok/x{chr(code)}y"
    err = _invalid(path)
    assert f"U+{code:04X}" in err.message
    assert "at index 5" in err.message
    assert err.path == path


@pytest.mark.parametrize("code", [0x20, 0x7E, 0xA0, 0xD7FF, 0xF900, 0xFFEF, 0x10000])
def test_characters_next_to_the_forbidden_ranges_are_allowed(code):
    path = f"/x{chr(code)}y"
    assert paths.validate(path) == path


def test_too_long_path_is_rejected_and_names_a_prefix_of_it():
    path = "/" + "a" * paths.MAX_PATH_LENGTH
    err = _invalid(path)
    assert str(paths.MAX_PATH_LENGTH + 1) in err.message
    assert str(paths.MAX_PATH_LENGTH) in err.message
    # The whole path would be a 4 KiB error message; a prefix identifies it.
    assert err.path is not None and err.path.startswith(path[:64])
    assert len(err.path) < 100


def test_too_deep_path_is_rejected():
    path = "/a" * (paths.MAX_PATH_DEPTH + 1)
    err = _invalid(path)
    assert f"{paths.MAX_PATH_DEPTH + 1} levels deep" in err.message
    assert repr(path) in err.message
    assert err.path == path


# -- sequential prefixes ---------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/queue/", "/queue/item-", "/", "/a/b/"])
def test_sequential_prefix_may_end_in_slash(prefix):
    assert paths.validate(prefix, sequential=True) == prefix


@pytest.mark.parametrize(
    ("prefix", "fragment"),
    [
        ("/a//", "empty segment"),
        ("/./", "relative segment"),
        ("/../", "relative segment"),
        ("q/", "must start with '/'"),
        ("/q\x01/", "U+0001"),
    ],
)
def test_sequential_prefix_obeys_the_other_rules(prefix, fragment):
    err = _invalid(prefix, sequential=True)
    assert fragment in err.message
    assert err.path == prefix


def test_trailing_slash_only_allowed_for_sequential():
    _invalid("/queue/")
    assert paths.validate("/queue/", sequential=True) == "/queue/"


def test_sequential_name_is_ten_zero_padded_digits():
    assert paths.sequential_name("/q/n-", 0) == "/q/n-0000000000"
    assert paths.sequential_name("/q/", 42) == "/q/0000000042"
    assert paths.sequential_name("/q/", 2**31 - 1) == "/q/2147483647"
    name = paths.sequential_name("/x", 7)
    assert len(name) - len("/x") == paths.SEQUENCE_DIGITS == 10
    assert paths.validate(name) == name


def test_sequential_name_keeps_the_sign_like_java_format():
    # %010d of a negative int in Java: '-' then 9 padded digits.
    assert paths.sequential_name("/q/", -5) == "/q/-000000005"


# -- splitting and joining ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parent", "basename"),
    [
        ("/", "/", ""),
        ("/a", "/", "a"),
        ("/a/b", "/a", "b"),
        ("/a/b/c", "/a/b", "c"),
    ],
)
def test_parent_and_basename(path, parent, basename):
    assert paths.parent(path) == parent
    assert paths.basename(path) == basename


@pytest.mark.parametrize(
    ("base", "names", "expected"),
    [
        ("/", ("a",), "/a"),
        ("/", (), "/"),
        ("/a", ("b", "c"), "/a/b/c"),
        ("/a/", ("/b/",), "/a/b"),
        ("/a", (), "/a"),
    ],
)
def test_join(base, names, expected):
    assert paths.join(base, *names) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", []),
        ("/a", ["/"]),
        ("/a/b", ["/", "/a"]),
        ("/a/b/c", ["/", "/a", "/a/b"]),
    ],
)
def test_ancestors_root_first(path, expected):
    assert paths.ancestors(path) == expected


@pytest.mark.parametrize(
    ("path", "root", "expected"),
    [
        ("/a", "/", True),
        ("/", "/", True),
        ("/a", "/a", True),
        ("/a/b", "/a", True),
        ("/a/b/c", "/a", True),
        ("/ab", "/a", False),
        ("/a", "/a/b", False),
        ("/b", "/a", False),
    ],
)
def test_is_within(path, root, expected):
    assert paths.is_within(path, root) is expected
