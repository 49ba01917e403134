"""Root fixtures for covet's own test suite."""

# tests/typing/ holds assert_type pins checked by mypy; they are not run by pytest.
collect_ignore = ["typing"]

pytest_plugins = ["tests.db.orm_fixtures"]
