"""Offers (报价): a supplier's terms for a product, and who may see them.

Visibility: the supplier sees its own offers in every state; operators and auditors see the
offers of the regions they oversee (the reviewing region, or the supplier's home); everyone
else sees an offer only while it is listed, and only if the supplier may sell to their region
(the partnership rule, ``may_sell`` in SQL) and the offer delivers there.

Updates carry the offer's ETag in If-Match; a stale one answers ``PreconditionFailed`` (412).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from emall.audit import enqueue, record_event
from emall.db.pool import Connection, Pool
from emall.db.sql import like_term
from emall.errors import (
    Conflict,
    FieldError,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    ValidationFailed,
)
from emall.listings.models import (
    AuditEntry,
    Delivery,
    OfferCreate,
    OfferRead,
    OfferStatus,
    OfferUpdate,
    PricePoint,
)
from emall.listings.prices import check_price_flag, record_price, rise_needs_review
from emall.listings.products import PRODUCT_COLUMNS, product_from
from emall.pagination import Page, page_args, page_of
from emall.policy import Resource, authorize, list_scope
from emall.principals import OrganisationKind, Principal

_COLUMNS = f"""
    o.id as offer_id, o.supplier_id, s.name as supplier_name, o.supplier_sku, o.status,
    o.status_reason, o.price_fen, o.reference_price_fen, o.reference_source_url,
    o.reference_date, o.stock, o.min_order_qty, o.warranty_months, o.policy_tags,
    o.review_region_code, o.version, o.submitted_at, o.reviewed_at, o.listed_at, o.delisted_at,
    o.created_at as offer_created_at, o.updated_at as offer_updated_at,
    coalesce((select jsonb_agg(jsonb_build_object('region_code', d.region_code,
                                                  'delivery_days', d.delivery_days)
                               order by d.region_code)
              from offer_delivery d where d.offer_id = o.id), '[]'::jsonb) as delivery,
    region_chain(coalesce(o.review_region_code, s.region_code)) || region_chain(s.region_code) as chain,
    {PRODUCT_COLUMNS}
"""
_FROM = """
    from offers o
    join organisations s on s.id = o.supplier_id
    join products p on p.id = o.product_id
    join categories c on c.code = p.category_code
