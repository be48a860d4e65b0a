"""A throwaway PostgreSQL 15 server for the tests (session fixture `postgres`).

`initdb` into a temporary directory (as user `postgres` when we run as root: the server
refuses to run as root), trust authentication, TCP on a free loopback port plus a unix socket
in the same directory, and durability off (fsync) since the data is thrown away. The fixture
yields a `PostgresServer` with `dsn`, `stop()` and `start()` (for tests where the database
goes away mid-run) and removes everything at the end.

- env RESTMON_TEST_POSTGRES_DSN: use that server instead (stop/start are then unavailable).
- No PostgreSQL binaries: the tests that need one are skipped, unless env
  RESTMON_REQUIRE_POSTGRES=1, which makes that a failure (CI sets it).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

STARTUP_TIMEOUT = 30.0
SERVER_OPTIONS = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]


def find_bindir() -> Path | None:
    """The directory of `initdb` and `postgres`: on PATH, or Debian's versioned directory."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres_user() -> tuple[Callable[[], None] | None, int | None]:
    """(preexec_fn, uid): drop root privileges to user `postgres`; nothing when not root."""
    if os.geteuid() != 0:
        return None, None
    entry = pwd.getpwnam("postgres")

    def demote() -> None:
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return demote, entry.pw_uid


@dataclass
class PostgresServer:
    dsn: str
    bindir: Path | None = None
    datadir: Path | None = None
    port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def dsn_for(self, dbname: str) -> str:
        """The same server, database `dbname` (the DSN must be a URL)."""
        return urlsplit(self.dsn)._replace(path=f"/{dbname}").geturl()

    def start(self) -> None:
        if self.bindir is None or self.datadir is None:
            pytest.skip("the PostgreSQL server is external (RESTMON_TEST_POSTGRES_DSN)")
        demote, _ = _as_postgres_user()
        self._process = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                *("-D", str(self.datadir), "-p", str(self.port), "-h", "127.0.0.1"),
                *("-k", str(self.datadir)),
                *SERVER_OPTIONS,
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.datadir / "server.log").open("ab"),
            preexec_fn=demote,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                psycopg.connect(self.dsn, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self._process is not None and self._process.poll() is not None:
                    raise RuntimeError(f"postgres exited: see {self.datadir}/server.log") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, the server exits."""
        if self._process is None:
            pytest.skip("the PostgreSQL server is external (RESTMON_TEST_POSTGRES_DSN)")
        self._process.send_signal(2)
        self._process.wait(timeout=STARTUP_TIMEOUT)
        self._process = None


def _initdb(bindir: Path) -> Path:
    root = Path(tempfile.mkdtemp(prefix="restmon-pg-"))
    datadir = root / "data"
    demote, uid = _as_postgres_user()
    if uid is not None:
        os.chown(root, uid, -1)
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
        preexec_fn=demote,
    )
    return datadir


@contextlib.contextmanager
def throwaway_server(bindir: Path) -> Iterator[PostgresServer]:
    """A new cluster, started; stopped and deleted on exit (the benchmarks use it too)."""
    datadir = _initdb(bindir)
    port = _free_port()
    server = PostgresServer(
        dsn=f"postgresql://postgres@127.0.0.1:{port}/postgres",
        bindir=bindir,
        datadir=datadir,
        port=port,
    )
    try:
        server.start()
        yield server
    finally:
        if server._process is not None:
            server.stop()
        shutil.rmtree(datadir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    external = os.environ.get("RESTMON_TEST_POSTGRES_DSN")
    if external:
        yield PostgresServer(dsn=external)
        return
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("RESTMON_REQUIRE_POSTGRES") == "1":
            pytest.fail("RESTMON_REQUIRE_POSTGRES=1 but no PostgreSQL binaries (initdb) found")
        pytest.skip("no PostgreSQL binaries (initdb) found")
    with throwaway_server(bindir) as server:
        yield server
