"""A real PostgreSQL server for the tests (and `bench/store.py`): Debian's binaries, made
sure of by scripts/fetch-postgres.sh, a cluster initdb'd into a fresh temporary folder, the
server on a free port with its unix socket in that folder, stopped and removed at the end.

PostgreSQL refuses to run as root: as root, the cluster's folder belongs to the `postgres`
user (the package creates it) and initdb, pg_ctl and the server run as that user."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from agogosml.localstack.broker import free_port

ROOT = Path(__file__).parents[2]
FETCH = ROOT / "scripts" / "fetch-postgres.sh"
START_TIMEOUT_S = 60


def server_binaries() -> Path:
    out = subprocess.run([str(FETCH)], check=True, capture_output=True, text=True,
                         timeout=900).stdout
    [line] = [x for x in out.splitlines() if x.startswith("PG_BIN=")]
    return Path(line.removeprefix("PG_BIN="))


class PostgresServer:
    def __init__(self, bin_dir: Path, *, fsync: bool = False) -> None:
        self.bin = bin_dir
        self.fsync = fsync
        self.as_root = os.geteuid() == 0
        # Not pytest's tmp_path: its parents are root's alone, and the server runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="agogosml-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.started = False

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        result = subprocess.run([*prefix, *args], capture_output=True, text=True,
                                timeout=START_TIMEOUT_S, check=False)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stdout}"
                               f"{result.stderr}\n{log}")

    def start(self) -> None:
        self.socket_dir.mkdir()
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "-A", "trust", "--no-locale", "-E", "UTF8")
        self._pg_ctl("start")
        self.started = True

    def conninfo(self, database: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={database}"

    def create_database(self) -> str:
        """A new, empty database; returns its connection string."""
        name = f"t{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.conninfo(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")  # a generated identifier
        return self.conninfo(name)

    def _pg_ctl(self, action: str) -> None:
        options = (f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                   f"-c fsync={'on' if self.fsync else 'off'}")
        # -w: pg_ctl returns once the server accepts connections (or fails after -t).
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", options, "-m", "fast", "-w", "-t", str(START_TIMEOUT_S), action)

    def restart(self) -> None:
        """Stops the server (its clients' connections are cut) and starts it again, data
        kept: what a failover or a pod restart does to the store."""
        self._pg_ctl("restart")

    def stop(self) -> None:
        if self.started:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                      "stop")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own, started and stopped around the block."""
    server = PostgresServer(server_binaries())
    try:
        server.start()
        yield server
    finally:
        server.stop()
