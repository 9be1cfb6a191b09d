"""Price controls: the ceiling, the history, the rise rule, statistics and flags.

* An offer's price may not exceed its market reference price (a database check, too).
* Every price an offer has had is kept in ``offer_price_history``.
* A listed offer whose price rises more than the region's share (default 10%) above its lowest
  price within the window (default 30 days) goes back to review.
* Per-category statistics over listed offers: count, min, quartiles, median, max.
* A listed offer priced more than the region's factor (default 1.5×) above its category's upper
  quartile is flagged for the operator (价格监测).

Shares and factors are basis points (1000 = 10%), and every comparison is integer arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from emall.audit import record_event
from emall.db.pool import Connection, Pool
from emall.errors import Conflict, NotFound
from emall.listings.price_models import (
    FlagRead,
    FlagResolve,
    PriceRuleRead,
    PriceRuleWrite,
    PriceStats,
)
from emall.pagination import Page, page_args, page_of
from emall.policy import Resource, authorize, list_scope
from emall.principals import Principal
from emall.regions.service import require_region

if TYPE_CHECKING:
    from emall.listings.models import OfferRead

DEFAULT_MAX_RISE_BP = 1000
DEFAULT_RISE_WINDOW_DAYS = 30
DEFAULT_FLAG_FACTOR_BP = 15000
MIN_PEERS_FOR_FLAG = 4  # quartiles of fewer listed peers say too little
# A category with at least this many listed offers keeps the quartile of its price flag in
# category_quartiles for up to QUARTILE_MAX_AGE_SECONDS (migration 0010): computing it reads
# every listed offer of the category, and one offer more or less barely moves it.
QUARTILE_CACHE_MIN_PEERS = 1_000
QUARTILE_MAX_AGE_SECONDS = 60


@dataclass(frozen=True)
class PriceRule:
    region_code: str
    max_rise_bp: int = DEFAULT_MAX_RISE_BP
    rise_window_days: int = DEFAULT_RISE_WINDOW_DAYS
    flag_factor_bp: int = DEFAULT_FLAG_FACTOR_BP


def exceeds_rise(new_fen: int, lowest_fen: int, max_rise_bp: int) -> bool:
    """True when ``new_fen`` is more than ``max_rise_bp`` above ``lowest_fen``."""
    return new_fen * 10_000 > lowest_fen * (10_000 + max_rise_bp)


def above_factor(price_fen: int, upper_quartile_fen: int, factor_bp: int) -> bool:
    """True when ``price_fen`` is more than ``factor_bp`` times the upper quartile."""
    return price_fen * 10_000 > upper_quartile_fen * factor_bp


async def price_rule(conn: Connection | Pool, region_code: str | None) -> PriceRule:
    """The rule of a region (the nearest of it and its ancestors that has one), or the defaults
    (``region_code`` is then empty)."""
    if region_code is None:
        return PriceRule(region_code="")
    row = await conn.fetchrow(
        """
        select r.region_code, r.max_rise_bp, r.rise_window_days, r.flag_factor_bp
        from price_rules r, unnest(region_chain($1)) with ordinality as c(code, depth)
        where r.region_code = c.code
        order by c.depth
        limit 1
        """,
        region_code,
    )
    if row is None:
        return PriceRule(region_code="")  # the defaults: no region defines a rule
    return PriceRule(**dict(row))


LOWEST_IN_WINDOW_SQL = """
select min(price_fen) from offer_price_history
where offer_id = $1 and changed_at >= now() - make_interval(days => $2)
"""


# -- history, the rise rule and flags (called by the offer services) ---------------------------


async def record_price(
    conn: Connection, offer_id: int, price_fen: int, reference_price_fen: int, user_id: int | None
) -> None:
    await conn.execute(
        """
        insert into offer_price_history (offer_id, price_fen, reference_price_fen, changed_by)
        values ($1, $2, $3, $4)
        """,
        offer_id,
        price_fen,
        reference_price_fen,
        user_id,
    )


async def rise_needs_review(conn: Connection, offer: OfferRead, new_price_fen: int) -> bool:
    """True when ``new_price_fen`` rises beyond the reviewing region's rule."""
    rule = await price_rule(conn, offer.review_region_code)
    lowest = await conn.fetchval(LOWEST_IN_WINDOW_SQL, offer.id, rule.rise_window_days)
    return exceeds_rise(
        new_price_fen, min(lowest or offer.price_fen, offer.price_fen), rule.max_rise_bp
    )


