#!/usr/bin/env bash
# Build covet's compiled modules (mypyc) in place, run the test-suite against them, and
# remove them again, so that the pure-Python tree is what is left behind.
#
#   scripts/build_compiled.sh                 # the CI subset (below)
#   scripts/build_compiled.sh tests           # the whole suite, or any pytest arguments
#   PYTHON=.venv/bin/python scripts/build_compiled.sh
#
# COVET_EXPECT_COMPILED=1 makes tests/test_compiled.py fail if a listed module was still
# imported from its .py source, so a broken build cannot pass as a compiled run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"

# The tests that exercise the compiled modules (the ORM row builders: plain,
# select_related, annotated, values()/values_list() and streamed rows, on every
# backend), plus the guard: what CI runs. `scripts/build_compiled.sh tests` runs them all.
# Add the tests of any module added to covet/_compiled.py.
SUBSET=(
    tests/test_compiled.py
    tests/db/test_queries.py
    tests/db/test_select_related.py
    tests/db/test_aggregates.py
    tests/db/test_relations.py
    tests/db/test_hot_paths.py
    tests/db/test_streaming.py
)

trap '"$PYTHON" scripts/build_compiled.py --clean >/dev/null' EXIT
"$PYTHON" scripts/build_compiled.py
if [ "$#" -eq 0 ]; then
    set -- "${SUBSET[@]}"
fi
COVET_EXPECT_COMPILED=1 "$PYTHON" -m pytest "$@"
