"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.demo.parties import DEMO_PASSWORD
from emall.settings import Settings, load_settings

T = TypeVar("T")

JWT_SECRET = "test-secret-" + "x" * 40


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, in a thread with its own loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def dsn_for(admin_dsn: str, database: str) -> str:
    """The admin DSN pointed at another database (keeps host/socket query parameters)."""
    head, sep, query = admin_dsn.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}{sep}{query}"


def make_settings(
    database_url: str, meili_url: str, meili_key: str, state_dir: Path, **extra: str
) -> Settings:
    env = {
        "DATABASE_URL": database_url,
        "MEILI_URL": meili_url,
        "MEILI_MASTER_KEY": meili_key,
        "EMALL_STATE_DIR": str(state_dir),
        "EMALL_JWT_SECRET": JWT_SECRET,
        "EMALL_SEARCH_INDEX_PREFIX": f"t{uuid.uuid4().hex[:12]}",
        "EMALL_DB_POOL_MIN": "1",
        "EMALL_DB_POOL_MAX": "5",
        **extra,
    }
    return load_settings(env, cwd=state_dir)


async def login(
    client: AsyncTestClient[Litestar], username: str, password: str | None = None
) -> dict[str, str]:
    """Authorization headers for a demo user."""
    response = await client.post(
        "/api/v1/auth/token", json={"username": username, "password": password or DEMO_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def token_for(pool: Any, username: str) -> dict[str, str]:
    """Authorization headers for a demo user, minted directly (no password hashing: fast)."""
    from emall.identity.tokens import issue_token

    user_id = await pool.fetchval("select id from users where username = $1", username)
    assert user_id is not None, username
    token, _ = issue_token(user_id, secret=JWT_SECRET, ttl_seconds=600)
    return {"Authorization": f"Bearer {token}"}


async def principal_of(pool: Any, username: str) -> Any:
    """The library Principal of a demo user, for calling services directly."""
    from emall.identity.service import principal_from_token

    headers = await token_for(pool, username)
    return await principal_from_token(pool, headers["Authorization"].split()[1], JWT_SECRET)


async def org_id(pool: Any, name: str) -> int:
    found = await pool.fetchval("select id from organisations where name = $1", name)
    assert found is not None, name
    return int(found)
