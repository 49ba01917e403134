"""Root fixtures for covet's own test suite."""

pytest_plugins = ["tests.db.orm_fixtures"]
