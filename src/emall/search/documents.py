"""Search documents of listed offers, and their PostgreSQL mirror ``offer_search``.

One SQL query builds the documents of any number of offers: product, supplier, category chain
with names, attribute template, delivery regions and the supplier's sale rights; Python adds
the spec text and the pinyin forms.

Sale rights become two region lists, so that search can filter for a buyer in region R with
``chain(R)`` (R and its ancestors)::

    buyable_regions IN chain(R) AND NOT blocked_regions IN chain(R)
        AND delivery_regions IN chain(R)

* ``buyable_regions``: the regions of the supplier's admissions in force, plus the member
  regions that recognise them through a partnership in force (both memberships in force, the
  target member ``recognises_admissions``, no ban in the admitting region or its ancestors),
  minus the regions where the supplier is banned.
* ``blocked_regions``: the regions of every ban in force on the supplier.

This is the SQL ``may_sell`` in set form (tests/test_search_documents.py checks that they
agree). It is evaluated when the document is built: whoever changes an admission, ban,
partnership or membership must re-index the supplier's offers (``offers_of_supplier``).

Ranking facts (the tie-breakers of ``emall.search.index.RANKING_RULES``), also evaluated when
the document is built:

* ``is_goods`` and ``category_terms`` (``emall.search.terms``): goods, and the names of what
  they are.
* ``supplier_score``: the supplier's buyer ratings (评价, 1-5 for quality, delivery and service
  after acceptance), averaged with ``SCORE_PRIOR_WEIGHT`` neutral ratings of ``SCORE_PRIOR``,
  times 100: 300 before any rating, one 5-star rating gives 333, many approach their average.
  A rating re-indexes the supplier's offers (``supplier.changed``).
* ``recent_orders``: the orders of the offer placed in the last ``RECENT_DAYS`` days that were
  not rejected or cancelled. An order placed, rejected or cancelled re-indexes its offers
  (``emall.search.sync``); an order leaving the window drops out when the document is next
  built (any change of the offer or supplier, or ``emall search reindex``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from emall.db.pool import Connection
from emall.search.pinyin import pinyin_terms
from emall.search.terms import category_terms, is_goods

RECENT_DAYS = 90
SCORE_PRIOR = 3.0  # a neutral rating (of 1-5)
SCORE_PRIOR_WEIGHT = 5  # how many neutral ratings every supplier starts with

_DOCUMENTS = """
with target as (
    select o.id, o.product_id, o.supplier_id, o.price_fen, o.policy_tags, o.sales_count,
           o.min_order_qty,
           greatest(o.updated_at, p.updated_at) as updated_at,
           p.title, p.brand, p.model, p.category_code, p.specs, s.name as supplier_name
    from offers o
    join products p on p.id = o.product_id
    join organisations s on s.id = o.supplier_id
    where o.id = any($1::bigint[]) and o.status = 'listed'
),
moment as (
    select coalesce($2::timestamptz, now()) as at,
           (coalesce($2::timestamptz, now()) at time zone 'Asia/Shanghai')::date as day
),
scores as (
    select e.supplier_id,
           round(100 * (sum((e.quality + e.delivery + e.service) / 3.0) + $3::float8 * $4::int)
                 / (count(*) + $4::int))::int as score
    from order_evaluations e
    where e.supplier_id in (select supplier_id from target)
    group by e.supplier_id
),
recent as (
    select l.offer_id, count(distinct l.order_id)::int as orders
    from order_lines l
    join orders r on r.id = l.order_id
    cross join moment m
    where l.offer_id in (select id from target)
      and r.created_at > m.at - make_interval(days => $5::int)
      and r.status not in ('rejected', 'cancelled')
    group by l.offer_id
),
banned as (
    select b.supplier_id, b.region_code
    from bans b, moment m
    where b.supplier_id in (select supplier_id from target) and b.lifted_at is null
      and b.starts_at <= m.at and (b.ends_at is null or b.ends_at > m.at)
),
admitted as (
    select a.supplier_id, a.region_code, region_chain(a.region_code) as chain
    from admissions a, moment m
    where a.supplier_id in (select supplier_id from target) and a.status = 'approved'
      and a.valid_from <= m.day and (a.valid_until is null or a.valid_until >= m.day)
),
reach as (
    select supplier_id, region_code from admitted
    union
    select a.supplier_id, mr.region_code
    from admitted a, moment m, partnerships p
    join partnership_members ma on ma.partnership_id = p.id
    join partnership_members mr on mr.partnership_id = p.id
    where ma.region_code = any(a.chain) and mr.recognises_admissions
      and p.effective_from <= m.day and (p.effective_to is null or p.effective_to >= m.day)
      and ma.joined_on <= m.day and (ma.left_on is null or ma.left_on > m.day)
      and mr.joined_on <= m.day and (mr.left_on is null or mr.left_on > m.day)
      and not exists (select 1 from banned b
                      where b.supplier_id = a.supplier_id and b.region_code = any(a.chain))
)
select t.*,
       k.codes as category_codes,
       coalesce((select score from scores where supplier_id = t.supplier_id),
                round(100 * $3::float8)::int) as supplier_score,
       coalesce((select orders from recent where offer_id = t.id), 0) as recent_orders,
       array(select c.name from unnest(k.codes) with ordinality as u(code, n)
             join categories c on c.code = u.code order by u.n) as category_names,
       (select attributes from attribute_templates where category_code = t.category_code)
           as template,
       array(select d.region_code from offer_delivery d where d.offer_id = t.id
             order by d.region_code) as delivery_regions,
       array(select distinct r.region_code from reach r
             where r.supplier_id = t.supplier_id
               and r.region_code not in (select b.region_code from banned b
                                         where b.supplier_id = t.supplier_id)
             order by r.region_code) as buyable_regions,
       array(select distinct b.region_code from banned b where b.supplier_id = t.supplier_id
             order by b.region_code) as blocked_regions
