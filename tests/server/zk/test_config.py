"""Turning the ZooKeeper port on: the TOML file, per ensemble member, and the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio

from coord.server.__main__ import build_parser
from coord.server.config import ConfigError, load_config
from tests.server.zk.jute_client import four_letter_word


def test_off_by_default_and_on_from_the_server_table(tmp_path: Path) -> None:
    assert load_config(None, {}).zk_port is None
    path = tmp_path / "coord.toml"
    path.write_text("[server]\nport = 2281\nzk_port = 2181\n")
    assert load_config(path, {}).zk_port == 2181
    assert load_config(path, {"zk_port": 0}).zk_port == 0  # the flag wins


def test_each_ensemble_member_has_its_own_zk_port(tmp_path: Path) -> None:
    path = tmp_path / "ensemble.toml"
    members = "".join(
        f"[[ensemble.member]]\nid = {i}\nclient_port = {2280 + i}\npeer_port = {2880 + i}\n"
        + (f"zk_port = {2180 + i}\n" if i != 3 else "")
        for i in (1, 2, 3)
    )
    path.write_text(f"[ensemble]\ntick_ms = 100\n\n{members}")
    assert load_config(path, {}, member_id=2).zk_port == 2182
    assert load_config(path, {}, member_id=3).zk_port is None
    config = load_config(path, {}, member_id=1)
    assert config.ensemble is not None
    assert config.ensemble.zk_connection_string() == "127.0.0.1:2181,127.0.0.1:2182"


def test_the_two_ports_must_differ() -> None:
    with pytest.raises(ConfigError, match="must differ"):
        load_config(None, {"port": 2181, "zk_port": 2181})


def test_command_line_flag() -> None:
    assert build_parser().parse_args(["--zk-port", "2181"]).zk_port == 2181
    assert build_parser().parse_args([]).zk_port is None


@pytest.mark.slow
async def test_coord_server_prints_and_serves_its_zk_port(tmp_path: Path) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "coord.server", "--port", "0", "--zk-port", "0", "--no-fsync",
         "--data-dir", str(tmp_path / "data"), "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        output = b""
        with trio.fail_after(20):
            while output.count(b"\n") < 2:
                output += await process.stdout.receive_some(1024)
        native, zk = output.decode().splitlines()[:2]
        assert native.startswith("coord-server listening on 127.0.0.1:")
        assert zk.startswith("coord-server zookeeper port on 127.0.0.1:")
        srvr = await four_letter_word(int(zk.rsplit(":", 1)[1]), "srvr")
        assert srvr.startswith("Zookeeper version: ")
    finally:
        process.terminate()
        await process.wait()