# The listed peers of an offer (its category's other listed offers), from the partial index
# offers_listed_category_price_idx (migration 0009): their count, and the two prices next to the
# upper quartile's position, counted from the top (a quarter of the way in, not three quarters).
_PEERS_SQL = """
with peers as (
    select count(*) as n from offers
    where status = 'listed' and category_code = $1 and id <> $2
)
select n, array(
    select price_fen from offers
    where status = 'listed' and category_code = $1 and id <> $2
    order by price_fen desc
    offset greatest(n - 1 - (3 * n) / 4, 0)
    limit 2
) as near
from peers
"""


def upper_quartile_fen(n: int, near: Sequence[int]) -> int:
    """``round(percentile_cont(0.75))`` over ``n`` prices, exactly, from the two prices next to
    its position: ``near`` = (the price at index ceil(p), the one below it) of the prices in
    ascending order, where p = 0.75 (n - 1).

    percentile_cont interpolates ``a[lo] + (p - lo) (a[hi] - a[lo])``; p - lo is a whole number
    of quarters, so PostgreSQL's float8 arithmetic is exact for any price below 2^50 fen, and
    its ``round(float8)`` rounds a half to even (``rint``). Here the same in integers: the value
    in quarters of a fen, then rounded half to even.
    """
    quarters = 3 * (n - 1) % 4
    high = near[0]
    if quarters == 0:  # lo == hi: the value is a price itself
        return high
    low = near[1]
    whole, rest = divmod(4 * low + quarters * (high - low), 4)
    if rest > 2 or (rest == 2 and whole % 2 == 1):
        whole += 1
    return whole


async def peer_upper_quartile(
    conn: Connection | Pool, category_code: str, offer_id: int
) -> tuple[int, int | None]:
    """(count, upper quartile rounded to the fen) of the listed offers of ``category_code`` other
    than ``offer_id``; the quartile is None when there are none.

    Equal to ``round(percentile_cont(0.75) within group (order by price_fen))`` over those
    offers (tests/test_price_quartile.py checks it against PostgreSQL), but reads only the
    category's index entries: a count and a scan of a quarter of them, whatever the size of the
    rest of the catalogue (21 ms for a category of 116,658 listed offers here).
    """
    row = await conn.fetchrow(_PEERS_SQL, category_code, offer_id)
    assert row is not None
    n = int(row["n"])
    if n == 0:
        return 0, None
    return n, upper_quartile_fen(n, row["near"])


_FRESH_QUARTILE_SQL = """
select listed, upper_quartile_fen from category_quartiles
where category_code = $1 and computed_at > now() - make_interval(secs => $2)
"""

# Refresh the row, unless another transaction is refreshing it (it keeps its lock until it
# commits, and this check has its own exact figures anyway), or add it: a check never waits for
# the cache, except for the very first row of a category.
_STORE_QUARTILE_SQL = """
with refreshed as (
    update category_quartiles set listed = $2, upper_quartile_fen = $3, computed_at = now()
    where category_code = (select category_code from category_quartiles
                           where category_code = $1 for update skip locked)
    returning 1
)
insert into category_quartiles (category_code, listed, upper_quartile_fen)
select $1, $2, $3
where not exists (select 1 from refreshed)
  and not exists (select 1 from category_quartiles where category_code = $1)
on conflict (category_code) do nothing
"""