from target t
cross join lateral (select category_chain(t.category_code) as codes) k
order by t.id
"""

_UPSERT_MIRROR = """
insert into offer_search (
    offer_id, title, brand, model, category_code, category_codes, category_names, specs_text,
    supplier_id, supplier_name, price_fen, policy_tags, delivery_regions, buyable_regions,
    blocked_regions, title_pinyin, title_initials, category_pinyin, sales_count, updated_at,
    min_order_qty, is_goods, category_terms, supplier_score, recent_orders, doc)
select (d->>'id')::bigint, d->>'title', d->>'brand', d->>'model', d->>'category_code',
       array(select jsonb_array_elements_text(d->'category_codes')),
       array_to_string(array(select jsonb_array_elements_text(d->'category_names')), ' '),
       d->>'specs_text', (d->>'supplier_id')::bigint, d->>'supplier_name',
       (d->>'price_fen')::bigint,
       array(select jsonb_array_elements_text(d->'policy_tags')),
       array(select jsonb_array_elements_text(d->'delivery_regions')),
       array(select jsonb_array_elements_text(d->'buyable_regions')),
       array(select jsonb_array_elements_text(d->'blocked_regions')),
       d->>'title_pinyin', d->>'title_initials', d->>'category_pinyin',
       (d->>'sales_count')::int, to_timestamp((d->>'updated_at')::bigint),
       (d->>'min_order_qty')::int, (d->>'is_goods')::boolean,
       array_to_string(array(select jsonb_array_elements_text(d->'category_terms')), ' '),
       (d->>'supplier_score')::int, (d->>'recent_orders')::int, d
from jsonb_array_elements($1::jsonb) as d
on conflict (offer_id) do update set
    title = excluded.title, brand = excluded.brand, model = excluded.model,
    category_code = excluded.category_code, category_codes = excluded.category_codes,
    category_names = excluded.category_names, specs_text = excluded.specs_text,
    supplier_id = excluded.supplier_id, supplier_name = excluded.supplier_name,
    price_fen = excluded.price_fen, policy_tags = excluded.policy_tags,
    delivery_regions = excluded.delivery_regions, buyable_regions = excluded.buyable_regions,
    blocked_regions = excluded.blocked_regions, title_pinyin = excluded.title_pinyin,
    title_initials = excluded.title_initials, category_pinyin = excluded.category_pinyin,
    sales_count = excluded.sales_count, updated_at = excluded.updated_at,
    min_order_qty = excluded.min_order_qty, is_goods = excluded.is_goods,
    category_terms = excluded.category_terms, supplier_score = excluded.supplier_score,
    recent_orders = excluded.recent_orders, doc = excluded.doc
