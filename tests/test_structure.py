"""The package's shape, checked: private names stay home and modules stay small.

See docs/architecture.md for the packages and the rules these tests keep.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "covet"

#: STYLE.md: split a module past ~800 lines or at a second concept.
MAX_MODULE_LINES = 800


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(path: Path) -> str:
    dotted = _dotted(path)
    return dotted if path.name == "__init__.py" else dotted.rpartition(".")[0]


def _package_of_module(name: str) -> str:
    as_path = ROOT.joinpath(*name.split("."))
    return name if (as_path / "__init__.py").is_file() else name.rpartition(".")[0]


def test_private_names_are_imported_only_inside_their_package() -> None:
    # covet._utils, covet._json and the like are the framework's shared internals
    # and may be imported anywhere in covet; a *name* with a leading underscore
    # belongs to its package, and another package must not reach for it.
    offenders = []
    for path in _modules():
        importer = _package_of(path)
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("covet"):
                continue
            assert node.module is not None
            home = _package_of_module(node.module)
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                submodule = ROOT.joinpath(*node.module.split("."), alias.name)
                if submodule.with_suffix(".py").is_file() or submodule.is_dir():
                    continue  # `from covet import _json`: a shared internal module
                if private and home != importer:
                    offenders.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} imports {alias.name} "
                        f"from {node.module}"
                    )
    assert offenders == []


def test_no_module_is_past_the_split_point() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text("utf-8").splitlines())
        for path in _modules()
    }
    assert {name: size for name, size in sizes.items() if size > MAX_MODULE_LINES} == {}


def _runtime_imports(path: Path) -> set[str]:
    """Return the covet modules ``path`` imports at run time (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text("utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("covet"):
            assert node.module is not None
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                as_path = ROOT.joinpath(*candidate.split("."))
                is_module = as_path.with_suffix(".py").is_file() or as_path.is_dir()
                found.add(candidate if is_module else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("covet"))
    return found


#: Packages and the covet packages they must never import at run time: dependencies
#: point one way (docs/architecture.md draws them).
FORBIDDEN = {
    # The ORM stands alone: usable without the web layer.
    "covet.db": (
        "covet.app",
        "covet.requests",
        "covet.responses",
        "covet.routing",
        "covet.sessions",
        "covet.auth",
        "covet.ratelimit",
        "covet.middleware",
        "covet.templates",
        "covet.cli",
        "covet.websockets",
    ),
    # Sessions and rate limits are below auth: auth uses them, never the reverse.
    "covet.sessions": ("covet.auth", "covet.ratelimit", "covet.cli"),
    "covet.ratelimit": ("covet.auth", "covet.sessions", "covet.cli"),
    # Jobs sit on the ORM and the foundation, beside sessions and rate limits; the
    # worker runs the app through the CLI, never the other way round.
    "covet.jobs": (
        "covet.app",
        "covet.routing",
        "covet.auth",
        "covet.sessions",
        "covet.ratelimit",
        "covet.cli",
    ),
    # The web core knows nothing of the batteries built on it.
    "covet.requests": ("covet.db", "covet.auth", "covet.sessions", "covet.ratelimit"),
    "covet.responses": ("covet.db", "covet.auth", "covet.sessions", "covet.ratelimit"),
    "covet.routing": ("covet.db", "covet.auth", "covet.sessions", "covet.ratelimit"),
    "covet.app": ("covet.db", "covet.auth", "covet.sessions", "covet.ratelimit", "covet.cli"),
    "covet.websockets": ("covet.db", "covet.auth", "covet.sessions", "covet.ratelimit"),
    # Typed handlers are web core: the ORM meets them only through duck typing (attributes).
    "covet.params": (
        "covet.db",
        "covet.auth",
        "covet.sessions",
        "covet.ratelimit",
        "covet.routing",
        "covet.app",
        "covet.cli",
    ),
    "covet.templates": ("covet.db", "covet.auth", "covet.cli", "covet.cache"),
    # The cache reads the user and session from the scope; it never imports them.
    "covet.cache": ("covet.auth", "covet.sessions", "covet.cli"),
    # HTML forms sit on the typed-handler schemas, beside the web core.
    "covet.forms": (
        "covet.db",
        "covet.auth",
        "covet.sessions",
        "covet.ratelimit",
        "covet.routing",
        "covet.app",
        "covet.cli",
    ),
    # The API document reads routes and middleware; it detects auth through sys.modules.
    "covet.openapi": (
        "covet.db",
        "covet.auth",
        "covet.sessions",
        "covet.ratelimit",
        "covet.cli",
    ),
}


def test_dependencies_point_one_way() -> None:
    offenders = []
    for path in _modules():
        module = _dotted(path)
        for package, forbidden in FORBIDDEN.items():
            if module != package and not module.startswith(package + "."):
                continue
            for target in _runtime_imports(path):
                if any(target == f or target.startswith(f + ".") for f in forbidden):
                    offenders.append(f"{path.relative_to(ROOT)} imports {target}")
    assert offenders == []


def test_only_the_cli_imports_the_cli() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {target}"
        for path in _modules()
        if not _dotted(path).startswith("covet.cli")
        for target in _runtime_imports(path)
        if target.startswith("covet.cli")
    ]
    assert offenders == []
