"""Execute every ```python block in README.md and docs/ so the documentation cannot rot.

The blocks of one page run in order in one shared namespace, in a fresh
temporary working directory. Top-level ``await`` is allowed: such a block is
compiled with ``PyCF_ALLOW_TOP_LEVEL_AWAIT`` and run on a private event loop
that stays open for the whole page, so later blocks can keep using objects
(a connected database, say) created by earlier ones.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _database_registry() -> dict[str, Any]:
    from covet.db import database

    return database._registry


def _pages() -> list[Path]:
    pages = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    return [p for p in pages if _FENCE.search(p.read_text("utf-8"))]


def _blocks(page: Path) -> list[tuple[int, str]]:
    text = page.read_text("utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in _FENCE.finditer(text)]


def test_fence_extraction_finds_blocks_and_lines() -> None:
    page_text = "intro\n```python\nx = 1\n```\ntext\n```python\ny = x + 1\n```\n"
    found = [
        (page_text.count("\n", 0, m.start()) + 2, m.group(1)) for m in _FENCE.finditer(page_text)
    ]
    assert found == [(3, "x = 1\n"), (7, "y = x + 1\n")]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_examples_run(page: Path, tmp_path: Path) -> None:
    # The page runs as a registered module: libraries that resolve annotations through
    # sys.modules[cls.__module__] (strawberry, pydantic) find the page's classes.
    module = types.ModuleType(f"docs_{page.stem.replace('-', '_')}")
    sys.modules[module.__name__] = module
    namespace: dict[str, Any] = module.__dict__
    databases_before = set(map(id, _database_registry().values()))
    # Pages may import a demo project they write (settings.md): forget it afterwards.
    path_before, modules_before = list(sys.path), set(sys.modules)
    loop = asyncio.new_event_loop()
    old_cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        for lineno, source in _blocks(page):
            # Pad so tracebacks point at the real line of the Markdown file.
            padded = "\n" * (lineno - 1) + source
            code = compile(
                padded, str(page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
            )
            result = eval(code, namespace)  # noqa: S307 - executing our own documentation
            if inspect.iscoroutine(result):
                loop.run_until_complete(result)
    finally:
        os.chdir(old_cwd)
        sys.modules.pop(module.__name__, None)
        sys.path[:] = path_before
        for name in set(sys.modules) - modules_before:
            origin = getattr(sys.modules[name], "__file__", None) or ""
            if origin.startswith(str(tmp_path)):
                del sys.modules[name]
        # A page that failed half-way leaves its databases connected; their driver
        # threads would keep the test process alive, so close them on their loop.
        for database in list(_database_registry().values()):
            if id(database) not in databases_before:
                loop.run_until_complete(database.disconnect())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        _close_sentry_client()


def _close_sentry_client() -> None:
    """Undo a page's ``sentry_sdk.init()`` (operations.md): its client is process-wide.

    Left active, sentry-sdk's integrations act in later tests (its strawberry
    integration warns when a GraphQL schema is built).
    """
    sentry_sdk = sys.modules.get("sentry_sdk")
    if sentry_sdk is not None and sentry_sdk.get_client().is_active():
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


def test_examples_carry_no_test_harness_hooks() -> None:
    # Readers copy examples: housekeeping (closing databases, forgetting demo
    # modules) belongs to this runner, not to the pages.
    hooks = [
        f"{page.relative_to(ROOT)}:{lineno}"
        for page in _pages()
        for lineno, source in _blocks(page)
        if re.search(r"\b_doc_\w+", source)
    ]
    assert hooks == []
