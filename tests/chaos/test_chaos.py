"""The chaos suite, short: real members killed, paused and cut off while clients of both
kinds write, compare-and-set and add; then everything is healed and checked (run.py says
what). A longer run is one command: `python -m tests.chaos.run --duration 300`.

Partitions need root and iptables: without them those tests skip and say why (CI runs
as root and installs iptables).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from tests.chaos.nemesis import Firewall
from tests.chaos.run import ADDRESSES, run_chaos
from tests.ensemble_procs import ProcessEnsemble

pytestmark = pytest.mark.slow
NO_FIREWALL = Firewall.available()


async def test_kills_and_pauses_lose_nothing_and_expire_no_live_session(tmp_path: Path) -> None:
    report = await run_chaos(tmp_path, 15.0, seed=3, partitions=False)
    assert report.nemesis.kills > 0 and report.nemesis.pauses > 0, report.summary()
    assert report.acked_writes > 100 and report.cas_acked > 10 and report.adds_acked > 10
    assert report.expired == []


@pytest.mark.skipif(bool(NO_FIREWALL), reason=NO_FIREWALL)
async def test_partitions_too_lose_nothing_and_expire_no_live_session(tmp_path: Path) -> None:
    report = await run_chaos(tmp_path, 15.0, seed=5, partitions=True)
    assert report.nemesis.partitions > 0, report.summary()
    assert report.acked_writes > 100 and report.expired == []


@pytest.mark.skipif(bool(NO_FIREWALL), reason=NO_FIREWALL)
async def test_a_cut_off_leader_steps_down_first_and_rejoins_within_a_second(
    tmp_path: Path,
) -> None:
    """Its lease ends before the others elect; once healed, its links redial at once."""
    ensemble = ProcessEnsemble(tmp_path, size=3, tick_ms=200, addresses=ADDRESSES)
    text = ensemble.config.read_text()
    ensemble.config.write_text(text.replace("[ensemble]\n", "[ensemble]\ntime_leases = true\n"))
    firewall = Firewall()
    firewall.install()
    await ensemble.start_all()
    try:
        leader = await ensemble.wait_all_serving(timeout=30)
        address = ADDRESSES[leader - 1]
        firewall.cut(address, [a for a in ADDRESSES if a != address])
        with trio.fail_after(20):
            while ensemble.role(leader) == "leading":
                await trio.sleep(0.01)
        stepped_down_before_a_new_leader = ensemble.leader() is None
        await ensemble.wait_for_leader(not_this=leader, timeout=20)
        firewall.heal()
        healed = time.monotonic()
        with trio.fail_after(20):
            while ensemble.role(leader) != "following":
                await trio.sleep(0.01)
        rejoin_s = time.monotonic() - healed
    finally:
        await ensemble.stop_all()
        firewall.remove()
    assert stepped_down_before_a_new_leader
    assert rejoin_s < 1.0, f"rejoined {rejoin_s:.2f} s after the heal"
