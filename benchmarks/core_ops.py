"""Requests per CPU second through one ServerCore in-process: no sockets, no disk, no clock.

    python benchmarks/core_ops.py get set create

What a change to the core's request path (validation, ACL checks, the
sequencer, the tree) costs, without the network and the client, which
dominate `coord bench` and make its figures noisy on a shared machine. One
session sends batches of 256 requests for one 100-byte node; each batch is
carried out as the runtime would (ready, advance). To compare two trees,
run it from each alternately (PYTHONPATH=TREE, cwd TREE) and compare medians.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from coord.messages import PROTOCOL_VERSION, ConnectRequest, OpCode
from coord.server.core.replica import CoreConfig, ServerCore

NOW = 1_000_000
BATCH = 256


def _drain(core: ServerCore) -> None:
    while core.has_ready():
        core.advance(core.ready(), now_ms=NOW)


def _body(op: str, xid: int) -> tuple[int, dict[str, Any]]:
    if op == "get":
        return OpCode.GET_DATA, {"path": "/x", "watch": False}
    if op == "set":
        return OpCode.SET_DATA, {"path": "/x", "data": b"w" * 100}
    if op == "create":
        return OpCode.CREATE, {"path": f"/x/n{xid}", "data": b"w" * 100}
    raise SystemExit(f"unknown op {op!r} (get, set, create)")


def requests_per_second(op: str, count: int = 40_000) -> float:
    core = ServerCore(CoreConfig(tick_ms=100))
    request = ConnectRequest(protocol_version=PROTOCOL_VERSION, timeout_ms=1000)
    core.connect(1, request, now_ms=NOW, password=b"p" * 16)
    _drain(core)
    core.request(1, 1, OpCode.CREATE, {"path": "/x", "data": b"v" * 100}, now_ms=NOW)
    _drain(core)
    xid = 2
    start = time.process_time()
    for _ in range(count // BATCH):
        for _ in range(BATCH):
            code, body = _body(op, xid)
            core.request(1, xid, code, body, now_ms=NOW)
            xid += 1
        _drain(core)
    return (count // BATCH) * BATCH / (time.process_time() - start)


if __name__ == "__main__":
    for name in sys.argv[1:] or ["get", "set", "create"]:
        print(name, round(requests_per_second(name)))
