"""Private PostgreSQL and MariaDB servers that a test or script may restart and kill.

The shared servers on 5432/3306 are used by everything else on the machine, so
a fault scenario (a restart under load, a server-side kill) runs against a
server of its own: a fresh data directory in a temporary directory, a free
port on 127.0.0.1, trust/empty-password authentication, and nothing left
behind when it stops. The same code runs as root (CI, where the data directory
is handed to the ``postgres`` user for ``initdb``, which refuses root) and as
an ordinary user.

Usage::

    with PrivatePostgres() as pg:           # or PrivateMariaDB()
        url = pg.url                        # postgresql://postgres@127.0.0.1:PORT/test
        pg.restart()                        # stop (fast) and start again, same port
        pg.stop(); pg.start()               # an outage of any length

``available()`` says whether the binaries are installed, with the reason when
they are not.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

__all__ = ("PrivateMariaDB", "PrivatePostgres", "PrivateServer", "free_port")


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


class PrivateServer:
    """A database server in a temporary directory, on a free port; a context manager."""

    #: covet's name of the backend (``Database.vendor``).
    backend = ""
    #: The database URL, with ``{port}`` to fill in.
    url_template = ""

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix=f"covet-{type(self).__name__.lower()}-"))
        self.log_path = self.root / "server.log"
        self._initialised = False

    @property
    def url(self) -> str:
        """The covet database URL of the server's ``test`` database."""
        return self.url_template.format(port=self.port)

    @classmethod
    def available(cls) -> str | None:
        """Return None when this server can be started here, else why not."""
        raise NotImplementedError

    def initialise(self) -> None:
        """Create the data directory (once)."""
        raise NotImplementedError

    def start(self, timeout: float = 60) -> None:
        """Start the server and wait until it accepts connections."""
        raise NotImplementedError

    def stop(self, timeout: float = 60) -> None:
        """Stop the server cleanly (committed work is durable) and wait for it to exit."""
        raise NotImplementedError

    def database_url(self, name: str) -> str:
        """Return the URL of database ``name`` on this server (see ``create_database()``)."""
        return self.url.rsplit("/", 1)[0] + "/" + name

    async def create_database(self, name: str) -> str:
        """Create database ``name`` (letters, digits and ``_``) and return its URL."""
        from covet.db import Database

        if not name.replace("_", "").isalnum():
            raise ValueError(f"Invalid database name {name!r}: use letters, digits and '_'.")
        async with Database(self.url, alias=f"create_{name}", min_size=1, max_size=1) as db:
            await db.execute(f"CREATE DATABASE {name}")
        return self.database_url(name)

    def restart(self) -> None:
        """Stop the server, then start it again on the same port."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop the server if it runs and delete its temporary directory."""
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            self.initialise()
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


def _postgres_bin() -> Path | None:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


class PrivatePostgres(PrivateServer):
    """A PostgreSQL cluster of its own: ``initdb`` into a temporary directory, ``pg_ctl``."""

    backend = "postgres"
    url_template = "postgresql://postgres@127.0.0.1:{port}/test"

    def __init__(self, *, port: int | None = None) -> None:
        super().__init__(port=port)
        self.bin = _postgres_bin()
        self.data = self.root / "data"
        # initdb and postgres refuse to run as root: run them as the postgres user.
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)

    @classmethod
    def available(cls) -> str | None:
        """Return None when ``initdb``/``pg_ctl`` are installed (and a postgres user as root)."""
        if _postgres_bin() is None:
            return "the PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root, and there is no 'postgres' user to run initdb as"
        return None

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        assert self.bin is not None
        subprocess.run(
            [*self._as, str(self.bin / tool), *args],
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.root,
        )

    def initialise(self) -> None:
        """Run ``initdb`` (trust authentication, no fsync-free shortcuts) and create ``test``."""
        if self._initialised:
            return
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E",
            "UTF8", "--locale=C",
        )  # fmt: skip
        settings = [
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.root}'",
            "max_connections = 200",
            "shared_buffers = 16MB",
            "logging_collector = off",
        ]
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(settings) + "\n")
        self._initialised = True
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "test")

    def start(self, timeout: float = 60) -> None:
        """``pg_ctl start -w`` (nothing happens when it runs already)."""
        if (self.data / "postmaster.pid").exists():
            return
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", str(int(timeout)),
            "start", timeout=timeout + 10,
        )  # fmt: skip

    def stop(self, timeout: float = 60, *, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast``: clients are disconnected, open transactions roll back."""
        if not (self.data / "postmaster.pid").exists():
            return
        self._run(
            "pg_ctl", "-D", str(self.data), "-w", "-t", str(int(timeout)), "-m", mode, "stop",
            timeout=timeout + 10,
        )  # fmt: skip

    def restart(self) -> None:
        """``pg_ctl restart -m fast`` (what ``pg_ctlcluster restart`` does)."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-m", "fast",
            "restart",
        )  # fmt: skip


