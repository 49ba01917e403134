"""Alembic environment of a covet project.

covet loads the project's settings and models, and runs the migrations over the
async driver of ``DATABASE_URL`` (one transaction per revision where the
database allows it, under a migration lock). Leave this file as it is.
"""

from covet.db.migrations import run_env

run_env()
