"""The listing workflow: draft → submitted → listed, or rejected with a reason; listed →
delisted (by the supplier or the operator, with a reason). Relisting goes through review again.

* Only a supplier admitted and not banned may submit. The offer is reviewed by the operator of
  the region whose admission carries it: the supplier's home region if it is admitted there,
  else the region of its earliest admission in force.
* An illegal transition is a ``Conflict`` carrying the current state (HTTP 409).
* Every transition writes an audit event; those that change what buyers see write an outbox
  row (``offer.changed``) in the same transaction (``emall.audit.record``).
* ``_move_many`` owns every transition, for one offer or many in one set of statements:
  ``review`` approves or rejects up to 1,000 submitted offers in one call, each one reviewed or
  refused on its own (not found, wrong state, forbidden).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast

from emall.audit import AuditEvent, OutboxMessage, record
from emall.clock import BUSINESS_DATE_SQL
from emall.db.pool import Connection
from emall.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from emall.listings.models import (
    OfferRead,
    OfferStatus,
    ReviewOutcome,
    ReviewRequest,
    ReviewResult,
)
from emall.listings.offers import load_offers
from emall.listings.prices import check_price_flag
from emall.policy import authorize
from emall.principals import Principal

_NAMES = {"submitted": "提交审核", "listed": "上架", "rejected": "驳回", "delisted": "下架"}

# The region whose operator reviews each supplier's offers ($1: the suppliers).
_REVIEW_REGIONS_SQL = f"""
select u.supplier_id, (
    select a.region_code
    from admissions a join organisations s on s.id = a.supplier_id
    where a.supplier_id = u.supplier_id and a.status = 'approved'
      and a.valid_from <= {BUSINESS_DATE_SQL}
      and (a.valid_until is null or a.valid_until >= {BUSINESS_DATE_SQL})
      and not exists (select 1 from bans b
                      where b.supplier_id = a.supplier_id
                        and b.region_code = any(region_chain(a.region_code))
                        and b.lifted_at is null and b.starts_at <= now()
                        and (b.ends_at is null or b.ends_at > now()))
    order by (a.region_code = any(region_chain(s.region_code))) desc, a.valid_from, a.id
    limit 1
) as region_code
from unnest($1::bigint[]) as u(supplier_id)
"""

_POLICY_ACTIONS = {
    "submit": "offer.manage",
    "approve": "offer.review",
    "reject": "offer.review",
    "delist": "offer.delist",
}

Refused = NotFound | PermissionDenied | Conflict


async def _move_many(
    conn: Connection,
    principal: Principal,
    offer_ids: Sequence[int],
    *,
    action: str,
    allowed_from: tuple[OfferStatus, ...],
    to: OfferStatus,
    reason: str | None,
    request_id: str | None,
) -> dict[int, OfferRead | Refused]:
    """Move each of ``offer_ids`` (distinct) that the principal may move and that is in one of
    ``allowed_from`` to ``to``, in one transaction and a fixed number of statements: each offer's
    new state or why it was refused (``NotFound`` for one the principal may not see)."""
    outcomes: dict[int, OfferRead | Refused] = {}
    async with conn.transaction():
        found = await load_offers(conn, principal, offer_ids, lock=True)
        moving: list[OfferRead] = []
        for offer_id in offer_ids:
            try:
                if offer_id not in found:
                    raise NotFound("报价", offer_id)
                before, resource = found[offer_id]
                authorize(principal, _POLICY_ACTIONS[action], resource)
                if before.status not in allowed_from:
                    raise Conflict(
                        f"报价当前状态为 {before.status}，不能{_NAMES[to]} "
                        f"(offer is {before.status}; cannot move to {to})",
                        current_state=before.status,
                    )
            except (NotFound, PermissionDenied, Conflict) as refused:
                outcomes[offer_id] = refused
                continue
            moving.append(before)
        regions: dict[int, str | None] = {}
        if action == "submit" and moving:
            regions = {
                r["supplier_id"]: r["region_code"]
                for r in await conn.fetch(
                    _REVIEW_REGIONS_SQL, sorted({o.supplier_id for o in moving})
                )
            }
            for offer in [o for o in moving if regions[o.supplier_id] is None]:
                outcomes[offer.id] = PermissionDenied(
                    "供应商未入驻或已被禁入，不能提交上架 (the supplier is not admitted, or is banned)"
                )
                moving.remove(offer)
        if not moving:
            return outcomes
        ids = [o.id for o in moving]
        await conn.execute(
            f"""
            update offers set status = $2, status_reason = $3, version = version + 1,
                updated_at = now(), review_region_code = coalesce(m.region, review_region_code),
                {_STAMPS[to]}
            from unnest($1::bigint[], $4::text[]) as m(id, region)
            where offers.id = m.id
            """,
            ids,
            to,
            reason,
            [regions.get(o.supplier_id) for o in moving],
            *((principal.user_id,) if to in ("listed", "rejected", "delisted") else ()),
        )
        moved = await load_offers(conn, principal, ids)
        events = [
            AuditEvent(
                action=f"offer.{to}",
                entity_type="offer",
                entity_id=str(before.id),
                actor_user_id=principal.user_id,
                actor_organisation_id=principal.organisation_id,
                region_code=moved[before.id][0].review_region_code,
                before=before,
                after=moved[before.id][0],
                request_id=request_id,
            )
            for before in moving
        ]
        messages = [
            OutboxMessage(
                topic="offer.changed",
                aggregate_type="offer",
                aggregate_id=str(before.id),
                payload={"status": to},
            )
            for before in moving
            if "listed" in (before.status, to)
        ]
        await record(conn, events, messages)
        for offer_id in ids:
            after = moved[offer_id][0]
            if to == "listed":
                await check_price_flag(conn, after)
            outcomes[offer_id] = after
    return outcomes


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
) -> OfferRead:
    """One offer's move: its new state, or the refusal raised."""
    outcome = (
        await _move_many(
            conn,
            principal,
            [offer_id],
            action=action,
            allowed_from=allowed_from,
            to=to,
            reason=reason,
            request_id=request_id,
        )
    )[offer_id]
    if isinstance(outcome, OfferRead):
        return outcome
    raise outcome


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


