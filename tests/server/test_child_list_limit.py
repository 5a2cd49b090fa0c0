"""Everything accepted stays listable: a create that would make the parent's child list
too large for one reply is refused (ChildListTooLargeError), at the core and end to end.

The attack: 300 children with 4 KB names make a 1.2 MB get_children reply, over the
client's frame limit, so `coord ls` and `delete -r` could not read it.
"""

from __future__ import annotations

import io

import trio

from coord.client import Client
from coord.client.cli import run
from coord.errors import ChildListTooLargeError, RolledBackError
from coord.framing import MAX_FRAME_SIZE
from coord.messages import OpCode
from coord.server.core.output import Reply
from coord.server.core.prep import MAX_CHILD_LIST_BYTES
from coord.server.native.codec import send
from tests.conftest import RunningServer
from tests.server.coredriver import Driver, error_of, ok

NAME_CHARS = 4000
PER_CHILD = NAME_CHARS + 4
ALLOWED = MAX_CHILD_LIST_BYTES // PER_CHILD


def _name(i: int) -> str:
    return f"{i:04d}" + "n" * (NAME_CHARS - 4)


def test_the_create_past_the_bound_is_refused_and_the_list_fits_a_frame() -> None:
    d = Driver()
    d.connect(1)
    ok(d.create(1, "/p"))
    for i in range(ALLOWED):
        ok(d.create(1, f"/p/{_name(i)}"))
    error = error_of(d.create(1, f"/p/{_name(ALLOWED)}"))
    assert isinstance(error, ChildListTooLargeError)
    assert error.code == -206 and error.path == f"/p/{_name(ALLOWED)}"
    assert error.expected == MAX_CHILD_LIST_BYTES and error.actual > MAX_CHILD_LIST_BYTES
    # The largest allowed list goes through the real framing (the Driver decodes it).
    for include_stat in (False, True):
        reply = d.call(1, OpCode.GET_CHILDREN, {"path": "/p", "include_stat": include_stat})
        assert len(ok(reply).names) == ALLOWED
        assert len(send(reply)) <= MAX_FRAME_SIZE
    # A delete makes room again; a short name may fit where a long one does not.
    ok(d.call(1, OpCode.DELETE, {"path": f"/p/{_name(0)}"}))
    ok(d.create(1, f"/p/{_name(ALLOWED)}"))
    assert isinstance(error_of(d.create(1, f"/p/{_name(ALLOWED + 1)}")), ChildListTooLargeError)
    ok(d.create(1, "/p/short"))


def test_pipelined_creates_are_counted_against_the_pending_state() -> None:
    """300 creates sent before any is applied: the bound holds on the pending overlay."""
    d = Driver()
    d.connect(1)
    ok(d.create(1, "/p"))
    xids = [d.send(1, OpCode.CREATE, {"path": f"/p/{_name(i)}", "data": b""}) for i in range(300)]
    d.run()
    replies = [d.reply(1, xid) for xid in xids]
    assert all(isinstance(reply, Reply) for reply in replies[:ALLOWED])
    assert {type(error_of(reply)) for reply in replies[ALLOWED:]} == {ChildListTooLargeError}


def test_a_multi_over_the_bound_fails_whole() -> None:
    d = Driver()
    d.connect(1)
    ok(d.create(1, "/p"))
    for i in range(ALLOWED - 1):
        ok(d.create(1, f"/p/{_name(i)}"))
    ops = [
        [OpCode.CREATE, {"path": f"/p/{_name(ALLOWED)}", "data": b""}],
        [OpCode.CREATE, {"path": f"/p/{_name(ALLOWED + 1)}", "data": b""}],
    ]
    results = ok(d.call(1, OpCode.MULTI, {"ops": ops}))
    errors = [type(outcome.error) for outcome in results.outcomes]
    assert errors == [RolledBackError, ChildListTooLargeError]
    names = ok(d.call(1, OpCode.GET_CHILDREN, {"path": "/p"})).names
    assert len(names) == ALLOWED - 1


async def test_the_largest_allowed_parent_is_listed_and_deleted_by_the_tools(
    coord_server: RunningServer,
) -> None:
    async with Client(coord_server.hosts) as zk:
        await zk.create("/big")
        for i in range(ALLOWED):
            await zk.create(f"/big/{_name(i)}")
        try:
            await zk.create(f"/big/{_name(ALLOWED)}")
        except ChildListTooLargeError:
            pass
        else:
            raise AssertionError("the create past the bound was accepted")
        assert len(await zk.get_children("/big")) == ALLOWED
    out, err = io.StringIO(), io.StringIO()
    with trio.fail_after(30):
        rc = await run(["-s", coord_server.hosts, "ls", "/big"], stdout=out, stderr=err)
    assert rc == 0, err.getvalue()
    assert len(out.getvalue().splitlines()) == ALLOWED
    with trio.fail_after(30):
        rc = await run(["-s", coord_server.hosts, "delete", "-r", "/big"], stdout=out, stderr=err)
    assert rc == 0, err.getvalue()
    async with Client(coord_server.hosts) as zk:
        assert await zk.exists("/big") is None
