"""ACLs and auth through ServerCore: every check where ZooKeeper makes it.

The driver feeds the core native frames and reads what a client would read.
Connection 1 is "alice" (digest alice:secret), connection 2 is nobody in
particular (only its ip id, or none), unless a test says otherwise.
"""

from __future__ import annotations

from typing import Any

import pytest

from coord.acl import (
    CREATOR_ALL_ACL,
    READ_ACL_UNSAFE,
    Perm,
    acl_to_wire,
    digest_credential,
    make_acl,
    make_digest_acl,
)
from coord.errors import (
    AuthFailedError,
    BadVersionError,
    InvalidACLError,
    KeeperError,
    MarshallingError,
    NoAuthError,
    RolledBackError,
)
from coord.messages import (
    PROTOCOL_VERSION,
    AddWatchMode,
    EventType,
    OpCode,
    parse_connect,
)
from coord.server.core.acls import AclList
from coord.server.core.identity import ConnectionIdentity
from coord.server.core.output import ErrorReply, MultiResults, Reply, Result
from coord.server.storage.codec import decode_txn, encode_txn
from tests.server.coredriver import Driver, error_of, ok

ALICE = ("digest", b"alice:secret")
ALICE_ALL = acl_to_wire([make_digest_acl("alice", "secret", all=True)])


def _errors(results: Result) -> list[type[KeeperError] | None]:
    """Each op's error type in a multi's results (None: the op succeeded)."""
    assert isinstance(results, MultiResults), results
    return [None if o.error is None else type(o.error) for o in results.outcomes]


def _alice_and_stranger(**config: Any) -> Driver:
    d = Driver(**config)
    d.connect(1, auth=[ALICE])
    d.connect(2)
    return d


def _no_auth(reply: Reply | ErrorReply, *, node: str, perm: str) -> str:
    """Assert `reply` is NoAuth naming `node` and `perm`; return its message."""
    error = error_of(reply)
    assert isinstance(error, NoAuthError), error
    assert (error.path, error.expected) == (node, perm)
    return error.message


def test_a_digest_acl_keeps_everyone_else_out_of_every_op() -> None:
    d = _alice_and_stranger()
    ok(d.create(1, "/app", b"v", acl=ALICE_ALL))
    ok(d.create(1, "/app/child"))  # alice may create below it
    message = _no_auth(d.create(2, "/app/x"), node="/app", perm="CREATE")
    assert message == "no CREATE permission on '/app' (needed to create '/app/x')"
    _no_auth(d.get(2, "/app"), node="/app", perm="READ")
    _no_auth(d.call(2, OpCode.GET_CHILDREN, {"path": "/app"}), node="/app", perm="READ")
    set_body = {"path": "/app", "data": b"w", "version": -1}
    _no_auth(d.call(2, OpCode.SET_DATA, set_body), node="/app", perm="WRITE")
    delete_body = {"path": "/app/child", "version": -1}
    _no_auth(d.call(2, OpCode.DELETE, delete_body), node="/app", perm="DELETE")
    acl_body = {"path": "/app", "acl": acl_to_wire(READ_ACL_UNSAFE), "version": -1}
    _no_auth(d.call(2, OpCode.SET_ACL, acl_body), node="/app", perm="ADMIN")
    _no_auth(d.call(2, OpCode.GET_ACL, {"path": "/app"}), node="/app", perm="READ/ADMIN")
    _no_auth(d.call(2, OpCode.GET_ALL_CHILDREN_NUMBER, {"path": "/app"}), node="/app", perm="READ")
    # exists needs no permission, as in ZooKeeper
    assert ok(d.exists(2, "/app")) is not None
    # and alice can do all of it
    assert ok(d.get(1, "/app")).data == b"v"
    ok(d.call(1, OpCode.SET_DATA, set_body))
    ok(d.call(1, OpCode.DELETE, delete_body))
    assert ok(d.call(1, OpCode.SET_ACL, acl_body)).aversion == 1


def test_a_wrong_password_is_a_different_id_and_gets_no_access() -> None:
    d = Driver()
    d.connect(1, auth=[ALICE])
    d.connect(2, auth=[("digest", b"alice:wrong")])
    ok(d.create(1, "/secret", b"s", acl=ALICE_ALL))
    _no_auth(d.get(2, "/secret"), node="/secret", perm="READ")


