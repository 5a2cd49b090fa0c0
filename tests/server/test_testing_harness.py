"""coord.server.testing: the in-process ensemble users get for their own tests, and its faults.

Every test runs under MockClock(autojump_threshold=0) (the `autojump_clock`
fixture: pytest-trio runs a test with the trio Clock one of its fixtures
returns), so elections, leases and backoff cost virtual time only.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
from trio.testing import MockClock

from coord.client import ClientState, SessionExpiredError, WatchStream
from coord.messages import CreateMode, EventType
from coord.server.core.tree import DataTree
from coord.server.core.txn import CloseSessionTxn, CreateTxn, Txn, TxnHeader
from coord.server.runtime.disk import DataDirLocked, StorageError
from coord.server.testing import InProcessEnsemble, open_test_ensemble
from coord.server.testing.memory_disk import MemoryDataDir, MemoryDisk
from coord.server.testing.memory_peers import MemoryNetwork
from coord.server.zab.messages import Role
from coord.server.zab.peer import ZabPeer


def _followers(ensemble: InProcessEnsemble, leader: int) -> list[int]:
    return [m for m in ensemble.running if m != leader]


def _zab(ensemble: InProcessEnsemble, member_id: int) -> ZabPeer:
    zab = ensemble.member(member_id).zab
    assert zab is not None
    return zab


def _tree(ensemble: InProcessEnsemble, member_id: int) -> DataTree:
    core = ensemble.member(member_id).core
    assert core is not None
    return core.tree


async def _wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def test_the_clock_is_virtual_and_no_thread_is_used(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_threads(*args: object, **kwargs: object) -> None:
        raise AssertionError("a thread under MockClock: the clock would jump while it runs")

    monkeypatch.setattr(trio.to_thread, "run_sync", no_threads)
    assert trio.lowlevel.current_clock() is autojump_clock
    async with open_test_ensemble(3, snapshot_every=5) as ensemble, ensemble.client() as zk:
        for i in range(12):  # enough for snapshots, which use the disk too
            await zk.create(f"/n{i}", b"x")
        await trio.sleep(60)  # 30 session timeouts of virtual time: heartbeats keep it alive
        assert zk.state is ClientState.CONNECTED
        assert any(ensemble.disk(m).snapshots for m in ensemble.ids)


async def test_a_leader_is_elected_and_every_member_serves(autojump_clock: MockClock) -> None:
    async with open_test_ensemble(3) as ensemble:
        leader = ensemble.leader()
        assert leader is not None
        assert _zab(ensemble, leader).role is Role.LEADING
        for member_id in _followers(ensemble, leader):
            assert ensemble.serving(member_id)
            assert _zab(ensemble, member_id).leader_id == leader
        assert ensemble.hosts == "member-1:2281,member-2:2281,member-3:2281"
        assert await ensemble.wait_for_leader() == leader


async def test_writes_through_a_follower_reach_every_member(autojump_clock: MockClock) -> None:
    async with open_test_ensemble(3) as ensemble:
        leader = await ensemble.wait_for_leader()
        follower = _followers(ensemble, leader)[0]
        async with ensemble.client([follower]) as zk:
            assert ensemble.member_of(zk.connected_host or "") == follower
            path = await zk.create("/through-follower", b"v1")
            stat = await zk.set(path, b"v2")
        async with ensemble.client([leader]) as direct:
            data, seen = await direct.get(path)
            assert data == b"v2" and seen.mzxid == stat.mzxid
        await ensemble.wait_serving()
        await _wait_until(lambda: all(path in _tree(ensemble, m).nodes for m in ensemble.running))


async def test_killing_the_leader_keeps_acked_writes_and_the_session(
    autojump_clock: MockClock,
) -> None:
    async with open_test_ensemble(3) as ensemble:
        leader = await ensemble.wait_for_leader()
        async with ensemble.client(session_timeout=2) as zk:
            session = zk.session_id
            eph = await zk.create("/mine", b"", ephemeral=True)
            acked = [await zk.create(f"/acked-{i}", b"%d" % i) for i in range(20)]
            await ensemble.kill(leader)
            assert leader not in ensemble.running
            new_leader = await ensemble.wait_for_leader()
            assert new_leader != leader
            after = await zk.create("/after", b"")
            assert zk.session_id == session and zk.state is ClientState.CONNECTED
            assert await zk.exists(eph) is not None, "the session's ephemeral survived"
            children = set(await zk.get_children("/"))
            assert {p.lstrip("/") for p in [*acked, after]} <= children
            # The dead leader comes back as a follower with everything.
            await ensemble.restart(leader)
            await ensemble.wait_serving(leader)
            assert ensemble.leader() == new_leader
        async with ensemble.client([leader]) as back:
            await back.sync("/")
            assert {p.lstrip("/") for p in [*acked, after]} <= set(await back.get_children("/"))
            assert await back.exists(eph) is None, "closing the session removed it"


async def test_a_partitioned_member_stops_serving_and_catches_up_after_heal(
    autojump_clock: MockClock,
) -> None:
    async with open_test_ensemble(3) as ensemble:
        async with ensemble.client(session_timeout=2) as zk:
            await zk.create("/before", b"")
            eph = await zk.create("/eph", b"", ephemeral=True)
            session = zk.session_id
            isolated = ensemble.member_of(zk.connected_host or "")  # maybe the leader
            others = [m for m in ensemble.ids if m != isolated]
            ensemble.partition({isolated})
            await _wait_until(lambda: not ensemble.serving(isolated))
            majority_leader = await ensemble.wait_for_leader(among=others)
            # Its client moved to the majority side and kept its session.
            during = [await zk.create(f"/during-{i}", b"") for i in range(10)]
            assert ensemble.member_of(zk.connected_host or "") in others
            assert zk.session_id == session and await zk.exists(eph) is not None
            assert not ensemble.serving(isolated)
            ensemble.heal()
            await ensemble.wait_serving(isolated)
            assert ensemble.leader() == majority_leader
        async with ensemble.client([isolated]) as direct:
            await direct.sync("/")
            children = set(await direct.get_children("/"))
            assert {"before", *(p.lstrip("/") for p in during)} <= children


async def test_expire_session_removes_ephemerals_and_the_client_sees_lost(
    autojump_clock: MockClock,
) -> None:
    async with open_test_ensemble(3) as ensemble:
        async with ensemble.client(session_timeout=2) as doomed, ensemble.client() as other:
            states: list[ClientState] = []
            doomed.add_listener(states.append)
            eph = await doomed.create("/lock-holder", b"", ephemeral=True)
            events = WatchStream()
            assert await other.exists(eph, watch=events) is not None
            started = trio.current_time()
            await ensemble.expire_session(doomed)
            assert trio.current_time() - started < 5  # about the session timeout
            assert doomed.state is ClientState.LOST
            assert states[-2:] == [ClientState.SUSPENDED, ClientState.LOST]
            with pytest.raises(SessionExpiredError):
                await doomed.get("/")
            event = await events.next()
            assert event.type is EventType.DELETED and event.path == eph
            assert await other.exists(eph) is None
            assert other.state is ClientState.CONNECTED
        # It was an expiry (the leader's lease ran out), not a close asked by a client.
        log = list(MemoryDataDir(ensemble.disk(ensemble.ids[0])).read_from(0))
        closes = [t.body for t in log if isinstance(t.body, CloseSessionTxn)]
        assert any(c.expired and c.session_id == doomed.session_id for c in closes)


async def test_disconnect_breaks_the_connection_and_the_session_resumes(
    autojump_clock: MockClock,
) -> None:
    async with open_test_ensemble(3) as ensemble, ensemble.client() as zk:
        states: list[ClientState] = []
        zk.add_listener(states.append)
        session = zk.session_id
        ensemble.disconnect(zk)
        await zk.create("/still-here", b"")
        assert states == [ClientState.SUSPENDED, ClientState.CONNECTED]
        assert zk.session_id == session


async def test_the_whole_ensemble_restarts_with_its_data(autojump_clock: MockClock) -> None:
    async with open_test_ensemble(3, snapshot_every=7) as ensemble:
        async with ensemble.client() as zk:
            for i in range(20):
                await zk.create(f"/kept-{i}", b"%d" % i)
            stat = await zk.set("/kept-3", b"three")
        assert all(ensemble.disk(m).snapshots for m in ensemble.ids), "snapshots were taken"
        for member_id in ensemble.ids:
            await ensemble.kill(member_id)
        assert ensemble.running == [] and ensemble.leader() is None
        for member_id in ensemble.ids:
            await ensemble.restart(member_id)
        await ensemble.wait_serving()
        async with ensemble.client() as zk:
            await zk.sync("/")
            data, after = await zk.get("/kept-3")
            assert data == b"three" and after.mzxid == stat.mzxid
            assert {f"kept-{i}" for i in range(20)} <= set(await zk.get_children("/"))


async def test_a_member_without_a_quorum_never_serves(autojump_clock: MockClock) -> None:
    async with open_test_ensemble(3) as ensemble:
        leader = await ensemble.wait_for_leader()
        for member_id in _followers(ensemble, leader):
            await ensemble.kill(member_id)
        await _wait_until(lambda: not ensemble.serving(leader))
        with pytest.raises(trio.TooSlowError, match="no leader was established"):
            await ensemble.wait_for_leader(timeout=5)


async def test_an_error_in_the_block_comes_out_bare(autojump_clock: MockClock) -> None:
    with pytest.raises(KeyError, match="mine"):
        async with open_test_ensemble(3):
            raise KeyError("mine")


async def test_writes_through_an_observer(autojump_clock: MockClock) -> None:
    async with open_test_ensemble(3, observers=1) as ensemble:
        assert _zab(ensemble, 4).role is Role.OBSERVING
        async with ensemble.client([4]) as zk:
            await zk.create("/via-observer", b"")
            assert await zk.exists("/via-observer") is not None
        await ensemble.kill(4)
        assert await ensemble.wait_for_leader() is not None, "observers never count"


async def test_a_single_voter_elects_itself(autojump_clock: MockClock) -> None:
    async with open_test_ensemble(1, wait_ready=False) as ensemble:
        assert await ensemble.wait_for_leader(timeout=10) == 1


# -- the in-memory pieces on their own ------------------------------------------------------


def _txn(zxid: int, path: str) -> Txn:
    return Txn(TxnHeader(zxid, 0, 0, 0), CreateTxn(path, b"", CreateMode.PERSISTENT, 0, 0, zxid))


def test_memory_disk_recovers_through_the_real_formats() -> None:
    disk = MemoryDisk("d")
    storage = MemoryDataDir(disk, segment_bytes=32)
    storage.lock()
    with pytest.raises(DataDirLocked):
        MemoryDataDir(disk).lock()
    storage.append([_txn(1, "/a"), _txn(2, "/b")])
    storage.append([_txn(3, "/c")])
    storage.save_epochs(2, 1)
    assert len(disk.segments) == 2  # rolled at 32 bytes
    _, handle = storage.begin_snapshot(3)
    handle.write(b"half a snapshot")  # a crash now: never finished
    storage.close()
    again = MemoryDataDir(disk)
    again.lock()
    recovered = again.recover()
    assert set(recovered.tree.nodes) >= {"/a", "/b", "/c"} and recovered.replayed == 3
    assert again.load_epochs() == (2, 1) and not disk.snapshots
    assert again.truncate_after(1) == 2
    assert [t.zxid for t in again.read_from(0)] == [1]
    assert disk.last_zxid() == 1


def test_memory_disk_cuts_a_torn_tail_and_stops_at_corruption() -> None:
    disk = MemoryDisk("d")
    storage = MemoryDataDir(disk)
    storage.append([_txn(1, "/a"), _txn(2, "/b")])
    (segment,) = disk.segments.values()
    del segment[-3:]  # the second record is cut short
    recovered = MemoryDataDir(disk).recover()
    assert recovered.truncated_bytes > 0 and set(recovered.tree.nodes) >= {"/a"}
    assert "/b" not in recovered.tree.nodes
    storage = MemoryDataDir(disk)
    storage.append([_txn(3, "/c")])
    first = min(disk.segments)
    disk.segments[first][-1] ^= 0xFF  # a flipped bit in a whole record, more after it
    disk.segments[first] += disk.segments[first][-8:]
    with pytest.raises(StorageError, match="corrupt"):
        MemoryDataDir(disk).recover()


def test_memory_network_partitions() -> None:
    network = MemoryNetwork()
    assert network.connected(1, 2)
    network.partition({1})
    assert not network.connected(1, 2) and network.connected(2, 3)
    network.partition({1, 2}, {3})
    assert network.connected(1, 2) and not network.connected(2, 3)
    with pytest.raises(ValueError, match="two sides"):
        network.partition({1}, {1, 2})
    network.heal()
    assert network.connected(1, 3)
