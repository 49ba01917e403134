"""covet.db modules use each other's public names only, across package boundaries.

A module may import an underscore name from a sibling module of its own
package (``covet.db.migrations.runtime`` from ``covet.db.migrations.config``);
from anywhere else it imports public names, so that a private name can change
without breaking a distant module. covet's top-level private modules
(``covet._json``, ``covet._utils``) are the whole project's shared internals.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DB = ROOT / "covet" / "db"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def cross_package_private_imports(source: str, package: str) -> list[str]:
    """Return ``module:name`` for each underscore name ``source`` imports from another package.

    Args:
        source: A module's code.
        package: The package the module belongs to (``covet.db.compiler``).
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        module = node.module
        if module != "covet" and not module.startswith("covet."):
            continue
        for alias in node.names:
            if not _private(alias.name):
                continue
            if module == "covet":
                continue  # covet._json, covet._utils: the project's shared internals
            if module.rpartition(".")[0] != package:
                found.append(f"{module}:{alias.name}")
    return found


def test_the_check_finds_private_imports_from_other_packages() -> None:
    source = (
        "from covet.db.models import _registry, Model\n"
        "from covet.db.compiler.nodes import _sibling\n"
        "from covet import _json\n"
        "import covet.db.models\n"
    )
    assert cross_package_private_imports(source, "covet.db.compiler") == [
        "covet.db.models:_registry"
    ]
    assert cross_package_private_imports(source, "covet.db") == ["covet.db.compiler.nodes:_sibling"]


def test_no_private_imports_across_packages_in_covet_db() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted(DB.rglob("*.py"))
        for name in cross_package_private_imports(path.read_text(encoding="utf-8"), _package(path))
    ]
    assert offenders == [], (
        "covet.db modules import private names across packages:\n"
        + "\n".join(offenders)
        + "\nMake the name public in its home module (or move it next to its users)."
    )