def test_add_auth_takes_effect_for_the_requests_after_it() -> None:
    d = _alice_and_stranger()
    ok(d.create(1, "/app", acl=ALICE_ALL))
    _no_auth(d.get(2, "/app"), node="/app", perm="READ")
    assert ok(d.call(2, OpCode.AUTH, {"scheme": "digest", "credential": b"alice:secret"})) is None
    assert ok(d.get(2, "/app")).data == b""


@pytest.mark.parametrize(
    ("scheme", "credential", "why"),
    [
        ("kerberos", b"x", "unknown authentication scheme"),
        ("digest", b"no-colon", "user:password"),
        ("x509", b"", "client certificate"),
    ],
)
def test_a_bad_add_auth_is_auth_failed_and_the_connection_stays(
    scheme: str, credential: bytes, why: str
) -> None:
    d = Driver()
    d.connect(1)
    error = error_of(d.call(1, OpCode.AUTH, {"scheme": scheme, "credential": credential}))
    assert isinstance(error, AuthFailedError) and why in error.message
    assert 1 not in d.closed
    ok(d.create(1, "/still-here"))


def test_connect_time_auth_applies_before_the_session_and_a_bad_one_refuses_it() -> None:
    d = Driver()
    refused = d.refused(1, auth=[("nope", b"x")])
    assert isinstance(refused.error, AuthFailedError)
    assert 1 in d.closed
    d.connect(2, auth=[ALICE])
    ok(d.create(2, "/mine", acl=acl_to_wire(CREATOR_ALL_ACL)))
    # the session resumed on a new connection with the same auth keeps its access
    resumed = d.hello(3, session_id=d.session_of[2], password=b"p" * 16, auth=[ALICE])
    assert resumed.session_id == d.session_of[2]
    assert ok(d.get(3, "/mine")).data == b""


def test_the_auth_scheme_stands_for_the_creators_ids_and_needs_one() -> None:
    d = _alice_and_stranger()
    ok(d.create(1, "/mine", acl=acl_to_wire(CREATOR_ALL_ACL)))
    alice_id = digest_credential(b"alice:secret")
    assert ok(d.call(1, OpCode.GET_ACL, {"path": "/mine"})).acl == (
        make_acl("digest", alice_id, all=True),
    )
    error = error_of(d.create(2, "/nobody", acl=acl_to_wire(CREATOR_ALL_ACL)))
    assert isinstance(error, InvalidACLError) and "add_auth" in error.message


@pytest.mark.parametrize(
    "acl",
    [
        [],
        [[31, "world", "someone"]],
        [[31, "digest", "no-hash"]],
        [[31, "ip", "999.1.1.1"]],
        [[31, "martian", "x"]],
        [[64, "world", "anyone"]],
    ],
    ids=["empty", "world-not-anyone", "digest-no-hash", "bad-ip", "scheme", "perms"],
)
def test_an_acl_that_cannot_match_is_invalid(acl: list[Any]) -> None:
    d = Driver()
    d.connect(1)
    assert isinstance(error_of(d.create(1, "/x", acl=acl)), InvalidACLError)
    ok(d.create(1, "/y"))
    assert isinstance(
        error_of(d.call(1, OpCode.SET_ACL, {"path": "/y", "acl": acl})), InvalidACLError
    )


def test_get_acl_hides_digest_hashes_from_readers_without_admin() -> None:
    d = _alice_and_stranger()
    acl = [make_digest_acl("alice", "secret", all=True), make_acl("world", "anyone", read=True)]
    ok(d.create(1, "/shown", acl=acl_to_wire(acl)))
    assert ok(d.call(1, OpCode.GET_ACL, {"path": "/shown"})).acl == tuple(acl)
    redacted = ok(d.call(2, OpCode.GET_ACL, {"path": "/shown"})).acl
    assert redacted == (
        make_acl("digest", "alice:x", all=True),
        make_acl("world", "anyone", read=True),
    )


def test_set_acl_checks_the_aversion_and_counts_it() -> None:
    d = Driver()
    d.connect(1)
    ok(d.create(1, "/n"))
    read_admin = [[int(Perm.READ | Perm.ADMIN), "world", "anyone"]]
    first = {"path": "/n", "acl": read_admin, "version": 0}
    assert ok(d.call(1, OpCode.SET_ACL, first)).aversion == 1
    assert isinstance(error_of(d.call(1, OpCode.SET_ACL, first)), BadVersionError)
    second = {"path": "/n", "acl": acl_to_wire(READ_ACL_UNSAFE), "version": 1}
    assert ok(d.call(1, OpCode.SET_ACL, second)).aversion == 2
    node = ok(d.call(1, OpCode.GET_ACL, {"path": "/n"}))
    assert node.acl == READ_ACL_UNSAFE and node.stat.aversion == 2
    # READ only now: even the creator can neither write nor change the ACL back
    _no_auth(d.call(1, OpCode.SET_DATA, {"path": "/n", "data": b"x"}), node="/n", perm="WRITE")
    _no_auth(d.call(1, OpCode.SET_ACL, {"path": "/n", "acl": read_admin}), node="/n", perm="ADMIN")


