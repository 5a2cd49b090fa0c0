"""`coord bench`: throughput and latency of the service, as its users see them.

The design's performance targets (DESIGN.md, "Performance, by design") are
stated as ops/s and per-request latency with many requests in flight, so the
benchmark measures exactly that, through the real client library:

- `clients` sessions, each its own Client and connection, each driving
  `outstanding` worker tasks that share the connection. A worker issues one
  request, waits for its reply, records the latency and issues the next, so
  each connection has up to `outstanding` requests pipelined on it.
- A workload runs for a fixed `duration` or a fixed total number of `ops`
  (shared by all workers); only successful requests count, and a request that
  fails with a per-op KeeperError is counted in `errors`. Losing the session
  aborts the run: numbers from a dead session mean nothing.
- Workloads: `create` (new nodes with `value_size` bytes), `set` and `get`
  (each worker on its own pre-created node, so that there are no version
  conflicts and no hot spot to measure by accident), and `mixed` (a seeded
  `get_ratio` share of gets, the rest sets, on the same nodes).
- Everything lives under a fresh prefix, /bench-<random hex>, and is deleted
  at the end, also when the run fails or is interrupted. Created nodes are
  spread over one parent per worker, so that no parent's child list grows
  past the frame limit (a child list is one reply frame, 1 MiB at most).

Latencies are wall-clock (time.perf_counter) from just before the request is
issued until its reply is back, so they include the client's own queueing.
The pure helpers (percentile, summarize, format_table, results_json) are
what the unit tests drive; `run_bench` is the only part that needs a server.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import trio

from coord.errors import (
    ConnectionLossError,
    KeeperError,
    NoNodeError,
    SessionClosedError,
    SessionExpiredError,
)

WORKLOADS: tuple[str, ...] = ("create", "set", "get", "mixed")
#: Workloads that need one pre-created node per worker.
KEYED_WORKLOADS = frozenset({"set", "get", "mixed"})
#: Errors after which no further request on the session can succeed.
FATAL_ERRORS = (ConnectionLossError, SessionExpiredError, SessionClosedError)
#: How long the clean-up may take before it gives up (it runs shielded).
CLEANUP_TIMEOUT = 120.0


class BenchClient(Protocol):
    """The part of client.Client the benchmark uses (so tests can fake it)."""

    async def create(self, path: str, value: bytes = ..., *, makepath: bool = ...) -> Any: ...

    async def set(self, path: str, value: bytes, version: int = ...) -> Any: ...

    async def get(self, path: str) -> Any: ...

    async def get_children(self, path: str) -> Any: ...

    async def delete(self, path: str, version: int = ..., *, recursive: bool = ...) -> Any: ...


ClientFactory = Callable[[str, float], Any]
"""Builds an async context manager yielding a BenchClient, from (hosts, session_timeout)."""


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What to run. Exactly one of `duration` (seconds) and `ops` (total) is set."""

    hosts: str
    clients: int = 1
    outstanding: int = 1
    duration: float | None = 5.0
    ops: int | None = None
    value_size: int = 100
    workloads: tuple[str, ...] = WORKLOADS
    get_ratio: float = 0.8
    seed: int = 0
    session_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.clients < 1:
            raise ValueError("clients must be at least 1")
        if self.outstanding < 1:
            raise ValueError("outstanding must be at least 1")
        if (self.duration is None) == (self.ops is None):
            raise ValueError("give exactly one of duration and ops")
        if self.duration is not None and not self.duration > 0:
            raise ValueError("duration must be positive")
        if self.ops is not None and self.ops < 1:
            raise ValueError("ops must be at least 1")
        if self.value_size < 0:
            raise ValueError("value size must not be negative")
        if not 0.0 <= self.get_ratio <= 1.0:
            raise ValueError("get ratio must be between 0 and 1")
        if not self.workloads:
            raise ValueError("give at least one workload")
        unknown = [w for w in self.workloads if w not in WORKLOADS]
        if unknown:
            raise ValueError(
                f"unknown workload {unknown[0]!r} (choose from {', '.join(WORKLOADS)})"
            )
        if len(set(self.workloads)) != len(self.workloads):
            raise ValueError("each workload may be given only once")

    @property
    def workers(self) -> int:
        """Worker tasks in all: clients x outstanding."""
        return self.clients * self.outstanding