async def review(
    conn: Connection,
    principal: Principal,
    data: ReviewRequest,
    *,
    request_id: str | None = None,
) -> ReviewResult:
    """The reviewing operator approves (lists) or rejects many submitted offers in one
    transaction, with the transitions, audit events, outbox rows and price checks of
    ``approve`` and ``reject``. Each offer is reviewed or refused on its own (``ReviewOutcome``,
    in the order of the request, each id once); an offer the operator may not see is
    ``not_found``, never told apart from one that does not exist.

    ``PermissionDenied`` when the principal reviews nothing at all (not an operator);
    ``ValidationFailed`` naming ``reason`` when rejecting without one or approving with one.
    """
    authorize(principal, "offer.review")
    if data.decision == "reject" and data.reason is None:
        raise ValidationFailed.single("reason", "驳回须说明理由 (a rejection needs a reason)")
    if data.decision == "approve" and data.reason is not None:
        raise ValidationFailed.single(
            "reason", "上架不需要理由，理由只用于驳回 (reason is for reject only)"
        )
    offer_ids = list(dict.fromkeys(data.offer_ids))
    outcomes = await _move_many(
        conn,
        principal,
        offer_ids,
        action=data.decision,
        allowed_from=("submitted",),
        to="listed" if data.decision == "approve" else "rejected",
        reason=data.reason,
        request_id=request_id,
    )
    results = [review_outcome(offer_id, outcomes[offer_id]) for offer_id in offer_ids]
    reviewed = sum(r.result == "reviewed" for r in results)
    return ReviewResult(
        decision=data.decision,
        reviewed=reviewed,
        refused=len(results) - reviewed,
        results=results,
    )


def review_outcome(offer_id: int, outcome: OfferRead | Refused) -> ReviewOutcome:
    """One offer's part of a review's answer."""
    if isinstance(outcome, OfferRead):
        return ReviewOutcome(
            offer_id=offer_id, result="reviewed", status=outcome.status, version=outcome.version
        )
    if isinstance(outcome, NotFound):
        refusal: Literal["not_found", "wrong_state", "forbidden"] = "not_found"
        current: OfferStatus | None = None
    elif isinstance(outcome, Conflict):
        refusal = "wrong_state"
        current = cast("OfferStatus", outcome.current_state)
    else:
        refusal, current = "forbidden", None
    return ReviewOutcome(
        offer_id=offer_id,
        result="refused",
        refusal=refusal,
        current_state=current,
        message=outcome.message,
    )