"""
# Listed, and buyable in region $R with delivery there: what a buyer may see.
BUYER_VISIBLE_SQL = """(o.status = 'listed' and may_sell(o.supplier_id, {r})
    and exists (select 1 from offer_delivery d
                where d.offer_id = o.id and d.region_code = any(region_chain({r}))))"""


def etag(offer_id: int, version: int) -> str:
    return f'"offer-{offer_id}-v{version}"'


def offer_from(row: asyncpg.Record) -> OfferRead:
    return OfferRead(
        id=row["offer_id"],
        product=product_from(row),
        supplier_id=row["supplier_id"],
        supplier_name=row["supplier_name"],
        supplier_sku=row["supplier_sku"],
        status=row["status"],
        status_reason=row["status_reason"],
        price_fen=row["price_fen"],
        reference_price_fen=row["reference_price_fen"],
        reference_source_url=row["reference_source_url"],
        reference_date=row["reference_date"],
        stock=row["stock"],
        min_order_qty=row["min_order_qty"],
        warranty_months=row["warranty_months"],
        policy_tags=list(row["policy_tags"]),
        delivery=[Delivery(**d) for d in row["delivery"]],
        review_region_code=row["review_region_code"],
        version=row["version"],
        submitted_at=row["submitted_at"],
        reviewed_at=row["reviewed_at"],
        listed_at=row["listed_at"],
        delisted_at=row["delisted_at"],
        created_at=row["offer_created_at"],
        updated_at=row["offer_updated_at"],
    )


async def load_offer(
    conn: Connection | Pool, principal: Principal, offer_id: int, *, lock: bool = False
) -> tuple[OfferRead, Resource]:
    """The offer and its policy resource; NotFound when the principal may not see it."""
    found = await load_offers(conn, principal, [offer_id], lock=lock)
    if offer_id not in found:
        raise NotFound("报价", offer_id)
    return found[offer_id]


async def load_offers(
    conn: Connection | Pool, principal: Principal, offer_ids: Sequence[int], *, lock: bool = False
) -> dict[int, tuple[OfferRead, Resource]]:
    """The offers that exist among ``offer_ids``, each with its policy resource (the caller
    authorises each), in one query; ``lock`` takes their row locks in id order."""
    rows = await conn.fetch(
        f"""
        select {_COLUMNS}, {BUYER_VISIBLE_SQL.format(r="$2")} as buyer_visible
        {_FROM} where o.id = any($1::bigint[])
        order by o.id
        """
        + (" for update of o" if lock else ""),
        list(offer_ids),
        principal.region_code,
    )
    return {
        row["offer_id"]: (
            offer_from(row),
            Resource(
                "offer",
                row["offer_id"],
                organisation_id=row["supplier_id"],
                region_chain=tuple(row["chain"]),
                public=bool(row["buyer_visible"]),
            ),
        )
        for row in rows
    }


async def get_offer(conn: Connection | Pool, principal: Principal, offer_id: int) -> OfferRead:
    offer, resource = await load_offer(conn, principal, offer_id)
    authorize(principal, "offer.read", resource)
    return offer


async def list_offers(
    conn: Connection | Pool,
    principal: Principal,
    *,
    status: OfferStatus | None = None,
    category_code: str | None = None,
    supplier_id: int | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[OfferRead]:
    """A supplier lists its own offers; an operator or auditor those of its regions (the review
    queue is ``status=submitted``); everyone else the listed offers buyable in their region."""
    authorize(principal, "offer.read")
    after = page_args(cursor, limit, int)
    everything, _, overseen = list_scope(principal)
    own = principal.organisation_kind == OrganisationKind.SUPPLIER
    buyer = not (everything or own or overseen)
    rows = await conn.fetch(
        f"""
        select {_COLUMNS} {_FROM}
        where ($1::boolean
               or ($2::boolean and o.supplier_id = $3)
               or (cardinality($4::text[]) > 0
                   and (region_chain(coalesce(o.review_region_code, s.region_code)) && $4::text[]
                        or region_chain(s.region_code) && $4::text[]))
               or ($5::boolean and {BUYER_VISIBLE_SQL.format(r="$6")}))
          and ($7::text is null or o.status = $7)
          and ($8::text is null or $8 = any(category_chain(p.category_code)))
          and ($9::bigint is null or o.supplier_id = $9)
          and ($10::text is null or p.title like '%' || $10 || '%')
          and ($11::bigint is null or o.id > $11)
        order by o.id
        limit $12
        """,
        everything,
        own,
        principal.organisation_id,
        overseen,
        buyer,
        principal.region_code,
        status,
        category_code,
        supplier_id,
        like_term(q),
        after[0] if after else None,
        limit + 1,
    )
    return page_of([offer_from(r) for r in rows], limit, lambda o: (o.id,))


async def _check_delivery(conn: Connection, delivery: list[Delivery]) -> None:
    codes = [d.region_code for d in delivery]
    known = {
        r["code"]
        for r in await conn.fetch("select code from regions where code = any($1::text[])", codes)
    }
    errors = [
        FieldError(
            field=f"delivery[{i}].region_code",
            reason=f"未知的行政区划代码 (unknown region code): {code}",
        )
        for i, code in enumerate(codes)
        if code not in known
    ]
    seen: set[str] = set()
    for i, code in enumerate(codes):
        if code in seen:
            errors.append(
                FieldError(
                    field=f"delivery[{i}].region_code",
                    reason=f"重复的配送地区 (listed twice): {code}",
                )
            )
        seen.add(code)
    if errors:
        raise ValidationFailed(errors)


def _check_ceiling(price_fen: int, reference_price_fen: int) -> None:
    if price_fen > reference_price_fen:
        raise ValidationFailed.single(
            "price_fen",
            f"价格不得高于市场参考价 (price {price_fen} fen exceeds the reference price "
            f"{reference_price_fen} fen)",
        )


async def _replace_delivery(conn: Connection, offer_id: int, delivery: list[Delivery]) -> None:
    await conn.execute("delete from offer_delivery where offer_id = $1", offer_id)
    await conn.executemany(
        "insert into offer_delivery (offer_id, region_code, delivery_days) values ($1, $2, $3)",
        [(offer_id, d.region_code, d.delivery_days) for d in delivery],
    )


async def create_offer(
    conn: Connection, principal: Principal, data: OfferCreate, *, request_id: str | None = None
) -> OfferRead:
    """A draft offer of the principal's supplier for an existing product."""
    authorize(
        principal,
        "offer.manage",
        Resource(
            "organisation", principal.organisation_id, organisation_id=principal.organisation_id
        ),
    )
    if principal.organisation_kind != OrganisationKind.SUPPLIER:
        raise ValidationFailed.single(
            "product_id", "只有供应商可以报价 (only suppliers make offers)"
        )
    _check_ceiling(data.price_fen, data.reference_price_fen)
    if await conn.fetchval("select 1 from products where id = $1", data.product_id) is None:
        raise ValidationFailed.single("product_id", f"商品不存在 (no product {data.product_id})")
    await _check_delivery(conn, data.delivery)
    async with conn.transaction():
        try:
            async with conn.transaction():  # a savepoint: the conflict below can still be explained
                offer_id: int = await conn.fetchval(
                    """
                insert into offers (product_id, supplier_id, supplier_sku, price_fen,
                                    reference_price_fen, reference_source_url, reference_date, stock,
                                    min_order_qty, warranty_months, policy_tags)
                values ($1, $2, btrim($3), $4, $5, $6, $7, $8, $9, $10, $11)
                returning id
                """,
                    data.product_id,
                    principal.organisation_id,
                    data.supplier_sku,
                    data.price_fen,
                    data.reference_price_fen,
                    data.reference_source_url,
                    data.reference_date,
                    data.stock,
                    data.min_order_qty,
                    data.warranty_months,
                    sorted(set(data.policy_tags)),
                )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "offers_supplier_sku_key":
                raise Conflict(f"货号已存在 (supplier_sku {data.supplier_sku!r} is used)") from None
            existing = await conn.fetchval(
                "select id from offers where supplier_id = $1 and product_id = $2",
                principal.organisation_id,
                data.product_id,
            )
            raise Conflict(
                f"已为该商品报价，请修改已有报价 {existing} (you already offer this product)",
                existing_id=existing,
            ) from None
        await _replace_delivery(conn, offer_id, data.delivery)
        await record_price(
            conn, offer_id, data.price_fen, data.reference_price_fen, principal.user_id
        )
        created, _ = await load_offer(conn, principal, offer_id)
        await record_event(
            conn,
            actor=principal,
            action="offer.created",
            entity_type="offer",
            entity_id=offer_id,
            after=created,
            request_id=request_id,
        )
    return created


