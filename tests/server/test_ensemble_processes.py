"""A 3-member ensemble as real processes: SIGKILL the leader, followers, everyone.

The point here is the real thing (processes, sockets, fsync, timers), so these
tests wait on real time, bounded by deadlines; the protocol's logic is tested
message by message and in the simulator.
"""

from __future__ import annotations

import trio

from coord.client import Client, ConnectionLossError, WatchStream
from coord.messages import EventType
from tests.ensemble_procs import ProcessEnsemble


class AckCount:
    """Counts acknowledged writes; a test waits for the count to reach a number."""

    def __init__(self) -> None:
        self.count = 0
        self._waiters: list[tuple[int, trio.Event]] = []

    def add(self) -> None:
        self.count += 1
        for threshold, event in self._waiters:
            if self.count >= threshold:
                event.set()

    async def wait_for(self, threshold: int) -> None:
        if self.count < threshold:
            event = trio.Event()
            self._waiters.append((threshold, event))
            await event.wait()


async def _writer(
    hosts: str, index: int, acked: list[int], maybe: list[int], total: AckCount, stop: trio.Event
) -> None:
    """Sequential creates whose data is a counter: acks go to `acked`, lost replies to `maybe`."""
    async with Client(hosts, session_timeout=4, request_timeout=10) as zk:
        await zk.ensure_path(f"/w{index}")
        counter = 0
        while not stop.is_set():
            try:
                await zk.create(f"/w{index}/n-", b"%d" % counter, sequential=True)
                acked.append(counter)
                total.add()
            except ConnectionLossError:
                maybe.append(counter)
            counter += 1


async def _read_counters(hosts: str, index: int) -> list[int]:
    async with Client(hosts, session_timeout=4) as zk:
        await zk.sync(f"/w{index}")
        names = sorted(await zk.get_children(f"/w{index}"))
        counters = []
        for name in names:
            data, _stat = await zk.get(f"/w{index}/{name}")
            counters.append(int(data))
        return counters


async def test_kill_the_leader_under_write_load(tmp_path):
    ensemble = ProcessEnsemble(tmp_path)
    await ensemble.start_all()
    try:
        leader = await ensemble.wait_all_serving()
        async with Client(ensemble.hosts, session_timeout=4) as keeper:
            eph = await keeper.create("/keeper", b"", ephemeral=True)
            session = keeper.session_id
            stop = trio.Event()
            total = AckCount()
            acked: list[list[int]] = [[], [], []]
            maybe: list[list[int]] = [[], [], []]
            async with trio.open_nursery() as nursery:
                for index in range(3):
                    nursery.start_soon(
                        _writer, ensemble.hosts, index, acked[index], maybe[index], total, stop
                    )
                with trio.fail_after(20):
                    await total.wait_for(300)
                before = total.count
                killed_at = trio.current_time()
                await ensemble.kill(leader)
                with trio.fail_after(20):
                    await total.wait_for(before + 1)
                failover = trio.current_time() - killed_at
                with trio.fail_after(20):
                    await total.wait_for(before + 300)
                stop.set()
            assert failover < 10, f"first acknowledged write {failover:.2f} s after the kill"
            new_leader = await ensemble.wait_for_leader(not_this=leader)
            assert new_leader != leader
            # The session and its ephemeral survived the leader's death.
            assert keeper.session_id == session
            assert await keeper.exists(eph) is not None
        for index in range(3):
            values = await _read_counters(ensemble.hosts, index)
            assert len(values) == len(set(values)), "a write was applied twice"
            assert values == sorted(values), "writes of one session were reordered"
            missing = set(acked[index]) - set(values)
            assert not missing, f"acknowledged writes lost: {sorted(missing)[:10]}"
            assert set(values) <= set(acked[index]) | set(maybe[index])
            # Writes in flight when the leader died were resent by the client and applied
            # once: no write was left with an unknown outcome.
            assert maybe[index] == [], maybe[index]
    finally:
        await ensemble.stop_all()


