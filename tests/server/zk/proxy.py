"""A TCP proxy a test can cut: how a real client is made to lose its server for a while.

kazoo has no switch to stop heartbeating; putting this between it and the
server does the same thing the network would: `block()` drops every proxied
connection and refuses new ones until `unblock()`, so the server sees the
client go silent and expires its session for real.
"""

from __future__ import annotations

import trio


class TcpProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.blocked = False
        self._scopes: set[trio.CancelScope] = set()

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._handle, listeners)

    def block(self) -> None:
        self.blocked = True
        for scope in self._scopes:
            scope.cancel()

    def unblock(self) -> None:
        self.blocked = False

    async def _handle(self, client: trio.SocketStream) -> None:
        if self.blocked:
            await client.aclose()
            return
        try:
            server = await trio.open_tcp_stream("127.0.0.1", self.target_port)
        except OSError:
            await client.aclose()
            return
        with trio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_pump, client, server, nursery.cancel_scope)
                    nursery.start_soon(_pump, server, client, nursery.cancel_scope)
            finally:
                self._scopes.discard(scope)
        with trio.CancelScope(shield=True):
            await client.aclose()
            await server.aclose()


async def _pump(source: trio.SocketStream, sink: trio.SocketStream, done: trio.CancelScope) -> None:
    try:
        async for chunk in source:
            await sink.send_all(chunk)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    done.cancel()
