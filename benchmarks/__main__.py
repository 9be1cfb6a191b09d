"""Run the benchmarks: ``bin/dev bench`` (or ``python -m benchmarks``).

Starts the embedded PostgreSQL and Meilisearch under .emall/bench (or uses DATABASE_URL /
MEILI_URL), builds a data set per size from the demo catalogue generator (reused by the next
run while nothing it comes from changes), serves the app under uvicorn in its own process,
drives it with wrk, and writes benchmarks/RESULTS.md.

    bin/dev bench                       everything, at 10,000 and 100,000 offers
    bin/dev bench --sizes 1000000 --only search,offer,sync
                                        the same at 1,000,000 offers (long)
    bin/dev bench --only search,offer   some benchmarks only
    bin/dev bench --output /tmp/r.md    write the results elsewhere
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import importlib.util
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import msgspec

from benchmarks import bench_me, bench_offer, bench_search, bench_sync_lag
from benchmarks.dataset import ensure_dataset
from benchmarks.harness import (
    Comparison,
    Context,
    Processes,
    Timing,
    api_server,
    postmaster_pid,
    render,
    settle,
)
from benchmarks.wrk import wrk_binary, wrk_version
from emall.db.migrations import migrate
from emall.db.pool import create_pool
from emall.demo.catalogue import DEMO_CATALOGUE_SIZE
from emall.demo.parties import ORGANISATIONS, USERS
from emall.demo.seed import seed_demo
from emall.embedded.services import RunningServices, start_services
from emall.settings import Settings, load_settings

HERE = Path(__file__).resolve().parent
DEFAULT_SIZES = "10000,100000"
BENCHMARKS = ("search", "offer", "me", "sync", "checkout", "import")


async def prepare(settings: Settings) -> None:
    """Migrate the default database and load the demo seed (the library benchmarks' data)."""
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


async def _versions(settings: Settings, embedded_meili: bool) -> dict[str, str]:
    assert settings.database.url and settings.search.url
    conn = await asyncpg.connect(settings.database.url)
    try:
        postgres = await conn.fetchval("show server_version")
    finally:
        await conn.close()
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {settings.search.master_key}"}
    ) as http:
        meili = str((await http.get(f"{settings.search.url}/version")).json()["pkgVersion"])
    if embedded_meili:  # started by emall, with the flags of `emall serve`
        memory = settings.search.max_indexing_memory or "Meilisearch's default"
        meili += f" (--max-indexing-memory {memory})"
    return {"postgresql": str(postgres), "meilisearch": meili, "wrk": wrk_version()}


def _server_env(settings: Settings, database_url: str, prefix: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "MEILI_URL": settings.search.url or "",
        "MEILI_MASTER_KEY": settings.search.master_key or "",
        "EMALL_STATE_DIR": str(settings.state_dir),
        "EMALL_SEARCH_INDEX_PREFIX": prefix,
        "EMALL_DB_POOL_MAX": str(settings.database.pool_max),
        "EMALL_LOG_LEVEL": "WARNING",
        "EMALL_WORKER": "true",
    }


async def run_size(
    services: RunningServices,
    size: int,
    args: argparse.Namespace,
    sections: dict[str, str],
    workdir: Path,
    first: bool,
) -> list[Comparison]:
    settings = services.settings
    assert settings.database.url and settings.search.url and settings.search.master_key
    dataset = await ensure_dataset(
        settings.database.url, settings.search.url, settings.search.master_key, size
    )
    key = f"{size:,} offers"
    sections[key] = dataset.describe()
    busy = await settle(settings.database.url, settings.search.url, settings.search.master_key)
    if busy:
        sections[key] += f" (measured while {busy})"
    sized = msgspec.structs.replace(
        settings,
        database=msgspec.structs.replace(settings.database, url=dataset.database_url),
        search=msgspec.structs.replace(settings.search, index_prefix=dataset.index_prefix),
    )
    concurrencies = tuple(int(c) for c in args.concurrency.split(","))
    processes = Processes(
        postgres=postmaster_pid(settings.state_dir / "pg"),  # None when external
        meilisearch=services.meili.pid if services.meili else None,
    )
    results: list[Comparison] = []
    env = _server_env(settings, dataset.database_url, dataset.index_prefix)
    async with api_server(env) as server:
        processes.emall = server.pid
        ctx = Context(
            settings=sized,
            dataset=dataset,
            server=server,
            processes=processes,
            timing=Timing(args.rounds, args.seconds, args.warmup),
            workdir=workdir,
            data_key=key,
            profile_seconds=args.profile_seconds,
        )
        steps: list[tuple[str, Callable[[], Awaitable[list[Comparison]]]]] = [
            ("search", lambda: bench_search.run(ctx, concurrencies=concurrencies)),
            ("offer", lambda: bench_offer.run(ctx, concurrencies=concurrencies)),
            ("me", lambda: bench_me.run(ctx, concurrencies=concurrencies)),
            ("sync", lambda: bench_sync_lag.run(ctx, seconds=args.sync_seconds)),
        ]
        for name, step in steps:
            if name not in args.only or (name == "me" and not first):
                continue  # GET /me does not depend on the data size: once is enough
            started = time.perf_counter()
            print(f"[{key}] {name} …", flush=True)
            results += await _guarded(f"{name} at {key}", step, args)
            print(f"[{key}] {name}: {time.perf_counter() - started:.0f} s", flush=True)
    return results