async def flag_quartile(
    conn: Connection, category_code: str, offer_id: int
) -> tuple[int, int | None]:
    """(peers, upper quartile) for the price flag of ``offer_id``.

    For a category with fewer than ``QUARTILE_CACHE_MIN_PEERS`` listed offers, exactly those
    of ``peer_upper_quartile``. A larger category's figures may be up to
    ``QUARTILE_MAX_AGE_SECONDS`` old, and were computed for the offer that refreshed them (with
    it among the peers, when it is another one).
    """
    row = await conn.fetchrow(_FRESH_QUARTILE_SQL, category_code, QUARTILE_MAX_AGE_SECONDS)
    if row is not None:
        return int(row["listed"]), int(row["upper_quartile_fen"])
    peers, upper_quartile = await peer_upper_quartile(conn, category_code, offer_id)
    if peers >= QUARTILE_CACHE_MIN_PEERS and upper_quartile is not None:
        await conn.execute(_STORE_QUARTILE_SQL, category_code, peers, upper_quartile)
    return peers, upper_quartile


async def check_price_flag(conn: Connection, offer: OfferRead) -> bool:
    """Flag a listed offer priced above its region's factor times its peers' upper quartile
    (``flag_quartile``: exact in a category of fewer than 1,000 listed offers, at most a minute
    old in a larger one)."""
    peers, upper_quartile = await flag_quartile(conn, offer.product.category_code, offer.id)
    if peers < MIN_PEERS_FOR_FLAG or upper_quartile is None:
        return False
    rule = await price_rule(conn, offer.review_region_code)
    if not above_factor(offer.price_fen, upper_quartile, rule.flag_factor_bp):
        return False
    detail = {
        "price_fen": offer.price_fen,
        "upper_quartile_fen": upper_quartile,
        "factor_bp": rule.flag_factor_bp,
        "peers": peers,
        "category_code": offer.product.category_code,
    }
    flag_id = await conn.fetchval(
        """
        insert into offer_flags (offer_id, kind, region_code, detail)
        values ($1, 'price_above_peers', $2, $3)
        on conflict (offer_id, kind) where resolved_at is null do nothing
        returning id
        """,
        offer.id,
        offer.review_region_code or "510000",
        detail,
    )
    if flag_id is not None:
        await record_event(
            conn,
            actor=None,
            action="flag.raised",
            entity_type="offer",
            entity_id=offer.id,
            region_code=offer.review_region_code,
            after=detail,
        )
    return flag_id is not None


# -- statistics, rules and the flag queue (their own API) ---------------------------------------


async def category_price_stats(
    conn: Connection | Pool, principal: Principal, category_code: str
) -> PriceStats:
    """Count, min, quartiles, median and max of listed offers in a category (any level).

    Quartiles interpolate between neighbouring prices (``percentile_cont``) and are rounded to
    the nearest fen. The offers are found by their own ``category_code`` (the category and every
    category below it), through the listed offers' index.
    """
    authorize(principal, "product.read")
    if await conn.fetchval("select 1 from categories where code = $1", category_code) is None:
        raise NotFound("品目", category_code)
    row = await conn.fetchrow(
        """
        select count(*) as count, min(o.price_fen) as min,
               round(percentile_cont(0.25) within group (order by o.price_fen))::bigint as lower_quartile,
               round(percentile_cont(0.5) within group (order by o.price_fen))::bigint as median,
               round(percentile_cont(0.75) within group (order by o.price_fen))::bigint as upper_quartile,
               max(o.price_fen) as max
        from offers o
        where o.status = 'listed' and o.category_code in (
            with recursive below (code) as (
                select $1::text
                union all
                select c.code from categories c join below b on c.parent_code = b.code
            )
            select code from below)
        """,
        category_code,
    )
    assert row is not None
    return PriceStats(category_code=category_code, **dict(row))


async def get_price_rule(
    conn: Connection | Pool, principal: Principal, region_code: str
) -> PriceRuleRead:
    authorize(principal, "price_rule.read")
    await require_region(conn, region_code, "region_code")
    rule = await price_rule(conn, region_code)
    return PriceRuleRead(
        region_code=region_code,
        defined_in=rule.region_code or None,
        max_rise_bp=rule.max_rise_bp,
        rise_window_days=rule.rise_window_days,
        flag_factor_bp=rule.flag_factor_bp,
    )


