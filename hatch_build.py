"""Hatchling build hook: compile covet's hot modules with mypyc when ``COVET_COMPILE=1``.

By default this hook does nothing and ``pip install .`` builds the pure-Python
wheel. With ``COVET_COMPILE=1`` in the environment it compiles the modules named
in ``covet/_compiled.py`` (see ``scripts/build_compiled.py``), adds the C
extensions to the wheel beside their ``.py`` sources (the fallback, and what
tracebacks show) and tags the wheel for this interpreter and platform::

    COVET_COMPILE=1 pip install .
    COVET_COMPILE=1 pip wheel --no-deps -w dist .

mypyc type-checks the sources first, so the build environment gets mypy,
setuptools and covet's own dependencies (through ``dependencies()`` below).
"""

from __future__ import annotations

import os
import runpy
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ENV_VAR = "COVET_COMPILE"


def _enabled() -> bool:
    return os.environ.get(ENV_VAR, "").strip().lower() in {"1", "true", "yes"}


class CompiledBuildHook(BuildHookInterface):  # type: ignore[misc]
    """Compile the hot modules into the wheel when ``COVET_COMPILE=1``."""

    PLUGIN_NAME = "custom"

    def dependencies(self) -> list[str]:
        """Return the extra build requirements of a compiled build (none otherwise)."""
        if not _enabled():
            return []
        runtime: list[str] = list(self.metadata.core.dependencies)
        return ["mypy>=1.13", "setuptools>=65", *runtime]

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Build the extensions into a staging directory and force-include them."""
        if self.target_name != "wheel" or version == "editable" or not _enabled():
            return
        root = Path(self.root)
        script = runpy.run_path(str(root / "scripts" / "build_compiled.py"))
        names = script["compiled_module_names"](root)
        staging = Path(tempfile.mkdtemp(prefix="covet-compiled-"))
        outputs = script["build"](root, names, build_lib=staging / "lib", temp=staging / "tmp")
        for output in outputs:
            path = Path(output)
            build_data["force_include"][str(path)] = str(path.relative_to(staging / "lib"))
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
