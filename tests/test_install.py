"""What a new user installs: the distribution name, the extras and the install hints."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from covet.exceptions import DISTRIBUTION, MissingDependencyError

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))


def test_distribution_name_is_not_the_unrelated_covet_package() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    assert project["name"] == DISTRIBUTION == "covet-web"


def test_all_extra_installs_what_the_documented_test_client_needs() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    extras = project["optional-dependencies"]
    assert any(req.startswith("httpx") for req in extras["testing"])
    (all_extra,) = extras["all"]
    assert all_extra.startswith(f"{DISTRIBUTION}[")
    assert "testing" in all_extra.split("[", 1)[1]


def test_missing_dependency_hint_names_the_real_distribution() -> None:
    message = str(MissingDependencyError("asyncpg", extra="postgres"))
    assert message.endswith("Run: pip install 'covet-web[postgres]'")


def test_test_client_without_httpx_names_the_extra() -> None:
    # httpx hidden from the import system, as on a machine that installed no extra.
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "try:\n    import covet.testing\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.startswith("MissingDependencyError")
    assert "pip install 'covet-web[testing]'" in out


def test_no_document_tells_users_to_install_the_unrelated_package() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    pages += sorted((REPO / "covet" / "cli" / "scaffold").rglob("*-tpl"))
    wrong = re.compile(r"pip install\s+['\"]?covet(?![-\w])")
    offenders = [
        f"{page.relative_to(REPO)}: {line.strip()}"
        for page in pages
        for line in page.read_text("utf-8").splitlines()
        if wrong.search(line) and "never" not in line.lower() and "Never" not in line
    ]
    assert offenders == []
