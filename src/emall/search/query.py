"""Searching offers: Meilisearch first, PostgreSQL's mirror when Meilisearch is unreachable.

The buyer's region filter is built here from the principal, never taken from the client: an
offer is found only if its supplier may sell to the buyer's region (``buyable_regions``, not
``blocked_regions``) and it delivers there. Every value put into a Meilisearch filter has been
validated by pattern, and the one free text value (brand) is quoted and escaped.
"""

from __future__ import annotations

import html
import time
from typing import Any

import httpx
from meilisearch_python_sdk import AsyncClient
from meilisearch_python_sdk.errors import MeilisearchCommunicationError, MeilisearchTimeoutError

from emall.db.pool import Connection, Pool
from emall.db.sql import like_term
from emall.identity.models import Principal
from emall.policy import authorize
from emall.regions.service import region_chain, require_region
from emall.search.models import SearchRequest, SearchResult, Suggestions, hit_from

FACETS = ("brand", "category_codes", "policy_tags")
_SORTS = {
    "relevance": None,
    "price_asc": ["price_fen:asc"],
    "price_desc": ["price_fen:desc"],
    "newest": ["updated_at:desc"],
    "sales": ["sales_count:desc"],
}
_SQL_SORTS = {
    "relevance": "relevance desc, s.offer_id",
    "price_asc": "s.price_fen, s.offer_id",
    "price_desc": "s.price_fen desc, s.offer_id",
    "newest": "s.updated_at desc, s.offer_id",
    "sales": "s.sales_count desc, s.offer_id",
}
UNREACHABLE = (
    MeilisearchCommunicationError,
    MeilisearchTimeoutError,
    httpx.TransportError,
    TimeoutError,
)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _in(field: str, values: list[str]) -> str:
    return f"{field} IN [{', '.join(_quoted(v) for v in values)}]"


async def _visibility(
    conn: Connection | Pool, principal: Principal, req: SearchRequest
) -> tuple[list[str], list[str]]:
    """(the buyer's region chain, the delivery chain): built from the principal, not the client."""
    chain = list(await region_chain(conn, principal.region_code))
    delivery = (
        list(await require_region(conn, req.delivery_region, "delivery_region"))
        if req.delivery_region
        else chain
    )
    return chain, delivery


def meili_filter(
    chain: list[str], delivery: list[str], req: SearchRequest
) -> list[str | list[str]]:
    filters: list[str | list[str]] = [
        _in("buyable_regions", chain),
        f"NOT {_in('blocked_regions', chain)}",
        _in("delivery_regions", chain),
    ]
    if delivery != chain:
        filters.append(_in("delivery_regions", delivery))
    if req.category:
        filters.append(f"category_codes = {_quoted(req.category)}")
    if req.brand:
        filters.append(f"brand = {_quoted(req.brand)}")
    filters.extend(f"policy_tags = {_quoted(tag)}" for tag in req.policy_tags)
    if req.price_min is not None:
        filters.append(f"price_fen >= {int(req.price_min)}")
    if req.price_max is not None:
        filters.append(f"price_fen <= {int(req.price_max)}")
    return filters


async def search(
    conn: Connection | Pool, client: AsyncClient, uid: str, principal: Principal, req: SearchRequest
) -> SearchResult:
    authorize(principal, "product.read")
    chain, delivery = await _visibility(conn, principal, req)
    started = time.perf_counter()
    try:
        result = await client.index(uid).search(
            req.q,
            filter=meili_filter(chain, delivery, req),
            facets=list(FACETS),
            sort=_SORTS[req.sort],
            offset=(req.page - 1) * req.page_size,
            limit=req.page_size,
            attributes_to_highlight=["title"],
            highlight_pre_tag="<em>",
            highlight_post_tag="</em>",
        )
    except UNREACHABLE:
        return await degraded_search(conn, chain, delivery, req, started)
    hits = [hit_from(h, (h.get("_formatted") or {}).get("title")) for h in result.hits]
    return SearchResult(
        hits=hits,
        facets={k: dict(v) for k, v in (result.facet_distribution or {}).items()},
        total_estimate=result.estimated_total_hits or 0,
        page=req.page,
        page_size=req.page_size,
        processing_ms=result.processing_time_ms,
        degraded=False,
    )


