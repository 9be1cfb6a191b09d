"""GET /api/v1/me over HTTP against the same principal query run raw with asyncpg.

This is the foundation's benchmark: it prices the whole request path (HTTP server, routing,
credential check, one query, msgspec encoding) against the single query it needs.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx

from benchmarks.harness import Comparison, measure
from emall.seed.demo import DEMO_PASSWORD
from emall.settings import Settings

RAW_SQL = """
select u.id as user_id, u.username, u.roles, u.is_active,
       o.id as organisation_id, o.kind, o.name as organisation_name, o.region_code
from users u join organisations o on o.id = u.organisation_id
where u.id = $1
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def running_server(settings: Settings) -> AsyncIterator[str]:
    """The real app under uvicorn (one worker) in its own process, as it is deployed.

    The load generator must not share the server's interpreter: one GIL for both would
    measure the generator as much as the server.
    """
    assert settings.database.url and settings.search.url and settings.search.master_key
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database.url,
        "MEILI_URL": settings.search.url,
        "MEILI_MASTER_KEY": settings.search.master_key,
        "EMALL_STATE_DIR": str(settings.state_dir),
        "EMALL_DB_POOL_MAX": str(settings.database.pool_max),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.cli:cli_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(200):
                try:
                    if (await probe.get(f"{base}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        yield base
    finally:
        server.terminate()
        server.wait(10)


async def run(
    settings: Settings, *, concurrencies: tuple[int, ...], requests: int
) -> list[Comparison]:
    assert settings.database.url is not None
    results: list[Comparison] = []
    async with running_server(settings) as base:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(
            base_url=base, limits=limits, headers={"Accept-Encoding": "identity"}
        ) as http:
            token = await http.post(
                "/api/v1/auth/token", json={"username": "nj_buyer", "password": DEMO_PASSWORD}
            )
            token.raise_for_status()
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            user_id = (await http.get("/api/v1/me", headers=headers)).json()["user_id"]
            pool = await asyncpg.create_pool(settings.database.url, min_size=8, max_size=32)
            assert pool is not None
            try:
                for concurrency in concurrencies:

                    async def via_api(_: int) -> None:
                        response = await http.get("/api/v1/me", headers=headers)
                        assert response.status_code == 200

                    async def raw(_: int) -> None:
                        await pool.fetchrow(RAW_SQL, user_id)

                    subject = await measure(
                        "GET /api/v1/me",
                        via_api,
                        concurrency=concurrency,
                        requests_per_round=requests,
                    )
                    baseline = await measure(
                        "raw principal query",
                        raw,
                        concurrency=concurrency,
                        requests_per_round=requests,
                    )
                    results.append(
                        Comparison(
                            benchmark="who am I (GET /api/v1/me vs its one query)",
                            concurrency=concurrency,
                            subject=subject,
                            baseline=baseline,
                        )
                    )
            finally:
                await pool.close()
    return results
