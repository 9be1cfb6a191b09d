"""API overhead: ``GET /api/v1/offers/{id}`` against a bare route in the same app.

The bare route runs the one query the API's read runs (``emall.listings.offers.load_offer``'s
query, captured from the library itself, so they cannot drift apart) and returns the raw row,
with no authentication, no transaction, no policy check and no response model. What is left
between the two is what emall adds to a read: the credential check, the request's transaction,
authorization, the OfferRead model and its ETag.

``bench_app`` is the app the benchmarks serve: the product app plus the bare routes, mounted
through ``create_app(extra_route_handlers=...)`` in the benchmark's server process only.
"""

from __future__ import annotations

import contextlib
import os
import random
from typing import Any

from litestar import Litestar, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from benchmarks import bench_me
from benchmarks.bench_search import token_of
from benchmarks.harness import Comparison, Context, QueryRecorder
from benchmarks.wrk import Request, Target, compare_in, explain_misses
from emall.db.pool import Pool, create_pool
from emall.errors import NotFound
from emall.listings.offers import BUYER_VISIBLE_SQL, load_offer
from emall.principals import OrganisationKind, Principal

BUYER = "nj_buyer"
BUYER_REGION = "511000"
RATIO_TARGET = 0.8
SAMPLE = 1_000


_queries: dict[str, str] = {}


async def load_offer_query(pool: Pool) -> str:
    """The SQL of ``load_offer`` (read once from the library, on the first request)."""
    if "offer" not in _queries:
        recorder = QueryRecorder(pool)
        nobody = Principal(
            user_id=0,
            username="bench",
            organisation_id=0,
            organisation_kind=OrganisationKind.AGENCY,
            organisation_name="bench",
            region_code=BUYER_REGION,
            roles=frozenset(),
        )
        with contextlib.suppress(NotFound):
            await load_offer(recorder, nobody, 0)  # type: ignore[arg-type]
        _queries["offer"] = recorder.query
    return _queries["offer"]


@get("/bench/offers/{offer_id:int}/raw", include_in_schema=False)
async def raw_offer(
    state: State, offer_id: FromPath[int], region: FromQuery[str]
) -> dict[str, Any]:
    """The bare route: the API's one query, its row as it comes."""
    pool: Pool = state.pool
    row = await pool.fetchrow(await load_offer_query(pool), offer_id, region)
    if row is None:
        raise NotFoundException()
    return dict(row)


def bench_app() -> Litestar:
    """The product app with the bare routes, configured from the environment (uvicorn factory).

    The outbox worker runs in it as in ``emall serve`` (EMALL_WORKER, default on)."""
    from api.app import create_app
    from api.cli_support import configure_logging
    from emall.settings import load_settings

    settings = load_settings(os.environ)
    configure_logging(settings)  # as `emall serve` sets it up (no log line per Meilisearch request)
    return create_app(
        settings,
        run_worker=settings.server.run_worker,
        extra_route_handlers=[raw_offer, bench_me.raw_principal],
    )


async def visible_offers(ctx: Context, count: int) -> list[int]:
    """A fixed sample of the offers the buyer may see, spread over the whole catalogue."""
    assert ctx.settings.database.url is not None
    pool = await create_pool(ctx.settings.database.url, min_size=1, max_size=1)
    try:
        rows = await pool.fetch(
            f"select o.id from offers o where {BUYER_VISIBLE_SQL.format(r='$1')} order by o.id",
            BUYER_REGION,
        )
    finally:
        await pool.close()
    ids = [r["id"] for r in rows]
    return sorted(random.Random(5).sample(ids, min(count, len(ids))))


async def run(ctx: Context, *, concurrencies: tuple[int, ...]) -> list[Comparison]:
    ids = await visible_offers(ctx, SAMPLE)
    _, token = await token_of(ctx, BUYER)
    headers = {"Accept-Encoding": "identity"}
    api = Target(
        "GET /api/v1/offers/{id}",
        ctx.server.base_url,
        [Request("GET", f"/api/v1/offers/{i}") for i in ids],
        {**headers, "Authorization": f"Bearer {token}"},
    )
    bare = Target(
        "bare route, same query",
        ctx.server.base_url,
        [Request("GET", f"/bench/offers/{i}/raw?region={BUYER_REGION}") for i in ids],
        headers,
    )
    note = (
        f"Offer by id: {len(ids)} offers visible to {BUYER}, in turn. The bare route "
        "(`/bench/offers/{id}/raw`, mounted in the benchmark's server only) runs the query of "
        "`emall.listings.offers.load_offer` on the pool and returns the row: no credential "
        "check, transaction, policy check or response model."
    )
    results: list[Comparison] = []
    for concurrency in concurrencies:
        subject, baseline = await compare_in(ctx, api, bare, concurrency=concurrency)
        c = Comparison(
            benchmark="offer by id (GET /api/v1/offers/{id} vs bare route)",
            concurrency=concurrency,
            subject=subject,
            baseline=baseline,
            notes=[note],
            data_size=ctx.data_key,
            target=f"≥ {RATIO_TARGET}× throughput",
        )
        c.met = c.ratio >= RATIO_TARGET
        results.append(c)
    await explain_misses(ctx, results, api, _needed)
    return results


def _needed(c: Comparison) -> str:
    """What a missed ratio needs, from the CPU each side cost per request."""
    ours, raw = sum(c.subject.cpu_us.values()), sum(c.baseline.cpu_us.values())
    if not ours or not raw:
        return NEEDED
    head = (
        "On two shared cores throughput follows CPU per request: a read through the API cost "
        f"{ours:,.0f} µs of CPU in all processes, one through the bare route {raw:,.0f} µs, "
        f"which allows {raw / ours:.2f}×."
    )
    if raw / ours >= RATIO_TARGET:
        head += (
            f" That meets {RATIO_TARGET}×, so this run's shortfall is time the requests waited "
            "rather than worked (the server's process scheduled behind PostgreSQL and wrk on two "
            "cores, and the spread between rounds), not work that could be removed."
        )
    else:
        head += f" {RATIO_TARGET}× needs at most {raw / RATIO_TARGET:,.0f} µs per read."
    return head + " " + NEEDED


NEEDED = (
    "What the API adds per read, beyond the one query that the bare route also runs: the "
    "token check (served from the cache of principals, no query), Litestar's routing, "
    "dependency resolution and parameter checks, the policy check, the OfferRead model and "
    "its ETag. Reads run without BEGIN and COMMIT. What is left is Python per request: "
    "fewer Litestar layers (a leaner route) or a second server process with more cores."
)
