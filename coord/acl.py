"""ACLs: ZooKeeper's access-control vocabulary, shared by the client and the server.

An ACL is a list of entries; each entry grants a set of permissions to an id.
An id is a scheme and a scheme-specific string, as in ZooKeeper:

    world:anyone                everyone
    auth:                       (only in a create or set_acls) every id the
                                session has authenticated as; the server
                                replaces it with those ids
    digest:user:<base64 sha1>   whoever authenticated with `digest` as
                                "user:password" (`digest_credential` makes the id)
    ip:10.0.0.0/8               clients connecting from that address or network
    x509:CN=alice,O=example     a TLS client whose certificate has that subject
    super                       (an authentication, never in an ACL) the super
                                user from the server's config: every check passes

Permissions are ZooKeeper's bits: READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16.
The names of the builders are kazoo's (`make_acl`, `make_digest_acl`,
`make_digest_acl_credential`, `OPEN_ACL_UNSAFE`, `CREATOR_ALL_ACL`,
`READ_ACL_UNSAFE`), so code written for kazoo reads the same.

On the native wire an ACL is a list of `[perms, scheme, id]` triples
(`acl_to_wire` / `acl_from_wire`). This module is pure: no IO, no clock.
"""

from __future__ import annotations

import base64
import enum
import hashlib
from collections.abc import Iterable
from typing import Any, Final, NamedTuple


class Perm(enum.IntFlag):
    """ZooKeeper's permission bits."""

    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


Permissions = Perm
"""kazoo's name for the permission bits."""


class Id(NamedTuple):
    """Who an ACL entry is for, or who a session authenticated as: a scheme and an id."""

    scheme: str
    id: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.id}"


class ACL(NamedTuple):
    """One ACL entry: the permissions `perms` granted to `id`."""

    perms: int
    id: Id

    @property
    def acl_list(self) -> list[str]:
        """The permission names, as kazoo shows them ("ALL", or some of READ ... ADMIN)."""
        return perm_names(self.perms)

    def __str__(self) -> str:
        return f"{self.id.scheme}:{self.id.id}:{perm_letters(self.perms)}"


ANYONE_ID_UNSAFE: Final = Id("world", "anyone")
AUTH_IDS: Final = Id("auth", "")
OPEN_ACL_UNSAFE: Final = (ACL(Perm.ALL, ANYONE_ID_UNSAFE),)
"""Everyone may do everything: the ACL of a node created without one."""
CREATOR_ALL_ACL: Final = (ACL(Perm.ALL, AUTH_IDS),)
"""Every permission, for whoever the creating session authenticated as."""
READ_ACL_UNSAFE: Final = (ACL(Perm.READ, ANYONE_ID_UNSAFE),)
"""Everyone may read; nobody may change anything."""

_LETTERS: Final = (
    ("r", Perm.READ),
    ("w", Perm.WRITE),
    ("c", Perm.CREATE),
    ("d", Perm.DELETE),
    ("a", Perm.ADMIN),
)


_NAMED: Final = (
    ("READ", Perm.READ),
    ("WRITE", Perm.WRITE),
    ("CREATE", Perm.CREATE),
    ("DELETE", Perm.DELETE),
    ("ADMIN", Perm.ADMIN),
)


def perm_names(perms: int) -> list[str]:
    """["ALL"], or the names of the bits set in `perms`, in ZooKeeper's order."""
    if perms & Perm.ALL == Perm.ALL:
        return ["ALL"]
    return [name for name, bit in _NAMED if perms & bit]


def perm_letters(perms: int) -> str:
    """zkCli's short form of the permissions: the letters of "rwcda" that are set."""
    return "".join(letter for letter, bit in _LETTERS if perms & bit)