class PrivateMariaDB(PrivateServer):
    """A MariaDB (or MySQL) server of its own: ``mariadb-install-db``, then ``mariadbd``."""

    backend = "mysql"
    url_template = "mysql://root@127.0.0.1:{port}/test"

    def __init__(self, *, port: int | None = None) -> None:
        super().__init__(port=port)
        self.data = self.root / "data"
        self.socket = self.root / "mysqld.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _binaries() -> tuple[str | None, str | None]:
        server = shutil.which("mariadbd") or shutil.which("mysqld")
        for candidate in ("/usr/sbin/mariadbd", "/usr/sbin/mysqld"):
            if server is None and Path(candidate).exists():
                server = candidate
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        return server, install

    @classmethod
    def available(cls) -> str | None:
        """Return None when ``mariadbd`` and ``mariadb-install-db`` are installed."""
        server, install = cls._binaries()
        if server is None or install is None:
            return "the MariaDB server binaries (mariadbd, mariadb-install-db) are not installed"
        return None

    def _user(self) -> list[str]:
        # mariadbd refuses to run as root unless told to; as anyone else it runs as itself.
        return ["--user=root"] if os.geteuid() == 0 else []

    def initialise(self) -> None:
        """Create the system tables, then a passwordless ``root@%`` and the ``test`` database."""
        if self._initialised:
            return
        _server, install = self._binaries()
        assert install is not None
        subprocess.run(
            [
                install, "--no-defaults", f"--datadir={self.data}", *self._user(),
                "--auth-root-authentication-method=normal", "--skip-test-db",
            ],
            check=True, timeout=180, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._initialised = True
        self.start()
        self.sql(
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';"
            "GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
            "CREATE DATABASE IF NOT EXISTS test;"
        )

    def sql(self, statements: str) -> str:
        """Run SQL through the server's Unix socket with the ``mariadb`` client; return stdout."""
        client = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
        done = subprocess.run(
            [client, "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-e", statements],
            check=True,
            timeout=60,
            capture_output=True,
            text=True,
        )
        return done.stdout

    def start(self, timeout: float = 60) -> None:
        """Start ``mariadbd`` in the background on the port and wait for it to listen."""
        if self.process is not None and self.process.poll() is None:
            return
        server, _install = self._binaries()
        assert server is not None
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    server, "--no-defaults", f"--datadir={self.data}", *self._user(),
                    f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.socket}",
                    f"--pid-file={self.root / 'mysqld.pid'}", "--skip-name-resolve",
                    "--skip-log-bin", "--innodb-buffer-pool-size=32M", "--max-connections=300",
                    "--innodb-flush-log-at-trx-commit=1",
                ],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait_for_port(self.port, timeout, self.process)

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM (a clean shutdown: open transactions roll back) and wait for the exit."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RuntimeError(f"mariadbd did not stop within {timeout} s; killed") from None