async def _guarded(
    what: str, step: Callable[[], Awaitable[list[Comparison]]], args: argparse.Namespace
) -> list[Comparison]:
    """A failing benchmark is reported and the others still run."""
    try:
        return await step()
    except Exception as exc:
        traceback.print_exc()
        args.failures.append(f"{what}: {exc!r}")
        return []


async def run_others(settings: Settings, args: argparse.Namespace) -> list[Comparison]:
    """Order placement and import (benchmarks/bench_checkout.py, bench_import.py), on the
    default database with the demo seed."""
    concurrencies = tuple(int(c) for c in args.concurrency.split(","))
    results: list[Comparison] = []
    prepared = False
    for name in ("checkout", "import"):
        module_name = f"benchmarks.bench_{name}"
        if name not in args.only or importlib.util.find_spec(module_name) is None:
            continue
        if not prepared:
            await prepare(settings)
            prepared = True
            assert settings.database.url and settings.search.url and settings.search.master_key
            busy = await settle(
                settings.database.url, settings.search.url, settings.search.master_key
            )
            if busy:
                print(f"[demo seed] measured while {busy}", flush=True)
        started = time.perf_counter()
        print(f"[demo seed] {name} …", flush=True)
        module = importlib.import_module(module_name)
        run: Callable[..., Awaitable[list[Comparison]]] = module.run
        results += await _guarded(
            f"{name} on the demo seed",
            functools.partial(run, settings, concurrencies=concurrencies),
            args,
        )
        print(f"[demo seed] {name}: {time.perf_counter() - started:.0f} s", flush=True)
    return results


async def run_all(services: RunningServices, args: argparse.Namespace) -> str:
    sections: dict[str, str] = {}
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results: list[Comparison] = []
    with tempfile.TemporaryDirectory(prefix="emall-bench-") as tmp:
        for number, size in enumerate(sizes):
            results += await run_size(services, size, args, sections, Path(tmp), number == 0)
    results += await run_others(services.settings, args)
    versions = await _versions(services.settings, services.meili is not None)
    timing = Timing(args.rounds, args.seconds, args.warmup)
    failed = [f"- {f}" for f in args.failures]
    preamble = [
        *(["## Failed benchmarks", "", *failed, ""] if failed else []),
        "## Method",
        "",
        f"Run: `{args.command}`. Every HTTP figure is wrk (one thread, keep-alive connections "
        f"= the concurrency) against the app under uvicorn (one worker) in its own process; "
        f"emall and its baseline alternate {timing.rounds} rounds of {timing.seconds} s each "
        f"after {timing.warmup_seconds} s of warm-up, and req/s, p50 and p99 are medians over "
        "the rounds. The ratio is emall's throughput over the baseline's (for sync lag, "
        "emall's p99 over the baseline's). PostgreSQL, Meilisearch, the server and wrk share "
        "the machine's cores.",
    ]
    return render(
        results,
        data_size=(
            f"the demo seed ({len(ORGANISATIONS)} organisations, {len(USERS)} named users, "
            f"{DEMO_CATALOGUE_SIZE} offers of the demo catalogue)"
        ),
        extra_machine=versions,
        sections=sections,
        preamble=preamble,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bin/dev bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--sizes", default=DEFAULT_SIZES, help="offers per data set, comma-separated"
    )
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"of {', '.join(BENCHMARKS)}")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per side")
    parser.add_argument("--seconds", type=int, default=3, help="seconds per wrk round")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds per side")
    parser.add_argument("--sync-seconds", type=int, default=15, help="sync lag: seconds of changes")
    parser.add_argument("--profile-seconds", type=int, default=5, help="py-spy per missed target")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    args.only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = args.only - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    args.command = " ".join(["bin/dev bench", *sys.argv[1:]])
    args.failures = []
    wrk_binary()  # before starting anything: fails with the way to install it

    env = dict(os.environ)
    env.setdefault("EMALL_STATE_DIR", str(HERE.parent / ".emall" / "bench"))
    env.setdefault("EMALL_LOG_LEVEL", "WARNING")
    env.setdefault("EMALL_DB_POOL_MAX", "32")
    started = time.perf_counter()
    with start_services(load_settings(env)) as services:
        report = asyncio.run(run_all(services, args))
    args.output.write_text(report)
    print(report)
    print(f"wrote {args.output} in {time.perf_counter() - started:.0f} s")
    if args.failures:
        sys.exit(f"{len(args.failures)} benchmark(s) failed: " + "; ".join(args.failures))


if __name__ == "__main__":
    main()
