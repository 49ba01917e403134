"""The alembic-free reader of a linear migration history agrees with alembic, or declines."""

from __future__ import annotations

import sys
import textwrap
from typing import TYPE_CHECKING

import pytest
from alembic.script import ScriptDirectory

from covet.db.migrations.commands import _pending_linear
from covet.db.migrations.history import LinearHistory, read_linear_history

if TYPE_CHECKING:
    from pathlib import Path


def _script(
    directory: Path,
    name: str,
    revision: str,
    down: str | tuple[str, ...] | None,
    *,
    extra: str = "",
    annotated: bool = True,
) -> None:
    down_text = "None" if down is None else repr(down)
    if annotated:
        head = f"revision: str = {revision!r}\ndown_revision: str | None = {down_text}\n"
    else:
        head = f"revision = {revision!r}\ndown_revision = {down_text}\n"
    body = textwrap.dedent(
        """
        branch_labels = None
        depends_on = None


        def upgrade() -> None:
            pass


        def downgrade() -> None:
            pass
        """
    )
    (directory / f"{name}.py").write_text(f'"""{name}"""\n{head}{body}{extra}')


@pytest.fixture
def versions(tmp_path):
    path = tmp_path / "versions"
    path.mkdir()
    return path


def _alembic_order(versions: Path) -> tuple[str, ...]:
    script = ScriptDirectory(str(versions.parent), version_locations=[str(versions)])
    return tuple(reversed([s.revision for s in script.walk_revisions()]))


def test_linear_history_matches_alembic(versions):
    # File names sort in another order than the chain, as dated names can.
    _script(versions, "c_third", "ccc333", "bbb222")
    _script(versions, "a_first", "aaa111", None, annotated=False)
    _script(versions, "b_second", "bbb222", "aaa111")
    (versions / "__init__.py").write_text("")
    (versions / "notes.txt").write_text("not a revision")
    history = read_linear_history(versions)
    assert history == LinearHistory(("aaa111", "bbb222", "ccc333"))
    sys.modules.pop("a_first", None)
    assert history.revisions == _alembic_order(versions)


def test_empty_history(versions):
    assert read_linear_history(versions) == LinearHistory(())
    assert read_linear_history(versions / "missing") is None


@pytest.mark.parametrize(
    "case",
    ["branch", "merge", "depends_on", "computed", "unknown_parent", "duplicate", "syntax"],
)
def test_anything_but_a_plain_chain_is_left_to_alembic(versions, case):
    _script(versions, "a", "aaa111", None)
    if case == "branch":
        _script(versions, "b", "bbb222", "aaa111")
        _script(versions, "c", "ccc333", "aaa111")
    elif case == "merge":
        _script(versions, "b", "bbb222", ("aaa111", "zzz999"))
    elif case == "depends_on":
        _script(versions, "b", "bbb222", "aaa111", extra="depends_on = 'aaa111'\n")
    elif case == "computed":
        computed = "revision = 'bbb' + '222'.upper()\ndown_revision = 'aaa111'\n"
        (versions / "b.py").write_text(computed)
    elif case == "unknown_parent":
        _script(versions, "b", "bbb222", "zzz999")
    elif case == "duplicate":
        _script(versions, "b", "aaa111", None)
    else:
        (versions / "b.py").write_text("revision = (\n")
    assert read_linear_history(versions) is None


def test_pending_linear(caplog):
    history = LinearHistory(("a", "b", "c"))
    assert _pending_linear(history, []) == ["a", "b", "c"]
    assert _pending_linear(history, ["a"]) == ["b", "c"]
    assert _pending_linear(history, ["c"]) == []
    assert _pending_linear(history, ["zzz", "b"]) == ["c"]
    assert "'zzz', which is not among the project's migrations" in caplog.text
