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
import httpx2  # the SDK's HTTP client
import msgspec
from meilisearch_python_sdk import AsyncClient
from meilisearch_python_sdk.errors import (
    MeilisearchApiError,
    MeilisearchCommunicationError,
    MeilisearchTimeoutError,
)

from emall.db.pool import Connection, Pool
from emall.db.sql import like_term
from emall.policy import authorize
from emall.principals import Principal
from emall.regions.service import region_chain, require_region
from emall.search.connections import search_connections
from emall.search.models import SearchHit, SearchRequest, SearchResult, Suggestions

FACETS = ("brand", "category_codes", "policy_tags")
_SORTS = {
    "relevance": None,
    "price_asc": ["price_fen:asc"],
    "price_desc": ["price_fen:desc"],
    "newest": ["updated_at:desc"],
    "sales": ["sales_count:desc"],
}
# Degraded search orders as the index's ranking rules do (``emall.search.index.RANKING_RULES``):
# for relevance, a match in the category terms first (the "attribute" rule's first attribute),
# then trigram similarity; then the same tie-breakers.
_SQL_TIES = "s.is_goods desc, s.supplier_score desc, s.recent_orders desc, s.price_fen, s.offer_id"
_SQL_SORTS = {
    "relevance": f"named desc, relevance desc, {_SQL_TIES}",
    "price_asc": f"s.price_fen, {_SQL_TIES}",
    "price_desc": f"s.price_fen desc, {_SQL_TIES}",
    "newest": f"s.updated_at desc, {_SQL_TIES}",
    "sales": f"s.sales_count desc, {_SQL_TIES}",
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


class _Highlighted(msgspec.Struct):
    title: str | None = None


class _HitDocument(msgspec.Struct):
    """The fields of a search document that a hit shows (``HIT_FIELDS``): as Meilisearch returns
    them, or as the search mirror holds them when PostgreSQL answers (other fields ignored)."""

    id: int
    product_id: int
    title: str
    brand: str
    model: str
    category_code: str
    supplier_id: int
    supplier_name: str
    price_fen: int
    policy_tags: list[str]
    delivery_regions: list[str]
    min_order_qty: int | None = None  # absent from documents indexed before migration 0013
    formatted: _Highlighted | None = msgspec.field(default=None, name="_formatted")

    def to_hit(self, highlight: str | None = None) -> SearchHit:
        return SearchHit(
            offer_id=self.id,
            product_id=self.product_id,
            title=self.title,
            brand=self.brand,
            model=self.model,
            category_code=self.category_code,
            supplier_id=self.supplier_id,
            supplier_name=self.supplier_name,
            price_fen=self.price_fen,
            min_order_qty=self.min_order_qty,
            policy_tags=self.policy_tags,
            delivery_regions=self.delivery_regions,
            highlight=highlight or (self.formatted and self.formatted.title) or self.title,
        )


# Meilisearch returns only these fields of a hit (and their highlighted forms).
HIT_FIELDS = tuple(f for f in _HitDocument.__struct_fields__ if f != "formatted")


def search_body(chain: list[str], delivery: list[str], req: SearchRequest) -> dict[str, Any]:
    """The body of the Meilisearch search emall sends for ``req`` (benchmarks replay it raw)."""
    body: dict[str, Any] = {
        "q": req.q,
        "filter": meili_filter(chain, delivery, req),
        "facets": list(FACETS),
        "offset": (req.page - 1) * req.page_size,
        "limit": req.page_size,
        "attributesToRetrieve": list(HIT_FIELDS),
        "attributesToHighlight": ["title"],
        "highlightPreTag": "<em>",
        "highlightPostTag": "</em>",
    }
    sort = _SORTS[req.sort]
    if sort is not None:
        body["sort"] = sort
    return body


class _MeiliResult(msgspec.Struct, rename="camel"):
    """A search's answer, decoded straight into typed hits (dicts cost twice the time)."""

    hits: list[_HitDocument]
    facet_distribution: dict[str, dict[str, int]] = {}
    estimated_total_hits: int = 0
    processing_time_ms: int = 0


class _Title(msgspec.Struct):
    title: str


class _MeiliTitles(msgspec.Struct):
    hits: list[_Title]


_encode = msgspec.json.Encoder().encode
_decode_result = msgspec.json.Decoder(_MeiliResult).decode
_decode_titles = msgspec.json.Decoder(_MeiliTitles).decode
_JSON = {"Content-Type": "application/json"}


async def _meili_search(client: AsyncClient, uid: str, body: dict[str, Any]) -> bytes:
    """One search's answer, for msgspec to decode into what a page shows.

    The SDK's ``search`` validates every hit into pydantic models, which costs more than the
    search itself on small pages; this sends the same request and reads only what is shown,
    over the search connections (``emall.search.connections``, or the SDK's HTTP client when Meilisearch is https).
    """
    connections = search_connections(client)
    path = f"indexes/{uid}/search"
    try:
        if connections is None:
            response = await client.http_client.post(path, content=_encode(body), headers=_JSON)
            status, content = response.status_code, response.content
        else:
            status, content = await connections.post(path, _encode(body))
    except (httpx2.TransportError, OSError) as exc:  # refused, reset: the SDK's mapping
        raise MeilisearchCommunicationError(str(exc)) from exc
    if status >= 400:
        raise MeilisearchApiError(
            f"search failed with HTTP {status}",
            httpx2.Response(status, content=content, headers=_JSON),
        )
    return content


# Region chains are reference data: the regions table changes only through migrations, which a
# deployment follows with a restart. Each process keeps the chains of the regions it has seen
# (at most the few thousand real codes; an unknown code is never kept).
_chains: dict[str, tuple[str, ...]] = {}


async def _chain(conn: Connection | Pool, code: str) -> tuple[str, ...]:
    chain = _chains.get(code)
    if chain is None:
        chain = await region_chain(conn, code)
        if chain:
            _chains[code] = chain
    return chain


async def visibility(
    conn: Connection | Pool, principal: Principal, req: SearchRequest
) -> tuple[list[str], list[str]]:
    """(the buyer's region chain, the delivery chain): built from the principal, not the client."""
    chain = list(await _chain(conn, principal.region_code))
    if not req.delivery_region:
        return chain, chain
    delivery = await _chain(conn, req.delivery_region)
    if not delivery:  # an unknown delivery region: the ValidationFailed that names it
        await require_region(conn, req.delivery_region, "delivery_region")
    return chain, list(delivery)


async def search(
    conn: Connection | Pool, client: AsyncClient, uid: str, principal: Principal, req: SearchRequest
) -> SearchResult:
    authorize(principal, "product.read")
    chain, delivery = await visibility(conn, principal, req)
    started = time.perf_counter()
    try:
        result = _decode_result(await _meili_search(client, uid, search_body(chain, delivery, req)))
    except UNREACHABLE:
        return await degraded_search(conn, chain, delivery, req, started)
    return SearchResult(
        hits=[hit.to_hit() for hit in result.hits],
        facets=result.facet_distribution,
        total_estimate=result.estimated_total_hits,
        page=req.page,
        page_size=req.page_size,
        processing_ms=result.processing_time_ms,
        degraded=False,
    )


_WHERE = """
    s.buyable_regions && $1::text[] and not (s.blocked_regions && $1::text[])
    and s.delivery_regions && $1::text[] and s.delivery_regions && $2::text[]
    and ($3::text is null or s.title like '%' || $3 || '%' or s.category_names like '%' || $3 || '%'
         or s.category_terms like '%' || $3 || '%'
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
               coalesce(s.category_terms like '%' || $3 || '%', false) as named,
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
        hits=[
            msgspec.convert(r["doc"], _HitDocument).to_hit(_mark(r["doc"]["title"], req.q))
            for r in rows
        ],
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
    chain, delivery = await visibility(conn, principal, req)
    try:
        body = {
            "q": q,
            "filter": meili_filter(chain, delivery, req),
            "limit": limit,
            "attributesToRetrieve": ["title"],
        }
        titles = [h.title for h in _decode_titles(await _meili_search(client, uid, body)).hits]
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
