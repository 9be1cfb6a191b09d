"""Search: ``GET /api/v1/search`` through the API against raw Meilisearch over HTTP.

Both sides get the same query mix (``benchmarks.queries``) from the same wrk. The raw side
posts, for each query, exactly the body emall sends to Meilisearch: it is built by emall's own
``emall.search.query.search_body`` from the buyer's region chains that emall's ``visibility``
computes. Before measuring, every query is sent once to both sides and their hits compared.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from benchmarks.harness import (
    Comparison,
    Context,
    Measurement,
    Processes,
    Timing,
    machine_words,
)
from benchmarks.queries import Query, api_path, describe, query_mix
from benchmarks.relay import relay
from benchmarks.wrk import Request, Target, compare, compare_in, explain_misses
from emall.db.pool import create_pool
from emall.identity.service import principal_from_token
from emall.identity.tokens import issue_token
from emall.search.query import search_body, visibility

BUYER = "nj_buyer"
THROUGHPUT_TARGET = 0.75  # × raw Meilisearch at concurrency 8
OVERHEAD_TARGET_MS = 1.5  # p99 overhead at concurrency 1
# At concurrency 1 a 3 s round holds a few hundred searches (about 330 at 1M offers), so its p99
# is its third or fourth slowest: the p99 target is measured over longer and more rounds.
P99_ROUNDS, P99_SECONDS = 5, 10


def timing_at(timing: Timing, concurrency: int) -> Timing:
    """The rounds at ``concurrency``: at least 5 of 10 s at concurrency 1, where p99 is judged."""
    if concurrency != 1:
        return timing
    return Timing(
        max(timing.rounds, P99_ROUNDS), max(timing.seconds, P99_SECONDS), timing.warmup_seconds
    )


async def token_of(ctx: Context, username: str) -> tuple[int, str]:
    """(user id, a bearer token) for a demo user, minted with the deployment's secret."""
    assert ctx.settings.database.url is not None
    pool = await create_pool(ctx.settings.database.url, min_size=1, max_size=1)
    try:
        user_id: int = await pool.fetchval("select id from users where username = $1", username)
    finally:
        await pool.close()
    token, _ = issue_token(user_id, secret=ctx.settings.auth.jwt_secret, ttl_seconds=7200)
    return user_id, token


