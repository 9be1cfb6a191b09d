"""The migration runner: once per file, even with concurrent runners; changed files refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from emall.db.migrations import default_migrations_dir, load_migration_files, migrate, status
from emall.errors import MigrationError
from tests.conftest import Databases

REPO = Path(__file__).resolve().parents[1]


def _write(directory: Path, name: str, sql: str) -> Path:
    path = directory / name
    path.write_text(sql)
    return path


@pytest.fixture
def migration_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    _write(
        directory,
        "0001_counter.sql",
        "create table runs (id serial primary key, file text not null);\n"
        "insert into runs (file) values ('0001');\n",
    )
    _write(
        directory,
        "0002_items.sql",
        "create table items (id bigint primary key, name text not null);\n"
        "insert into runs (file) values ('0002');\n"
        "select pg_sleep(0.2);\n",
    )
    _write(
        directory,
        "0003_items_index.sql",
        "-- emall:no-transaction\n"
        "create index concurrently items_name_idx on items (name);\n"
        "insert into runs (file) values ('0003');\n",
    )
    return directory


async def test_concurrent_runners_apply_each_file_exactly_once(
    databases: Databases, migration_dir: Path
) -> None:
    dsn = databases.create(template=None)
    conns = [await asyncpg.connect(dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c, migration_dir) for c in conns))
        applied_by_each = [[m.version for m in r] for r in results]
        # exactly one runner applied everything; the others found nothing left to do
        assert sorted(applied_by_each, key=len) == [[], [], [], [1, 2, 3]]
        runs = await conns[0].fetch("select file from runs order by id")
        assert [r["file"] for r in runs] == ["0001", "0002", "0003"]
        recorded = await conns[0].fetch("select version, sha256 from schema_migrations order by 1")
        files = load_migration_files(migration_dir)
        assert [(r["version"], r["sha256"]) for r in recorded] == [
            (f.version, f.sha256) for f in files
        ]
        index = await conns[0].fetchval("select to_regclass('items_name_idx') is not null")
        assert index
    finally:
        for c in conns:
            await c.close()


async def test_changed_applied_file_is_refused_and_nothing_applied(
    databases: Databases, migration_dir: Path
) -> None:
    dsn = databases.create(template=None)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, migration_dir)
        _write(migration_dir, "0001_counter.sql", "create table runs (id int);\n")
        _write(migration_dir, "0004_more.sql", "create table more (id int);\n")
        with pytest.raises(MigrationError, match=r"0001_counter\.sql"):
            await migrate(conn, migration_dir)
        assert await conn.fetchval("select to_regclass('more')") is None
        states = {s.version: s.state for s in await status(conn, migration_dir)}
        assert states == {1: "changed", 2: "applied", 3: "applied", 4: "pending"}
    finally:
        await conn.close()


async def test_a_failing_file_leaves_nothing_half_applied(
    databases: Databases, tmp_path: Path
) -> None:
    directory = tmp_path / "m"
    directory.mkdir()
    _write(directory, "0001_ok.sql", "create table ok (id int);\n")
    _write(directory, "0002_bad.sql", "create table half (id int);\nselect no_such_function();\n")
    dsn = databases.create(template=None)
    conn = await asyncpg.connect(dsn)
    try:
        with pytest.raises(MigrationError, match=r"0002_bad\.sql"):
            await migrate(conn, directory)
        assert await conn.fetchval("select to_regclass('half')") is None
        assert await conn.fetchval("select to_regclass('ok')") is not None
        versions = await conn.fetch("select version from schema_migrations")
        assert [r["version"] for r in versions] == [1]
    finally:
        await conn.close()


def test_misnamed_file_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "1_first.sql", "select 1;")
    with pytest.raises(MigrationError, match="NNNN_lowercase_name"):
        load_migration_files(tmp_path)


def test_project_migrations_are_well_formed() -> None:
    files = load_migration_files(default_migrations_dir())
    assert files, "no migrations found"
    assert [f.version for f in files] == list(range(1, len(files) + 1))


def test_two_concurrent_cli_migrate_runs_apply_each_file_once(
    databases: Databases, tmp_path: Path
) -> None:
    dsn = databases.create(template=None)
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "EMALL_STATE_DIR": str(tmp_path / "state"),
        "EMALL_JWT_SECRET": "s" * 40,
    }
    env.pop("MEILI_URL", None)
    emall = [sys.executable, "-c", "from api.cli import main; main()"]
    procs = [
        subprocess.Popen(
            [*emall, "db", "migrate"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    said = sorted(out.strip().splitlines()[-1] for out, _ in outputs)
    assert said[0].startswith("applied: 0001_foundation")
    assert said[1] == "database is up to date"

    async def check() -> list[int]:
        conn = await asyncpg.connect(dsn)
        try:
            return [
                r["version"]
                for r in await conn.fetch("select version from schema_migrations order by 1")
            ]
        finally:
            await conn.close()

    versions = asyncio.run(check())
    assert versions == [f.version for f in load_migration_files(default_migrations_dir())]