_WHERE = """
    s.buyable_regions && $1::text[] and not (s.blocked_regions && $1::text[])
    and s.delivery_regions && $1::text[] and s.delivery_regions && $2::text[]
    and ($3::text is null or s.title like '%' || $3 || '%' or s.category_names like '%' || $3 || '%'
         or s.brand ilike '%' || $3 || '%' or s.model ilike '%' || $3 || '%'
         or s.title_pinyin like '%' || lower($3) || '%' or s.title_initials like '%' || lower($3) || '%'
         or s.category_pinyin like '%' || lower($3) || '%')
    and ($4::text is null or $4 = any(s.category_codes))
    and ($5::text is null or s.brand = $5)
    and s.policy_tags @> $6::text[]
    and ($7::bigint is null or s.price_fen >= $7)
    and ($8::bigint is null or s.price_fen <= $8)
"""


def _sql_args(chain: list[str], delivery: list[str], req: SearchRequest) -> list[Any]:
    return [
        chain,
        delivery,
        like_term(req.q),
        req.category,
        req.brand,
        list(req.policy_tags),
        req.price_min,
        req.price_max,
    ]


async def degraded_search(
    conn: Connection | Pool,
    chain: list[str],
    delivery: list[str],
    req: SearchRequest,
    started: float,
) -> SearchResult:
    """The same filters, sorts and facets over PostgreSQL's mirror (pg_trgm and substrings)."""
    args = _sql_args(chain, delivery, req)
    rows = await conn.fetch(
        f"""
        select s.doc, count(*) over () as total,
               greatest(similarity(s.title, coalesce($3, '')), similarity(s.category_names, coalesce($3, ''))) as relevance
        from offer_search s where {_WHERE}
        order by {_SQL_SORTS[req.sort]}
        offset $9 limit $10
        """,
        *args,
        (req.page - 1) * req.page_size,
        req.page_size,
    )
    facet_rows = await conn.fetch(
        f"""
        with m as (select s.brand, s.category_codes, s.policy_tags from offer_search s where {_WHERE})
        select 'brand' as facet, brand as value, count(*) as n from m group by brand
        union all
        select 'category_codes', c, count(*) from m, unnest(m.category_codes) c group by c
        union all
        select 'policy_tags', t, count(*) from m, unnest(m.policy_tags) t group by t
        """,
        *args,
    )
    facets: dict[str, dict[str, int]] = {name: {} for name in FACETS}
    for f in facet_rows:
        facets[f["facet"]][f["value"]] = f["n"]
    total = rows[0]["total"] if rows else 0
    return SearchResult(
        hits=[hit_from(r["doc"], _mark(r["doc"]["title"], req.q)) for r in rows],
        facets=facets,
        total_estimate=total,
        page=req.page,
        page_size=req.page_size,
        processing_ms=int((time.perf_counter() - started) * 1000),
        degraded=True,
    )


def _mark(title: str, q: str) -> str:
    """The title with a literal match of ``q`` wrapped in <em>, as Meilisearch highlights."""
    q = q.strip()
    if q and q in title:
        return title.replace(q, f"<em>{q}</em>")
    return title


async def suggest(
    conn: Connection | Pool,
    client: AsyncClient,
    uid: str,
    principal: Principal,
    q: str,
    limit: int = 8,
) -> Suggestions:
    """Completions for a search box: titles of offers the buyer may buy."""
    authorize(principal, "product.read")
    req = SearchRequest(q=q, page_size=limit)
    chain, delivery = await _visibility(conn, principal, req)
    try:
        result = await client.index(uid).search(
            q,
            filter=meili_filter(chain, delivery, req),
            limit=limit,
            attributes_to_retrieve=["title"],
        )
        titles = [h["title"] for h in result.hits]
        degraded = False
    except UNREACHABLE:
        rows = await conn.fetch(
            f"select s.title from offer_search s where {_WHERE} order by s.title limit $9",
            *_sql_args(chain, delivery, req),
            limit,
        )
        titles = [r["title"] for r in rows]
        degraded = True
    unique = list(dict.fromkeys(titles))
    return Suggestions(q=q, suggestions=[html.unescape(t) for t in unique], degraded=degraded)