"""


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "/".join(_format_value(v) for v in value)
    return str(value)


def specs_text(specs: dict[str, Any], template: list[dict[str, Any]] | None) -> str:
    """``处理器型号 飞腾 D2000 内存容量 8GB …``: template names and units, in template order;
    keys the template does not name follow as ``key: value``."""
    parts: list[str] = []
    named: set[str] = set()
    for attribute in template or []:
        key = attribute.get("key")
        if key not in specs or specs[key] is None:
            continue
        named.add(key)
        unit = attribute.get("unit") or ""
        parts.append(f"{attribute.get('name') or key} {_format_value(specs[key])}{unit}")
    for key, value in specs.items():
        if key not in named and value is not None:
            parts.append(f"{key}: {_format_value(value)}")
    return " ".join(parts)


def _scalar_specs(specs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in specs.items() if isinstance(v, str | int | float | bool)}


def _document(row: Any) -> dict[str, Any]:
    specs: dict[str, Any] = row["specs"] or {}
    names = list(row["category_names"])
    title_pinyin, title_initials = pinyin_terms(row["title"])
    updated_at: datetime = row["updated_at"]
    return {
        "id": row["id"],
        "product_id": row["product_id"],
        "title": row["title"],
        "brand": row["brand"],
        "model": row["model"],
        "category_code": row["category_code"],
        "category_codes": list(row["category_codes"]),
        "category_names": names,
        "specs_text": specs_text(specs, row["template"]),
        "specs": _scalar_specs(specs),
        "supplier_id": row["supplier_id"],
        "supplier_name": row["supplier_name"],
        "price_fen": row["price_fen"],
        "policy_tags": sorted(row["policy_tags"]),
        "delivery_regions": list(row["delivery_regions"]),
        "buyable_regions": list(row["buyable_regions"]),
        "blocked_regions": list(row["blocked_regions"]),
        "title_pinyin": title_pinyin,
        "title_initials": title_initials,
        "category_pinyin": " ".join(t for t in pinyin_terms(" ".join(names)) if t),
        "updated_at": int(updated_at.timestamp()),
        "sales_count": row["sales_count"],
        "min_order_qty": row["min_order_qty"],
        "is_goods": is_goods(row["category_code"]),
        "category_terms": category_terms(row["category_code"], names),
        "supplier_score": row["supplier_score"],
        "recent_orders": row["recent_orders"],
    }


async def build_documents(
    conn: Connection, offer_ids: list[int], *, at: datetime | None = None
) -> tuple[list[dict[str, Any]], list[int]]:
    """(documents of the listed offers among ``offer_ids``, ids to remove: not listed or gone).

    ``at`` is the moment sale rights are evaluated for (default: now).
    """
    ids = sorted(set(offer_ids))
    if not ids:
        return [], []
    rows = await conn.fetch(_DOCUMENTS, ids, at, SCORE_PRIOR, SCORE_PRIOR_WEIGHT, RECENT_DAYS)
    documents = [_document(row) for row in rows]
    found = {d["id"] for d in documents}
    return documents, [i for i in ids if i not in found]


async def refresh_mirror(
    conn: Connection, offer_ids: list[int], *, at: datetime | None = None
) -> tuple[list[dict[str, Any]], list[int]]:
    """Bring ``offer_search`` up to date for ``offer_ids``; returns what ``build_documents`` did.

    Run it in the transaction that claims the outbox rows, then push the result to the index.
    """
    documents, removals = await build_documents(conn, offer_ids, at=at)
    if documents:
        await conn.execute(_UPSERT_MIRROR, documents)
    if removals:
        await conn.execute("delete from offer_search where offer_id = any($1::bigint[])", removals)
    return documents, removals


async def offers_of_supplier(conn: Connection, supplier_id: int) -> list[int]:
    """Every offer of the supplier, whatever its status (for changes to its sale rights)."""
    rows = await conn.fetch("select id from offers where supplier_id = $1 order by id", supplier_id)
    return [r["id"] for r in rows]


async def listed_offer_ids(conn: Connection, *, after: int = 0, limit: int = 5_000) -> list[int]:
    """Ids of listed offers above ``after``, in order: the pages of a full re-index."""
    rows = await conn.fetch(
        "select id from offers where status = 'listed' and id > $1 order by id limit $2",
        after,
        limit,
    )
    return [r["id"] for r in rows]
