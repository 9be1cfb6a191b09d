"""The test harness: real PostgreSQL and real Meilisearch, never mocks.

* One embedded PostgreSQL server serves the whole run (all xdist workers); the wheel starts it
  once under its own file lock and stops it when the last worker exits.
* Migrations run once into a template database (plus a second template with the demo seed);
  every test gets its own ``CREATE DATABASE … TEMPLATE …`` copy, dropped afterwards.
* Each xdist worker runs its own Meilisearch child process; each test uses its own index prefix.
* Set DATABASE_URL (an admin DSN) or MEILI_URL + MEILI_MASTER_KEY to use external servers.
  A server that cannot start fails the run; nothing here skips.
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from emall.db.migrations import default_migrations_dir, migrate
from emall.db.pool import Pool, create_pool
from emall.demo.seed import seed_demo
from emall.embedded.meili import MeiliProcess, resolve_meili_binary, start_meilisearch
from emall.embedded.postgres import start_embedded_postgres
from emall.settings import Settings
from tests.helpers import dsn_for, make_settings, run_sync

REPO = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("EMALL_TEST_STATE", REPO / ".emall" / "test")).resolve()


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Every ``async def`` test runs under anyio (asyncio); marked before parametrisation."""
    if name.startswith("test") and inspect.iscoroutinefunction(obj):
        pytest.mark.anyio(obj)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    STATE.mkdir(parents=True, exist_ok=True)
    server = start_embedded_postgres(STATE / "pg")
    try:
        yield server.dsn("postgres")
    finally:
        server.stop()


def _templates_digest() -> str:
    """Changes when the migrations or the demo seed change, so templates are never stale."""
    digest = hashlib.sha256()
    seed_dir = Path(seed_demo.__code__.co_filename).parent
    for path in [*sorted(default_migrations_dir().glob("*.sql")), *sorted(seed_dir.glob("*.py"))]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


async def _build_templates(admin_dsn: str, empty: str, demo: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        existing = {
            r["datname"]
            for r in await admin.fetch(
                "select datname from pg_database where datname = any($1::text[])", [empty, demo]
            )
        }
        for name in (empty, demo):
            if name in existing:
                continue
            await admin.execute(f'create database "{name}_build"')
            conn = await asyncpg.connect(dsn_for(admin_dsn, f"{name}_build"))
            try:
                await migrate(conn)
            finally:
                await conn.close()
            if name == demo:
                pool = await create_pool(
                    dsn_for(admin_dsn, f"{name}_build"), min_size=1, max_size=2
                )
                try:
                    await seed_demo(pool)
                finally:
                    await pool.close()
            await admin.execute(f'alter database "{name}_build" rename to "{name}"')
            await admin.execute(f'alter database "{name}" with is_template true')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def templates(pg_admin_dsn: str) -> dict[str, str]:
    """Names of the template databases: ``empty`` (migrated) and ``demo`` (migrated + seeded)."""
    digest = _templates_digest()
    names = {"empty": f"tpl_{digest}_empty", "demo": f"tpl_{digest}_demo"}
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / "templates.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            run_sync(lambda: _drop_leftover_builds(pg_admin_dsn))
            run_sync(lambda: _build_templates(pg_admin_dsn, names["empty"], names["demo"]))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return names


async def _drop_leftover_builds(admin_dsn: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        for row in await admin.fetch(
            "select datname from pg_database where datname like '%_build'"
        ):
            await admin.execute(f'drop database if exists "{row["datname"]}" with (force)')
    finally:
        await admin.close()


class Databases:
    """Creates throw-away databases on the test server."""

    def __init__(self, admin_dsn: str, templates: dict[str, str]) -> None:
        self.admin_dsn = admin_dsn
        self.templates = templates
        self.created: list[str] = []

    def create(self, template: str | None = "demo") -> str:
        name = f"t_{uuid.uuid4().hex[:20]}"

        async def go() -> None:
            admin = await asyncpg.connect(self.admin_dsn)
            try:
                if template is None:
                    await admin.execute(f'create database "{name}"')
                else:
                    await admin.execute(
                        f'create database "{name}" template "{self.templates[template]}"'
                    )
            finally:
                await admin.close()

        run_sync(go)
        self.created.append(name)
        return dsn_for(self.admin_dsn, name)

    def drop_all(self) -> None:
        async def go() -> None:
            admin = await asyncpg.connect(self.admin_dsn)
            try:
                for name in self.created:
                    await admin.execute(f'drop database if exists "{name}" with (force)')
            finally:
                await admin.close()

        run_sync(go)


@pytest.fixture
def databases(pg_admin_dsn: str, templates: dict[str, str]) -> Iterator[Databases]:
    dbs = Databases(pg_admin_dsn, templates)
    try:
        yield dbs
    finally:
        dbs.drop_all()


@pytest.fixture
def database_url(databases: Databases) -> str:
    """A fresh copy of the migrated, demo-seeded database for this test alone."""
    return databases.create("demo")


@pytest.fixture(scope="session")
def meili() -> Iterator[tuple[str, str]]:
    """(url, master key) of a real Meilisearch for this worker."""
    url, key = os.environ.get("MEILI_URL"), os.environ.get("MEILI_MASTER_KEY")
    if url and key:
        yield url, key
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    binary = resolve_meili_binary(STATE, os.environ.get("MEILI_BIN"))
    db_path = STATE / f"meili-{worker}-{os.getpid()}"
    process: MeiliProcess = start_meilisearch(STATE, binary=binary, db_path=db_path)
    try:
        yield process.url, process.master_key
    finally:
        process.stop()
        shutil.rmtree(db_path, ignore_errors=True)


@pytest.fixture
def settings(database_url: str, meili: tuple[str, str], tmp_path: Path) -> Settings:
    return make_settings(database_url, meili[0], meili[1], tmp_path)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    db_pool = await create_pool(database_url, min_size=1, max_size=10)
    try:
        yield db_pool
    finally:
        await db_pool.close()