def parse_if_match(if_match: str | None, offer: OfferRead) -> None:
    current = etag(offer.id, offer.version)
    if if_match is None:
        raise PreconditionRequired(
            f"修改报价需要 If-Match 头，当前版本 {current} (send If-Match: {current})"
        )
    candidates = {part.strip().removeprefix("W/") for part in if_match.split(",")}
    if current not in candidates:
        raise PreconditionFailed(
            "报价已被他人修改，请重新读取后再改 (the offer changed since you read it)",
            current_etag=current,
        )


async def update_offer(
    conn: Connection,
    principal: Principal,
    offer_id: int,
    data: OfferUpdate,
    *,
    if_match: str | None,
    request_id: str | None = None,
) -> OfferRead:
    """A partial update of the supplier's own offer, guarded by If-Match.

    A listed offer stays listed, except after a price rise beyond the region's rule, which sends
    it back to review. Every change to a listed offer is queued for search (outbox).
    """
    async with conn.transaction():
        before, resource = await load_offer(conn, principal, offer_id, lock=True)
        authorize(principal, "offer.manage", resource)
        parse_if_match(if_match, before)
        changes: dict[str, Any] = {
            k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET
        }
        if not changes:
            return before
        price = changes.get("price_fen", before.price_fen)
        reference = changes.get("reference_price_fen", before.reference_price_fen)
        _check_ceiling(price, reference)
        if "delivery" in changes:
            await _check_delivery(conn, changes["delivery"])
        status: OfferStatus = before.status
        reason = before.status_reason
        price_changed = price != before.price_fen or reference != before.reference_price_fen
        if (
            price_changed
            and before.status == "listed"
            and await rise_needs_review(conn, before, price)
        ):
            status = "submitted"
            reason = "价格上涨超过规定比例，需重新审核 (price rise needs review)"
        await conn.execute(
            """
            update offers set price_fen = $2, reference_price_fen = $3, reference_source_url = $4,
                reference_date = $5, stock = $6, min_order_qty = $7, warranty_months = $8,
                policy_tags = $9, status = $10, status_reason = $11,
                submitted_at = case when $10 <> status and $10 = 'submitted' then now() else submitted_at end,
                version = version + 1, updated_at = now()
            where id = $1
            """,
            offer_id,
            price,
            reference,
            changes.get("reference_source_url", before.reference_source_url),
            changes.get("reference_date", before.reference_date),
            changes.get("stock", before.stock),
            changes.get("min_order_qty", before.min_order_qty),
            changes.get("warranty_months", before.warranty_months),
            sorted(set(changes.get("policy_tags", before.policy_tags))),
            status,
            reason,
        )
        if "delivery" in changes:
            await _replace_delivery(conn, offer_id, changes["delivery"])
        if price_changed:
            await record_price(conn, offer_id, price, reference, principal.user_id)
        after, _ = await load_offer(conn, principal, offer_id)
        await record_event(
            conn,
            actor=principal,
            action="offer.updated",
            entity_type="offer",
            entity_id=offer_id,
            region_code=after.review_region_code,
            before=before,
            after=after,
            request_id=request_id,
        )
        if before.status == "listed":
            await enqueue(
                conn,
                topic="offer.changed",
                aggregate_type="offer",
                aggregate_id=offer_id,
                payload={"status": after.status, "fields": sorted(changes)},
            )
        if after.status == "listed" and price_changed:
            await check_price_flag(conn, after)
    return after


