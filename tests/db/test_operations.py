"""Compile-only tests: the exact SQL each dialect's operations produce, without a server."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import pytest

from covet.db.backends.base import BaseOperations, is_read_only_sql
from covet.db.backends.mysql import MySQLFeatures, MySQLOperations
from covet.db.backends.postgres import PostgresFeatures, PostgresOperations
from covet.db.backends.sqlite import SQLiteFeatures, SQLiteOperations
from covet.db.database import Database
from covet.db.exceptions import NotSupportedError, ProgrammingError
from covet.db.params import bind_named, compile_named

SQLITE = SQLiteOperations(SQLiteFeatures())
PG = PostgresOperations(PostgresFeatures())
MYSQL = MySQLOperations(MySQLFeatures())
ALL: dict[str, BaseOperations] = {"sqlite": SQLITE, "postgres": PG, "mysql": MYSQL}


def test_quote_name_escapes_embedded_quotes():
    assert SQLITE.quote_name("user") == '"user"'
    assert PG.quote_name('we"ird') == '"we""ird"'
    assert MYSQL.quote_name("we`ird") == "`we``ird`"
    assert MYSQL.quote_name('a"b') == '`a"b`'


def test_placeholders():
    assert [SQLITE.placeholder(i) for i in (1, 2)] == ["?", "?"]
    assert [PG.placeholder(i) for i in (1, 2, 10)] == ["$1", "$2", "$10"]
    assert [MYSQL.placeholder(i) for i in (1, 2)] == ["%s", "%s"]


def test_concat():
    assert SQLITE.concat('"a"', "?") == '("a" || ?)'
    assert PG.concat('"a"', "$1") == '("a" || $1)'
    assert MYSQL.concat("`a`", "%s") == "CONCAT(`a`, %s)"


@pytest.mark.parametrize(
    ("limit", "offset", "sqlite", "postgres", "mysql"),
    [
        (None, None, "", "", ""),
        (10, None, "LIMIT 10", "LIMIT 10", "LIMIT 10"),
        (10, 0, "LIMIT 10", "LIMIT 10", "LIMIT 10"),
        (10, 5, "LIMIT 10 OFFSET 5", "LIMIT 10 OFFSET 5", "LIMIT 10 OFFSET 5"),
        (None, 5, "LIMIT -1 OFFSET 5", "OFFSET 5", "LIMIT 18446744073709551615 OFFSET 5"),
        (0, None, "LIMIT 0", "LIMIT 0", "LIMIT 0"),
    ],
)
def test_limit_offset(limit, offset, sqlite, postgres, mysql):
    assert SQLITE.limit_offset(limit, offset) == sqlite
    assert PG.limit_offset(limit, offset) == postgres
    assert MYSQL.limit_offset(limit, offset) == mysql


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_limit_offset_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="non-negative integer"):
        PG.limit_offset(bad, None)
    with pytest.raises(ValueError, match="offset"):
        SQLITE.limit_offset(None, bad)


def test_lookup_sql_per_dialect():
    assert SQLITE.lookup_sql("exact", '"t"."a"', "?") == '"t"."a" = ?'
    assert PG.lookup_sql("gte", '"a"', "$1") == '"a" >= $1'
    assert MYSQL.lookup_sql("lt", "`a`", "%s") == "`a` < %s"
    assert SQLITE.lookup_sql("iexact", '"a"', "?") == 'LOWER("a") = LOWER(?)'
    assert SQLITE.lookup_sql("contains", '"a"', "?") == "\"a\" LIKE ? ESCAPE '\\'"
    assert PG.lookup_sql("startswith", '"a"', "$1") == "\"a\" LIKE $1 ESCAPE '\\'"
    assert PG.lookup_sql("icontains", '"a"', "$1") == "\"a\" ILIKE $1 ESCAPE '\\'"
    assert SQLITE.lookup_sql("iendswith", '"a"', "?") == "LOWER(\"a\") LIKE LOWER(?) ESCAPE '\\'"
    # MySQL string literals treat backslash as an escape, so the escape char is written '\\'.
    assert MYSQL.lookup_sql("endswith", "`a`", "%s") == "`a` LIKE %s ESCAPE '\\\\'"
    assert MYSQL.lookup_sql("istartswith", "`a`", "%s") == (
        "LOWER(`a`) LIKE LOWER(%s) ESCAPE '\\\\'"
    )
    with pytest.raises(NotSupportedError, match="Unsupported lookup 'regex'"):
        PG.lookup_sql("regex", '"a"', "$1")


def test_in_isnull_range():
    assert PG.in_sql('"a"', ["$1", "$2"]) == '"a" IN ($1, $2)'
    assert SQLITE.in_sql('"a"', []) == "1 = 0"
    assert MYSQL.isnull_sql("`a`", True) == "`a` IS NULL"
    assert MYSQL.isnull_sql("`a`", False) == "`a` IS NOT NULL"
    assert PG.range_sql('"a"', "$1", "$2") == '"a" BETWEEN $1 AND $2'


@pytest.mark.parametrize("ops", ALL.values(), ids=ALL.keys())
def test_prepare_lookup_value_escapes_like_wildcards(ops):
    assert ops.prepare_lookup_value("contains", "50%_off\\") == "%50\\%\\_off\\\\%"
    assert ops.prepare_lookup_value("startswith", "a_b") == "a\\_b%"
    assert ops.prepare_lookup_value("iendswith", "x%") == "%x\\%"
    assert ops.prepare_lookup_value("exact", "50%") == "50%"
    assert ops.prepare_lookup_value("gt", 3) == 3


def test_returning_and_upsert():
    assert PG.returning(["id", "name"]) == 'RETURNING "id", "name"'
    with pytest.raises(NotSupportedError, match="supports_returning"):
        MYSQL.returning(["id"])
    assert PG.upsert(["email"], ["name"]) == (
        'ON CONFLICT ("email") DO UPDATE SET "name" = EXCLUDED."name"'
    )
    assert SQLITE.upsert(["email"], []) == 'ON CONFLICT ("email") DO NOTHING'
    assert MYSQL.upsert(["email"], ["name", "age"]) == (
        "ON DUPLICATE KEY UPDATE `name` = VALUES(`name`), `age` = VALUES(`age`)"
    )
    assert MYSQL.upsert(["email"], []) == "ON DUPLICATE KEY UPDATE `email` = `email`"


def test_conflict_clauses_and_bulk_update_fragments():
    # Skipping conflicts: DO NOTHING (any constraint without columns); MySQL a no-op
    # assignment, never INSERT IGNORE (which would hide NOT NULL and truncation errors).
    assert PG.ignore_conflicts_sql([], "id") == "ON CONFLICT DO NOTHING"
    assert SQLITE.ignore_conflicts_sql(["sku"], "id") == 'ON CONFLICT ("sku") DO NOTHING'
    assert MYSQL.ignore_conflicts_sql(["sku"], "id") == "ON DUPLICATE KEY UPDATE `id` = `id`"
    # bulk_update()'s CASE values: typed by a cast on PostgreSQL only.
    assert PG.case_value("$2", "int") == "CAST($2 AS bigint)"
    assert PG.case_value("$4", "json") == "CAST($4 AS jsonb)"
    assert PG.case_value("$4", "unknown") == "$4"
    assert SQLITE.case_value("?", "int") == "?"
    assert MYSQL.case_value("%s", "datetime") == "%s"
    assert PG.array_update_sql('"t"', '"id"', ['"a"', '"j"'], ["int", "str", "json"]) == (
        'UPDATE "t" SET "a" = v.c1, "j" = v.c2::jsonb FROM unnest($1::bigint[], $2::text[], '
        '$3::text[]) AS v(k, c1, c2) WHERE "t"."id" = v.k'
    )
    assert PG.array_update_sql('"t"', '"id"', ['"a"'], ["int", "unknown"]) is None
    with pytest.raises(NotImplementedError, match="can_bulk_update_arrays"):
        SQLITE.array_update_sql('"t"', '"id"', ['"a"'], ["int", "int"])
    assert PostgresFeatures.supports_update_conflicts_with_target
    assert SQLiteFeatures.supports_update_conflicts_with_target
    assert not MySQLFeatures.supports_update_conflicts_with_target


def test_misc_fragments():
    assert SQLITE.insert_default_values('"t"') == 'INSERT INTO "t" DEFAULT VALUES'
    assert MYSQL.insert_default_values("`t`") == "INSERT INTO `t` () VALUES ()"
    assert PG.cast_to_text('"a"') == 'CAST("a" AS TEXT)'
    assert MYSQL.cast_to_text("`a`") == "CAST(`a` AS CHAR)"
    assert MYSQL.random_function() == "RAND()"
    assert SQLITE.random_function() == "RANDOM()"
    assert SQLITE.explain_prefix() == "EXPLAIN QUERY PLAN"
    assert PG.explain_prefix(analyze=True) == "EXPLAIN ANALYZE"
    assert PG.distinct_sql(['"T"."a"']) == 'DISTINCT ON ("T"."a")'  # rendered SQL, not names
    with pytest.raises(NotSupportedError, match="DISTINCT ON"):
        MYSQL.distinct_sql(["a"])
    assert PG.for_update_sql(skip_locked=True, of=["t"]) == 'FOR UPDATE OF "t" SKIP LOCKED'
    assert SQLITE.for_update_sql(nowait=True) == ""
    assert PG.savepoint_sql("sp1") == 'SAVEPOINT "sp1"'
    assert MYSQL.rollback_to_savepoint_sql("sp1") == "ROLLBACK TO SAVEPOINT `sp1`"
    assert PG.release_savepoint_sql("sp1") == 'RELEASE SAVEPOINT "sp1"'
    assert SQLITE.create_table_suffix() == ""
    assert MYSQL.create_table_suffix().startswith("ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=")


def test_bulk_batch_size_respects_parameter_limit():
    assert PG.bulk_batch_size(3, 100) == 100
    assert PG.bulk_batch_size(10, 10_000) == 3276
    assert SQLITE.bulk_batch_size(0, 5) == 5
    assert MYSQL.bulk_batch_size(65535, 5) == 1


def test_isolation_levels():
    assert PG.normalize_isolation("Read_Committed") == "READ COMMITTED"
    assert MYSQL.normalize_isolation("serializable") == "SERIALIZABLE"
    assert SQLITE.normalize_isolation("deferred") == "DEFERRED"
    assert SQLITE.normalize_isolation(None) is None
    with pytest.raises(NotSupportedError, match="'read committed' for this database"):
        SQLITE.normalize_isolation("read committed")
    with pytest.raises(NotSupportedError, match="Use one of"):
        PG.normalize_isolation("chaos")


def adapt(ops: BaseOperations, internal_type: str, value: Any) -> Any:
    adapter = ops.get_adapter(internal_type)
    assert adapter is not None
    return adapter(value)


def convert(ops: BaseOperations, internal_type: str, value: Any) -> Any:
    converter = ops.get_converter(internal_type)
    assert converter is not None
    return converter(value)


def test_adapters_and_converters_offline():
    aware = datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)
    assert adapt(SQLITE, "datetime", aware) == "2024-01-02 03:04:05.000006"
    assert convert(SQLITE, "datetime", "2024-01-02 03:04:05.000006") == aware
    assert adapt(MYSQL, "datetime", aware) == aware.replace(tzinfo=None)
    assert convert(MYSQL, "time", datetime.timedelta(hours=1, microseconds=5)) == (
        datetime.time(1, 0, 0, 5)
    )
    assert adapt(SQLITE, "decimal", decimal.Decimal("1.10")) == 1.1
    assert type(adapt(SQLITE, "decimal", decimal.Decimal("120.00"))) is int
    assert convert(SQLITE, "decimal", "1.10") == decimal.Decimal("1.10")
    value = uuid.uuid4()
    assert convert(MYSQL, "uuid", str(value)) == value
    assert adapt(SQLITE, "json", {"a": [1]}) == '{"a":[1]}'
    assert convert(SQLITE, "bool", 1) is True
    assert PG.get_adapter("int") is None
    assert PG.get_converter("str") is None
    for ops in ALL.values():
        for internal_type in ("bool", "decimal", "datetime", "uuid", "json", "bytes", "time"):
            converter = ops.get_converter(internal_type)
            adapter = ops.get_adapter(internal_type)
            assert converter is None or converter(None) is None
            assert adapter is None or adapter(None) is None


def test_compile_named_styles():
    sql = "SELECT * FROM t WHERE a = :a AND b = :b OR a = :a"
    assert compile_named(sql, "qmark") == (
        "SELECT * FROM t WHERE a = ? AND b = ? OR a = ?",
        ("a", "b", "a"),
    )
    assert compile_named(sql, "numeric") == (
        "SELECT * FROM t WHERE a = $1 AND b = $2 OR a = $1",
        ("a", "b"),
    )
    assert compile_named(sql, "format")[0] == "SELECT * FROM t WHERE a = %s AND b = %s OR a = %s"


def test_compile_named_skips_literals_comments_and_casts():
    sql = (
        "SELECT ':no', \"col:no\", x::int, E'\\':no', $$ :no $$ -- :no\n"
        "/* :no */ FROM t WHERE y = :yes"
    )
    compiled, names = compile_named(sql, "numeric")
    assert names == ("yes",)
    assert compiled.endswith("WHERE y = $1")
    assert "':no'" in compiled
    assert "x::int" in compiled
    assert compile_named("SELECT '10:30' AS t, a\\:b", "qmark") == ("SELECT '10:30' AS t, a:b", ())
    assert compile_named("SELECT 1 FROM t WHERE a=:a1 AND b=:_b", "qmark")[1] == ("a1", "_b")


def test_compile_named_mysql_percent_and_backslashes():
    compiled, names = compile_named(
        "SELECT '100%', 'it\\'s :no', `we:ird`, 7 % 3 # :no %\nFROM t WHERE a LIKE :p", "format"
    )
    assert compiled == (
        "SELECT '100%%', 'it\\'s :no', `we:ird`, 7 %% 3 # :no %%\nFROM t WHERE a LIKE %s"
    )
    assert names == ("p",)


def test_bind_named_errors():
    assert bind_named("SELECT :a, :a", {"a": 1}, "numeric") == ("SELECT $1, $1", (1,))
    with pytest.raises(ProgrammingError, match="Missing value for the SQL parameter :b"):
        bind_named("SELECT :a, :b", {"a": 1}, "qmark")
    with pytest.raises(ProgrammingError, match="Unexpected SQL parameter\\(s\\) 'c'"):
        bind_named("SELECT :a", {"a": 1, "c": 2}, "qmark")
    with pytest.raises(ProgrammingError, match="must be a mapping"):
        bind_named("SELECT :a", [1], "qmark")  # type: ignore[arg-type]
    assert bind_named("SELECT 1", None, "format") == ("SELECT 1", ())


def test_is_read_only_sql():
    assert is_read_only_sql("  select 1")
    assert is_read_only_sql("(SELECT 1) UNION (SELECT 2)")
    assert not is_read_only_sql("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x")
    assert not is_read_only_sql("INSERT INTO t VALUES (1)")
    assert not is_read_only_sql("")


def test_database_ops_without_a_server():
    db = Database("postgresql://u:secret@db.example.com/app")
    assert db.vendor == "postgres"
    assert db.ops.placeholder(3) == "$3"
    assert db.features.supports_returning
    assert "secret" not in repr(db) and "secret" not in str(db.url)
    assert (
        db.url.render_as_string(hide_password=False) == "postgresql://u:secret@db.example.com/app"
    )
