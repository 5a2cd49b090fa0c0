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
IMPURE_ALLOWED = {
    "server/runtime",
    "server/testing",
    "server/tools",
    "server/__main__.py",
    "server/sim/__main__.py",
    "server/config.py",
}
"""server/testing runs members in a trio run for users' tests (with its in-memory disk and
links), server/tools read data directories and launch processes, and the simulator's command
line times its runs: runtimes, not cores."""


def _pure_modules() -> list[Path]:
    modules = sorted((ROOT / "coord").rglob("*.py")) + sorted((ROOT / "server").rglob("*.py"))
    return [
        m
        for m in modules
        if not any(str(m.relative_to(ROOT)).startswith(prefix) for prefix in IMPURE_ALLOWED)
    ]


IMPURE_PACKAGES = ("coord.server.runtime", "coord.server.testing", "coord.server.tools")
"""A pure module may not reach the runtime through the project's own packages either."""


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _imported_modules(path)}


def test_there_are_pure_modules_to_check() -> None:
    names = {str(m.relative_to(ROOT)) for m in _pure_modules()}
    assert {"server/core/tree.py", "server/core/replica.py", "coord/messages.py"} <= names


SEEDED = "server/sim/"
"""The simulator draws everything from a `random.Random(seed)` it is handed: it may import
`random` for that class, and nothing else impure."""


@pytest.mark.parametrize("module", _pure_modules(), ids=lambda m: str(m.relative_to(ROOT)))
def test_core_module_does_no_io_and_reads_no_clock(module: Path) -> None:
    bad = _imports(module) & FORBIDDEN
    if str(module.relative_to(ROOT)).startswith(SEEDED):
        bad -= {"random"}
    assert not bad, f"{module.relative_to(ROOT)} imports {sorted(bad)}; pure cores may not"


@pytest.mark.parametrize("module", _pure_modules(), ids=lambda m: str(m.relative_to(ROOT)))
def test_core_module_imports_nothing_from_the_runtime(module: Path) -> None:
    bad = {name for name in _imported_modules(module) if name.startswith(IMPURE_PACKAGES)}
    assert not bad, f"{module.relative_to(ROOT)} imports {sorted(bad)}; pure cores may not"
