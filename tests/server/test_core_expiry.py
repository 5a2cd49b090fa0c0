"""A session is told it expired only once its close is committed.

A leader whose lease on a session ran out proposes the close; until a quorum
commits it, the session is alive as far as the ensemble knows (a leader paused
past the lease is not the leader any more, and the real one kept the session
alive). So the core never answers SessionExpired on the strength of its own
tracker: a request of an expiring session waits for the outcome, and hears
SessionExpired when the close applies, or ConnectionLoss ("try another
member") when this member stops serving.
"""

from __future__ import annotations

from coord.errors import ConnectionLossError, SessionExpiredError
from coord.messages import PROTOCOL_VERSION, ConnectRequest, OpCode
from coord.server.core.forwarding import ForwardReply, ForwardRequest
from coord.server.core.output import ClientOutput, Connected, Notice
from coord.server.core.replica import CoreConfig, ServerCore
from coord.server.core.txn import Txn

NOW = 1_000_000
TICK = 100
TIMEOUT = 2 * TICK


def _leader() -> ServerCore:
    core = ServerCore(CoreConfig(tick_ms=TICK, server_id=1, standalone=False))
    core.become_leader(epoch=1, now_ms=NOW)
    return core


def _session(core: ServerCore, conn: int) -> int:
    """A session on `conn`, its create committed (in an ensemble: as if by a quorum)."""
    core.connect(
        conn,
        ConnectRequest(protocol_version=PROTOCOL_VERSION, timeout_ms=TIMEOUT),
        now_ms=NOW,
        password=b"p" * 16,
    )
    ready = core.ready()
    core.apply_committed(ready.txns, now_ms=NOW)
    (hello,) = [frame for c, frame in core.ready().messages if c == conn]
    assert isinstance(hello, Connected)
    return hello.session_id


def _frames(core: ServerCore, conn: int) -> list[ClientOutput]:
    return [frame for c, frame in core.ready().messages if c == conn]


def _expire(core: ServerCore) -> list[Txn]:
    """Let the lease run out: the leader proposes the close (not committed)."""
    core.tick(NOW + 10 * TIMEOUT)
    return core.ready().txns


def test_a_request_of_an_expiring_session_waits_for_the_close_to_commit() -> None:
    core = _leader()
    _session(core, 1)
    close = _expire(core)
    assert len(close) == 1
    core.request(1, 1, OpCode.GET_DATA, {"path": "/"}, now_ms=NOW + 10 * TIMEOUT)
    waiting = core.ready()
    assert not waiting.messages and not waiting.closes  # no SessionExpired before the commit
    core.apply_committed(close, now_ms=NOW + 10 * TIMEOUT)
    out = core.ready()
    ((_, notice),) = out.messages
    assert isinstance(notice, Notice) and isinstance(notice.error, SessionExpiredError)
    assert notice.zxid == close[0].zxid and out.closes == [1]


def test_a_leader_deposed_before_the_close_commits_says_try_another_member() -> None:
    """The paused-leader case: its close never commits, and the session lives on."""
    core = _leader()
    _session(core, 1)
    _expire(core)
    core.request(1, 1, OpCode.GET_DATA, {"path": "/"}, now_ms=NOW + 10 * TIMEOUT)
    assert not _frames(core, 1)
    core.stop_serving()
    out = core.ready()
    errors = [frame.error for _, frame in out.messages if isinstance(frame, Notice)]
    assert [type(e) for e in errors] == [ConnectionLossError] and out.closes == [1]


def test_a_forwarded_write_of_an_expiring_session_is_refused_as_connection_loss() -> None:
    core = _leader()
    session = _session(core, 1)
    _expire(core)
    forward = ForwardRequest(2, session, 7, OpCode.CREATE, {"path": "/a", "data": b""})
    core.forwarded(forward, now_ms=NOW + 10 * TIMEOUT)
    ((to, refusal),) = core.ready().peer_messages
    assert to == 2 and isinstance(refusal, ForwardReply)
    assert refusal.err == ConnectionLossError.code


def test_a_standalone_server_answers_with_the_notice_once_the_close_is_durable() -> None:
    core = ServerCore(CoreConfig(tick_ms=TICK))
    core.connect(
        1,
        ConnectRequest(protocol_version=PROTOCOL_VERSION, timeout_ms=TIMEOUT),
        now_ms=NOW,
        password=b"p" * 16,
    )
    core.advance(core.ready(), now_ms=NOW)
    assert isinstance(_frames(core, 1)[0], Connected)
    core.tick(NOW + 10 * TIMEOUT)
    core.request(1, 1, OpCode.GET_DATA, {"path": "/"}, now_ms=NOW + 10 * TIMEOUT)
    batch = core.ready()
    assert len(batch.txns) == 1 and not batch.messages  # the close, to be made durable first
    core.advance(batch, now_ms=NOW + 10 * TIMEOUT)
    (notice,) = _frames(core, 1)
    assert isinstance(notice, Notice) and isinstance(notice.error, SessionExpiredError)