async def put_price_rule(
    conn: Connection,
    principal: Principal,
    region_code: str,
    data: PriceRuleWrite,
    *,
    request_id: str | None = None,
) -> PriceRuleRead:
    chain = await require_region(conn, region_code, "region_code")
    authorize(
        principal,
        "price_rule.manage",
        Resource("price_rule", region_code, region_chain=chain, public=True),
    )
    async with conn.transaction():
        before = await get_price_rule(conn, principal, region_code)
        await conn.execute(
            """
            insert into price_rules (region_code, max_rise_bp, rise_window_days, flag_factor_bp, updated_by)
            values ($1, $2, $3, $4, $5)
            on conflict (region_code) do update set
                max_rise_bp = excluded.max_rise_bp, rise_window_days = excluded.rise_window_days,
                flag_factor_bp = excluded.flag_factor_bp, updated_by = excluded.updated_by,
                updated_at = now()
            """,
            region_code,
            data.max_rise_bp,
            data.rise_window_days,
            data.flag_factor_bp,
            principal.user_id,
        )
        after = await get_price_rule(conn, principal, region_code)
        await record_event(
            conn,
            actor=principal,
            action="price_rule.updated",
            entity_type="price_rule",
            entity_id=region_code,
            region_code=region_code,
            before=before,
            after=after,
            request_id=request_id,
        )
    return after


_FLAG_COLUMNS = """f.id, f.offer_id, f.kind, f.region_code, f.detail, f.created_at, f.resolved_at,
                   f.resolved_by, f.resolution, region_chain(f.region_code) as chain"""


def _flag(row: asyncpg.Record) -> FlagRead:
    values = dict(row)
    values.pop("chain")
    return FlagRead(**values)


async def list_flags(
    conn: Connection | Pool,
    principal: Principal,
    *,
    open_only: bool = True,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[FlagRead]:
    """The flag queue of the regions the principal oversees."""
    authorize(principal, "flag.read")
    after = page_args(cursor, limit, int)
    everything, _, overseen = list_scope(principal)
    rows = await conn.fetch(
        f"""
        select {_FLAG_COLUMNS} from offer_flags f
        where ($1::boolean or region_chain(f.region_code) && $2::text[])
          and (not $3::boolean or f.resolved_at is null)
          and ($4::bigint is null or f.id > $4)
        order by f.id limit $5
        """,
        everything,
        overseen,
        open_only,
        after[0] if after else None,
        limit + 1,
    )
    return page_of([_flag(r) for r in rows], limit, lambda f: (f.id,))


async def resolve_flag(
    conn: Connection,
    principal: Principal,
    flag_id: int,
    data: FlagResolve,
    *,
    request_id: str | None = None,
) -> FlagRead:
    async with conn.transaction():
        row = await conn.fetchrow(
            f"select {_FLAG_COLUMNS} from offer_flags f where f.id = $1 for update", flag_id
        )
        if row is None:
            raise NotFound("价格预警", flag_id)
        authorize(
            principal, "flag.resolve", Resource("flag", flag_id, region_chain=tuple(row["chain"]))
        )
        before = _flag(row)
        if before.resolved_at is not None:
            raise Conflict("预警已处理 (the flag is already resolved)", current_state="resolved")
        updated = await conn.fetchrow(
            f"""
            update offer_flags f set resolved_at = now(), resolved_by = $2, resolution = $3
            where f.id = $1 returning {_FLAG_COLUMNS}
            """,
            flag_id,
            principal.user_id,
            data.resolution,
        )
        assert updated is not None
        after = _flag(updated)
        await record_event(
            conn,
            actor=principal,
            action="flag.resolved",
            entity_type="offer",
            entity_id=after.offer_id,
            region_code=after.region_code,
            before=before,
            after=after,
            request_id=request_id,
        )
    return after
