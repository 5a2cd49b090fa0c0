"""ACL enforcement: who a connection is, and what a node's ACL lets it do. Pure.

ZooKeeper's model (coord.acl has the vocabulary). A connection carries a set
of ids: `ip:<address>` from the socket, `x509:<subject>` from a verified TLS
client certificate, and one `digest:user:<hash>` per successful add_auth.
An ACL entry grants its permissions to an id; a check for permission P on a
node passes when some entry has P and matches one of the connection's ids:

    world:anyone    matches everyone
    digest:u:h      matches the connection's identical digest id
    x509:subject    matches the identical certificate subject
    ip:a.b.c.d[/n]  matches a connection whose address is in that network
    super           (an id, never an entry) the config's super user: every
                    check passes

Why the checks are cheap. Almost every node in a real tree has the open ACL.
The tree interns ACL lists (`AclInterner`), so identical lists are one object
and the open one is `OPEN_ACL_UNSAFE` itself: `authorized` answers it with an
identity test before looking at anything else.

`fixup_acl` is ZooKeeper's fixupACL: what a create or set_acls may store.
An `auth:` entry becomes one entry per authenticated id of the connection
(digest and x509; an ip id is not an authentication), duplicates go, and an
entry whose id cannot match anything is refused with InvalidACL.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Final

from coord.acl import ACL, OPEN_ACL_UNSAFE, Id, Perm, digest_credential, perm_names
from coord.errors import AuthFailedError, InvalidACLError, NoAuthError

AclList = tuple[ACL, ...]
AuthIds = tuple[Id, ...]

SUPER_ID: Final = Id("super", "")
"""The id a connection gets when its digest credential is the config's super digest."""

_AUTHENTICATED_SCHEMES: Final = frozenset({"digest", "x509"})
"""Schemes whose ids `auth:` entries expand to (an ip id proves nothing about who)."""

AUTH_SCHEMES: Final = ("digest", "ip", "x509")
"""Schemes a client may name in add_auth."""

MAX_ACL_ENTRIES: Final = 1024
"""A bound on one ACL's length (ZooKeeper has none; a list this long is a mistake)."""


class AclInterner:
    """One shared tuple per distinct ACL list, as ZooKeeper's ACL cache keeps them."""

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[AclList, AclList] = {OPEN_ACL_UNSAFE: OPEN_ACL_UNSAFE}

    def intern(self, acl: AclList) -> AclList:
        known = self._known.get(acl)
        if known is None:
            known = tuple(ACL(int(entry.perms), Id(*entry.id)) for entry in acl)
            self._known[known] = known
        return known

    def __len__(self) -> int:
        return len(self._known)


def authorized(acl: AclList, perm: int, ids: AuthIds) -> bool:
    """Whether a connection with `ids` holds `perm` (any of its bits) under `acl`."""
    if acl is OPEN_ACL_UNSAFE or not acl:
        return True
    if SUPER_ID in ids:
        return True
    for entry in acl:
        if not entry.perms & perm:
            continue
        scheme, ident = entry.id
        if scheme == "world":
            if ident == "anyone":
                return True
        elif scheme == "ip":
            if any(i.scheme == "ip" and _ip_matches(ident, i.id) for i in ids):
                return True
        elif entry.id in ids:
            return True
    return False


READ_OR_ADMIN: Final = Perm.READ | Perm.ADMIN
"""What get_acls needs (either bit)."""


def check(acl: AclList, perm: int, ids: AuthIds, *, node: str, action: str, target: str) -> None:
    """Raise NoAuthError naming the node and the permission unless `ids` hold `perm`.

    The message says what the permission was needed for: `action` and
    `target` ("to create", "/a/b"), joined only when the check fails, since
    this runs on every request. The hot paths (get, get_children, create,
    set, delete) test `acl is not OPEN_ACL_UNSAFE` before calling, which
    makes the common case one identity test instead of a call.
    """
    if acl is OPEN_ACL_UNSAFE or authorized(acl, perm, ids):
        return
    name = "/".join(perm_names(perm))
    raise NoAuthError(
        f"no {name} permission on {node!r} (needed {action} {target!r})",
        path=node,
        expected=name,
    )


