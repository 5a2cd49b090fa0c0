"""Server settings: defaults, a TOML file, then command-line flags, validated by pydantic."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConfigError(Exception):
    """The configuration file or flags are invalid; the message says which setting and why."""


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=2281, ge=0, le=65535)
    data_dir: Path = Path("coord-data")
    server_id: int = Field(default=1, ge=1, le=255)
    tick_ms: int = Field(default=2000, ge=1)
    min_session_timeout_ms: int = Field(default=0, ge=0, description="0: 2 x tick")
    max_session_timeout_ms: int = Field(default=0, ge=0, description="0: 20 x tick")
    max_client_connections: int = Field(
        default=60, ge=0, description="per client IP address; 0: no limit"
    )
    fsync: bool = Field(
        default=True, description="fsync the log before acknowledging; off for tests only"
    )
    in_memory: bool = Field(default=False, description="keep nothing on disk (tests only)")
    snapshot_every: int = Field(default=100_000, ge=1, description="txns between snapshots")
    keep_snapshots: int = Field(default=3, ge=1, description="snapshots kept by the purge")
    segment_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, description="log segment size")
    truncate_corrupt_log: bool = Field(
        default=False, description="truncate the log at a corrupt record instead of stopping"
    )
    max_outbound_batches: int = Field(
        default=1024, ge=1, description="queued reply batches per connection before it is cut off"
    )


def load_config(path: Path | None, overrides: dict[str, Any]) -> ServerConfig:
    """Read `path` (TOML, keys as in ServerConfig, optionally under [server]) and apply flags."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                document = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"config file {str(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
        section = document.get("server", document)
        if not isinstance(section, dict):
            raise ConfigError(f"config file {str(path)!r}: [server] must be a table")
        values.update(section)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ServerConfig.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
