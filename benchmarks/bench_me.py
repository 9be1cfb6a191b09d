"""GET /api/v1/me over HTTP against a bare route that runs the same principal query.

This is the foundation's benchmark: it prices the request path (routing, middleware, the
credential check, msgspec encoding) around the one query it needs. The bare route
(``/bench/me/{user_id}/raw``) runs the query ``principal_from_token`` sends, captured from the
library, and returns the row.
"""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from benchmarks.harness import Comparison, Context, QueryRecorder
from emall.db.pool import Pool
from emall.identity.service import principal_from_token
from emall.identity.tokens import issue_token
from emall.settings import Settings

USER = "nj_buyer"
_queries: dict[str, str] = {}


async def principal_query(pool: Pool, settings: Settings, user_id: int) -> str:
    if "me" not in _queries:
        recorder = QueryRecorder(pool)
        token, _ = issue_token(user_id, secret=settings.auth.jwt_secret, ttl_seconds=60)
        await principal_from_token(recorder, token, settings.auth.jwt_secret)  # type: ignore[arg-type]
        _queries["me"] = recorder.query
    return _queries["me"]


@get("/bench/me/{user_id:int}/raw", include_in_schema=False)
async def raw_principal(state: State, user_id: FromPath[int]) -> dict[str, Any]:
    """The bare route: the principal query, its row as it comes."""
    pool: Pool = state.pool
    row = await pool.fetchrow(await principal_query(pool, state.settings, user_id), user_id)
    if row is None:
        raise NotFoundException()
    return dict(row)


async def run(ctx: Context, *, concurrencies: tuple[int, ...]) -> list[Comparison]:
    from benchmarks.bench_search import token_of
    from benchmarks.wrk import Request, Target, compare_in

    user_id, token = await token_of(ctx, USER)
    headers = {"Accept-Encoding": "identity"}
    api = Target(
        "GET /api/v1/me",
        ctx.server.base_url,
        [Request("GET", "/api/v1/me")],
        {**headers, "Authorization": f"Bearer {token}"},
    )
    bare = Target(
        "bare route, same query",
        ctx.server.base_url,
        [Request("GET", f"/bench/me/{user_id}/raw")],
        headers,
    )
    results: list[Comparison] = []
    for concurrency in concurrencies:
        subject, baseline = await compare_in(ctx, api, bare, concurrency=concurrency)
        results.append(
            Comparison(
                benchmark="who am I (GET /api/v1/me vs bare route)",
                concurrency=concurrency,
                subject=subject,
                baseline=baseline,
                data_size=ctx.data_key,
                notes=[
                    "Who am I: the bare route `/bench/me/{id}/raw` runs the query of "
                    "`principal_from_token` and returns the row; the API checks the token "
                    "against the cache of principals (emall.identity.principal_cache), so after "
                    "the first request it sends no query at all, and it is faster than the bare "
                    "route. No target (the foundation's benchmark)."
                ],
            )
        )
    return results
