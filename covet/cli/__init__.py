"""The ``covet`` command line.

``covet new`` scaffolds a project, ``covet makemigrations`` and ``covet
migrate`` manage its database schema, ``covet run`` serves it, ``covet
routes`` lists its routes, ``covet check [--deploy]`` checks its configuration
(for production with ``--deploy``) and ``covet shell`` opens an asyncio REPL with the
app, the database and the models loaded. ``covet worker`` runs background jobs and
``covet jobs`` lists, retries and purges them. ``covet createsuperuser`` makes a
staff account for the admin pages. A project adds its own commands with
``[tool.covet] commands = ["mysite.cli:seed"]``.

User mistakes are reported as one line on stderr with exit status 1; the
global ``--traceback`` flag shows the full traceback instead.
"""

from __future__ import annotations

import click

from covet import __version__
from covet.cli._common import CovetGroup, set_verbose
from covet.cli.check import check_command
from covet.cli.jobs import jobs_group
from covet.cli.migrate import makemigrations_command, migrate_command, migrations_group
from covet.cli.new import new_command
from covet.cli.routes import routes_command
from covet.cli.run import run_command
from covet.cli.shell import shell_command
from covet.cli.users import createsuperuser_command
from covet.cli.worker import worker_command

__all__ = ("main",)


@click.group(
    cls=CovetGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--traceback",
    "--debug",
    "traceback",
    is_flag=True,
    help="Show the full traceback of an error instead of a one-line message.",
)
@click.option("-v", "--verbose", is_flag=True, help="Print progress details.")
@click.version_option(__version__, "-V", "--version", prog_name="covet")
@click.pass_context
def main(ctx: click.Context, traceback: bool, verbose: bool) -> None:
    """Create, migrate, run and inspect covet projects.

    Run `covet COMMAND --help` for the options of a command.
    """
    set_verbose(ctx, verbose)


main.add_command(new_command)
main.add_command(run_command)
main.add_command(routes_command)
main.add_command(check_command)
main.add_command(shell_command)
main.add_command(makemigrations_command)
main.add_command(migrate_command)
main.add_command(migrations_group)
main.add_command(worker_command)
main.add_command(jobs_group)
main.add_command(createsuperuser_command)
