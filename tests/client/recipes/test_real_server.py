"""The recipes on a real server, where the real thing is the point: a standalone
server on a TCP port, killed and started again on its data directory, so the
session, the lock's node and its guard survive a real restart and reconnect.
Everything else about the recipes is tested on the in-process ensemble."""

from __future__ import annotations

from coord.client import ClientState

from .conftest import Notifier, RealConnectFactory, RestartableServer

PATH = "/locks/db"


async def test_a_holder_keeps_its_lock_across_a_real_server_restart(
    real_connect: RealConnectFactory, real_server: RestartableServer
) -> None:
    async with real_connect(session_timeout=2) as zk, real_connect(session_timeout=2) as zk2:
        seen: list[ClientState] = []
        states = Notifier()

        def on_state(state: ClientState) -> None:
            seen.append(state)
            states.changed()

        zk.add_listener(on_state)
        async with zk.Lock(PATH) as lock:
            token = lock.token
            await real_server.restart()  # every connection drops; the data is on disk
            # It noticed, reconnected and resumed its session.
            await states.wait_until(lambda: seen == [ClientState.SUSPENDED, ClientState.CONNECTED])
            stat = await zk2.exists(lock.node)  # type: ignore[arg-type]
            assert stat is not None and stat.ephemeral_owner == zk.session_id
            assert lock.is_acquired and lock.token == token
            assert not await zk2.Lock(PATH).acquire(blocking=False)
        assert lock.lost is None
        async with zk2.Lock(PATH) as lock2:
            assert lock2.token is not None and token is not None and lock2.token > token
