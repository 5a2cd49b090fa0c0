"""The architectural rule: the cores are pure. Walk their imports and hold it.

coord/ and the server's decision modules must not import anything that does
IO, reads a clock or draws global randomness. Only server/runtime and the
command-line entry points may.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "trio",
    "socket",
    "os",
    "time",
    "random",
    "secrets",
    "asyncio",
    "threading",
    "subprocess",
    "datetime",
    "select",
    "selectors",
    "io",
    "pathlib",
}
IMPURE_ALLOWED = {"server/runtime", "server/__main__.py", "server/config.py", "server/testing.py"}
"""server/testing.py runs members in a trio run for users' tests: a runtime, not a core."""


def _pure_modules() -> list[Path]:
    modules = sorted((ROOT / "coord").rglob("*.py")) + sorted((ROOT / "server").rglob("*.py"))
    return [
        m
        for m in modules
        if not any(str(m.relative_to(ROOT)).startswith(prefix) for prefix in IMPURE_ALLOWED)
    ]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_there_are_pure_modules_to_check() -> None:
    names = {str(m.relative_to(ROOT)) for m in _pure_modules()}
    assert {"server/tree.py", "server/core.py", "coord/messages.py"} <= names


@pytest.mark.parametrize("module", _pure_modules(), ids=lambda m: str(m.relative_to(ROOT)))
def test_core_module_does_no_io_and_reads_no_clock(module: Path) -> None:
    bad = _imports(module) & FORBIDDEN
    assert not bad, f"{module.relative_to(ROOT)} imports {sorted(bad)}; pure cores may not"