def test_every_op_in_a_multi_is_checked_and_a_refusal_rolls_all_back() -> None:
    d = _alice_and_stranger()
    ok(d.create(1, "/app", acl=ALICE_ALL))
    ops = [
        [OpCode.CREATE, {"path": "/open"}],
        [OpCode.CHECK, {"path": "/app", "version": 0}],
    ]
    assert _errors(ok(d.call(2, OpCode.MULTI, {"ops": ops}))) == [RolledBackError, NoAuthError]
    assert ok(d.exists(2, "/open")) is None
    # a multi may create a protected node and then (as alice) a child under it
    ops = [
        [OpCode.CREATE, {"path": "/p", "acl": ALICE_ALL}],
        [OpCode.CREATE, {"path": "/p/c"}],
    ]
    assert _errors(ok(d.call(1, OpCode.MULTI, {"ops": ops}))) == [None, None]
    ops = [
        [OpCode.CREATE, {"path": "/q", "acl": ALICE_ALL}],
        [OpCode.CREATE, {"path": "/q/c"}],
    ]
    assert _errors(ok(d.call(2, OpCode.MULTI, {"ops": ops}))) == [RolledBackError, NoAuthError]


def test_multi_read_ops_are_checked_one_by_one() -> None:
    d = _alice_and_stranger()
    ok(d.create(1, "/app", acl=ALICE_ALL))
    ok(d.create(1, "/open"))
    ops = [[OpCode.GET_DATA, {"path": "/app"}], [OpCode.GET_DATA, {"path": "/open"}]]
    results = ok(d.call(2, OpCode.MULTI_READ, {"ops": ops}))
    assert _errors(results) == [NoAuthError, None]
    assert results.outcomes[1].result.data == b""


def test_a_refused_read_sets_no_watch() -> None:
    d = _alice_and_stranger()
    ok(d.create(1, "/app", acl=ALICE_ALL))
    _no_auth(d.get(2, "/app", watch=True), node="/app", perm="READ")
    ok(d.call(1, OpCode.SET_DATA, {"path": "/app", "data": b"changed"}))
    assert d.events(2) == []
    ok(d.get(1, "/app", watch=True))
    ok(d.call(1, OpCode.SET_DATA, {"path": "/app", "data": b"again"}))
    assert d.events(1) == [(EventType.CHANGED, "/app")]


def test_a_recursive_watch_hears_only_of_nodes_it_may_read() -> None:
    """ZooKeeper 3.8.4's fix of CVE-2024-23944: addWatch on "/" is not a way
    to learn the names of nodes one cannot read."""
    d = _alice_and_stranger()
    ok(d.call(2, OpCode.ADD_WATCH, {"path": "/", "mode": int(AddWatchMode.PERSISTENT_RECURSIVE)}))
    ok(d.create(1, "/secret", acl=ALICE_ALL))
    ok(d.call(1, OpCode.SET_DATA, {"path": "/secret", "data": b"x"}))
    ok(d.create(1, "/open"))
    ok(d.call(1, OpCode.DELETE, {"path": "/secret"}))
    ok(d.call(1, OpCode.DELETE, {"path": "/open"}))
    assert d.events(2) == [(EventType.CREATED, "/open"), (EventType.DELETED, "/open")]
    # alice, who may read it, hears of everything
    ok(d.call(1, OpCode.ADD_WATCH, {"path": "/", "mode": int(AddWatchMode.PERSISTENT_RECURSIVE)}))
    ok(d.create(1, "/secret", acl=ALICE_ALL))
    ok(d.call(1, OpCode.DELETE, {"path": "/secret"}))
    assert d.events(1) == [(EventType.CREATED, "/secret"), (EventType.DELETED, "/secret")]
    assert d.events(2) == []


