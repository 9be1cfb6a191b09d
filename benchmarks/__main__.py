"""Run the benchmarks: ``bin/dev bench`` (or ``python -m benchmarks``).

Starts the embedded PostgreSQL and Meilisearch under .emall/bench (or uses DATABASE_URL /
MEILI_URL), loads the demo data, runs every benchmark and writes benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

import asyncpg

from benchmarks import bench_me
from benchmarks.harness import Comparison, render
from emall.db.migrations import migrate
from emall.db.pool import create_pool
from emall.runtime.services import start_services
from emall.seed.demo import seed_demo
from emall.settings import Settings, load_settings

HERE = Path(__file__).resolve().parent


async def prepare(settings: Settings) -> None:
    assert settings.database.url is not None
    conn = await asyncpg.connect(settings.database.url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool = await create_pool(settings.database.url, min_size=1, max_size=2)
    try:
        await seed_demo(pool)
    finally:
        await pool.close()


async def run_all(settings: Settings, args: argparse.Namespace) -> list[Comparison]:
    await prepare(settings)
    concurrencies = tuple(int(c) for c in args.concurrency.split(","))
    return await bench_me.run(settings, concurrencies=concurrencies, requests=args.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()

    env = dict(os.environ)
    env.setdefault("EMALL_STATE_DIR", str(HERE.parent / ".emall" / "bench"))
    env.setdefault("EMALL_LOG_LEVEL", "WARNING")
    env.setdefault("EMALL_DB_POOL_MAX", "32")
    with start_services(load_settings(env)) as services:
        comparisons = asyncio.run(run_all(services.settings, args))
    report = render(
        comparisons, data_size="demo seed (7 organisations, 15 users)", extra_machine={}
    )
    args.output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
