"""Server settings: defaults, a TOML file, then command-line flags, validated by pydantic."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator


class ConfigError(Exception):
    """The configuration file or flags are invalid; the message says which setting and why."""


class MemberSpec(BaseModel):
    """One ensemble member: where its clients and its peers reach it."""

    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=1, le=255)
    host: str = "127.0.0.1"
    client_port: int = Field(ge=0, le=65535)
    peer_port: int = Field(ge=0, le=65535)
    zk_port: int | None = Field(
        default=None, ge=0, le=65535, description="its ZooKeeper-compatible client port, if any"
    )
    observer: bool = False
    data_dir: Path | None = None


class TlsSpec(BaseModel):
    """The `[tls]` section of the config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert_file: Path
    """The server's certificate chain (PEM)."""
    key_file: Path
    """Its private key (PEM)."""
    ca_file: Path | None = None
    """CAs whose client certificates are accepted (needed for require_client_cert)."""
    require_client_cert: bool = False


class EnsembleSpec(BaseModel):
    """The whole ensemble, as every member's config file describes it."""

    model_config = ConfigDict(extra="forbid")

    tick_ms: int = Field(default=200, ge=1)
    init_limit: int = Field(default=10, ge=1, description="ticks allowed for sync")
    sync_limit: int = Field(default=5, ge=1, description="ticks of silence before giving up")
    data_root: Path = Path("coord-data")
    member: list[MemberSpec]
    secret: SecretStr | None = Field(
        default=None,
        description=(
            "the ensemble's shared secret: members prove they know it (HMAC-SHA256 "
            "challenge-response) on every peer connection; unset: no peer authentication"
        ),
    )
    tls: TlsSpec | None = None
    """Set from the config's [tls] table: peer links use mutual TLS too (each member
    presents its certificate and checks the other's against ca_file)."""
    secret_file: Path | None = Field(
        default=None, description="a file holding the shared secret (instead of `secret`)"
    )
    peer_max_frame_bytes: int = Field(
        default=8 * 1024 * 1024, ge=64 * 1024, description="largest peer frame"
    )
    peer_max_message_bytes: int = Field(
        default=1024 * 1024 * 1024,
        ge=1024 * 1024,
        description="largest peer message sent in fragments (a SNAP's snapshot), all links",
    )
    peer_max_connections: int = Field(
        default=0, ge=0, description="inbound peer connections at once; 0: twice the members"
    )
    peer_handshake_timeout_ms: int = Field(
        default=5000, ge=1, description="time a peer connection has to authenticate"
    )
    time_leases: bool = Field(
        default=False,
        description=(
            "keep leadership and followership as leases in time as well as in ticks "
            "(a member resumed after a pause steps down at its first input); off by "
            "default until a liveness problem under forged peer messages is fixed"
        ),
    )
    peer_heartbeat_ms: int = Field(
        default=100, ge=1, description="an idle peer link sends a heartbeat this often"
    )
    peer_silence_ms: int = Field(
        default=600,
        ge=2,
        description=(
            "a peer link that reads nothing (or cannot send) for this long is dropped and "
            "reconnected, instead of waiting out TCP's retransmission backoff"
        ),
    )

    @model_validator(mode="after")
    def _heartbeat_within_silence(self) -> EnsembleSpec:
        if self.peer_heartbeat_ms * 2 > self.peer_silence_ms:
            raise ValueError(
                f"peer_silence_ms ({self.peer_silence_ms}) must be at least twice "
                f"peer_heartbeat_ms ({self.peer_heartbeat_ms})"
            )
        return self

    @model_validator(mode="after")
    def _one_secret(self) -> EnsembleSpec:
        if self.secret is not None and self.secret_file is not None:
            raise ValueError("set one of secret and secret_file, not both")
        if self.secret is not None and len(self.secret.get_secret_value()) < 16:
            raise ValueError("the ensemble secret must be at least 16 characters")
        return self

    def peer_secret(self) -> bytes | None:
        """The shared secret's bytes (read from `secret_file` if that is set), or None.

        A file's trailing newline is not part of the secret.
        """
        if self.secret is not None:
            return self.secret.get_secret_value().encode()
        if self.secret_file is None:
            return None
        try:
            text = self.secret_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read the ensemble secret_file: {exc}") from None
        if len(text) < 16:
            raise ConfigError(f"the secret in {str(self.secret_file)!r} is under 16 bytes")
        return text

    @property
    def max_peer_connections(self) -> int:
        return self.peer_max_connections or 2 * len(self.member)

    @property
    def voters(self) -> frozenset[int]:
        return frozenset(m.id for m in self.member if not m.observer)

    @property
    def observers(self) -> frozenset[int]:
        return frozenset(m.id for m in self.member if m.observer)

    def get(self, member_id: int) -> MemberSpec:
        for member in self.member:
            if member.id == member_id:
                return member
        known = ", ".join(str(m.id) for m in self.member)
        raise ConfigError(f"member {member_id} is not in the ensemble (members: {known})")

    def connection_string(self) -> str:
        return ",".join(f"{m.host}:{m.client_port}" for m in self.member)

    def zk_connection_string(self) -> str:
        """host:port of every member's ZooKeeper-compatible port, for kazoo or Curator."""
        return ",".join(f"{m.host}:{m.zk_port}" for m in self.member if m.zk_port is not None)


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=2281, ge=0, le=65535)
    zk_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="a second client port speaking ZooKeeper's protocol (off; 2181 is usual)",
    )
    data_dir: Path = Path("coord-data")
    server_id: int = Field(default=1, ge=1, le=255)
    tick_ms: int = Field(default=2000, ge=1)
    min_session_timeout_ms: int = Field(
        default=0, ge=0, description="ZooKeeper's minSessionTimeout; 0: 2 x tick"
    )
    max_session_timeout_ms: int = Field(
        default=0, ge=0, description="ZooKeeper's maxSessionTimeout; 0: 40 s (or 20 x tick)"
    )
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
    ensemble: EnsembleSpec | None = None
    """Set for an ensemble member (server_id says which); None for a standalone server."""
    max_outbound_batches: int = Field(
        default=1024, ge=1, description="queued reply batches per connection before it is cut off"
    )
    max_outbound_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=2 * 1024 * 1024,
        description=(
            "reply bytes queued and unsent per connection before it is closed as a slow "
            "reader (its session lives on; the client reconnects and resumes it)"
        ),
    )
    handshake_timeout_ms: int = Field(
        default=10_000,
        ge=1,
        description="a connection that sends no complete handshake within this is closed",
    )
    log_burst: int = Field(
        default=10, ge=1, description="warnings about clients (refusals, bad input) per interval"
    )
    log_interval_ms: int = Field(
        default=10_000, ge=1, description="the interval of log_burst; the rest are counted"
    )
    max_watches_per_session: int = Field(
        default=0, ge=0, description="watches one session may set; over it the request fails"
    )
    four_letter_words: list[str] = Field(
        default_factory=lambda: ["srvr"],
        description=(
            "ZooKeeper's 4lw.commands.whitelist: the four-letter words answered on the "
            "ZooKeeper port; '*' allows all"
        ),
    )
    tls: TlsSpec | None = None
    """The [tls] table: both client ports speak only TLS (server/tls.py)."""
    super_digest: str = Field(
        default="",
        pattern=r"^$|^[^:]+:[A-Za-z0-9+/]{27}=$",
        description=(
            "ZooKeeper's superDigest, 'user:base64(sha1(user:password))': a client that "
            "authenticates with that digest passes every ACL check (empty: no super user)"
        ),
    )

    @model_validator(mode="after")
    def _ports_differ(self) -> ServerConfig:
        if self.zk_port is not None and self.zk_port != 0 and self.zk_port == self.port:
            raise ValueError(f"zk_port and port are both {self.port}; they must differ")
        return self

    @model_validator(mode="after")
    def _session_bounds_in_order(self) -> ServerConfig:
        low, high = self.min_session_timeout_ms, self.max_session_timeout_ms
        if low and high and low > high:
            raise ValueError(
                f"min_session_timeout_ms ({low}) is above max_session_timeout_ms ({high})"
            )
        return self


