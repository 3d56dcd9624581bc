"""A throwaway PostgreSQL server for tests, run from the Debian package's own binaries.

`start_postgres()` initialises a cluster in a fresh temporary directory, serves it on a free port
of 127.0.0.1 only, creates a password-authenticated login role and a database it owns, and
returns the connection details; `PostgresServer.stop()` shuts the server down and deletes the
directory. Nothing is left behind and no system cluster is touched.

The binaries are looked up in `/usr/lib/postgresql/<version>/bin` (the newest version wins), or
only in `$FEEDBACK_POSTGRES_BINDIR` when that is set. `PATH` is not searched: Debian puts only
`pg_wrapper` links in /usr/bin and no `initdb` at all, and an `initdb` in /usr/local/bin (on some
machines a symlink into /usr/lib/postgresql) may belong to another build or version.

`initdb` and `postgres` refuse to run as root, so when the tests run as root the server runs as
the `postgres` OS user (through `runuser`), in a directory handed over to that user.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2 import sql

BINDIR_ENV = "FEEDBACK_POSTGRES_BINDIR"
DEBIAN_GLOB = "/usr/lib/postgresql/*/bin"
REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
SERVER_OS_USER = "postgres"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries (or no OS user to run them as) on this machine."""


def find_bindir(env: Mapping[str, str] = os.environ) -> Path:
    """The directory holding initdb, pg_ctl and postgres, or PostgresUnavailable saying where it looked."""
    if env.get(BINDIR_ENV):
        candidates, where = [Path(env[BINDIR_ENV])], f"${BINDIR_ENV}={env[BINDIR_ENV]}"
    else:
        candidates = sorted(Path("/").glob(DEBIAN_GLOB.lstrip("/")), key=_version_order, reverse=True)
        where = DEBIAN_GLOB
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in REQUIRED_BINARIES):
            return bindir
    raise PostgresUnavailable(
        f"PostgreSQL server binaries ({', '.join(REQUIRED_BINARIES)}) not found in {where}; "
        "install the Debian package `postgresql`, or point $" + BINDIR_ENV + " at a bin directory")


def _version_order(bindir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name)) or (0,)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass
class PostgresServer:
    """A running server: where it listens, and the login role and database the tests use."""

    host: str
    port: int
    username: str
    password: str
    database: str
    bindir: Path
    root: Path  # temporary directory: data/, the Unix socket and the server log
    _as_server_user: list[str] = field(repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def dagster_env(self, database: str | None = None) -> dict[str, str]:
        """The DAGSTER_PG_* variables deploy/dagster.yaml reads, pointing at this server."""
        return {"DAGSTER_PG_USERNAME": self.username, "DAGSTER_PG_PASSWORD": self.password,
                "DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port),
                "DAGSTER_PG_DB": database or self.database}

    def admin_connection(self):
        """A superuser connection over the Unix socket in the server's private directory."""
        connection = psycopg2.connect(host=str(self.root), port=self.port, user=SUPERUSER, dbname="postgres")
        connection.autocommit = True
        return connection

    def create_database(self, name: str) -> str:
        """A new empty database owned by the login role (owning it is all Dagster needs)."""
        connection = self.admin_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(self.username)))
        finally:
            connection.close()
        return name

    def stop(self) -> None:
        """Fast shutdown (open sessions are cut), then the data directory is deleted."""
        try:
            subprocess.run([*self._as_server_user, str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data_dir),
                            "-m", "fast", "-w", "-t", str(START_TIMEOUT_S)], capture_output=True, text=True)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(username: str = "feedback", database: str = "dagster") -> PostgresServer:
    """Initialise and start a private server; PostgresUnavailable when this machine cannot run one.

    The cluster trusts only its Unix socket, which sits in a directory only the server's OS user
    (and root) can enter; TCP on 127.0.0.1 requires the role's password (scram-sha-256).
    """
    bindir = find_bindir()
    as_server_user, owner = _server_user()
    root = Path(tempfile.mkdtemp(prefix="feedback-pg-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    server = PostgresServer(host=HOST, port=0, username=username, password=_password(), database=database,
                            bindir=bindir, root=root, _as_server_user=as_server_user)
    try:
        _run(server, [str(bindir / "initdb"), "-D", str(server.data_dir), "--username", SUPERUSER,
                      "--encoding", "UTF8", "--locale", "C", "--auth-local", "trust",
                      "--auth-host", "scram-sha-256", "--no-sync"], "initdb")
        _start(server)
        connection = server.admin_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(username)),
                               [server.password])
        finally:
            connection.close()
        server.create_database(database)
    except BaseException:
        server.stop()
        raise
    return server


def _server_user() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that runs a binary as the server's OS user, and that user when it is not us."""
    if os.geteuid() != 0:
        return [], None
    try:
        owner = pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        raise PostgresUnavailable(f"running as root, and there is no `{SERVER_OS_USER}` OS user to run "
                                  "initdb and postgres as (the Debian package creates it)") from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root, and `runuser` is missing to drop to the postgres user")
    return [runuser, "-u", SERVER_OS_USER, "--"], owner


def _password() -> str:
    # Characters a connection URL must escape, so the test also proves Dagster quotes the password.
    return f"{secrets.token_urlsafe(12)}@:/%?#"


def _start(server: PostgresServer, attempts: int = 3) -> None:
    """pg_ctl start on a free port; another process may grab the port first, so try a few."""
    for attempt in range(attempts):
        server.port = free_port()
        options = " ".join([f"-c listen_addresses={HOST}", f"-p {server.port}",
                            f"-c unix_socket_directories={server.root}",
                            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"])
        done = subprocess.run([*server._as_server_user, str(server.bindir / "pg_ctl"), "start", "-D",
                               str(server.data_dir), "-l", str(server.log_file), "-w", "-t", str(START_TIMEOUT_S),
                               "-o", options], capture_output=True, text=True)
        if done.returncode == 0:
            return
        if attempt == attempts - 1:
            log = server.log_file.read_text(errors="replace")[-2000:] if server.log_file.exists() else ""
            raise RuntimeError(f"pg_ctl start failed ({done.returncode}): {done.stderr.strip()}\n{log}")


def _run(server: PostgresServer, command: list[str], what: str) -> None:
    done = subprocess.run([*server._as_server_user, *command], capture_output=True, text=True, cwd=server.root)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}")