def test_ip_acls_match_the_address_and_networks() -> None:
    d = Driver()
    d.connect(1, identity=ConnectionIdentity(ip="10.1.2.3"))
    d.connect(2, identity=ConnectionIdentity(ip="192.168.0.7"))
    ok(d.create(1, "/lan", b"x", acl=[[31, "ip", "10.0.0.0/8"]]))
    ok(d.create(1, "/host", b"x", acl=[[31, "ip", "10.1.2.3"]]))
    assert ok(d.get(1, "/lan")).data == b"x"
    assert ok(d.get(1, "/host")).data == b"x"
    _no_auth(d.get(2, "/lan"), node="/lan", perm="READ")
    _no_auth(d.get(2, "/host"), node="/host", perm="READ")


def test_x509_acls_match_the_certificate_subject() -> None:
    d = Driver()
    d.connect(1, identity=ConnectionIdentity(ip="127.0.0.1", x509="CN=alice,O=Example"))
    d.connect(2, identity=ConnectionIdentity(ip="127.0.0.1", x509="CN=bob,O=Example"))
    ok(d.create(1, "/tls", b"t", acl=[[31, "x509", "CN=alice,O=Example"]]))
    assert ok(d.get(1, "/tls")).data == b"t"
    _no_auth(d.get(2, "/tls"), node="/tls", perm="READ")
    # CREATOR_ALL_ACL on a TLS connection means its certificate subject
    ok(d.create(2, "/bobs", acl=acl_to_wire(CREATOR_ALL_ACL)))
    assert ok(d.call(2, OpCode.GET_ACL, {"path": "/bobs"})).acl == (
        make_acl("x509", "CN=bob,O=Example", all=True),
    )
    assert ok(d.call(2, OpCode.AUTH, {"scheme": "x509", "credential": b""})) is None


def test_the_super_digest_passes_every_check() -> None:
    d = Driver(super_digest=digest_credential(b"super:admin"))
    d.connect(1, auth=[ALICE])
    d.connect(2, auth=[("digest", b"super:admin")])
    ok(d.create(1, "/app", b"a", acl=ALICE_ALL))
    assert ok(d.get(2, "/app")).data == b"a"
    acl = ok(d.call(2, OpCode.GET_ACL, {"path": "/app"})).acl
    assert acl == (make_digest_acl("alice", "secret", all=True),)  # an admin sees the hashes
    ok(d.call(2, OpCode.DELETE, {"path": "/app"}))


def test_null_data_stays_null_and_differs_from_empty() -> None:
    d = Driver()
    d.connect(1)
    ok(d.create(1, "/null", None))
    ok(d.create(1, "/empty", b""))
    node = ok(d.get(1, "/null"))
    assert node.data is None and node.stat.data_length == 0
    assert ok(d.get(1, "/empty")).data == b""
    ok(d.call(1, OpCode.SET_DATA, {"path": "/empty", "data": None}))
    assert ok(d.get(1, "/empty")).data is None


def test_identical_acls_are_one_shared_object_in_the_tree() -> None:
    d = Driver()
    d.connect(1, auth=[ALICE])
    for i in range(50):
        ok(d.create(1, f"/n{i}", acl=ALICE_ALL))
    acls: set[int] = {id(d.core.tree.get(f"/n{i}").acl) for i in range(50)}  # type: ignore[union-attr]
    assert len(acls) == 1
    assert len(d.core.tree.acls) == 2  # the open ACL and alice's


def test_acl_txns_round_trip_through_the_log_codec() -> None:
    d = Driver()
    d.connect(1, auth=[ALICE])
    ok(d.create(1, "/a", None, acl=ALICE_ALL))
    ok(d.call(1, OpCode.SET_ACL, {"path": "/a", "acl": acl_to_wire(READ_ACL_UNSAFE)}))
    for txn in d.txns:
        assert decode_txn(encode_txn(txn)) == txn
    bodies = [type(txn.body).__name__ for txn in d.txns]
    assert bodies[-2:] == ["CreateTxn", "SetACLTxn"]
    created: AclList = d.txns[-2].body.acl  # type: ignore[union-attr]
    assert acl_to_wire(created) == ALICE_ALL


def test_connect_time_credentials_are_bounded_at_the_boundary() -> None:
    base = {"protocol_version": PROTOCOL_VERSION, "timeout_ms": 1000}
    fits = parse_connect({**base, "auth": [["digest", b"u:" + b"p" * 4000]]})
    assert fits.auth == [("digest", b"u:" + b"p" * 4000)]
    for pair in (["digest", b"u:" + b"p" * 5000], ["s" * 65, b"u:p"]):
        with pytest.raises(MarshallingError):
            parse_connect({**base, "auth": [pair]})
