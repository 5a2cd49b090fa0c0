"""The Client: one session with the ensemble, kept alive across connections.

    async with Client("127.0.0.1:2281", session_timeout=10) as zk:
        path = await zk.create("/jobs/job-", b"x", ephemeral=True, sequential=True)
        data, stat = await zk.get(path, watch=on_change)

The API follows kazoo's names and semantics where they fit, as coroutines.

How it runs. `async with` opens a nursery that owns one task, the session
task. It connects (hosts in random order, with backoff), performs the
handshake, and serves the connection (connection.run_connection: a reader
and a writer) until it breaks; then it reconnects with the same session id
and password. Every piece of bookkeeping that survives a reconnect lives in
the sans-IO ClientProtocol: the outbox and in-flight calls, the watch
registry and the highest zxid seen.

A request is a `Call` put in the outbox (synchronously, so call order is wire
order and effect order); the writer sends it, the reader resolves it, and the
caller waits on a trio.Event for at most `request_timeout`. Requests made
while the connection is down wait in the outbox and go out after the
reconnect, behind the SET_WATCHES that re-registers every watch.

State changes (states.py): connection lost -> SUSPENDED, in-flight calls fail
with ConnectionLossError (their outcome is unknown); reconnected -> CONNECTED;
the server says the session expired, or the session timeout passes without
a reconnect -> LOST, and every call raises SessionExpiredError from then on.
Leaving the `async with` block sends CLOSE_SESSION (the server drops our
ephemerals at once) and then every call raises SessionClosedError.
"""

from __future__ import annotations

import inspect
import logging
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Concatenate, Final, Literal, ParamSpec, TypeVar, overload

import msgpack
import trio

from coord.acl import ACL, acl_from_wire
from coord.errors import (
    AuthFailedError,
    ConnectionLossError,
    FrameTooLargeError,
    KeeperError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    NoWatcherError,
    ProtocolError,
    RequestTimeoutError,
    SessionClosedError,
    SessionExpiredError,
)
from coord.framing import MAX_FRAME_SIZE, FrameDecoder
from coord.messages import (
    MAX_XID,
    PROTOCOL_VERSION,
    AddWatchMode,
    ConnectRequest,
    ConnectResponse,
    OpCode,
    Stat,
    WatchedEvent,
    WatcherType,
)
from coord.paths import ancestors, join, parent, validate

from . import ops, recipes
from .connection import CONNECTION_ERRORS, Signal, handshake, run_connection
from .hosts import HostPort, parse_hosts
from .pending import Call, ReplyHook
from .protocol import ClientProtocol, NoticeReceived, call_watcher
from .states import ClientState
from .streams import DEFAULT_BUFFER, StateStream, WatchStream
from .transaction import Transaction
from .watches import WatchCallback, WatchKind, split_set_watches

log = logging.getLogger(__name__)

StreamFactory = Callable[[str, int], Awaitable[trio.abc.Stream]]
"""How to open a connection: (host, port) -> stream. trio.open_tcp_stream by
default; tests pass in-memory streams, TLS users an SSL-wrapping factory."""

StateListener = Callable[[ClientState], Any]

PIPELINE_CHUNK: Final = 512
"""Most requests a helper (ensure_path, recursive delete) keeps in flight."""

SET_WATCHES_BUDGET: Final = MAX_FRAME_SIZE // 2
"""Path bytes per SET_WATCHES frame; more watches are split over several frames."""

RECURSIVE_DELETE_TRIES: Final = 5

P = ParamSpec("P")
R = TypeVar("R")


