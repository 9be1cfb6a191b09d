"""The migration runner over ``migrations/NNNN_name.sql``.

* ``schema_migrations`` records version, name, sha256 and applied_at of every applied file.
* A polled ``pg_try_advisory_lock`` keeps two runners apart. A blocking ``pg_advisory_lock``
  would deadlock against ``CREATE INDEX CONCURRENTLY``: the waiting sessions hold snapshots
  that the index build waits for.
* Each file runs in its own transaction, unless its first line is ``-- emall:no-transaction``;
  such a file is run statement by statement (statements end with ``;`` at the end of a line).
* A file that was applied and has changed since is refused, and nothing is applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg

from emall.db.pool import Connection
from emall.errors import MigrationError

NO_TRANSACTION_MARK = "-- emall:no-transaction"
_FILE_NAME = re.compile(r"(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql")
# An arbitrary, fixed key: "emall" in ASCII. Every runner of every emall version uses it.
_LOCK_KEY = 0x656D616C6C


@dataclass(frozen=True)
class MigrationFile:
    version: int
    name: str
    path: Path
    sql: str = field(repr=False)
    sha256: str

    @property
    def transactional(self) -> bool:
        first_line = self.sql.lstrip().split("\n", 1)[0].strip()
        return first_line != NO_TRANSACTION_MARK


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    name: str
    state: str  # applied | pending | changed | missing_file
    applied_at: datetime | None


def default_migrations_dir() -> Path:
    """``migrations/`` of a source checkout, or the copy packaged into an installed wheel."""
    here = Path(__file__).resolve()
    packaged = here.parents[1] / "_migrations"
    if packaged.is_dir():
        return packaged
    return here.parents[3] / "migrations"


def load_migration_files(directory: Path) -> list[MigrationFile]:
    files: list[MigrationFile] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: a migration file is named NNNN_lowercase_name.sql")
        raw = path.read_bytes()
        files.append(
            MigrationFile(
                version=int(match["version"]),
                name=match["name"],
                path=path,
                sql=raw.decode("utf-8"),
                sha256=hashlib.sha256(raw).hexdigest(),
            )
        )
    versions = [f.version for f in files]
    duplicates = sorted({v for v in versions if versions.count(v) > 1})
    if duplicates:
        raise MigrationError(f"two migration files share a version: {duplicates}")
    return files


_CREATE_TABLE = """
create table if not exists schema_migrations (
    version    integer primary key,
    name       text not null,
    sha256     text not null,
    applied_at timestamptz not null default now(),
    duration_ms integer not null default 0
)
"""


async def _acquire_lock(conn: Connection, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while not await conn.fetchval("select pg_try_advisory_lock($1)", _LOCK_KEY):
        if time.monotonic() > deadline:
            raise MigrationError(
                f"another migration runner has held the lock for more than {wait_seconds:.0f} s"
            )
        await asyncio.sleep(0.05)


async def _applied(conn: Connection) -> dict[int, asyncpg.Record]:
    rows = await conn.fetch("select version, name, sha256, applied_at from schema_migrations")
    return {row["version"]: row for row in rows}


def _check_unchanged(files: list[MigrationFile], applied: dict[int, asyncpg.Record]) -> None:
    changed = [
        f"{f.path.name} (applied sha256 {applied[f.version]['sha256'][:12]}…, file {f.sha256[:12]}…)"
        for f in files
        if f.version in applied and applied[f.version]["sha256"] != f.sha256
    ]
    if changed:
        raise MigrationError(
            "applied migration files have changed since they were applied; write a new "
            "migration instead of editing an applied one: " + ", ".join(changed)
        )
    known = {f.version for f in files}
    unknown = sorted(v for v in applied if v not in known)
    if unknown:
        raise MigrationError(
            f"the database has migrations this code does not know: {unknown}; "
            "run a newer emall, or restore the files"
        )


def _split_statements(sql: str) -> list[str]:
    statements: list[str] = []
    current: list[str] = []
    for line in sql.splitlines():
        current.append(line)
        if line.rstrip().endswith(";"):
            statement = "\n".join(current).strip()
            current = []
            if _has_code(statement):
                statements.append(statement)
    tail = "\n".join(current).strip()
    if _has_code(tail):
        statements.append(tail)
    return statements


def _has_code(statement: str) -> bool:
    return any(
        line.strip() and not line.strip().startswith("--") for line in statement.splitlines()
    )


async def _apply(conn: Connection, migration: MigrationFile) -> None:
    started = time.monotonic()
    record = (
        "insert into schema_migrations (version, name, sha256, duration_ms) values ($1, $2, $3, $4)"
    )
    try:
        if migration.transactional:
            async with conn.transaction():
                await conn.execute(migration.sql)
                elapsed = int((time.monotonic() - started) * 1000)
                await conn.execute(
                    record, migration.version, migration.name, migration.sha256, elapsed
                )
        else:
            for statement in _split_statements(migration.sql):
                await conn.execute(statement)
            elapsed = int((time.monotonic() - started) * 1000)
            await conn.execute(record, migration.version, migration.name, migration.sha256, elapsed)
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"{migration.path.name} failed: {exc}") from exc


async def migrate(
    conn: Connection, directory: Path | None = None, *, lock_timeout: float = 300.0
) -> list[MigrationFile]:
    """Apply every pending migration in order; return the ones this call applied."""
    files = load_migration_files(directory or default_migrations_dir())
    await _acquire_lock(conn, lock_timeout)
    try:
        await conn.execute(_CREATE_TABLE)
        applied = await _applied(conn)
        _check_unchanged(files, applied)
        done: list[MigrationFile] = []
        for migration in files:
            if migration.version not in applied:
                await _apply(conn, migration)
                done.append(migration)
        return done
    finally:
        await conn.execute("select pg_advisory_unlock($1)", _LOCK_KEY)


async def status(conn: Connection, directory: Path | None = None) -> list[MigrationStatus]:
    files = load_migration_files(directory or default_migrations_dir())
    exists = await conn.fetchval("select to_regclass('schema_migrations') is not null")
    applied = await _applied(conn) if exists else {}
    result: list[MigrationStatus] = []
    for f in files:
        row = applied.get(f.version)
        if row is None:
            result.append(MigrationStatus(f.version, f.name, "pending", None))
        else:
            state = "applied" if row["sha256"] == f.sha256 else "changed"
            result.append(MigrationStatus(f.version, f.name, state, row["applied_at"]))
    known = {f.version for f in files}
    for version, row in sorted(applied.items()):
        if version not in known:
            result.append(MigrationStatus(version, row["name"], "missing_file", row["applied_at"]))
    return result
