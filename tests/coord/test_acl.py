"""The shared ACL vocabulary: kazoo's builders, ZooKeeper's digest, zkCli's text form."""

from __future__ import annotations

import base64
import hashlib

import pytest

from coord.acl import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    Id,
    Perm,
    acl_from_wire,
    acl_to_wire,
    digest_credential,
    make_acl,
    make_digest_acl,
    make_digest_acl_credential,
    parse_acl_entry,
    parse_perm_letters,
    perm_letters,
    perm_names,
)


def test_digest_is_user_colon_base64_sha1_of_the_whole_credential() -> None:
    expected = base64.b64encode(hashlib.sha1(b"alice:secret").digest()).decode()
    assert make_digest_acl_credential("alice", "secret") == f"alice:{expected}"
    assert digest_credential(b"alice:secret") == f"alice:{expected}"


def test_digest_of_a_password_with_colons_keeps_the_user_before_the_first() -> None:
    assert digest_credential(b"bob:a:b").startswith("bob:")
    assert digest_credential(b"bob:a:b") == make_digest_acl_credential("bob", "a:b")


def test_unicode_credentials_are_utf8() -> None:
    ident = make_digest_acl_credential("usér", "pässwörd")
    digest = base64.b64encode(hashlib.sha1("usér:pässwörd".encode()).digest()).decode()
    assert ident == f"usér:{digest}"


def test_make_acl_sets_the_named_bits() -> None:
    entry = make_acl("ip", "10.0.0.0/8", read=True, delete=True)
    assert entry.perms == Perm.READ | Perm.DELETE
    assert entry.id == Id("ip", "10.0.0.0/8")
    assert make_acl("world", "anyone", all=True).perms == Perm.ALL


def test_make_digest_acl() -> None:
    entry = make_digest_acl("alice", "secret", read=True, write=True)
    assert entry.id.scheme == "digest"
    assert entry.id.id == make_digest_acl_credential("alice", "secret")
    assert entry.acl_list == ["READ", "WRITE"]


def test_well_known_acls() -> None:
    assert (ACL(31, Id("world", "anyone")),) == OPEN_ACL_UNSAFE
    assert (ACL(31, Id("auth", "")),) == CREATOR_ALL_ACL


def test_wire_round_trip() -> None:
    acl = (make_digest_acl("a", "b", all=True), make_acl("ip", "127.0.0.1", read=True))
    wire = acl_to_wire(acl)
    assert wire[1] == [1, "ip", "127.0.0.1"]
    assert acl_from_wire(wire) == acl


@pytest.mark.parametrize(
    ("perms", "names", "letters"),
    [(31, ["ALL"], "rwcda"), (1, ["READ"], "r"), (12, ["CREATE", "DELETE"], "cd"), (0, [], "")],
)
def test_perm_names_and_letters(perms: int, names: list[str], letters: str) -> None:
    assert perm_names(perms) == names
    assert perm_letters(perms) == letters
    assert parse_perm_letters(letters) == perms


def test_parse_acl_entry_takes_the_scheme_first_and_the_perms_last() -> None:
    assert parse_acl_entry("digest:bob:Hq0=:cdrwa") == ACL(31, Id("digest", "bob:Hq0="))
    assert parse_acl_entry("ip:::1:r") == ACL(1, Id("ip", "::1"))
    assert parse_acl_entry("world:anyone:r") == ACL(1, Id("world", "anyone"))
    assert str(parse_acl_entry("world:anyone:r")) == "world:anyone:r"


@pytest.mark.parametrize("text", ["world", "world:anyone", ":x:r", "world:anyone:rz"])
def test_parse_acl_entry_refuses_what_is_not_an_entry(text: str) -> None:
    with pytest.raises(ValueError):
        parse_acl_entry(text)
