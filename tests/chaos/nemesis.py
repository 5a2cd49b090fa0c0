"""The chaos suite's nemesis: kill -9, SIGSTOP/SIGCONT and network partitions of real members.

A partition cuts one member off from the others with firewall rules on
loopback: every member has its own address (127.0.0.2, 127.0.0.3, ...) and
dials its peers from it, so dropping the packets between one address and the
others cuts exactly that member's peer links, while the test's clients (on
127.0.0.1) still reach it, as when a switch port between servers fails. The
rules live in a chain of their own, so healing is flushing it and nothing
else on the machine is touched. That needs root and iptables; without them
`Firewall.available()` says why, and the suite runs kills and pauses only.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
from dataclasses import dataclass, field

import trio

from tests.ensemble_procs import ProcessEnsemble


class Firewall:
    """iptables rules in a chain of our own, jumped to from INPUT."""

    def __init__(self) -> None:
        self.chain = f"COORD_CHAOS_{os.getpid()}"
        self._installed = False

    @staticmethod
    def available() -> str:
        """ "" when partitions can be made here, else why not."""
        if os.geteuid() != 0:
            return "partitions need root (firewall rules on loopback)"
        if shutil.which("iptables") is None:
            return "partitions need iptables (apt-get install iptables)"
        probe = subprocess.run(["iptables", "-w", "-L", "INPUT", "-n"], capture_output=True)
        if probe.returncode != 0:
            return f"iptables does not work here: {probe.stderr.decode().strip()[:200]}"
        return ""

    def _run(self, *args: str) -> None:
        subprocess.run(["iptables", "-w", *args], check=True, capture_output=True)

    def install(self) -> None:
        self._run("-N", self.chain)
        self._run("-I", "INPUT", "-j", self.chain)
        self._installed = True

    def cut(self, address: str, others: list[str]) -> None:
        for other in others:
            self._run("-A", self.chain, "-s", address, "-d", other, "-j", "DROP")
            self._run("-A", self.chain, "-s", other, "-d", address, "-j", "DROP")

    def heal(self) -> None:
        if self._installed:
            self._run("-F", self.chain)

    def remove(self) -> None:
        if self._installed:
            self._run("-F", self.chain)
            self._run("-D", "INPUT", "-j", self.chain)
            self._run("-X", self.chain)
            self._installed = False


@dataclass
class NemesisLog:
    """What the nemesis did, for the report."""

    kills: int = 0
    pauses: int = 0
    partitions: int = 0
    events: list[str] = field(default_factory=list)


class Nemesis:
    """Strikes one member at a time (the leader half of the time), then undoes it."""

    def __init__(
        self, ensemble: ProcessEnsemble, rng: random.Random, firewall: Firewall | None
    ) -> None:
        self.ensemble = ensemble
        self.rng = rng
        self.firewall = firewall
        self.log = NemesisLog()
        self._paused: set[int] = set()

    def _victim(self) -> int:
        leader = self.ensemble.leader()
        running = sorted(self.ensemble.processes)
        if leader is not None and self.rng.random() < 0.5:
            return leader
        return self.rng.choice(running)

    async def strike(self) -> None:
        """One fault, held for 0.5-3 s, then undone."""
        victim = self._victim()
        kinds = ["kill", "pause"] + (["partition"] if self.firewall is not None else [])
        kind = self.rng.choice(kinds)
        hold = self.rng.uniform(0.5, 3.0)
        self.log.events.append(f"{kind} member {victim} for {hold:.1f} s")
        if kind == "kill":
            self.log.kills += 1
            await self.ensemble.kill(victim)
            await trio.sleep(hold)
            await self.ensemble.start(victim)
        elif kind == "pause":
            self.log.pauses += 1
            self.ensemble.signal(victim, signal.SIGSTOP)
            self._paused.add(victim)
            try:
                await trio.sleep(hold)
            finally:
                self.ensemble.signal(victim, signal.SIGCONT)
                self._paused.discard(victim)
        else:
            assert self.firewall is not None
            self.log.partitions += 1
            addresses = self.ensemble.addresses
            me = addresses[victim - 1]
            self.firewall.cut(me, [a for a in addresses if a != me])
            try:
                await trio.sleep(hold)
            finally:
                self.firewall.heal()

    async def heal_all(self) -> None:
        """Undo everything: resume, heal, restart whoever is down."""
        for member_id in list(self._paused):
            self.ensemble.signal(member_id, signal.SIGCONT)
        self._paused.clear()
        if self.firewall is not None:
            self.firewall.heal()
        for member_id in range(1, self.ensemble.size + 1):
            if member_id not in self.ensemble.processes:
                await self.ensemble.start(member_id)