async def targets(ctx: Context, queries: list[Query]) -> tuple[Target, Target]:
    assert ctx.settings.database.url and ctx.settings.search.url and ctx.settings.search.master_key
    _, token = await token_of(ctx, BUYER)
    pool = await create_pool(ctx.settings.database.url, min_size=1, max_size=1)
    raw: list[Request] = []
    try:
        principal = await principal_from_token(pool, token, ctx.settings.auth.jwt_secret)
        for q in queries:
            chain, delivery = await visibility(pool, principal, q.request)
            body = msgspec.json.encode(search_body(chain, delivery, q.request))
            raw.append(Request("POST", f"/indexes/{ctx.dataset.index_uid}/search", body))
    finally:
        await pool.close()
    api = Target(
        "GET /api/v1/search",
        ctx.server.base_url,
        [Request("GET", api_path(q.request)) for q in queries],
        {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"},
    )
    meili = Target(
        "raw Meilisearch search",
        ctx.settings.search.url,
        raw,
        {
            "Authorization": f"Bearer {ctx.settings.search.master_key}",
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
        },
    )
    return api, meili


async def same_answers(api: Target, meili: Target) -> tuple[int, int]:
    """Send every query to both sides; (queries with hits, queries whose hits differ)."""
    with_hits = differ = 0
    async with (
        httpx.AsyncClient(base_url=api.base_url, headers=api.headers, timeout=30) as a,
        httpx.AsyncClient(base_url=meili.base_url, headers=meili.headers, timeout=30) as m,
    ):
        for ours, theirs in zip(api.requests, meili.requests, strict=True):
            got = await a.get(ours.path)
            raw = await m.post(theirs.path, content=theirs.body)
            got.raise_for_status()
            raw.raise_for_status()
            emall_ids = [h["offer_id"] for h in got.json()["hits"]]
            raw_body: dict[str, Any] = raw.json()
            raw_ids = [h["id"] for h in raw_body["hits"]]
            with_hits += bool(raw_ids)
            differ += emall_ids != raw_ids or (
                got.json()["total_estimate"] != raw_body["estimatedTotalHits"]
            )
    return with_hits, differ


async def hop_alone(ctx: Context, meili: Target, timing: Timing) -> str:
    """The bare relay (``benchmarks.relay``) against raw Meilisearch at concurrency 1, in words."""
    assert ctx.settings.search.url and ctx.settings.search.master_key
    async with relay(ctx.settings.search.url, ctx.settings.search.master_key) as (base, pid):
        through = Target("bare relay", base, meili.requests, meili.headers)
        processes = Processes(
            postgres=ctx.processes.postgres, meilisearch=ctx.processes.meilisearch, emall=pid
        )
        hop, raw = await compare(
            through,
            meili,
            concurrency=1,
            timing=timing,
            processes=processes,
            directory=ctx.workdir,
        )
    return hop_text(hop, raw)


def hop_text(hop: Measurement, raw: Measurement) -> str:
    meili_extra = hop.cpu_us.get("meilisearch", 0.0) - raw.cpu_us.get("meilisearch", 0.0)
    return (
        "The hop by itself, measured after the rounds above: a bare relay (`benchmarks/relay.py`: "
        "a Python process that passes each request's bytes to Meilisearch on emall's kept search "
        "connections and returns the answer, with no credential, parsing or checks) against raw "
        f"Meilisearch, {hop.rounds} rounds each: p50 {hop.p50_ms:.2f} ms against "
        f"{raw.p50_ms:.2f}, p99 {hop.p99_ms:.2f} ms against {raw.p99_ms:.2f} "
        f"({hop.p99_ms - raw.p99_ms:+.2f} ms), {hop.cpu_us.get('emall', 0.0):,.0f} µs of CPU per "
        f"search in the relay, and Meilisearch used {meili_extra:+,.0f} µs of CPU per search "
        "behind it. What the relay adds comes with any process between the client and Meilisearch "
        "on two shared cores; the rest of emall's overhead is its own work per search."
    )


def _needed(c: Comparison, hop: str) -> str:
    s, b = c.subject.cpu_us, c.baseline.cpu_us
    if not s or not b:
        return ""
    raw_total, ours_total = sum(b.values()), sum(s.values())
    ours = s.get("emall", 0.0) + s.get("postgres", 0.0) - b.get("postgres", 0.0)
    if c.concurrency == 1:
        head = (
            f"At concurrency 1 the overhead is emall's own time per search: {ours:,.0f} µs of "
            "CPU in the server and PostgreSQL, plus the wait of the extra hop (wrk to emall to "
            "Meilisearch and back); "
            f"p99 overhead ≤ {OVERHEAD_TARGET_MS} ms needs that well under 1 ms."
        )
        if hop:
            head += " " + hop
    else:
        budget = raw_total / THROUGHPUT_TARGET
        head = (
            "On two shared cores throughput follows CPU per request: a search through emall "
            f"costs {ours_total:,.0f} µs of CPU in all processes, a raw search {raw_total:,.0f} "
            f"µs. {THROUGHPUT_TARGET}× needs at most {budget:,.0f} µs"
        )
        if ours_total > budget:
            head += f", so {ours_total - budget:,.0f} µs less per search."
        else:
            head += (
                ", which this run is within: the shortfall is time the request waits rather "
                "than works (the server's process scheduled behind Meilisearch and wrk on two "
                "cores, and the rounds' spread), not work that could be removed."
            )
    return head + " " + NEEDED


NEEDED = (
    "What the server still does per search, beyond relaying it: read and route the request, "
    "parse and check ten query parameters (Litestar's signature model), check the token "
    "against the cache of principals (no database round trip since the cache), build the "
    "filter, one exchange with Meilisearch on a kept connection, decode its answer and encode "
    "the page (msgspec), and write the response in one send (api/server.py). The py-spy "
    "tables show the split; the event loop's `Runner.run` is uvloop's own socket work. Closing "
    "what is left would take fewer Python layers per request: a route that bypasses Litestar's "
    "dependency and parameter machinery, or a second server process on a machine with more "
    "cores than the two that the server, Meilisearch and wrk share here."
)


async def run(ctx: Context, *, concurrencies: tuple[int, ...]) -> list[Comparison]:
    queries = query_mix()
    api, meili = await targets(ctx, queries)
    with_hits, differ = await same_answers(api, meili)
    if differ:
        raise RuntimeError(
            f"{differ} of {len(queries)} queries answer differently through emall and raw "
            "Meilisearch: the raw requests are not the ones emall sends"
        )
    notes = [
        f"Search query mix: {describe(queries)}. {with_hits} of {len(queries)} find offers; "
        "emall's hits and totals equal raw Meilisearch's for every query (checked before "
        f"measuring). Buyer {BUYER} (region 511000), page size 20. At concurrency 1, where "
        f"the p99 target is judged, each side runs {timing_at(ctx.timing, 1).rounds} rounds of "
        f"{timing_at(ctx.timing, 1).seconds} s."
    ]
    results: list[Comparison] = []
    hop = ""  # the bare relay's figures, when the p99 target at concurrency 1 is missed
    for concurrency in concurrencies:
        subject, baseline = await compare_in(
            ctx, api, meili, concurrency=concurrency, timing=timing_at(ctx.timing, concurrency)
        )
        c = Comparison(
            benchmark="search (GET /api/v1/search vs raw Meilisearch)",
            concurrency=concurrency,
            subject=subject,
            baseline=baseline,
            notes=notes,
            data_size=ctx.data_key,
        )
        if concurrency == 8:
            c.target = f"≥ {THROUGHPUT_TARGET}× throughput"
            c.met = c.ratio >= THROUGHPUT_TARGET
        elif concurrency == 1:
            c.target = f"p99 overhead ≤ {OVERHEAD_TARGET_MS} ms (here {c.p99_overhead_ms:.2f} ms)"
            c.met = c.p99_overhead_ms <= OVERHEAD_TARGET_MS
            if not c.met:
                hop = await hop_alone(ctx, meili, timing_at(ctx.timing, 1))
        results.append(c)
    notes.append(cpu_note(results))
    await explain_misses(ctx, results, api, lambda c: _needed(c, hop))
    return results


def cpu_note(results: list[Comparison]) -> str:
    """CPU per search and the machine's state at each concurrency, so that runs compare."""
    parts = []
    for c in results:
        s, b = c.subject, c.baseline
        part = (
            f"concurrency {c.concurrency}: server {s.cpu_us.get('emall', 0.0):,.0f} µs, "
            f"Meilisearch {s.cpu_us.get('meilisearch', 0.0):,.0f} against "
            f"{b.cpu_us.get('meilisearch', 0.0):,.0f} µs"
        )
        if s.machine is not None and b.machine is not None:
            part += f"; emall's rounds {machine_words(s)}; raw rounds {machine_words(b)}"
        parts.append(part)
    return (
        "CPU per search, emall's rounds against raw Meilisearch's (/proc; the whole machine "
        "from /proc/stat): " + ". ".join(parts) + "."
    )
