"""One chaos run: a 3-member ensemble of real processes (fsync on), clients of both kinds,
and the nemesis, then everything healed and checked.

    python -m tests.chaos.run --duration 300 [--seed 1] [--no-partitions]

The checks, after the faults stop and every member serves again:

- members agree: each member, asked directly after a sync, has the same
  registers, counter and set;
- no acknowledged write is lost and the register writes and compare-and-sets
  are linearizable (tests/linearizability.py; the final reads join the
  history), the counter ends between the acknowledged and the possible
  compare-and-sets, and every acknowledged add is in the set;
- no client was told that its live session expired.

A failed check raises ChaosFailure with the nemesis's log; the run's figures
come back in a Report either way.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

from coord.client import Client
from tests.chaos.nemesis import Firewall, Nemesis, NemesisLog
from tests.chaos.workload import (
    COUNTER,
    KEYS,
    SESSION_TIMEOUT_S,
    SET,
    Record,
    kazoo_client,
    native_client,
)
from tests.ensemble_procs import ProcessEnsemble
from tests.linearizability import READ, check

ADDRESSES = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


class ChaosFailure(AssertionError):
    """A guarantee did not hold in a chaos run."""


@dataclass
class Report:
    duration_s: float
    nemesis: NemesisLog
    operations: int = 0
    acked_writes: int = 0
    cas_acked: int = 0
    adds_acked: int = 0
    expired: list[str] = field(default_factory=list)

    def summary(self) -> str:
        n = self.nemesis
        return (
            f"{self.duration_s:.0f} s: {n.kills} kills, {n.pauses} pauses, {n.partitions} "
            f"partitions; {self.operations} operations, {self.acked_writes} acknowledged "
            f"writes, {self.cas_acked} compare-and-sets, {self.adds_acked} adds; "
            f"{len(self.expired)} live sessions told they expired"
        )


async def run_chaos(
    root: Path, duration_s: float, *, seed: int = 1, partitions: bool = True
) -> Report:
    rng = random.Random(seed)
    firewall = Firewall() if partitions and not Firewall.available() else None
    ensemble = ProcessEnsemble(root, size=3, tick_ms=200, addresses=ADDRESSES, zk=True)
    record = Record()
    nemesis = Nemesis(ensemble, rng, firewall)
    report = Report(duration_s, nemesis.log)
    if firewall is not None:
        firewall.install()
    await ensemble.start_all()
    try:
        await ensemble.wait_all_serving(timeout=30)
        await _prepare(ensemble)
        stop = trio.Event()
        stop_threads = threading.Event()
        async with trio.open_nursery() as nursery:
            for i in range(2):
                nursery.start_soon(native_client, f"n{i}", ensemble.hosts, seed * 10 + i,
                                   record, stop)  # fmt: skip
            for i in range(2):
                nursery.start_soon(
                    trio.to_thread.run_sync,
                    kazoo_client, f"z{i}", ensemble.zk_hosts, seed * 10 + 5 + i, record,
                    stop_threads,
                )  # fmt: skip
            deadline = trio.current_time() + duration_s
            while trio.current_time() < deadline:
                await trio.sleep(rng.uniform(0.5, 2.0))
                await nemesis.strike()
            await nemesis.heal_all()
            await ensemble.wait_all_serving(timeout=30)
            await trio.sleep(1.0)  # the clients make progress on the healed ensemble
            stop.set()
            stop_threads.set()
        await _verify(ensemble, record, nemesis.log)
    finally:
        await nemesis.heal_all()
        await ensemble.stop_all()
        if firewall is not None:
            firewall.remove()
    report.operations = len(record.operations)
    report.acked_writes = record.acked_writes
    report.cas_acked = record.cas_acked
    report.adds_acked = len(record.adds_acked)
    report.expired = record.expired
    return report


async def _prepare(ensemble: ProcessEnsemble) -> None:
    async with Client(ensemble.hosts, session_timeout=SESSION_TIMEOUT_S) as zk:
        await zk.ensure_path(SET)
        for key in KEYS:
            await zk.create(key, b"initial")
        await zk.create(COUNTER, b"0")


async def _member_state(ensemble: ProcessEnsemble, member_id: int) -> tuple[object, ...]:
    """What member `member_id` holds, asked directly after a sync."""
    async with Client(ensemble.host(member_id), session_timeout=SESSION_TIMEOUT_S) as zk:
        await zk.sync("/")
        registers = []
        for key in KEYS:
            data, _ = await zk.get(key)
            registers.append(data)
        counter, _ = await zk.get(COUNTER)
        members = tuple(sorted(await zk.get_children(SET)))
    return tuple(registers), counter, members


async def _verify(ensemble: ProcessEnsemble, record: Record, log: NemesisLog) -> None:
    def fail(text: str) -> ChaosFailure:
        return ChaosFailure(f"{text}\nnemesis: " + "; ".join(log.events))

    states = [await _member_state(ensemble, m) for m in range(1, ensemble.size + 1)]
    if any(state != states[0] for state in states):
        raise fail(f"members disagree after the heal: {states}")
    registers, counter, children = states[0]
    assert isinstance(registers, tuple) and isinstance(counter, bytes)
    assert isinstance(children, tuple)
    now = time.monotonic()
    for key, data in zip(KEYS, registers, strict=True):
        assert isinstance(data, bytes)
        record.add(key, READ, data.decode(), now, now)
    record.add(COUNTER, READ, counter.decode(), now, now)
    registers_ops = [op for op in record.operations if op.key != COUNTER]
    counter_ops = [op for op in record.operations if op.key == COUNTER]
    for ops, initial in ((registers_ops, "initial"), (counter_ops, "0")):
        verdict = check(ops, initial=initial, max_states=5_000_000)
        if not verdict.ok:
            raise fail(verdict.explain())
    final = int(counter)
    if not record.cas_acked <= final <= record.cas_acked + record.cas_unknown:
        raise fail(
            f"counter {final}: {record.cas_acked} compare-and-sets acknowledged, "
            f"{record.cas_unknown} of unknown outcome"
        )
    present = {f"{SET}/{name}" for name in children}
    lost = record.adds_acked - present
    if lost:
        raise fail(f"acknowledged adds lost: {sorted(lost)[:5]} ({len(lost)})")
    strangers = present - record.adds_tried
    if strangers:
        raise fail(f"adds nobody made: {sorted(strangers)[:5]}")
    if record.expired:
        raise fail(f"live sessions told they expired: {record.expired}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of faults")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-partitions", action="store_true")
    args = parser.parse_args()
    if not args.no_partitions and Firewall.available():
        print(f"no partitions: {Firewall.available()}")
    with tempfile.TemporaryDirectory() as root:
        report = trio.run(
            lambda: run_chaos(
                Path(root), args.duration, seed=args.seed, partitions=not args.no_partitions
            )
        )
    print(report.summary())


if __name__ == "__main__":
    main()
