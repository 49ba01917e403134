"""Build covet's optional compiled modules with mypyc, in place or into a wheel's staging dir.

The modules are the ones named in ``covet/_compiled.py`` (``COMPILED_MODULES``).
Built in place, each ``covet/<module>.cpython-*.so`` sits beside its ``.py``, and
Python imports the extension first; ``--clean`` removes them again, so that
edits to the sources take effect. The wheel build hook (``hatch_build.py``,
``COVET_COMPILE=1``) calls :func:`build` with a staging directory instead.

Needs mypy (which ships mypyc), setuptools and a C compiler; the sources must
pass ``mypy`` first, because mypyc compiles from the types.

Usage, from the repository root::

    python scripts/build_compiled.py            # compile in place
    python scripts/build_compiled.py --clean    # back to pure Python
    python scripts/build_compiled.py --only covet.db.rows
"""

from __future__ import annotations

import argparse
import os
import runpy
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def compiled_module_names(root: Path = ROOT) -> tuple[str, ...]:
    """Return ``COMPILED_MODULES`` from ``covet/_compiled.py`` without importing covet."""
    names: tuple[str, ...] = runpy.run_path(str(root / "covet" / "_compiled.py"))[
        "COMPILED_MODULES"
    ]
    return names


def source_paths(names: tuple[str, ...]) -> list[str]:
    """Return the source file of each module, relative to the repository root."""
    return [name.replace(".", "/") + ".py" for name in names]


def build(root: Path, names: tuple[str, ...], *, build_lib: Path | None, temp: Path) -> list[Path]:
    """Compile ``names`` with mypyc; return the extension files written.

    Args:
        root: The repository root (mypy reads its configuration from pyproject.toml there).
        names: The modules to compile.
        build_lib: Where to write the extensions (a wheel's staging directory), or
            ``None`` to write them beside their sources.
        temp: A scratch directory for the generated C and the object files.
    """
    from mypyc.build import mypycify
    from setuptools import Distribution
    from setuptools.command.build_ext import build_ext

    cwd = Path.cwd()
    os.chdir(root)
    try:
        extensions = mypycify(
            source_paths(names), opt_level="3", debug_level="0", target_dir=str(temp / "c")
        )
        # A bare Distribution: setup() would also read pyproject.toml's [project] table,
        # which older setuptools releases reject (the SPDX license string).
        command = build_ext(Distribution({"name": "covet-compiled", "ext_modules": extensions}))
        command.inplace = build_lib is None
        command.build_temp = str(temp / "obj")
        if build_lib is not None:
            command.build_lib = str(build_lib)
        command.ensure_finalized()
        command.run()
        return [Path(p) for p in command.get_outputs()]
    finally:
        os.chdir(cwd)


def clean(root: Path = ROOT) -> list[Path]:
    """Remove compiled extensions built in place; return what was removed."""
    removed = [
        path
        for pattern in ("covet/**/*.so", "covet/**/*.pyd", "*__mypyc*.so", "*__mypyc*.pyd")
        for path in root.glob(pattern)
    ]
    for path in removed:
        path.unlink()
    shutil.rmtree(root / "build" / "mypyc", ignore_errors=True)
    return removed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clean", action="store_true", help="remove in-place extensions")
    parser.add_argument("--only", help="comma-separated subset of COMPILED_MODULES")
    args = parser.parse_args()
    removed = clean()
    if args.clean:
        print(f"removed {len(removed)} compiled file(s)")
        return 0
    names = compiled_module_names()
    if args.only:
        wanted = tuple(args.only.split(","))
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            parser.error(f"not in COMPILED_MODULES: {', '.join(unknown)}")
        names = wanted
    started = time.monotonic()
    outputs = build(ROOT, names, build_lib=None, temp=ROOT / "build" / "mypyc")
    took = time.monotonic() - started
    print(f"compiled {len(names)} module(s) into {len(outputs)} file(s) in {took:.0f} s:")
    for path in outputs:
        print(f"  {Path(path).relative_to(ROOT) if Path(path).is_absolute() else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
