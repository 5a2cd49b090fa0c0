"""What a seed sets up: the ensemble's shape, the clients, and the rate of each fault.

`SimConfig.from_seed` draws it all from the seed, so a seed names one run
exactly; a test may build a `SimConfig` by hand to force a fault.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

STEP_MS = 10


@dataclass
class Faults:
    drop: float = 0.0
    crash: float = 0.0
    restart: float = 0.05
    partition: float = 0.0
    heal: float = 0.02
    clock_jump: float = 0.0
    slow_disk: float = 0.0
    slow_steps: int = 5
    torn: float = 0.0
    disconnect: float = 0.0
    stall: float = 0.0
    pause: float = 0.0
    """A member's process freezes (it reads, ticks and sends nothing) for a while, its
    clock running on, and resumes with the clock jumped: a GC or VM pause, SIGSTOP."""


@dataclass
class SimConfig:
    seed: int
    voters: int = 3
    observers: int = 0
    clients: int = 3
    max_history: int = 100_000
    drift: float = 0.0
    faults: Faults = field(default_factory=Faults)
    safety_steps: int = 1500
    liveness_steps: int = 1500

    @classmethod
    def from_seed(cls, seed: int) -> SimConfig:
        rng = random.Random(seed * 7919 + 1)

        def some(rate: float) -> float:
            return rate * rng.random() if rng.random() < 0.7 else 0.0

        faults = Faults(
            drop=some(0.02),
            crash=some(0.002),
            partition=some(0.004),
            clock_jump=some(0.004),
            slow_disk=some(0.2),
            torn=some(0.05),
            disconnect=some(0.004),
            stall=some(0.001),
            pause=some(0.002),
        )
        return cls(
            seed,
            voters=rng.choice([3, 3, 5]),
            observers=rng.choice([0, 0, 1]),
            clients=rng.randint(2, 5),
            max_history=rng.choice([100_000, 100_000, 30, 8]),
            drift=rng.choice([0.0, 0.02, 0.05]),
            faults=faults,
        )


@dataclass
class Result:
    seed: int
    ok: bool
    failure: str = ""
    trace: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


__all__ = ["STEP_MS", "Faults", "Result", "SimConfig"]
