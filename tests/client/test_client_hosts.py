"""Connection string parsing."""

from __future__ import annotations

import pytest

from coord.client.hosts import DEFAULT_PORT, HostPort, parse_hosts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:2281", [HostPort("127.0.0.1", 2281)]),
        ("a", [HostPort("a", DEFAULT_PORT)]),
        (" a:1 , b:2,c ", [HostPort("a", 1), HostPort("b", 2), HostPort("c", DEFAULT_PORT)]),
        ("[::1]:7000,[fe80::1]", [HostPort("::1", 7000), HostPort("fe80::1", DEFAULT_PORT)]),
        ("a:1,a:1,b:1", [HostPort("a", 1), HostPort("b", 1)]),
    ],
)
def test_parse(text: str, expected: list[HostPort]) -> None:
    assert parse_hosts(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty host entry"),
        ("a:1,", "empty host entry"),
        ("a:x", "bad port 'x'"),
        ("a:0", "must be 1..65535"),
        ("a:70000", "must be 1..65535"),
        ("::1", "write it as"),
        ("[::1", "never closes"),
        ("[::1]x", "unexpected 'x'"),
        ("a:1/chroot", "chroot is unsupported"),
        (":1", "bad host name"),
        ("a b:1", "bad host name"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hosts(text)


def test_not_a_string() -> None:
    with pytest.raises(TypeError):
        parse_hosts(["a:1"])  # type: ignore[arg-type]


def test_str_round_trips() -> None:
    hosts = parse_hosts("a:1,[::1]:2")
    assert ",".join(str(h) for h in hosts) == "a:1,[::1]:2"
