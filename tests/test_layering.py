"""House rule: protocol/ and the provider parsers stay pure (no asyncio, aiohttp, Starlette)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"asyncio", "aiohttp", "httptools", "starlette", "uvicorn", "websockets"}
IO_MODULES = {"providers/http/client.py"}  # the providers' only I/O: the HTTP client
PURE_FILES = sorted(
    p
    for d in ("protocol", "providers")
    for p in (ROOT / d).rglob("*.py")
    if p.relative_to(ROOT).as_posix() not in IO_MODULES
)


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", PURE_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_pure_modules_import_no_io_framework(path: Path) -> None:
    assert not _imported_roots(path) & FORBIDDEN


def test_protocol_imports_nothing_from_the_server() -> None:
    for path in (ROOT / "protocol").rglob("*.py"):
        assert not _imported_roots(path) & {"server", "providers"}, path
