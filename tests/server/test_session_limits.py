"""Session timeout bounds as ZooKeeper operators set them: minSessionTimeout and
maxSessionTimeout in milliseconds, from the TOML file or the command line, and a
default ceiling of 40 s that does not shrink with an ensemble's short tick."""

from __future__ import annotations

from pathlib import Path

import pytest

from coord.messages import PROTOCOL_VERSION, ConnectRequest
from coord.server.__main__ import build_parser
from coord.server.config import ConfigError, load_config
from coord.server.core.output import Connected
from coord.server.core.replica import CoreConfig, ServerCore


def _negotiated(config: CoreConfig, requested_ms: int) -> int:
    core = ServerCore(config)
    core.connect(
        1,
        ConnectRequest(protocol_version=PROTOCOL_VERSION, timeout_ms=requested_ms),
        now_ms=0,
        password=b"p" * 16,
    )
    core.advance(core.ready(), now_ms=0)
    ((_, hello),) = core.ready().messages
    assert isinstance(hello, Connected)
    return hello.timeout_ms


def test_an_ensemble_tick_of_200_ms_still_allows_40_second_sessions() -> None:
    assert _negotiated(CoreConfig(tick_ms=200), 10**9) == 40_000
    assert _negotiated(CoreConfig(tick_ms=200), 30_000) == 30_000
    assert _negotiated(CoreConfig(tick_ms=200), 1) == 400


def test_configured_bounds_clamp_the_request() -> None:
    config = CoreConfig(tick_ms=200, min_session_timeout_ms=5_000, max_session_timeout_ms=90_000)
    assert [_negotiated(config, ms) for ms in (1, 60_000, 10**9)] == [5_000, 60_000, 90_000]


def test_bounds_come_from_the_file_and_the_flags(tmp_path: Path) -> None:
    path = tmp_path / "coord.toml"
    path.write_text("[server]\nmin_session_timeout_ms = 3000\nmax_session_timeout_ms = 60000\n")
    config = load_config(path, {})
    assert (config.min_session_timeout_ms, config.max_session_timeout_ms) == (3_000, 60_000)
    flags = build_parser().parse_args(["--max-session-timeout-ms", "120000"])
    assert flags.max_session_timeout_ms == 120_000
    assert load_config(path, {"max_session_timeout_ms": 120_000}).max_session_timeout_ms == 120_000


def test_bounds_out_of_order_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="above max_session_timeout_ms"):
        load_config(None, {"min_session_timeout_ms": 50_000, "max_session_timeout_ms": 10_000})