def _recipe(cls: Callable[Concatenate[Client, P], R]) -> Callable[Concatenate[Client, P], R]:
    """A Client method `zk.Name(...)` that makes `Name(zk, ...)`: kazoo's recipe factories."""

    def make(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return cls(self, *args, **kwargs)

    make.__name__ = make.__qualname__ = getattr(cls, "__name__", "recipe")
    make.__doc__ = getattr(cls, "__doc__", None)
    return make


_SERVER_TYPE_OF_KIND: Final = {
    WatchKind.DATA: WatcherType.DATA,
    WatchKind.EXIST: WatcherType.DATA,
    WatchKind.CHILD: WatcherType.CHILDREN,
    WatchKind.PERSISTENT: WatcherType.PERSISTENT,
    WatchKind.PERSISTENT_RECURSIVE: WatcherType.PERSISTENT_RECURSIVE,
}


class Client:
    """A session with the coordination service; use as `async with Client(hosts) as zk`.

    `hosts` is "host:port,host:port" (default port 2281). `session_timeout`
    is the requested session lease in seconds (the server may negotiate
    another; see `session_timeout` once connected). `request_timeout` bounds
    every call, including time spent waiting for a reconnect.
    `connect_timeout` bounds the first connection (default: the session
    timeout). `stream_factory` and `rng` are for tests and custom transports.

    `auth` is a list of (scheme, credential) pairs, kazoo's `auth_data`, e.g.
    `[("digest", "alice:secret")]`: the server applies them before it makes or
    resumes the session, on every connection. `default_acl` is the ACL of every
    node this client creates without an explicit `acl` (default: the open ACL).
    `ssl_context` makes every connection TLS (`ssl.create_default_context(cafile=...)`;
    load a client certificate into it for mutual TLS and x509 ACLs).
    """

    def __init__(
        self,
        hosts: str,
        session_timeout: float = 10.0,
        request_timeout: float = 30.0,
        *,
        connect_timeout: float | None = None,
        retry_delay: float = 0.1,
        retry_max_delay: float = 2.0,
        stream_factory: StreamFactory | None = None,
        rng: random.Random | None = None,
        auth: Iterable[tuple[str, str | bytes]] = (),
        default_acl: Iterable[ACL] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._hosts: list[HostPort] = parse_hosts(hosts)
        self._auth: list[tuple[str, bytes]] = []
        for scheme, credential in auth:
            self._remember_auth(ops.auth_pair(scheme, credential))
        self.default_acl: list[ACL] | None = (
            None if default_acl is None else list(acl_from_wire(ops.acl_body(default_acl)))
        )
        """kazoo's attribute: the ACL of nodes created without an explicit one."""
        if session_timeout <= 0 or request_timeout <= 0:
            raise ValueError("session_timeout and request_timeout must be positive")
        self._requested_timeout = float(session_timeout)
        self._negotiated_timeout = float(session_timeout)
        self._request_timeout = float(request_timeout)
        self._connect_timeout = float(
            session_timeout if connect_timeout is None else connect_timeout
        )
        self._retry_delay = retry_delay
        self._retry_max_delay = retry_max_delay
        if stream_factory is not None and ssl_context is not None:
            raise ValueError("give ssl_context or stream_factory, not both")
        self._stream_factory: StreamFactory = stream_factory or trio.open_tcp_stream
        if ssl_context is not None:
            self._stream_factory = tls_stream_factory(ssl_context)
        self._rng = rng or random.Random()

        self._protocol = ClientProtocol()
        self._wakeup = Signal()
        self._state = ClientState.CLOSED
        self._listeners: list[StateListener] = []
        self._session_id = 0
        self._password = b""
        self._host: HostPort | None = None
        self._last_error = "no attempt yet"
        self._failures = 0
        self._disconnected_at = 0.0
        self._entered = False
        self._closing = False
        self._terminal: tuple[type[KeeperError], str] | None = None
        self._nursery_manager: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._nursery: trio.Nursery | None = None
        self._session_scope = trio.CancelScope(shield=True)

    def __repr__(self) -> str:
        hosts = ",".join(str(h) for h in self._hosts)
        return f"<Client {hosts} session=0x{self._session_id:x} {self._state.value}>"

    # ------------------------------------------------------------------
    # Lifecycle.

    async def __aenter__(self) -> Client:
        if self._entered:
            raise RuntimeError("a Client can be entered only once; make a new one")
        self._entered = True
        manager = trio.open_nursery()
        nursery = await manager.__aenter__()
        try:
            await nursery.start(self._serve_session_shielded)
        except BaseException:
            self._terminal = (SessionClosedError, "the client never connected")
            self._session_scope.cancel()
            nursery.cancel_scope.cancel()
            await manager.__aexit__(None, None, None)
            raise
        self._nursery_manager = manager
        self._nursery = nursery
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        """Close the session on the server if we can, then stop every task."""
        if self._nursery is None or self._nursery_manager is None:
            return
        if self._state is ClientState.CONNECTED and not self._closing:
            call = self._submit(OpCode.CLOSE_SESSION, {})
            self._closing = True
            # Shielded: leaving the block because of a cancellation must still
            # tell the server, or our ephemerals outlive us by a session timeout.
            with trio.CancelScope(shield=True):
                try:
                    await self._wait(call, deadline=trio.current_time() + self._close_timeout())
                except KeeperError as exc:
                    log.debug("close session: %s", exc)
        self._closing = True
        if not self._state.is_final:
            self._finish(ClientState.CLOSED, SessionClosedError, "the client was closed")
        nursery, manager = self._nursery, self._nursery_manager
        self._nursery = self._nursery_manager = None
        self._session_scope.cancel()
        nursery.cancel_scope.cancel()
        await manager.__aexit__(None, None, None)

    def _close_timeout(self) -> float:
        return min(self._request_timeout, self._negotiated_timeout)

    # ------------------------------------------------------------------
    # Properties.

    @property
    def state(self) -> ClientState:
        """CONNECTED, SUSPENDED, LOST, or CLOSED (before and after the `async with`)."""
        return self._state

    @property
    def connected(self) -> bool:
        return self._state is ClientState.CONNECTED

    @property
    def session_id(self) -> int:
        """The session's id (0 before the first connection)."""
        return self._session_id

    @property
    def client_id(self) -> tuple[int, bytes] | None:
        """(session id, password), kazoo's name; None before the first connection."""
        return (self._session_id, self._password) if self._session_id else None

    @property
    def session_timeout(self) -> float:
        """The negotiated session timeout in seconds (the requested one before connecting)."""
        return self._negotiated_timeout

    @property
    def last_zxid(self) -> int:
        """The highest zxid seen in any reply or event."""
        return self._protocol.last_zxid

    @property
    def connected_host(self) -> str | None:
        """'host:port' of the current connection, None when not connected."""
        return str(self._host) if self._host is not None and self.connected else None

    # ------------------------------------------------------------------
    # State listeners.

    def add_listener(self, listener: StateListener) -> None:
        """Call `listener(state)` on every state change (from the session task)."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove_listener(self, listener: StateListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def states(self, max_buffer: int = DEFAULT_BUFFER) -> StateStream:
        """An async iterator of state changes from now on; ends after LOST or CLOSED."""
        stream = StateStream(max_buffer, detach=self.remove_listener)
        if self._state.is_final and self._entered:
            stream.close()
        else:
            self.add_listener(stream)
        return stream

    def _set_state(self, state: ClientState) -> None:
        if state is self._state:
            return
        log.info("session 0x%x: %s -> %s", self._session_id, self._state.value, state.value)
        self._state = state
        for listener in list(self._listeners):
            try:
                listener(state)
            except Exception:
                log.exception("state listener %r failed on %s", listener, state.value)

    def _finish(self, state: ClientState, error: type[KeeperError], message: str) -> None:
        """End the session for good: fail every call, end every stream, then tell listeners."""
        self._terminal = (error, message)
        self._protocol.requests.fail_all(lambda call: error(f"{message}; {call.describe()} failed"))
        for callback in self._protocol.watches.clear():
            if isinstance(callback, WatchStream):
                callback.close(error(message) if state is ClientState.LOST else None)
        self._set_state(state)
        if state.is_final:
            self._listeners = [x for x in self._listeners if not isinstance(x, StateStream)]

    # ------------------------------------------------------------------
    # The session task.

    async def _serve_session_shielded(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The session task, shielded from the caller's cancellation: only `_close` stops
        it, so that leaving the block on a cancellation can still send CLOSE_SESSION."""
        with self._session_scope:
            await self._serve_session(task_status=task_status)

    async def _serve_session(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Connect, serve, reconnect, until the session ends or the client closes."""
        link: tuple[trio.abc.Stream, FrameDecoder, HostPort] | None = None
        with trio.move_on_after(self._connect_timeout):
            link = await self._connect_any()
        if link is None:
            hosts = ",".join(str(h) for h in self._hosts)
            raise ConnectionLossError(
                f"could not connect to {hosts} within {self._connect_timeout:g} s"
                f" (last error: {self._last_error})"
            )
        task_status.started()
        while True:
            stream, decoder, host = link
            before = self._protocol.frames_received
            reason = await run_connection(
                stream,
                decoder,
                self._protocol,
                self._wakeup,
                read_timeout=self._negotiated_timeout * 2 / 3,
                ping_interval=self._negotiated_timeout / 3,
            )
            self._failures = 0 if self._protocol.frames_received > before else self._failures + 1
            message = f"connection to {host} lost: {reason}"
            if self._closing:
                self._protocol.requests.fail_in_flight(_connection_loss(message))
                return
            # Writes in flight are resent after the reconnect with their xids: the
            # ensemble applies each at most once. Reads in flight fail (retry them freely).
            self._protocol.requests.requeue_in_flight(_is_resent, _connection_loss(message))
            if isinstance(reason, NoticeReceived):
                self._last_error = f"{host}: {reason}"
                if isinstance(reason.error, SessionExpiredError):
                    self._expire(f"the server said so: {reason.error}")
                    return
            log.warning("session 0x%x: %s", self._session_id, message)
            self._disconnected_at = trio.current_time()
            self._set_state(ClientState.SUSPENDED)
            deadline = self._disconnected_at + self._negotiated_timeout
            link = None
            try:
                with trio.move_on_at(deadline):
                    link = await self._connect_any()
            except SessionExpiredError as exc:
                self._expire(f"the server said so on reconnect: {exc}")
                return
            except AuthFailedError as exc:
                self._finish(ClientState.LOST, AuthFailedError, f"reconnecting: {exc}")
                return
            if link is None:
                self._expire(
                    f"not reconnected within the session timeout of {self._negotiated_timeout:g} s"
                    f" (last error: {self._last_error})"
                )
                return

    def _expire(self, why: str) -> None:
        self._finish(
            ClientState.LOST, SessionExpiredError, f"session 0x{self._session_id:x} expired: {why}"
        )

    def _backoff(self) -> float:
        """Exponential backoff with jitter, capped so a reconnect fits in the session timeout."""
        cap = min(self._retry_max_delay, self._negotiated_timeout / 3)
        delay = min(cap, self._retry_delay * 2 ** min(self._failures - 1, 30))
        return delay * self._rng.uniform(0.5, 1.0)

    async def _connect_any(self) -> tuple[trio.abc.Stream, FrameDecoder, HostPort]:
        """Try every host in random order, backing off between rounds, until one answers.

        Raises SessionExpiredError when a server says our session is gone;
        the caller bounds the whole attempt with its own deadline.
        """
        while True:
            if self._failures:
                await trio.sleep(self._backoff())
            hosts = list(self._hosts)
            self._rng.shuffle(hosts)
            for host in hosts:
                try:
                    return await self._connect(host)
                except (SessionExpiredError, AuthFailedError):
                    raise
                except (*CONNECTION_ERRORS, KeeperError, trio.TooSlowError) as exc:
                    self._last_error = f"{host}: {exc or type(exc).__name__}"
                    log.info("connecting to %s failed: %s", host, self._last_error)
            self._failures += 1

    async def _connect(self, host: HostPort) -> tuple[trio.abc.Stream, FrameDecoder, HostPort]:
        """Open a stream to `host`, shake hands, and adopt the session it grants."""
        request = ConnectRequest(
            protocol_version=PROTOCOL_VERSION,
            last_zxid_seen=self._protocol.last_zxid,
            timeout_ms=round(self._requested_timeout * 1000),
            session_id=self._session_id,
            password=self._password,
            auth=list(self._auth),
        )
        with trio.fail_after(max(self._requested_timeout / len(self._hosts), 0.05)):
            stream = await self._stream_factory(host.host, host.port)
            try:
                response, decoder = await handshake(stream, request)
            except BaseException:
                await trio.aclose_forcefully(stream)
                raise
        try:
            self._check_response(response)
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        self._adopt(response, host)
        return stream, decoder, host

    def _check_response(self, response: ConnectResponse) -> None:
        if response.error:
            raise KeeperError.from_wire(response.error, {"message": response.message})
        if self._session_id and response.session_id != self._session_id:
            # Never take a new session in place of ours: whatever depended on
            # the old one (ephemerals, locks) is gone and the user must know.
            raise SessionExpiredError(
                f"asked to resume session 0x{self._session_id:x},"
                f" the server offered 0x{response.session_id:x}"
            )
        if response.timeout_ms <= 0:
            raise SessionExpiredError("the server granted a session timeout of 0")

    def _adopt(self, response: ConnectResponse, host: HostPort) -> None:
        """Take the session, queue SET_WATCHES ahead of everything, become CONNECTED."""
        if not self._session_id:
            # A new session's answer names the zxid that created it: a member that has
            # not applied that much would not know the session and call it expired.
            # Seen, it makes such a member refuse us as behind, and we try the next
            # one. (A resumed session's answer is not counted: its zxid may run ahead
            # of watch events this session is still owed; see ClientProtocol.)
            self._protocol.see_zxid(response.zxid)
        self._session_id = response.session_id
        self._password = response.password
        self._negotiated_timeout = response.timeout_ms / 1000
        self._host = host
        self._protocol.requests.abandon_queued(OpCode.SET_WATCHES)
        lists = self._protocol.watches.set_watches()
        if lists:
            bodies = split_set_watches(lists, self._protocol.last_zxid, SET_WATCHES_BUDGET)
            for body in reversed(bodies):
                call = Call(OpCode.SET_WATCHES, body, on_reply=_log_set_watches_error)
                self._protocol.requests.enqueue(call, first=True)
        self._wakeup.set()
        self._set_state(ClientState.CONNECTED)

    # ------------------------------------------------------------------
    # Sending requests.

    def _check_usable(self) -> None:
        if self._terminal is not None:
            error, message = self._terminal
            raise error(message)
        if self._closing:
            raise SessionClosedError("the client is closing")
        if not self._entered:
            raise SessionClosedError("the client is not started: use `async with Client(...)`")

    def _submit(
        self,
        op: int,
        body: Any,
        *,
        path: str | None = None,
        on_reply: ReplyHook | None = None,
    ) -> Call:
        """Queue a request (synchronously: call order is wire order) and wake the writer."""
        self._check_usable()
        try:
            size = len(msgpack.packb([MAX_XID, int(op), body], use_bin_type=True))
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"cannot encode the {op} request body: {exc}") from None
        if size > MAX_FRAME_SIZE:
            raise FrameTooLargeError(
                f"{Call(op, {}, path=path).describe()} request is {size} bytes,"
                f" over the frame limit of {MAX_FRAME_SIZE} bytes"
            )
        call = Call(int(op), body, path=path, on_reply=on_reply)
        self._protocol.requests.enqueue(call)
        self._wakeup.set()
        return call

    async def _wait(self, call: Call, deadline: float | None = None) -> Any:
        """Wait for a call's outcome until `deadline` (default: request_timeout from now)."""
        if call.done:
            await trio.lowlevel.checkpoint()
            return call.outcome()
        start = trio.current_time()
        if deadline is None:
            deadline = start + self._request_timeout
        event = trio.Event()
        call.notify = event.set
        try:
            with trio.move_on_at(deadline):
                await event.wait()
        finally:
            if not call.done:
                call.abandoned = True
        if not call.done:
            raise RequestTimeoutError(
                f"{call.describe()} got no reply within {deadline - start:g} s"
                f" (state {self._state.value})",
                path=call.path,
            )
        return call.outcome()

    async def _request(
        self,
        op: int,
        body: Any,
        *,
        path: str | None = None,
        on_reply: ReplyHook | None = None,
        linearizable: bool = False,
    ) -> Any:
        """Send one raw request and return its raw result (no local validation).

        Meant for the client's own methods and for tests that need to send
        what the public API refuses, to exercise the server's checks.
        `linearizable` sends a sync just ahead of it: the sync goes through the
        leader and a quorum, and the read, answered after it in session order,
        sees every write committed before the read was sent.
        """
        if path is None and isinstance(body, dict) and isinstance(body.get("path"), str):
            path = body["path"]
        if linearizable:
            sync = self._submit(OpCode.SYNC, {"path": path or "/"}, path=path)
            read = self._submit(op, body, path=path, on_reply=on_reply)
            deadline = trio.current_time() + self._request_timeout
            try:
                await self._wait(sync, deadline)
            finally:
                if not sync.done:
                    read.abandoned = True
            return await self._wait(read, deadline)
        return await self._wait(self._submit(op, body, path=path, on_reply=on_reply))

    async def _pipeline(self, requests: Sequence[tuple[int, dict[str, Any]]]) -> list[Any]:
        """Send requests back to back and collect results (a KeeperError stands for a failure).

        Requests take effect in the order sent, so a pipeline of creates
        from the root down builds a path in one round trip.
        """
        out: list[Any] = []
        for start in range(0, len(requests), PIPELINE_CHUNK):
            chunk = requests[start : start + PIPELINE_CHUNK]
            calls = [self._submit(op, body, path=body.get("path")) for op, body in chunk]
            deadline = trio.current_time() + self._request_timeout
            try:
                for call in calls:
                    try:
                        out.append(await self._wait(call, deadline))
                    except KeeperError as exc:
                        out.append(exc)
            finally:
                for call in calls:
                    if not call.done:
                        call.abandoned = True
        return out

    # ------------------------------------------------------------------
    # Znode operations.

    @overload
    async def create(
        self,
        path: str,
        value: bytes = ...,
        *,
        ephemeral: bool = ...,
        sequential: bool = ...,
        container: bool = ...,
        ttl: float | None = ...,
        makepath: bool = ...,
        include_data: Literal[False] = ...,
        acl: Iterable[ACL] | None = ...,
    ) -> str: ...

    @overload
    async def create(
        self,
        path: str,
        value: bytes = ...,
        *,
        ephemeral: bool = ...,
        sequential: bool = ...,
        container: bool = ...,
        ttl: float | None = ...,
        makepath: bool = ...,
        include_data: Literal[True],
        acl: Iterable[ACL] | None = ...,
    ) -> tuple[str, Stat]: ...

    async def create(
        self,
        path: str,
        value: bytes = b"",
        *,
        ephemeral: bool = False,
        sequential: bool = False,
        container: bool = False,
        ttl: float | None = None,
        makepath: bool = False,
        include_data: bool = False,
        acl: Iterable[ACL] | None = None,
    ) -> str | tuple[str, Stat]:
        """Create a node; returns its path (with the sequence suffix if sequential).

        `ttl` is in seconds (a persistent node deleted after that long without
        children or changes). `makepath` creates missing parents as
        persistent nodes, with the same ACL (as kazoo does). `include_data`
        returns (path, Stat). `acl` defaults to the client's `default_acl`.
        """
        chosen = self._acl_or_default(acl)
        body = ops.create_body(
            path,
            value,
            ephemeral=ephemeral,
            sequential=sequential,
            container=container,
            ttl=ttl,
            acl=chosen,
        )
        try:
            result = await self._request(OpCode.CREATE, body, path=path)
        except NoNodeError:
            if not makepath:
                raise
            await self._make_path(parent(path), chosen)
            result = await self._request(OpCode.CREATE, body, path=path)
        created, stat = ops.parse_create(result)
        return (created, stat) if include_data else created

    def _acl_or_default(self, acl: Iterable[ACL] | None) -> list[ACL] | None:
        """The ACL a create sends: `acl`, else the client's default (None: the open ACL)."""
        if acl is None:
            return self.default_acl
        return list(acl)

    async def ensure_path(self, path: str, acl: Iterable[ACL] | None = None) -> None:
        """Make sure `path` and all its ancestors exist (as persistent nodes).

        Nodes it creates get `acl`, else the client's default ACL.
        """
        validate(path)
        if path == "/" or await self.exists(path) is not None:
            return
        await self._make_path(path, self._acl_or_default(acl))

    async def _make_path(self, path: str, acl: list[ACL] | None = None) -> None:
        """Create `path` and its missing ancestors: one round of exists, one of creates."""
        if path == "/":
            return
        chain = [*ancestors(path)[1:], path]
        found = await self._pipeline([(OpCode.EXISTS, {"path": p, "watch": False}) for p in chain])
        for result in found:
            if isinstance(result, KeeperError):
                raise result
        missing = [p for p, stat in zip(chain, found, strict=True) if stat is None]
        if not missing:
            return
        first = chain.index(missing[0])
        bodies = [ops.create_body(p, acl=acl) for p in chain[first:]]
        created = await self._pipeline([(OpCode.CREATE, body) for body in bodies])
        for result in created:
            if isinstance(result, KeeperError) and not isinstance(result, NodeExistsError):
                raise result

    async def delete(self, path: str, version: int = -1, *, recursive: bool = False) -> None:
        """Delete a node; with `recursive`, its whole subtree first (deepest first).

        The recursive form works client side, like kazoo's: it reads the
        subtree level by level, then deletes it in one pipeline, and
        tolerates nodes that vanish meanwhile. `version` applies to `path`.
        """
        body = ops.delete_body(path, version)
        if recursive:
            await self._delete_recursive(path, version)
            return
        await self._request(OpCode.DELETE, body, path=path)

    async def _delete_recursive(self, path: str, version: int) -> None:
        for _ in range(RECURSIVE_DELETE_TRIES):
            nodes: list[str] = []
            level = [path]
            while level:
                results = await self._pipeline(
                    [
                        (OpCode.GET_CHILDREN, {"path": p, "watch": False, "include_stat": False})
                        for p in level
                    ]
                )
                below: list[str] = []
                for node, result in zip(level, results, strict=True):
                    if isinstance(result, NoNodeError):
                        continue
                    if isinstance(result, KeeperError):
                        raise result
                    nodes.append(node)
                    below.extend(join(node, name) for name in ops.parse_children(result)[0])
                level = below
            doomed = [p for p in reversed(nodes) if p != "/"]
            results = await self._pipeline(
                [(OpCode.DELETE, ops.delete_body(p, version if p == path else -1)) for p in doomed]
            )
            retry = False
            for result in results:
                if isinstance(result, NotEmptyError):
                    retry = True
                elif isinstance(result, KeeperError) and not isinstance(result, NoNodeError):
                    raise result
            if not retry:
                return
        raise NotEmptyError(
            f"could not delete {path!r} recursively: children kept appearing", path=path
        )

    async def exists(
        self, path: str, watch: WatchCallback | None = None, *, linearizable: bool = False
    ) -> Stat | None:
        """The node's Stat, or None. A watch fires on create, change or delete.

        `linearizable=True`: see `get`.
        """
        body = {"path": validate(path), "watch": watch is not None}
        hook = self._watch_hook(None, path, watch)
        result = await self._request(
            OpCode.EXISTS, body, path=path, on_reply=hook, linearizable=linearizable
        )
        return ops.parse_exists(result)

    async def get(
        self, path: str, watch: WatchCallback | None = None, *, linearizable: bool = False
    ) -> tuple[bytes, Stat]:
        """The node's data and Stat. A watch fires on change or delete.

        By default the member the client is connected to answers from its own
        state (sequentially consistent, as ZooKeeper's reads); `linearizable=True`
        first confirms through the leader and a quorum that it is current.
        """
        body = {"path": validate(path), "watch": watch is not None}
        hook = self._watch_hook(WatchKind.DATA, path, watch)
        result = await self._request(
            OpCode.GET_DATA, body, path=path, on_reply=hook, linearizable=linearizable
        )
        return ops.parse_get(result)

    @overload
    async def get_children(
        self,
        path: str,
        watch: WatchCallback | None = ...,
        include_data: Literal[False] = ...,
        *,
        linearizable: bool = ...,
    ) -> list[str]: ...

    @overload
    async def get_children(
        self,
        path: str,
        watch: WatchCallback | None = ...,
        *,
        include_data: Literal[True],
        linearizable: bool = ...,
    ) -> tuple[list[str], Stat]: ...

    async def get_children(
        self,
        path: str,
        watch: WatchCallback | None = None,
        include_data: bool = False,
        *,
        linearizable: bool = False,
    ) -> list[str] | tuple[list[str], Stat]:
        """The children's names, sorted; `include_data` adds the node's own Stat.

        A watch fires when a child is created or deleted, or the node is deleted.
        `linearizable=True`: see `get`.
        """
        body = {"path": validate(path), "watch": watch is not None, "include_stat": include_data}
        hook = self._watch_hook(WatchKind.CHILD, path, watch)
        result = await self._request(
            OpCode.GET_CHILDREN, body, path=path, on_reply=hook, linearizable=linearizable
        )
        names, stat = ops.parse_children(result)
        if not include_data:
            return names
        if stat is None:
            raise ProtocolError(f"GET_CHILDREN {path!r} with include_stat returned no stat")
        return names, stat

    def _watch_hook(
        self, kind: WatchKind | None, path: str, watch: WatchCallback | None
    ) -> ReplyHook | None:
        """A reply hook that registers `watch` when the read succeeds, as ZooKeeper does.

        It runs in the reader as the reply is taken, so the watch is in place
        before any later frame (the event it may fire) is handled. `kind`
        None is exists(): a data watch if the node exists, else an exist watch.
        """
        if watch is None:
            return None
        _check_callable(watch)
        registry = self._protocol.watches

        def hook(err: int, result: Any) -> None:
            if err == 0:
                if kind is not None:
                    registry.add(kind, path, watch)
                else:
                    registry.add(WatchKind.EXIST if result is None else WatchKind.DATA, path, watch)

        return hook

    async def set(self, path: str, value: bytes, version: int = -1) -> Stat:
        """Replace the node's data if its version matches (-1: any); returns the new Stat."""
        body = ops.set_body(path, value, version)
        return ops.parse_stat(
            OpCode.SET_DATA, await self._request(OpCode.SET_DATA, body, path=path)
        )

    async def sync(self, path: str = "/") -> str:
        """Wait until the server we talk to has applied every write committed so far.

        A read after sync() is linearizable.
        """
        result = await self._request(OpCode.SYNC, {"path": validate(path)}, path=path)
        return result if isinstance(result, str) else path

    # ------------------------------------------------------------------
    # ACLs and auth.

    async def get_acls(self, path: str) -> tuple[list[ACL], Stat]:
        """The node's ACL and Stat (needs READ or ADMIN; without ADMIN digest
        hashes read "user:x", as ZooKeeper 3.8 shows them)."""
        result = await self._request(OpCode.GET_ACL, {"path": validate(path)}, path=path)
        return ops.parse_acls(result)

    async def set_acls(self, path: str, acls: Iterable[ACL], version: int = -1) -> Stat:
        """Replace the node's ACL (needs ADMIN) if its aversion matches (-1: any)."""
        body = ops.set_acl_body(path, acls, version)
        return ops.parse_stat(OpCode.SET_ACL, await self._request(OpCode.SET_ACL, body, path=path))

    async def add_auth(self, scheme: str, credential: str | bytes) -> None:
        """Authenticate this connection as `scheme:credential` too (kazoo's add_auth).

        The ids take effect for every request after this one, and the client
        sends the credential again on every reconnect. A credential the server
        cannot accept raises AuthFailedError; the session goes on as it was.
        """
        pair = ops.auth_pair(scheme, credential)
        await self._request(OpCode.AUTH, {"scheme": pair[0], "credential": pair[1]})
        self._remember_auth(pair)

    def _remember_auth(self, pair: tuple[str, bytes]) -> None:
        if pair not in self._auth:
            self._auth.append(pair)

    @property
    def auth_data(self) -> list[tuple[str, bytes]]:
        """The credentials this client authenticates with, kazoo's name."""
        return list(self._auth)

    def transaction(self) -> Transaction:
        """A Transaction: add ops, then `await t.commit()` (or use `async with`)."""
        return Transaction(self)

    # ------------------------------------------------------------------
    # Persistent watches.

    async def add_watch(self, path: str, callback: WatchCallback, recursive: bool = False) -> None:
        """A persistent watch (ZooKeeper 3.6 addWatch): fires on every change, never removed.

        Not recursive: data changes, creation and deletion of `path`, and
        changes of its children list. Recursive: creation, change and
        deletion of `path` and of every node below it (no CHILD events).
        """
        _check_callable(callback)
        kind = WatchKind.PERSISTENT_RECURSIVE if recursive else WatchKind.PERSISTENT
        mode = AddWatchMode.PERSISTENT_RECURSIVE if recursive else AddWatchMode.PERSISTENT
        body = {"path": validate(path), "mode": int(mode)}
        registry = self._protocol.watches

        def hook(err: int, result: Any) -> None:
            if err == 0:
                registry.add(kind, path, callback)

        await self._request(OpCode.ADD_WATCH, body, path=path, on_reply=hook)

    async def remove_watches(
        self,
        path: str,
        watcher_type: WatcherType | int,
        callback: WatchCallback | None = None,
    ) -> None:
        """Remove the watches of `watcher_type` on `path` (only `callback`'s, if given).

        Local registrations go at once, and each removed callable gets a
        *_WATCH_REMOVED event (as in ZooKeeper). The server is told to drop
        its watch only when no local callable still needs it. Raises
        NoWatcherError when nothing matched locally.
        """
        validate(path)
        watcher_type = WatcherType(watcher_type)
        self._check_usable()
        registry = self._protocol.watches
        removed = registry.remove(path, watcher_type, callback)
        if not removed:
            raise NoWatcherError(f"no {watcher_type.name} watch on {path!r} to remove", path=path)
        zxid = self._protocol.last_zxid
        for kind, removed_callback in removed:
            call_watcher(removed_callback, WatchedEvent(kind.removed_event, path, zxid))
        if callback is None:
            server_types = [watcher_type]
        else:
            server_types = sorted(
                {
                    _SERVER_TYPE_OF_KIND[kind]
                    for kind, _ in removed
                    if not registry.any_of(path, _SERVER_TYPE_OF_KIND[kind])
                }
            )
        results = await self._pipeline(
            [(OpCode.REMOVE_WATCHES, {"path": path, "watcher_type": int(t)}) for t in server_types]
        )
        for result in results:
            if isinstance(result, KeeperError) and not isinstance(result, NoWatcherError):
                raise result

    async def remove_all_watches(self, path: str) -> None:
        """Remove every watch of every kind on `path`."""
        await self.remove_watches(path, WatcherType.ANY)

    @asynccontextmanager
    async def watch(
        self, path: str, recursive: bool = False, *, max_buffer: int = DEFAULT_BUFFER
    ) -> AsyncIterator[WatchStream]:
        """A persistent watch as an async iterator, removed when the block ends.

        async with zk.watch("/config", recursive=True) as events:
            async for event in events:
                ...
        """
        stream = WatchStream(max_buffer)
        await self.add_watch(path, stream, recursive=recursive)
        try:
            yield stream
        finally:
            stream.close()
            watcher_type = WatcherType.PERSISTENT_RECURSIVE if recursive else WatcherType.PERSISTENT
            if self._terminal is None and not self._closing:
                try:
                    await self.remove_watches(path, watcher_type, stream)
                except KeeperError as exc:
                    log.debug("removing the watch on %r: %s", path, exc)

    # ------------------------------------------------------------------
    # Recipes (coord.client.recipes), under kazoo's names: zk.Lock(path, ...) is
    # recipes.Lock(zk, path, ...).

    Lock = _recipe(recipes.Lock)
    ReadLock = _recipe(recipes.ReadLock)
    WriteLock = _recipe(recipes.WriteLock)
    ReadWriteLock = _recipe(recipes.ReadWriteLock)
    Semaphore = _recipe(recipes.Semaphore)
    Election = _recipe(recipes.Election)
    DataWatch = _recipe(recipes.DataWatch)
    ChildrenWatch = _recipe(recipes.ChildrenWatch)
    TreeCache = _recipe(recipes.TreeCache)
    Barrier = _recipe(recipes.Barrier)
    DoubleBarrier = _recipe(recipes.DoubleBarrier)
    Counter = _recipe(recipes.Counter)
    Queue = _recipe(recipes.Queue)
    LockingQueue = _recipe(recipes.LockingQueue)
    Party = _recipe(recipes.Party)
    NonBlockingLease = _recipe(recipes.NonBlockingLease)
    MultiNonBlockingLease = _recipe(recipes.MultiNonBlockingLease)
    SetPartitioner = _recipe(recipes.SetPartitioner)


_RESENT_OPS = frozenset({OpCode.CREATE, OpCode.DELETE, OpCode.SET_DATA, OpCode.MULTI, OpCode.SYNC})


def tls_stream_factory(context: ssl.SSLContext) -> StreamFactory:
    """A StreamFactory that opens TCP and completes a TLS handshake over it
    (the host name is checked against the certificate when the context says so)."""

    async def open_tls(host: str, port: int) -> trio.abc.Stream:
        tcp = await trio.open_tcp_stream(host, port)
        stream = trio.SSLStream(tcp, context, server_hostname=host)
        try:
            await stream.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(tcp)
            raise
        return stream

    return open_tls


def _is_resent(call: Call) -> bool:
    """Writes (and sync) are resent after a reconnect; the server deduplicates them by xid."""
    return call.op in _RESENT_OPS


def _connection_loss(message: str) -> Callable[[Call], BaseException]:
    """The error for each call in flight when a connection is lost: outcome unknown."""

    def error_for(call: Call) -> BaseException:
        return ConnectionLossError(
            f"{message}; the outcome of {call.describe()} is unknown", path=call.path
        )

    return error_for


def _check_callable(watch: object) -> None:
    """Watch callables are called synchronously from the reader task, so they must be plain."""
    if not callable(watch):
        raise TypeError(f"watch must be callable, got {type(watch).__name__}")
    if inspect.iscoroutinefunction(watch) or inspect.iscoroutinefunction(
        getattr(watch, "__call__", None)  # noqa: B004 - an object with an async __call__
    ):
        raise TypeError(
            "watch callables are called synchronously; pass a WatchStream and"
            " iterate it from a task instead of an async function"
        )


def _log_set_watches_error(err: int, result: Any) -> None:
    if err:
        log.warning("re-registering watches failed: %s", KeeperError.from_wire(err, result))