async def test_a_follower_killed_and_restarted_catches_up(tmp_path):
    ensemble = ProcessEnsemble(tmp_path)
    await ensemble.start_all()
    try:
        leader = await ensemble.wait_all_serving()
        follower = next(m for m in (1, 2, 3) if m != leader)
        async with Client(ensemble.host(leader), session_timeout=4) as zk:
            await zk.create("/before", b"1")
            await ensemble.kill(follower)
            for i in range(50):
                await zk.create(f"/during-{i}", b"x")
            await ensemble.start(follower)
            await ensemble.wait_serving(follower)
            await zk.create("/after", b"2")
        async with Client(ensemble.host(follower), session_timeout=4) as direct:
            await direct.sync("/")
            children = set(await direct.get_children("/"))
            assert {"before", "after"} | {f"during-{i}" for i in range(50)} <= children
            async with Client(ensemble.host(leader), session_timeout=4) as writer:
                for value in (b"1", b"2", b"3"):
                    await writer.set("/after", value)
                    # A linearizable read on the follower sees a write acknowledged just now.
                    data, _stat = await direct.get("/after", linearizable=True)
                    assert data == value
                await writer.create(f"/fresh-{value.decode()}")
                fresh = await direct.get_children("/", linearizable=True)
                assert f"fresh-{value.decode()}" in fresh
    finally:
        await ensemble.stop_all()


async def test_the_whole_ensemble_restarts_with_its_data(tmp_path):
    ensemble = ProcessEnsemble(tmp_path)
    await ensemble.start_all()
    try:
        await ensemble.wait_for_leader()
        async with Client(ensemble.hosts, session_timeout=4) as zk:
            for i in range(20):
                await zk.create(f"/kept-{i}", b"%d" % i)
            stat = await zk.set("/kept-3", b"three")
        await ensemble.stop_all()
        await ensemble.start_all()
        await ensemble.wait_for_leader()
        async with Client(ensemble.hosts, session_timeout=4) as zk:
            await zk.sync("/")
            data, after = await zk.get("/kept-3")
            assert data == b"three" and after.mzxid == stat.mzxid
            assert {f"kept-{i}" for i in range(20)} <= set(await zk.get_children("/"))
    finally:
        await ensemble.stop_all()


async def test_a_client_whose_member_dies_keeps_its_ephemerals_and_watches(tmp_path):
    ensemble = ProcessEnsemble(tmp_path)
    await ensemble.start_all()
    try:
        leader = await ensemble.wait_all_serving()
        follower = next(m for m in (1, 2, 3) if m != leader)
        hosts = f"{ensemble.host(follower)},{ensemble.host(leader)}"
        async with Client(hosts, session_timeout=4) as zk:
            await zk.create("/watched", b"v1")
            eph = await zk.create("/mine", b"", ephemeral=True)
            events = WatchStream()
            await zk.get("/watched", watch=events)
            member = ensemble.member_of(zk.connected_host or "")
            await ensemble.kill(member)
            async with Client(
                ",".join(ensemble.host(m) for m in (1, 2, 3) if m != member), session_timeout=4
            ) as other:
                with trio.fail_after(15):
                    while True:
                        try:
                            await other.set("/watched", b"v2")
                            break
                        except ConnectionLossError:
                            await trio.sleep(0.05)
            with trio.fail_after(15):
                event = await events.next()
            assert event.type is EventType.CHANGED and event.path == "/watched"
            assert await zk.exists(eph) is not None
            data, _stat = await zk.get("/watched")
            assert data == b"v2"
    finally:
        await ensemble.stop_all()


async def test_an_observer_serves_reads_and_writes_but_does_not_vote(tmp_path):
    ensemble = ProcessEnsemble(tmp_path, size=3, observers=1)
    await ensemble.start_all()
    try:
        await ensemble.wait_all_serving()
        assert ensemble.role(4) == "observing"
        async with Client(ensemble.host(4), session_timeout=4) as observer_client:
            await observer_client.create("/via-observer", b"o")  # forwarded to the leader
            data, _stat = await observer_client.get("/via-observer")
            assert data == b"o"
            # Two voters down: no quorum, even though three members (with the observer) live.
            voters = [m for m in (1, 2, 3) if m != ensemble.leader()]
            await ensemble.kill(voters[0])
            await ensemble.kill(voters[1])
            with trio.fail_after(15):
                while ensemble.role(4) != "not serving":
                    await trio.sleep(0.02)
        await ensemble.start(voters[0])
        await ensemble.wait_serving(4)
        async with Client(ensemble.host(4), session_timeout=4) as again:
            await again.sync("/")
            data, _stat = await again.get("/via-observer")
            assert data == b"o"
    finally:
        await ensemble.stop_all()
