"""Which covet modules the optional compiled build turns into C extensions, and which are.

covet is pure Python. ``COVET_COMPILE=1 pip install .`` (or
``python scripts/build_compiled.py`` in a checkout) compiles the modules named
in :data:`COMPILED_MODULES` with mypyc; the Python source stays the fallback and
the reference, and the same test-suite runs against both builds. Only modules
that measured faster compiled, and whose behaviour is unchanged, are listed
(see docs/benchmarks.md, "Compiled build").

This module must itself stay pure: the build reads the list from it, and the
test that guards a compiled CI job (``COVET_EXPECT_COMPILED=1``) asks it what
was really loaded.
"""

from __future__ import annotations

import importlib
import importlib.machinery

__all__ = ("COMPILED_MODULES", "compiled_modules")

#: The modules the compiled build compiles, by import name. The route index and
#: patterns and the JSON helpers were compiled and measured too, and cost more
#: instructions per request compiled than pure, so they are not listed.
COMPILED_MODULES: tuple[str, ...] = ("covet.db.rows",)


def compiled_modules() -> dict[str, bool]:
    """Import each of :data:`COMPILED_MODULES` and say whether it was loaded compiled.

    Returns:
        The module name mapped to ``True`` when it was loaded from a C extension
        (a mypyc build), ``False`` when from its Python source.
    """
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    result: dict[str, bool] = {}
    for name in COMPILED_MODULES:
        path = getattr(importlib.import_module(name), "__file__", None) or ""
        result[name] = path.endswith(suffixes)
    return result
