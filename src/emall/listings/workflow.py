"""The listing workflow: draft → submitted → listed, or rejected with a reason; listed →
delisted (by the supplier or the operator, with a reason). Relisting goes through review again.

* Only a supplier admitted and not banned may submit. The offer is reviewed by the operator of
  the region whose admission carries it: the supplier's home region if it is admitted there,
  else the region of its earliest admission in force.
* An illegal transition is a ``Conflict`` carrying the current state (HTTP 409).
* Every transition writes an audit event; those that change what buyers see write an outbox
  row (``offer.changed``) in the same transaction.
"""

from __future__ import annotations

from emall.audit import enqueue, record_event
from emall.clock import BUSINESS_DATE_SQL
from emall.db.pool import Connection
from emall.errors import Conflict, PermissionDenied
from emall.listings.models import OfferRead, OfferStatus
from emall.listings.offers import load_offer
from emall.listings.prices import check_price_flag
from emall.policy import authorize
from emall.principals import Principal

_NAMES = {"submitted": "提交审核", "listed": "上架", "rejected": "驳回", "delisted": "下架"}

_REVIEW_REGION_SQL = f"""
select a.region_code
from admissions a join organisations s on s.id = a.supplier_id
where a.supplier_id = $1 and a.status = 'approved' and a.valid_from <= {BUSINESS_DATE_SQL}
  and (a.valid_until is null or a.valid_until >= {BUSINESS_DATE_SQL})
  and not exists (select 1 from bans b
                  where b.supplier_id = a.supplier_id and b.region_code = any(region_chain(a.region_code))
                    and b.lifted_at is null and b.starts_at <= now()
                    and (b.ends_at is null or b.ends_at > now()))
order by (a.region_code = any(region_chain(s.region_code))) desc, a.valid_from, a.id
limit 1
"""


async def _move(
    conn: Connection,
    principal: Principal,
    offer_id: int,
    *,
    action: str,
    allowed_from: tuple[OfferStatus, ...],
    to: OfferStatus,
    reason: str | None,
    request_id: str | None,
    review_region: str | None = None,
) -> OfferRead:
    async with conn.transaction():
        before, resource = await load_offer(conn, principal, offer_id, lock=True)
        policy_action = {
            "submit": "offer.manage",
            "approve": "offer.review",
            "reject": "offer.review",
            "delist": "offer.delist",
        }[action]
        authorize(principal, policy_action, resource)
        if before.status not in allowed_from:
            raise Conflict(
                f"报价当前状态为 {before.status}，不能{_NAMES[to]} (offer is {before.status}; cannot move to {to})",
                current_state=before.status,
            )
        if action == "submit":
            review_region = await conn.fetchval(_REVIEW_REGION_SQL, before.supplier_id)
            if review_region is None:
                raise PermissionDenied(
                    "供应商未入驻或已被禁入，不能提交上架 (the supplier is not admitted, or is banned)"
                )
        await conn.execute(
            f"""
            update offers set status = $2, status_reason = $3, version = version + 1, updated_at = now(),
                review_region_code = coalesce($4, review_region_code),
                {_STAMPS[to]}
            where id = $1
            """,
            offer_id,
            to,
            reason,
            review_region,
            *((principal.user_id,) if to in ("listed", "rejected", "delisted") else ()),
        )
        after, _ = await load_offer(conn, principal, offer_id)
        await record_event(
            conn,
            actor=principal,
            action=f"offer.{to}",
            entity_type="offer",
            entity_id=offer_id,
            region_code=after.review_region_code,
            before=before,
            after=after,
            request_id=request_id,
        )
        if "listed" in (before.status, to):
            await enqueue(
                conn,
                topic="offer.changed",
                aggregate_type="offer",
                aggregate_id=offer_id,
                payload={"status": to},
            )
        if to == "listed":
            await check_price_flag(conn, after)
    return after


_STAMPS = {
    "submitted": "submitted_at = now()",
    "listed": "listed_at = now(), reviewed_at = now(), reviewed_by = $5",
    "rejected": "reviewed_at = now(), reviewed_by = $5",
    "delisted": "delisted_at = now(), delisted_by = $5",
}


async def submit(
    conn: Connection, principal: Principal, offer_id: int, *, request_id: str | None = None
) -> OfferRead:
    """The supplier sends a draft, rejected or delisted offer to review."""
    return await _move(
        conn,
        principal,
        offer_id,
        action="submit",
        allowed_from=("draft", "rejected", "delisted"),
        to="submitted",
        reason=None,
        request_id=request_id,
    )


async def approve(
    conn: Connection, principal: Principal, offer_id: int, *, request_id: str | None = None
) -> OfferRead:
    """The reviewing region's operator lists a submitted offer."""
    return await _move(
        conn,
        principal,
        offer_id,
        action="approve",
        allowed_from=("submitted",),
        to="listed",
        reason=None,
        request_id=request_id,
    )


async def reject(
    conn: Connection,
    principal: Principal,
    offer_id: int,
    reason: str,
    *,
    request_id: str | None = None,
) -> OfferRead:
    """The reviewing region's operator rejects a submitted offer, with a reason."""
    return await _move(
        conn,
        principal,
        offer_id,
        action="reject",
        allowed_from=("submitted",),
        to="rejected",
        reason=reason,
        request_id=request_id,
    )


async def delist(
    conn: Connection,
    principal: Principal,
    offer_id: int,
    reason: str,
    *,
    request_id: str | None = None,
) -> OfferRead:
    """The supplier, or the reviewing region's operator, withdraws a listed offer from sale."""
    return await _move(
        conn,
        principal,
        offer_id,
        action="delist",
        allowed_from=("listed",),
        to="delisted",
        reason=reason,
        request_id=request_id,
    )
