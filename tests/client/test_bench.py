"""`coord bench`: the pure helpers (percentiles, summaries, the table, JSON),
the settings' checks, and short real runs against a server, including the
clean-up of the bench prefix when a run is cancelled."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from coord.client import Client
from coord.client.bench import (
    WORKLOADS,
    BenchConfig,
    Progress,
    WorkloadResult,
    format_progress,
    format_table,
    percentile,
    results_json,
    run_bench,
    summarize,
)
from coord.client.cli import EXIT_OK, run
from coord.errors import NoNodeError, SessionExpiredError


def result(workload: str = "get", errors: int = 0, ops: int = 1000) -> WorkloadResult:
    return WorkloadResult(
        workload=workload,
        clients=8,
        outstanding=32,
        ops=ops,
        errors=errors,
        seconds=2.0,
        ops_per_sec=ops / 2.0,
        p50_ms=1.234,
        p99_ms=12.5,
        max_ms=20.0,
    )


# --------------------------------------------------------------------------
# Pure helpers.


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 0.001) == 1.0
    assert percentile([7.0], 50) == 7.0
    assert percentile([7.0], 99) == 7.0
    # Nearest rank never interpolates: p50 of two values is the lower one.
    assert percentile([1.0, 3.0], 50) == 1.0
    assert percentile([1.0, 3.0], 51) == 3.0


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 0)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_converts_to_milliseconds() -> None:
    latencies = [0.001] * 98 + [0.010, 0.050]
    r = summarize("set", 2, 4, reversed(latencies), errors=3, seconds=0.5)
    assert (r.workload, r.clients, r.outstanding, r.ops, r.errors) == ("set", 2, 4, 100, 3)
    assert r.ops_per_sec == 200.0
    assert r.p50_ms == pytest.approx(1.0)
    assert r.p99_ms == pytest.approx(10.0)
    assert r.max_ms == pytest.approx(50.0)


def test_summarize_without_successes() -> None:
    r = summarize("get", 1, 1, [], errors=5, seconds=0.0)
    assert (r.ops, r.ops_per_sec, r.p50_ms, r.p99_ms, r.max_ms) == (0, 0.0, None, None, None)


def test_format_table() -> None:
    text = format_table([result("create", ops=123456), result("get")])
    lines = text.splitlines()
    assert lines[0].split("  ")[0] == "workload"
    for header in ("clients x outstanding", "ops/s", "p50 ms", "p99 ms", "seconds"):
        assert header in lines[0]
    assert "errors" not in lines[0]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == [
        "create",
        "8",
        "x",
        "32",
        "123456",
        "2.00",
        "61728",
        "1.23",
        "12.50",
    ]
    assert lines[3].split()[0] == "get"
    # Columns line up: every row is as wide as the header's dashes.
    assert len({len(line) for line in lines[1:]}) == 1


def test_format_table_shows_errors_and_missing_latencies() -> None:
    empty = summarize("set", 1, 1, [], errors=7, seconds=1.0)
    lines = format_table([result("get"), empty]).splitlines()
    assert lines[0].endswith("errors")
    assert lines[2].endswith(" 0")
    assert lines[3].split()[-3:] == ["-", "-", "7"]


def test_results_json() -> None:
    config = BenchConfig(hosts="h:1", clients=8, outstanding=32, duration=None, ops=500)
    doc = json.loads(results_json(config, [result("create"), result("set")]))
    assert (doc["server"], doc["clients"], doc["outstanding"], doc["ops"]) == ("h:1", 8, 32, 500)
    assert doc["duration"] is None and doc["value_size"] == 100
    assert [r["workload"] for r in doc["results"]] == ["create", "set"]
    assert set(doc["results"][0]) == {
        "workload",
        "clients",
        "outstanding",
        "ops",
        "errors",
        "seconds",
        "ops_per_sec",
        "p50_ms",
        "p99_ms",
        "max_ms",
    }


def test_format_progress() -> None:
    text = format_progress(Progress("mixed", 12345, 3.2, 4000.4))
    assert text == "mixed: 12345 ops, 4000 ops/s, 3 s"


@pytest.mark.parametrize(
    "settings",
    [
        {"clients": 0},
        {"outstanding": 0},
        {"duration": None},
        {"ops": 10},
        {"duration": 0.0},
        {"duration": None, "ops": 0},
        {"value_size": -1},
        {"get_ratio": 1.5},
        {"workloads": ()},
        {"workloads": ("get", "put")},
        {"workloads": ("get", "get")},
    ],
)
def test_config_refuses_bad_settings(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        BenchConfig(hosts="h:1", **settings)  # type: ignore[arg-type]


def test_config_defaults() -> None:
    config = BenchConfig(hosts="h:1", clients=3, outstanding=5)
    assert config.workloads == WORKLOADS
    assert config.workers == 15
    assert (config.duration, config.ops, config.value_size) == (5.0, None, 100)


# --------------------------------------------------------------------------
# Real runs.


async def remaining_bench_nodes(hosts: str) -> list[str]:
    async with Client(hosts) as zk:
        return [name for name in await zk.get_children("/") if name.startswith("bench-")]


async def test_tiny_run_measures_every_workload_and_cleans_up(coord_server) -> None:
    config = BenchConfig(
        hosts=coord_server.hosts, clients=2, outstanding=4, duration=None, ops=200, value_size=10
    )
    notes: list[str] = []
    results = await run_bench(config, note=notes.append, prefix="/bench-tiny")
    assert [r.workload for r in results] == list(WORKLOADS)
    for r in results:
        assert (r.clients, r.outstanding, r.ops, r.errors) == (2, 4, 200, 0)
        assert r.seconds > 0 and r.ops_per_sec == pytest.approx(200 / r.seconds)
        assert r.p50_ms is not None and r.p99_ms is not None and r.max_ms is not None
        assert 0 < r.p50_ms <= r.p99_ms <= r.max_ms < 10_000
    assert notes[0].startswith("setting up /bench-tiny")
    assert notes[-1] == "cleaning up /bench-tiny"
    assert await remaining_bench_nodes(coord_server.hosts) == []


async def test_values_have_the_requested_size(coord_server) -> None:
    sizes: list[int] = []

    class Recording:
        """A Client whose creates and sets record the size of their value."""

        def __init__(self, zk: Client) -> None:
            self._zk = zk

        def __getattr__(self, name: str) -> Any:
            return getattr(self._zk, name)

        async def create(self, path: str, value: bytes = b"", **flags: Any) -> Any:
            sizes.append(len(value))
            return await self._zk.create(path, value, **flags)

        async def set(self, path: str, value: bytes, version: int = -1) -> Any:
            sizes.append(len(value))
            return await self._zk.set(path, value, version)

    @asynccontextmanager
    async def factory(hosts: str, session_timeout: float) -> AsyncIterator[Recording]:
        async with Client(hosts, session_timeout=session_timeout) as zk:
            yield Recording(zk)

    config = BenchConfig(
        hosts=coord_server.hosts,
        duration=None,
        ops=20,
        value_size=321,
        workloads=("create", "set"),
        outstanding=2,
    )
    await run_bench(config, client_factory=factory)
    # Three empty parents, two empty create parents, two keys, 20 creates, 20 sets.
    assert sorted(sizes) == [0] * 5 + [321] * 42


async def test_progress_is_reported_once_a_second(coord_server) -> None:
    config = BenchConfig(
        hosts=coord_server.hosts, duration=1.3, workloads=("get",), clients=1, outstanding=2
    )
    reports: list[Progress] = []
    (r,) = await run_bench(config, progress=reports.append)
    assert len(reports) == 1
    assert reports[0].workload == "get"
    assert 0 < reports[0].ops <= r.ops
    assert reports[0].rate > 0
    assert 1.3 <= r.seconds < 3


async def test_cancelled_run_still_cleans_up(coord_server) -> None:
    config = BenchConfig(hosts=coord_server.hosts, duration=30, workloads=("create",))
    with trio.move_on_after(0.5):
        await run_bench(config, prefix="/bench-cancelled")
    assert await remaining_bench_nodes(coord_server.hosts) == []


async def test_failures_are_counted_and_a_lost_session_aborts(coord_server) -> None:
    calls = 0

    class Flaky:
        """A Client whose gets fail now and then, then lose the session."""

        def __init__(self, zk: Client, fatal_after: int | None) -> None:
            self._zk = zk
            self._fatal_after = fatal_after

        def __getattr__(self, name: str) -> Any:
            return getattr(self._zk, name)

        async def get(self, path: str) -> Any:
            nonlocal calls
            calls += 1
            if self._fatal_after is not None and calls > self._fatal_after:
                raise SessionExpiredError("session 0x1 expired: the test said so")
            if calls % 10 == 0:
                raise NoNodeError(f"node {path!r} does not exist", path=path)
            return await self._zk.get(path)

    def factory_for(fatal_after: int | None) -> Any:
        @asynccontextmanager
        async def factory(hosts: str, session_timeout: float) -> AsyncIterator[Flaky]:
            async with Client(hosts, session_timeout=session_timeout) as zk:
                yield Flaky(zk, fatal_after)

        return factory

    config = BenchConfig(
        hosts=coord_server.hosts, duration=None, ops=100, workloads=("get",), outstanding=3
    )
    (r,) = await run_bench(config, client_factory=factory_for(None))
    assert (r.ops, r.errors) == (90, 10)
    assert "errors" in format_table([r]).splitlines()[0]

    calls = 0
    with pytest.raises(SessionExpiredError):
        await run_bench(config, client_factory=factory_for(50), prefix="/bench-lost")
    assert await remaining_bench_nodes(coord_server.hosts) == []


async def test_cli_bench_json(coord_server) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["-s", coord_server.hosts, "bench", "--ops", "200", "--clients", "2"]
    argv += ["--outstanding", "4", "--workloads", "set,get", "--json"]
    rc = await run(argv, stdout=out, stderr=err)
    assert rc == EXIT_OK, err.getvalue()
    doc = json.loads(out.getvalue())
    assert [r["workload"] for r in doc["results"]] == ["set", "get"]
    assert all(r["ops"] == 200 and r["errors"] == 0 for r in doc["results"])
    assert "setting up /bench-" in err.getvalue()


async def test_cli_bench_table(coord_server) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["-s", coord_server.hosts, "bench", "--ops", "100", "-q", "--workloads", "mixed"]
    assert await run(argv, stdout=out, stderr=err) == EXIT_OK
    assert err.getvalue() == ""
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("workload")
    assert lines[2].split()[:5] == ["mixed", "1", "x", "1", "100"]
