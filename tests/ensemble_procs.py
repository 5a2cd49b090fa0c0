"""A 3-member ensemble as real `coord-server` processes on loopback, for failure tests.

Each member runs `python -m coord.server --config ensemble.toml --id N` with INFO
logs in its own file; the runtime logs every role change ("member N is
leading", "following", "not serving"), which is how a test learns who leads.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import trio

from coord.server.tools.local_ensemble import write_config

_ROLE = re.compile(r"member (\d+) is (leading|following|observing|not serving)")


class ProcessEnsemble:
    def __init__(
        self,
        root: Path,
        size: int = 3,
        tick_ms: int = 100,
        observers: int = 0,
        *,
        addresses: list[str] | None = None,
        zk: bool = False,
    ) -> None:
        self.root = root
        self.size = size + observers
        self.addresses = addresses or ["127.0.0.1"] * self.size
        """Each member's address (its own loopback address lets a firewall cut it off)."""
        self.config = write_config(
            root, size, observers, tick_ms, True, zk=zk, hosts=self.addresses
        )
        self.processes: dict[int, trio.Process] = {}
        self._log_start: dict[int, int] = {}
        """Where each member's current run begins in its log (roles before it are stale)."""
        text = self.config.read_text()
        ports = [
            int(line.split("=")[1]) for line in text.splitlines() if line.startswith("client_port")
        ]
        self.client_ports = dict(zip(range(1, self.size + 1), ports, strict=True))
        zk_ports = [
            int(line.split("=")[1]) for line in text.splitlines() if line.startswith("zk_port")
        ]
        self.zk_ports = dict(zip(range(1, self.size + 1), zk_ports, strict=False))

    @property
    def hosts(self) -> str:
        return ",".join(self.host(member_id) for member_id in self.client_ports)

    @property
    def zk_hosts(self) -> str:
        """The ZooKeeper-compatible ports (with zk=True), as kazoo's hosts string."""
        return ",".join(
            f"{self.addresses[member_id - 1]}:{port}" for member_id, port in self.zk_ports.items()
        )

    def host(self, member_id: int) -> str:
        return f"{self.addresses[member_id - 1]}:{self.client_ports[member_id]}"

    def member_of(self, host: str) -> int:
        port = int(host.rsplit(":", 1)[1])
        return next(m for m, p in self.client_ports.items() if p == port)

    async def start(self, member_id: int) -> None:
        path = self.root / f"member-{member_id}.log"
        self._log_start[member_id] = path.stat().st_size if path.exists() else 0
        log = open(path, "ab")  # noqa: SIM115 - the child holds it
        self.processes[member_id] = await trio.lowlevel.open_process(
            [sys.executable, "-m", "coord.server", "--config", str(self.config),
             "--id", str(member_id), "--log-level", "INFO"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )  # fmt: skip
        log.close()

    async def start_all(self) -> None:
        for member_id in range(1, self.size + 1):
            await self.start(member_id)

    async def kill(self, member_id: int, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(member_id)
        process.send_signal(sig)
        await process.wait()

    def signal(self, member_id: int, sig: int) -> None:
        """Send `sig` to a running member and leave it running (SIGSTOP, SIGCONT)."""
        self.processes[member_id].send_signal(sig)

    async def stop_all(self) -> None:
        for member_id in list(self.processes):
            await self.kill(member_id)

    def role(self, member_id: int) -> str | None:
        """The last role member `member_id` logged (None before its first)."""
        path = self.root / f"member-{member_id}.log"
        if not path.exists():
            return None
        found = None
        with open(path, "rb") as handle:
            handle.seek(self._log_start.get(member_id, 0))
            text = handle.read().decode(errors="replace")
        for match in _ROLE.finditer(text):
            found = match.group(2)
        return found

    def leader(self) -> int | None:
        for member_id in self.processes:
            if self.role(member_id) == "leading":
                return member_id
        return None

    async def wait_for_leader(self, *, timeout: float = 20.0, not_this: int | None = None) -> int:
        """Poll the members' logs until a running member says it leads."""
        with trio.fail_after(timeout):
            while True:
                leader = self.leader()
                if leader is not None and leader != not_this:
                    return leader
                await trio.sleep(0.02)

    async def wait_all_serving(self, *, timeout: float = 20.0) -> int:
        """Wait until every running member serves; return the leader."""
        for member_id in self.processes:
            await self.wait_serving(member_id, timeout=timeout)
        return await self.wait_for_leader(timeout=timeout)

    async def wait_serving(self, member_id: int, *, timeout: float = 20.0) -> None:
        with trio.fail_after(timeout):
            while self.role(member_id) not in ("leading", "following", "observing"):
                await trio.sleep(0.02)
