"""Compile-only SQL of the transforms and lookups per dialect (no server needed)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from covet.db.exceptions import NotSupportedError
from tests.db.models import Everything
from tests.db.test_compiler import ops_for

TABLE = {"sqlite": '"everything"', "postgres": '"everything"', "mysql": "`everything`"}


def where(dialect: str, **kwargs: Any) -> tuple[str, list[Any]]:
    from covet.db.compiler import compile_select

    ops, features = ops_for(dialect)
    compiled = compile_select(Everything.objects.filter(**kwargs).query, ops, features)
    return compiled.sql.split(" WHERE ", 1)[1], compiled.params


def test_json_key_path_per_dialect() -> None:
    sql, params = where("postgres", data__owner__name="Ann")
    at = "(\"everything\".\"data\" #> ARRAY['owner', 'name']::text[])"
    assert sql == f"(CASE WHEN jsonb_typeof({at}) = 'string' THEN ({at} #>> '{{}}') END) = $1"
    assert params == ["Ann"]
    sql, _ = where("sqlite", data__tags__0="a")
    assert 'json_type("everything"."data", \'$."tags"[0]\') = \'text\'' in sql
    sql, _ = where("mysql", data__price__gt=1)
    assert "JSON_TYPE(JSON_EXTRACT(`everything`.`data`, '$.\"price\"')) IN (" in sql
    assert sql.endswith("> %s")


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql"])
def test_quotes_in_keys_are_doubled(dialect: str) -> None:
    sql, params = where(dialect, **{"data__a'); DROP TABLE x; --": 1})
    assert "a''); DROP TABLE x; --" in sql
    assert sql.count("'") % 2 == 0  # every literal is closed
    assert params == [1]


def test_percent_in_keys_is_doubled_for_the_mysql_driver() -> None:
    sql, _ = where("mysql", **{"data__50%": 1})
    assert "50%%" in sql
    sql, _ = where("sqlite", **{"data__50%": 1})
    assert "50%%" not in sql


def test_containment_per_dialect() -> None:
    assert where("postgres", data__contains={"a": 1}) == (
        '"everything"."data" @> CAST($1 AS jsonb)',
        [{"a": 1}],
    )
    assert where("mysql", data__contained_by=[1]) == (
        "JSON_CONTAINS(%s, `everything`.`data`) = 1",
        ["[1]"],
    )
    sql, params = where("sqlite", data__contains={"a": 1})
    assert sql == 'covet_json_contains("everything"."data", \'[]\', ?, 0)'
    assert params == ['{"a":1}']


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql"])
def test_year_is_a_between_on_the_column(dialect: str) -> None:
    sql, params = where(dialect, moment__year=2024)
    assert sql.startswith(f"{TABLE[dialect]}.") and " BETWEEN " in sql
    assert len(params) == 2
    sql, params = where(dialect, day__year__lt=2024)
    assert " < " in sql and len(params) == 1


def test_date_parts_per_dialect() -> None:
    assert where("postgres", moment__week_day=1)[0].startswith(
        '(CAST(FLOOR(EXTRACT(DOW FROM ("everything"."moment" AT TIME ZONE \'UTC\'))) '
        "AS integer) + 1) = $1"
    )
    assert where("mysql", moment__week=1)[0].startswith("WEEK(`everything`.`moment`, 3) = %s")
    assert where("sqlite", clock__hour=1)[0].startswith(
        'covet_extract(\'hour\', "everything"."clock") = ?'
    )
    assert where("sqlite", moment__date=datetime.date(2024, 1, 2)) == (
        'substr("everything"."moment", 1, 10) = ?',
        ["2024-01-02"],
    )


def test_regex_per_dialect() -> None:
    assert where("postgres", char__iregex="^a")[0].startswith('"everything"."char" ~* $1')
    assert where("mysql", char__iregex="^a")[0].startswith(
        "`everything`.`char` REGEXP CONCAT('(?i)', %s)"
    )
    assert where("sqlite", char__regex="^a")[0].startswith('"everything"."char" REGEXP ?')


def test_array_lookups_need_postgres() -> None:
    from covet.db.compiler import compile_select
    from tests.db.test_array_field import Shirt

    ops, features = ops_for("postgres")
    qs = Shirt.objects.filter(tags__overlap=["a"], sizes__len=2, tags__1="b")
    text = compile_select(qs.query, ops, features).sql
    assert '"test_array_shirt"."tags" && $' in text
    assert 'cardinality("test_array_shirt"."sizes") = $' in text
    assert '"test_array_shirt"."tags"[2] = $' in text
    ops, features = ops_for("sqlite")
    with pytest.raises(NotSupportedError, match="ArrayField"):
        compile_select(Shirt.objects.filter(sizes__len=2).query, ops, features)