@dataclass(frozen=True, slots=True)
class WorkloadResult:
    """One workload's numbers. Latencies are None when no request succeeded."""

    workload: str
    clients: int
    outstanding: int
    ops: int
    errors: int
    seconds: float
    ops_per_sec: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Progress:
    """A once-a-second report while a workload runs: ops so far and the current rate."""

    workload: str
    ops: int
    elapsed: float
    rate: float


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The p-th percentile (0 < p <= 100) by the nearest-rank method.

    Nearest rank returns a latency that was actually observed, never an
    interpolation between two, which is what a reader of "p99" expects.
    `sorted_values` must be sorted ascending and not empty.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    rank = math.ceil(p / 100.0 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


def summarize(
    workload: str,
    clients: int,
    outstanding: int,
    latencies: Iterable[float],
    errors: int,
    seconds: float,
) -> WorkloadResult:
    """Turn raw latencies (seconds) into a WorkloadResult (milliseconds)."""
    ordered = sorted(latencies)
    ops = len(ordered)
    rate = ops / seconds if seconds > 0 else 0.0
    if ordered:
        p50: float | None = percentile(ordered, 50) * 1000.0
        p99: float | None = percentile(ordered, 99) * 1000.0
        top: float | None = ordered[-1] * 1000.0
    else:
        p50 = p99 = top = None
    return WorkloadResult(
        workload=workload,
        clients=clients,
        outstanding=outstanding,
        ops=ops,
        errors=errors,
        seconds=seconds,
        ops_per_sec=rate,
        p50_ms=p50,
        p99_ms=p99,
        max_ms=top,
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_table(results: Sequence[WorkloadResult]) -> str:
    """A plain-text table, one row per workload; an errors column only if any failed."""
    headers = ["workload", "clients x outstanding", "ops", "seconds", "ops/s", "p50 ms", "p99 ms"]
    show_errors = any(r.errors for r in results)
    if show_errors:
        headers.append("errors")
    rows = []
    for r in results:
        row = [
            r.workload,
            f"{r.clients} x {r.outstanding}",
            str(r.ops),
            f"{r.seconds:.2f}",
            f"{r.ops_per_sec:.0f}",
            _ms(r.p50_ms),
            _ms(r.p99_ms),
        ]
        if show_errors:
            row.append(str(r.errors))
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        # Text columns (the first two) are left-aligned, numbers right-aligned.
        parts = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def results_json(config: BenchConfig, results: Sequence[WorkloadResult]) -> str:
    """The run's settings and results as one JSON document, for scripts."""
    doc = {
        "server": config.hosts,
        "clients": config.clients,
        "outstanding": config.outstanding,
        "duration": config.duration,
        "ops": config.ops,
        "value_size": config.value_size,
        "get_ratio": config.get_ratio,
        "seed": config.seed,
        "results": [r.to_dict() for r in results],
    }
    return json.dumps(doc, indent=2)


def format_progress(progress: Progress) -> str:
    """The progress line: workload, ops so far, current rate, elapsed seconds."""
    return (
        f"{progress.workload}: {progress.ops} ops, {progress.rate:.0f} ops/s,"
        f" {progress.elapsed:.0f} s"
    )


# --------------------------------------------------------------------------
# The measuring part.


@dataclass
class _Run:
    """Mutable state of one workload while its workers run (one trio thread: no locks)."""

    workload: str
    ops_limit: int | None
    deadline: float | None
    issued: int = 0
    errors: int = 0
    fatal: KeeperError | None = None
    latencies: list[float] = field(default_factory=list)

    def may_issue(self) -> bool:
        """Claim the right to send one more request, or learn that the workload is over."""
        if self.ops_limit is not None:
            if self.issued >= self.ops_limit:
                return False
        elif self.deadline is not None and time.perf_counter() >= self.deadline:
            return False
        self.issued += 1
        return True


def _default_factory(hosts: str, session_timeout: float) -> Any:
    from .client import Client  # a late import: the pure helpers need no client

    return Client(hosts, session_timeout=session_timeout)


@asynccontextmanager
async def _open_clients(
    config: BenchConfig, factory: ClientFactory
) -> AsyncIterator[list[BenchClient]]:
    """Open `config.clients` sessions and close them all at the end."""
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(factory(config.hosts, config.session_timeout))
            for _ in range(config.clients)
        ]
        yield clients


async def _parallel(
    clients: Sequence[BenchClient],
    per_client: int,
    items: Iterable[Any],
    action: Callable[[BenchClient, Any], Awaitable[None]],
) -> None:
    """Run `action(client, item)` for every item, `per_client` at a time on each client.

    The set-up goes through this so that it too pipelines requests instead
    of paying a round trip per node. The first error stops the others.
    """
    iterator = iter(items)
    failure: list[Exception] = []

    async def drain(zk: BenchClient, cancel_scope: trio.CancelScope) -> None:
        try:
            for item in iterator:  # shared: each item is taken by exactly one task
                await action(zk, item)
        except Exception as exc:
            failure.append(exc)
            cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        for zk in clients:
            for _ in range(per_client):
                nursery.start_soon(drain, zk, nursery.cancel_scope)
    if failure:
        raise failure[0]  # itself, not an ExceptionGroup: callers catch KeeperError


class _Layout:
    """Where a run's nodes live, under one fresh prefix."""

    def __init__(self, prefix: str, config: BenchConfig) -> None:
        self.prefix = prefix
        self.keys = f"{prefix}/k"
        self.parents = f"{prefix}/c"
        self.workers = config.workers

    def key(self, worker: int) -> str:
        """The node a worker sets and gets."""
        return f"{self.keys}/{worker}"

    def parent(self, worker: int) -> str:
        """The parent of the nodes a worker creates."""
        return f"{self.parents}/{worker}"


async def _setup(
    clients: Sequence[BenchClient], config: BenchConfig, layout: _Layout, value: bytes
) -> None:
    first = clients[0]
    await first.create(layout.prefix, b"")
    await first.create(layout.keys, b"")
    await first.create(layout.parents, b"")
    paths: list[tuple[str, bytes]] = []
    if "create" in config.workloads:
        paths.extend((layout.parent(w), b"") for w in range(layout.workers))
    if KEYED_WORKLOADS.intersection(config.workloads):
        paths.extend((layout.key(w), value) for w in range(layout.workers))

    async def create(zk: BenchClient, item: tuple[str, bytes]) -> None:
        await zk.create(item[0], item[1])

    await _parallel(clients, config.outstanding, paths, create)


async def _cleanup(clients: Sequence[BenchClient], layout: _Layout) -> None:
    """Delete the prefix and everything under it.

    The client's recursive delete lists the subtree level by level and
    deletes it in pipelined batches, so even a long create run is cleaned up
    in a few round trips per thousand nodes.
    """
    try:
        await clients[0].delete(layout.prefix, recursive=True)
    except NoNodeError:
        pass


async def _run_workload(
    name: str,
    clients: Sequence[BenchClient],
    config: BenchConfig,
    layout: _Layout,
    value: bytes,
    progress: Callable[[Progress], None] | None,
) -> WorkloadResult:
    start = time.perf_counter()
    deadline = start + config.duration if config.duration is not None else None
    run = _Run(name, config.ops, deadline)

    async def worker(zk: BenchClient, index: int) -> None:
        key = layout.key(index)
        parent = layout.parent(index)
        rng = random.Random(config.seed * 1_000_003 + index)
        counter = 0
        latencies = run.latencies
        while run.may_issue():
            if name == "create":
                counter += 1
                op: Awaitable[Any] = zk.create(f"{parent}/{counter}", value)
            elif name == "set" or (name == "mixed" and rng.random() >= config.get_ratio):
                op = zk.set(key, value)
            else:
                op = zk.get(key)
            begin = time.perf_counter()
            try:
                await op
            except FATAL_ERRORS as exc:
                run.fatal = exc
                workers.cancel_scope.cancel()
                return
            except KeeperError:
                run.errors += 1
                continue
            latencies.append(time.perf_counter() - begin)

    async def report() -> None:
        last_ops, last_time = 0, start
        while True:
            await trio.sleep(1.0)
            now = time.perf_counter()
            done = len(run.latencies)
            rate = (done - last_ops) / (now - last_time) if now > last_time else 0.0
            if progress is not None:
                progress(Progress(name, done, now - start, rate))
            last_ops, last_time = done, now

    async with trio.open_nursery() as outer:
        outer.start_soon(report)
        async with trio.open_nursery() as workers:
            for c, zk in enumerate(clients):
                for k in range(config.outstanding):
                    workers.start_soon(worker, zk, c * config.outstanding + k)
        seconds = time.perf_counter() - start
        outer.cancel_scope.cancel()
    if run.fatal is not None:
        raise run.fatal
    return summarize(name, config.clients, config.outstanding, run.latencies, run.errors, seconds)


async def run_bench(
    config: BenchConfig,
    *,
    progress: Callable[[Progress], None] | None = None,
    note: Callable[[str], None] | None = None,
    client_factory: ClientFactory = _default_factory,
    prefix: str | None = None,
) -> list[WorkloadResult]:
    """Run every workload of `config` in order and return one result per workload.

    `progress` is called about once a second while a workload runs; `note`
    gets one-line messages about set-up and clean-up. The nodes under the
    prefix (fresh unless given) are deleted at the end even when a workload
    fails or the run is cancelled (Ctrl-C in the CLI), within CLEANUP_TIMEOUT.

    Why the guard: cancelling the caller would also cancel the clients' own
    connection tasks, and a clean-up over dead sessions cannot work. So the
    sessions live in a shielded scope, and a guard task outside the shield
    turns the caller's cancellation into a cancellation of `work`, the scope
    of the set-up and the workloads only. Connecting is not interruptible,
    but it is bounded by the client's connect timeout.
    """
    work = trio.CancelScope()
    results: list[WorkloadResult] = []
    failure: list[Exception] = []

    async def guard() -> None:
        try:
            await trio.sleep_forever()
        finally:
            work.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(guard)
        with trio.CancelScope(shield=True):
            try:
                await _run_sessions(config, work, results, progress, note, client_factory, prefix)
            except Exception as exc:
                failure.append(exc)  # raised below as itself, not in an ExceptionGroup
        nursery.cancel_scope.cancel()
    if failure:
        raise failure[0]
    await trio.lowlevel.checkpoint()  # a cancellation of the caller surfaces here
    return results


async def _run_sessions(
    config: BenchConfig,
    work: trio.CancelScope,
    results: list[WorkloadResult],
    progress: Callable[[Progress], None] | None,
    note: Callable[[str], None] | None,
    client_factory: ClientFactory,
    prefix: str | None,
) -> None:
    say = note or (lambda _message: None)
    layout = _Layout(prefix or f"/bench-{secrets.token_hex(4)}", config)
    value = b"x" * config.value_size
    async with _open_clients(config, client_factory) as clients:
        try:
            with work:
                say(
                    f"setting up {layout.prefix} with {config.clients} x {config.outstanding}"
                    " workers"
                )
                await _setup(clients, config, layout, value)
                for name in config.workloads:
                    results.append(
                        await _run_workload(name, clients, config, layout, value, progress)
                    )
        finally:
            with trio.move_on_after(CLEANUP_TIMEOUT) as scope:
                say(f"cleaning up {layout.prefix}")
                try:
                    await _cleanup(clients, layout)
                except (KeeperError, OSError) as exc:
                    say(f"clean-up of {layout.prefix} failed: {exc}")
            if scope.cancelled_caught:
                say(f"clean-up of {layout.prefix} timed out; delete it by hand")