def parse_perm_letters(text: str) -> int:
    """The permission bits of zkCli's letters ("crwda" in any order); ValueError if unknown."""
    perms = 0
    by_letter = dict(_LETTERS)
    for letter in text.lower():
        bit = by_letter.get(letter)
        if bit is None:
            raise ValueError(f"unknown permission letter {letter!r} in {text!r} (use r w c d a)")
        perms |= bit
    return perms


def parse_acl_entry(text: str) -> ACL:
    """zkCli's form of one entry, `scheme:id:perms` (e.g. `digest:bob:Hq...=:cdrwa`).

    The id may itself contain colons (digest ids do, IPv6 addresses do); the
    scheme is before the first colon and the permissions after the last.
    """
    scheme, sep, rest = text.partition(":")
    ident, sep2, letters = rest.rpartition(":")
    if not sep or not sep2 or not scheme:
        raise ValueError(f"an ACL entry is scheme:id:perms, got {text!r}")
    return ACL(parse_perm_letters(letters), Id(scheme, ident))


def make_digest_acl_credential(username: str, password: str) -> str:
    """The digest id for `username` and `password`: user:base64(sha1("user:password"))."""
    return digest_credential(f"{username}:{password}".encode())


def digest_credential(user_password: bytes) -> str:
    """The digest id for a "user:password" credential, as ZooKeeper computes it.

    The user is everything before the first colon; the hash covers the whole
    credential (UTF-8), so `make_digest_acl_credential("u", "p")` equals
    `digest_credential(b"u:p")`.
    """
    user = user_password.split(b":", 1)[0].decode("utf-8", "replace")
    digest = base64.b64encode(hashlib.sha1(user_password).digest()).decode("ascii")
    return f"{user}:{digest}"


def make_acl(
    scheme: str,
    credential: str,
    *,
    read: bool = False,
    write: bool = False,
    create: bool = False,
    delete: bool = False,
    admin: bool = False,
    all: bool = False,  # kazoo's keyword
) -> ACL:
    """An entry for `scheme:credential` with the permissions named (kazoo's signature)."""
    if all:
        perms = int(Perm.ALL)
    else:
        perms = 0
        for flag, bit in (
            (read, Perm.READ),
            (write, Perm.WRITE),
            (create, Perm.CREATE),
            (delete, Perm.DELETE),
            (admin, Perm.ADMIN),
        ):
            if flag:
                perms |= bit
    return ACL(perms, Id(scheme, credential))


def make_digest_acl(
    username: str,
    password: str,
    *,
    read: bool = False,
    write: bool = False,
    create: bool = False,
    delete: bool = False,
    admin: bool = False,
    all: bool = False,  # kazoo's keyword
) -> ACL:
    """A digest entry for `username`/`password` with the permissions named."""
    return make_acl(
        "digest",
        make_digest_acl_credential(username, password),
        read=read,
        write=write,
        create=create,
        delete=delete,
        admin=admin,
        all=all,
    )


def acl_to_wire(acl: Iterable[ACL]) -> list[list[Any]]:
    """The native wire form: `[[perms, scheme, id], ...]`."""
    return [[int(entry.perms), entry.id.scheme, entry.id.id] for entry in acl]


def acl_from_wire(value: Iterable[Any]) -> tuple[ACL, ...]:
    """ACL entries from `[[perms, scheme, id], ...]` (shape already validated)."""
    return tuple(ACL(int(perms), Id(str(scheme), str(ident))) for perms, scheme, ident in value)


__all__ = [
    "ACL",
    "ANYONE_ID_UNSAFE",
    "AUTH_IDS",
    "CREATOR_ALL_ACL",
    "OPEN_ACL_UNSAFE",
    "READ_ACL_UNSAFE",
    "Id",
    "Perm",
    "Permissions",
    "acl_from_wire",
    "acl_to_wire",
    "digest_credential",
    "make_acl",
    "make_digest_acl",
    "make_digest_acl_credential",
    "parse_acl_entry",
    "parse_perm_letters",
    "perm_letters",
    "perm_names",
]
