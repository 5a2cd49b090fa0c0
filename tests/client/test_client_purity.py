"""The client's bookkeeping modules are pure: walk their imports and hold it.

Only the connection, the Client, the streams and the transaction's async
commit may import trio; what decides things (hosts, states, watch routing,
the request table, the frame handling, request bodies) must be drivable by
a test without sockets, clocks or an event loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "client"
PURE = ["hosts.py", "states.py", "watches.py", "pending.py", "protocol.py", "ops.py"]
FORBIDDEN = {
    "trio",
    "socket",
    "os",
    "time",
    "random",
    "asyncio",
    "threading",
    "subprocess",
    "select",
    "selectors",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            names.add("." + node.module.split(".")[0])
    return names


@pytest.mark.parametrize("name", PURE)
def test_pure_module_imports_no_io(name: str) -> None:
    imports = _imports(CLIENT / name)
    assert not imports & FORBIDDEN, f"client/{name} imports {sorted(imports & FORBIDDEN)}"
    impure_siblings = {f".{m}" for m in ("client", "connection", "streams", "transaction")}
    assert not imports & impure_siblings, f"client/{name} imports a runtime module"
