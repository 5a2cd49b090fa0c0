"""The ZooKeeper port on ensemble members (in process, under a MockClock).

Each member gets a ZkPort, as `coord-server --zk-port` gives it; jute
clients reach the members over in-memory streams.
"""

from __future__ import annotations

import trio
import trio.testing

from coord.server.runtime.zk_port import ZkPort
from coord.server.testing import open_test_ensemble
from coord.server.zk import jute
from coord.server.zk.jute import ConnectResponse, PathWatchRequest, ZkOp
from tests.server.zk.jute_client import OPEN_ACL, RawZk


async def test_a_session_made_on_one_member_resumes_on_another(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_test_ensemble(3) as ensemble, trio.open_nursery() as nursery:
        leader = await ensemble.wait_for_leader()
        follower = next(i for i in ensemble.ids if i != leader)
        ports = {i: ZkPort(ensemble.member(i)) for i in ensemble.ids}

        async def connect(member: int, **fields: object) -> tuple[RawZk, ConnectResponse | None]:
            ours, theirs = trio.testing.memory_stream_pair()
            nursery.start_soon(ports[member].serve_stream, theirs, "127.0.0.1")
            return await RawZk.handshake(ours, **fields)  # type: ignore[arg-type]

        first, opened = await connect(follower)
        assert opened is not None and opened.session_id
        header, created = await first.call(
            ZkOp.CREATE2, jute.CreateRequest("/app", b"v", OPEN_ACL, 1)
        )
        assert header.err == 0 and created.stat.ephemeral_owner == opened.session_id
        last_zxid = header.zxid

        other = next(i for i in ensemble.ids if i not in (follower,))
        second, resumed = await connect(
            other, session_id=first.session_id, password=first.password, last_zxid=last_zxid
        )
        assert resumed is not None and resumed.session_id == opened.session_id
        header, _ = await second.call(ZkOp.SYNC, jute.PathRequest("/app"))
        header, data = await second.call(ZkOp.GET_DATA, PathWatchRequest("/app", False))
        assert header.err == 0 and data.data == b"v"
        assert data.stat.ephemeral_owner == opened.session_id

        assert ports[leader].info().mode == "leader"
        assert ports[follower].info().mode == "follower"
        conf = dict(ports[leader].info().config)
        assert {f"server.{i}" for i in ensemble.ids} <= set(conf)
        assert ":participant;" in conf["server.1"]

        header, _ = await second.call(ZkOp.CLOSE_SESSION)
        assert header.err == 0
        watcher, _ = await connect(leader)
        header, _ = await watcher.call(ZkOp.EXISTS, PathWatchRequest("/app", False))
        assert header.err == -101  # the session's ephemeral went with it
        nursery.cancel_scope.cancel()
