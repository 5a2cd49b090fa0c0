"""The whole-member simulator's session guarantee: no live session is ever told it expired.

Members pause (frozen, then resumed with their clock jumped), lose their leader
and are cut off; a client may hear SessionExpired only once the close of its
session is in the committed chain. Broken on purpose, the checker says so.
"""

from __future__ import annotations

import pytest

from coord.errors import SessionExpiredError
from coord.server.core import replica
from coord.server.sim.config import Faults, SimConfig
from coord.server.sim.world import run_seed


def _stormy(seed: int) -> SimConfig:
    """Pauses, partitions and crashes at high rates, so leaders come and go often."""
    faults = Faults(pause=0.01, partition=0.004, crash=0.001, heal=0.02)
    return SimConfig(seed, voters=3, clients=4, faults=faults)


@pytest.mark.parametrize("seed", range(8))
def test_paused_and_deposed_members_never_tell_a_live_session_it_expired(seed: int) -> None:
    result = run_seed(seed, config=_stormy(seed))
    assert result.ok, result.failure
    assert result.stats["pauses"] > 0


def test_a_member_that_says_expired_when_it_lost_its_leader_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The replica core's every 'try another member' turned into 'your session expired'."""
    monkeypatch.setattr(replica, "ConnectionLossError", SessionExpiredError)
    failures = [run_seed(seed, config=_stormy(seed)).failure for seed in range(8)]
    assert any("expired, but no close of it is committed" in f for f in failures), failures