async def _private_resource(
    conn: Connection | Pool, principal: Principal, offer_id: int
) -> Resource:
    """The offer as a private resource: its supplier, and the operators and auditors over it."""
    _, resource = await load_offer(conn, principal, offer_id)
    return Resource(
        "offer",
        offer_id,
        organisation_id=resource.organisation_id,
        region_chain=resource.region_chain,
    )


async def price_history(
    conn: Connection | Pool, principal: Principal, offer_id: int
) -> list[PricePoint]:
    """Every price the offer has had, oldest first."""
    authorize(principal, "offer.read", await _private_resource(conn, principal, offer_id))
    rows = await conn.fetch(
        "select price_fen, reference_price_fen, changed_at, changed_by from offer_price_history "
        "where offer_id = $1 order by changed_at, id",
        offer_id,
    )
    return [PricePoint(**dict(r)) for r in rows]


async def audit_trail(
    conn: Connection | Pool, principal: Principal, offer_id: int
) -> list[AuditEntry]:
    """Every recorded change of the offer, in order: who, when, what, before and after."""
    authorize(principal, "offer.read", await _private_resource(conn, principal, offer_id))
    rows = await conn.fetch(
        """
        select id, occurred_at, actor_user_id, actor_organisation_id, action, before, after, request_id
        from audit_events where entity_type = 'offer' and entity_id = $1 order by id
        """,
        str(offer_id),
    )
    return [AuditEntry(**dict(r)) for r in rows]
