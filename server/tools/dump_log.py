"""`coord-server dump-log` and `dump-snapshot`: print a data directory's records readably.

For people debugging: every record with its file, offset and decoded txn, and
how each file ends (clean, torn tail, corrupt record). Read-only: nothing is
truncated or repaired here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from coord.server.core.txn import CreateSessionTxn, Txn, TxnBody
from coord.server.storage.codec import TxnDecodeError, decode_txn
from coord.server.storage.records import LOG_MAGIC, ScanEnd, scan
from coord.server.storage.snapshot import SnapshotError, load_snapshot

HIDDEN = "<hidden>"
"""What stands for a session password in the output: a dump is pasted into bug reports,
and a session's password is all it takes to take the session over."""


def describe_txn(txn: Txn) -> str:
    header = txn.header
    return (
        f"zxid={header.zxid:#x} time={header.time_ms} session={header.session_id:#x} "
        f"xid={header.xid} {_describe_body(txn.body)}"
    )


def _describe_body(body: TxnBody) -> str:
    """The txn body's repr, with session passwords replaced by HIDDEN."""
    if isinstance(body, CreateSessionTxn):
        return (
            f"CreateSessionTxn(session_id={body.session_id}, timeout_ms={body.timeout_ms}, "
            f"password={HIDDEN})"
        )
    return repr(body)


def dump_log(target: Path, out: TextIO) -> int:
    """Print every record of one segment, or of every segment in a data directory."""
    files = sorted(target.glob("log.*")) if target.is_dir() else [target]
    if not files:
        print(f"no log segments in {target}", file=out)
        return 1
    status = 0
    for path in files:
        data = path.read_bytes()
        print(f"# {path} ({len(data)} bytes)", file=out)
        if not data.startswith(LOG_MAGIC):
            print("#   not a log segment (bad magic)", file=out)
            status = 1
            continue
        result = scan(data, len(LOG_MAGIC))
        for offset, payload in result.records:
            try:
                print(f"{offset:>10}  {describe_txn(decode_txn(payload))}", file=out)
            except TxnDecodeError as exc:
                print(f"{offset:>10}  UNDECODABLE: {exc}", file=out)
                status = 1
        if result.end is ScanEnd.CLEAN:
            print(f"#   {len(result.records)} records, clean end", file=out)
        else:
            print(
                f"#   {len(result.records)} records, then {result.end.value} at offset "
                f"{result.offset}: {result.reason}",
                file=out,
            )
            status = 1
    return status


def dump_snapshot(path: Path, out: TextIO, *, with_data: bool = False) -> int:
    """Print a snapshot's header, sessions and nodes."""
    data = path.read_bytes()
    print(f"# {path} ({len(data)} bytes)", file=out)
    try:
        loaded = load_snapshot(data, name=str(path))
    except SnapshotError as exc:
        print(f"#   invalid: {exc}", file=out)
        return 1
    tree = loaded.tree
    print(f"#   zxid {loaded.zxid:#x}, {loaded.node_count} nodes", file=out)
    for session_id, (timeout_ms, _password) in sorted(tree.sessions.items()):
        print(f"session {session_id:#x} timeout={timeout_ms}ms", file=out)
    for node_path in tree.walk():
        node = tree.nodes[node_path]
        stat = node.stat()
        line = (
            f"{node_path}  version={stat.version} cversion={stat.cversion} "
            f"czxid={stat.czxid:#x} mzxid={stat.mzxid:#x} owner={stat.ephemeral_owner:#x} "
            f"mode={node.mode.name} bytes={stat.data_length}"
        )
        if with_data:
            line += f" data={node.data!r}"
        print(line, file=out)
    return 0


__all__ = ["dump_log", "dump_snapshot"]
