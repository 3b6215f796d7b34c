"""House rules: protocol/ and the provider parsers stay pure (no asyncio, aiohttp, Starlette);
server/ modules import each other without a cycle, and the resume stores know streams only as
``Source``s, not the stream runner."""

from __future__ import annotations

import ast
import importlib.util
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"asyncio", "aiohttp", "httptools", "redis", "starlette", "uvicorn", "websockets"}
IO_MODULES = {
    "providers/http/client.py",
    "providers/http/connection.py",
}  # the providers' only I/O: the HTTP client
# The server's pure cores: policies and formats tested without an event loop.
SERVER_PURE = ("server/streams/retry.py", "server/streams/deadlines.py", "server/stores/mirror_codec.py")
PURE_FILES = sorted(
    [
        p
        for d in ("protocol", "providers")
        for p in (ROOT / d).rglob("*.py")
        if p.relative_to(ROOT).as_posix() not in IO_MODULES
    ]
    + [ROOT / name for name in SERVER_PURE]
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SERVER_MODULES = {_module_name(p): p for p in (ROOT / "server").rglob("*.py")}


def _imported_modules(path: Path) -> set[str]:
    """The dotted names that the imports anywhere in ``path`` (in functions too) name: for
    ``from a import b`` both ``a`` and ``a.b``, as ``b`` may be a module."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            modules.add(base)
            modules.update(f"{base}.{alias.name}" for alias in node.names)
    return modules


def _imported_roots(path: Path) -> set[str]:
    return {module.split(".")[0] for module in _imported_modules(path)}


@pytest.mark.parametrize("path", PURE_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_pure_modules_import_no_io_framework(path: Path) -> None:
    assert not _imported_roots(path) & FORBIDDEN


def test_protocol_imports_nothing_from_the_server() -> None:
    for path in (ROOT / "protocol").rglob("*.py"):
        assert not _imported_roots(path) & {"server", "providers"}, path


@pytest.mark.parametrize("path", sorted((ROOT / "server/stores").rglob("*.py")), ids=lambda p: p.name)
def test_the_stores_do_not_import_the_stream_runner(path: Path) -> None:
    """A store keeps any ``Source``; the runner's Stream is one, from the layer above."""
    assert "server.streams.runner" not in _imported_modules(path)


def test_server_modules_import_each_other_without_a_cycle() -> None:
    """Imports inside functions count: a lazy import hides a cycle from Python, not from a
    reader (the old resume.py <-> redis_store.py cycle was one). A module's parent packages,
    which Python imports first, are not counted: a package's __init__ importing its own
    modules would otherwise always close a cycle."""
    graph = {name: _imported_modules(path) & SERVER_MODULES.keys() for name, path in SERVER_MODULES.items()}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        cycle: list[str] = exc.args[1]  # each is imported by the next
        pytest.fail("import cycle: " + " imports ".join(reversed(cycle)))
