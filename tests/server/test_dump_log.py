"""`coord-server dump-log` never prints a session's password (it is the key to the session)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from coord.messages import CreateMode
from coord.server.__main__ import main
from coord.server.core.txn import CreateSessionTxn, CreateTxn, Txn, TxnHeader
from coord.server.runtime.disk import DataDir
from coord.server.tools.dump_log import HIDDEN, dump_log

PASSWORD = bytes(range(0xA0, 0xB0))


def _data_dir(tmp_path: Path) -> Path:
    disk = DataDir(tmp_path, fsync=False)
    disk.lock()
    disk.append(
        [
            Txn(TxnHeader(0x100000001, 5, 0x77, 0), CreateSessionTxn(0x77, 4000, PASSWORD)),
            Txn(
                TxnHeader(0x100000002, 6, 0x77, 1),
                CreateTxn("/a", b"hello", CreateMode.PERSISTENT, 0, 0, 1),
            ),
        ]
    )
    disk.close()
    return tmp_path


def _leaks(text: str) -> bool:
    return repr(PASSWORD) in text or PASSWORD.hex() in text or "\\xa0\\xa1" in text


def test_dump_log_hides_session_passwords(tmp_path: Path) -> None:
    out = io.StringIO()
    assert dump_log(_data_dir(tmp_path), out) == 0
    text = out.getvalue()
    assert not _leaks(text), text
    session_line = next(line for line in text.splitlines() if "CreateSessionTxn" in line)
    assert f"password={HIDDEN}" in session_line and "timeout_ms=4000" in session_line
    assert "CreateTxn(path='/a'" in text  # the rest is printed as before


def test_the_command_line_hides_them_too(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["dump-log", str(_data_dir(tmp_path))]) == 0
    text = capsys.readouterr().out
    assert "CreateSessionTxn" in text and not _leaks(text)