def load_config(
    path: Path | None, overrides: dict[str, Any], *, member_id: int | None = None
) -> ServerConfig:
    """Read `path` (TOML, keys as in ServerConfig, optionally under [server]) and apply flags.

    A file with an [ensemble] table describes an ensemble; `member_id` (--id)
    picks which member this process is, and that member's addresses and data
    directory become this server's.
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                document = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"config file {str(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
        ensemble_table = document.pop("ensemble", None)
        tls_table = document.pop("tls", None)
        section = document.get("server", document)
        if not isinstance(section, dict):
            raise ConfigError(f"config file {str(path)!r}: [server] must be a table")
        values.update(section)
        if tls_table is not None:
            values["tls"] = tls_table
        if ensemble_table is not None:
            if tls_table is not None and isinstance(ensemble_table, dict):
                ensemble_table = {**ensemble_table, "tls": tls_table}
            values.update(_member_values(path, ensemble_table, member_id))
    elif member_id is not None:
        raise ConfigError("--id needs --config with an [ensemble] table")
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ServerConfig.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None


def _member_values(path: Path, table: Any, member_id: int | None) -> dict[str, Any]:
    try:
        ensemble = EnsembleSpec.model_validate(table)
    except ValidationError as exc:
        problems = "; ".join(
            f"ensemble.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"config file {str(path)!r}: {problems}") from None
    ids = [m.id for m in ensemble.member]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"config file {str(path)!r}: member ids repeat: {ids}")
    if member_id is None:
        raise ConfigError(f"config file {str(path)!r} describes an ensemble: say which member "
                          f"this is with --id (one of {sorted(ids)})")  # fmt: skip
    member = ensemble.get(member_id)
    ensemble.peer_secret()  # an unreadable secret_file fails now, not at the first link
    values: dict[str, Any] = {
        "ensemble": ensemble,
        "server_id": member.id,
        "host": member.host,
        "port": member.client_port,
        "tick_ms": ensemble.tick_ms,
        "data_dir": member.data_dir or ensemble.data_root / str(member.id),
    }
    if member.zk_port is not None:
        values["zk_port"] = member.zk_port
    return values