def authenticate(
    scheme: str, credential: bytes, *, super_digest: str = "", certificate: bool = False
) -> AuthIds:
    """The ids an add_auth adds to a connection, or AuthFailedError saying why.

    `digest` takes "user:password" and adds the digest id (and `super` when it
    matches the config's `super_digest`). `ip` adds nothing: the address is
    already an id of every connection. `x509` comes from the TLS handshake,
    never from a credential: naming it adds nothing on a connection with a
    verified client `certificate`, and fails on one without.
    """
    if scheme == "digest":
        if b":" not in credential:
            raise AuthFailedError(
                "a digest credential is 'user:password' (no ':' found)", expected="user:password"
            )
        try:
            credential.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthFailedError("a digest credential must be UTF-8 text") from None
        digest = digest_credential(credential)
        ids: AuthIds = (Id("digest", digest),)
        if super_digest and digest == super_digest:
            ids += (SUPER_ID,)
        return ids
    if scheme == "ip":
        return ()
    if scheme == "x509":
        if certificate:
            return ()
        raise AuthFailedError("x509 needs a TLS connection with a verified client certificate")
    raise AuthFailedError(
        f"unknown authentication scheme {scheme!r}",
        expected=" or ".join(AUTH_SCHEMES),
        actual=scheme,
    )


def fixup_acl(acl: AclList, ids: AuthIds, *, path: str) -> AclList:
    """What a create or set_acls stores for `acl`, or InvalidACLError (ZooKeeper's fixupACL)."""
    if acl is OPEN_ACL_UNSAFE:
        return acl
    if not acl:
        raise InvalidACLError(f"empty ACL for {path!r}", path=path)
    if len(acl) > MAX_ACL_ENTRIES:
        raise InvalidACLError(
            f"ACL for {path!r} has {len(acl)} entries",
            path=path,
            expected=f"<= {MAX_ACL_ENTRIES}",
            actual=len(acl),
        )
    out: list[ACL] = []
    for entry in acl:
        perms = int(entry.perms)
        if perms & ~int(Perm.ALL) or perms < 0:
            raise InvalidACLError(
                f"permissions {perms} in the ACL for {path!r} are not ZooKeeper's bits",
                path=path,
                expected="0..31",
                actual=perms,
            )
        scheme, ident = entry.id
        if scheme == "auth":
            expanded = [ACL(perms, i) for i in ids if i.scheme in _AUTHENTICATED_SCHEMES]
            if not expanded:
                raise InvalidACLError(
                    f"an auth: entry in the ACL for {path!r} needs an authenticated "
                    "connection (add_auth first)",
                    path=path,
                )
            out.extend(expanded)
            continue
        _check_id(scheme, ident, path)
        out.append(ACL(perms, Id(scheme, ident)))
    unique = tuple(dict.fromkeys(out))
    return OPEN_ACL_UNSAFE if unique == OPEN_ACL_UNSAFE else unique


def redact(acl: AclList) -> AclList:
    """The ACL as get_acls shows it to a reader without ADMIN: digest hashes hidden."""
    return tuple(
        ACL(entry.perms, Id("digest", entry.id.id.split(":", 1)[0] + ":x"))
        if entry.id.scheme == "digest"
        else entry
        for entry in acl
    )


def _check_id(scheme: str, ident: str, path: str) -> None:
    if scheme == "world":
        ok = ident == "anyone"
    elif scheme == "digest":
        ok = ident.count(":") == 1 and not ident.startswith(":")
    elif scheme == "ip":
        ok = _network(ident) is not None
    elif scheme == "x509":
        ok = bool(ident)
    else:
        raise InvalidACLError(
            f"unknown scheme {scheme!r} in the ACL for {path!r}",
            path=path,
            expected="world, auth, digest, ip or x509",
            actual=scheme,
        )
    if not ok:
        raise InvalidACLError(
            f"{scheme}:{ident} in the ACL for {path!r} is not a valid {scheme} id",
            path=path,
            actual=f"{scheme}:{ident}",
        )


@lru_cache(maxsize=4096)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _ip_matches(network: str, address: str) -> bool:
    net = _network(network)
    if net is None:
        return False
    try:
        return ipaddress.ip_address(address) in net
    except ValueError:
        return False


__all__ = [
    "AUTH_SCHEMES",
    "MAX_ACL_ENTRIES",
    "READ_OR_ADMIN",
    "SUPER_ID",
    "AclInterner",
    "AclList",
    "AuthIds",
    "authenticate",
    "authorized",
    "check",
    "fixup_acl",
    "redact",
]
