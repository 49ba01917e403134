"""The optional compiled build: what it compiles, and a guard for the CI job that tests it.

``scripts/build_compiled.sh`` compiles ``covet._compiled.COMPILED_MODULES`` with
mypyc in place and runs the suite with ``COVET_EXPECT_COMPILED=1``; then
:func:`test_compiled_build_is_really_loaded` fails if any listed module was
imported from its ``.py`` source (a broken build would otherwise test the
pure modules and pass). Without the variable, the suite is testing the pure
build, and the check is the reverse, so a stale extension left in the tree
cannot pass for the sources under test.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

from covet._compiled import COMPILED_MODULES, compiled_modules

EXPECT = os.environ.get("COVET_EXPECT_COMPILED", "")


def test_every_listed_module_has_a_python_source():
    # The source is the fallback: a module cannot be compiled-only.
    root = Path(str(importlib.import_module("covet").__file__)).parent.parent
    for name in COMPILED_MODULES:
        assert (root / (name.replace(".", "/") + ".py")).is_file(), name
    assert list(COMPILED_MODULES) == sorted(set(COMPILED_MODULES))


@pytest.mark.skipif(EXPECT != "1", reason="COVET_EXPECT_COMPILED=1 is not set")
def test_compiled_build_is_really_loaded():
    pure = [name for name, compiled in compiled_modules().items() if not compiled]
    assert not pure, (
        f"COVET_EXPECT_COMPILED=1 but {pure} were imported from Python source. "
        "Run scripts/build_compiled.sh (or COVET_COMPILE=1 pip install .) first."
    )


@pytest.mark.skipif(EXPECT not in ("", "0"), reason="testing the compiled build")
def test_pure_build_has_no_stale_extensions():
    compiled = [name for name, compiled in compiled_modules().items() if compiled]
    assert not compiled, (
        f"{compiled} were imported from C extensions, so edits to their .py sources are "
        "not being tested. Run `python scripts/build_compiled.py --clean`, or set "
        "COVET_EXPECT_COMPILED=1 to test the compiled build."
    )
