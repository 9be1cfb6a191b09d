"""Admission: a supplier applies to a region; that region's operator approves or rejects.

States: pending → approved | rejected | withdrawn; approved → revoked, or expired once its
``valid_until`` has passed (a new application marks it so). An illegal transition is a
``Conflict`` that carries the current state. Every change writes an audit event and an outbox
row (search visibility depends on admissions), in the same transaction.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from emall.admission.models import (
    AdmissionApply,
    AdmissionApprove,
    AdmissionRead,
    AdmissionStatus,
    Reason,
)
from emall.admission.scope import SCOPE_SQL
from emall.audit import enqueue, record_event, start_of_business_day
from emall.clock import BUSINESS_DATE_SQL, today
from emall.db.pool import Connection, Pool
from emall.errors import Conflict, NotFound, ValidationFailed
from emall.pagination import Page, page_args, page_of
from emall.policy import Resource, authorize, list_scope
from emall.principals import OrganisationKind, Principal
from emall.regions.service import require_region

_COLUMNS = f"""
    t.id, t.supplier_id, o.name as supplier_name, t.region_code, r.name as region_name, t.status,
    (t.status = 'approved' and t.valid_from <= {BUSINESS_DATE_SQL}
     and (t.valid_until is null or t.valid_until >= {BUSINESS_DATE_SQL})) as in_force,
    t.note, t.applied_at, t.applied_by, t.decided_at, t.decided_by, t.decision_reason,
    t.valid_from, t.valid_until, t.revoked_at, t.revoked_by, t.revoke_reason,
    region_chain(t.region_code) as chain
"""
_FROM = "from admissions t join organisations o on o.id = t.supplier_id join regions r on r.code = t.region_code"


def _read(row: asyncpg.Record) -> AdmissionRead:
    values = dict(row)
    values.pop("chain")
    return AdmissionRead(**values)


def _resource(row: asyncpg.Record) -> Resource:
    return Resource(
        "admission", row["id"], organisation_id=row["supplier_id"], region_chain=tuple(row["chain"])
    )


async def _load(
    conn: Connection | Pool, admission_id: int, *, lock: bool = False
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"select {_COLUMNS} {_FROM} where t.id = $1" + (" for update of t" if lock else ""),
        admission_id,
    )
    if row is None:
        raise NotFound("入驻申请", admission_id)
    return row


async def get_admission(
    conn: Connection | Pool, principal: Principal, admission_id: int
) -> AdmissionRead:
    row = await _load(conn, admission_id)
    authorize(principal, "admission.read", _resource(row))
    return _read(row)


async def list_admissions(
    conn: Connection | Pool,
    principal: Principal,
    *,
    status: AdmissionStatus | None = None,
    region_code: str | None = None,
    supplier_id: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[AdmissionRead]:
    """Admissions the principal may see: its own, or those in the regions it oversees."""
    authorize(principal, "admission.read")
    if region_code is not None:
        await require_region(conn, region_code, "region_code")
    after = page_args(cursor, limit, int)
    rows = await conn.fetch(
        f"""
        select {_COLUMNS} {_FROM}
        where {SCOPE_SQL}
          and ($4::text is null or t.status = $4)
          and ($5::text is null or $5 = any(region_chain(t.region_code)))
          and ($6::bigint is null or t.supplier_id = $6)
          and ($7::bigint is null or t.id > $7)
        order by t.id
        limit $8
        """,
        *list_scope(principal),
        status,
        region_code,
        supplier_id,
        after[0] if after else None,
        limit + 1,
    )
    return page_of([_read(r) for r in rows], limit, lambda a: (a.id,))


async def _changed(
    conn: Connection,
    principal: Principal,
    action: str,
    before: AdmissionRead | None,
    after: AdmissionRead,
    request_id: str | None,
) -> None:
    await record_event(
        conn,
        actor=principal,
        action=action,
        entity_type="admission",
        entity_id=after.id,
        region_code=after.region_code,
        before=before,
        after=after,
        request_id=request_id,
    )
    await enqueue(
        conn,
        topic="visibility.changed",
        aggregate_type="supplier",
        aggregate_id=after.supplier_id,
        payload={
            "admission_id": after.id,
            "region_code": after.region_code,
            "status": after.status,
        },
    )
    if after.status == "approved":
        # An admission starts and ends by itself on its dates: refresh visibility then, too.
        moments = [start_of_business_day(after.valid_from)] if after.valid_from else []
        if after.valid_until is not None:
            moments.append(start_of_business_day(after.valid_until + timedelta(days=1)))
        for moment in moments:
            await enqueue(
                conn,
                topic="visibility.changed",
                aggregate_type="supplier",
                aggregate_id=after.supplier_id,
                payload={"admission_id": after.id, "dated": True},
                not_before=moment,
            )


async def apply(
    conn: Connection, principal: Principal, data: AdmissionApply, *, request_id: str | None = None
) -> AdmissionRead:
    """The principal's supplier applies for admission in a region."""
    await require_region(conn, data.region_code, "region_code")
    authorize(
        principal,
        "admission.apply",
        Resource(
            "organisation", principal.organisation_id, organisation_id=principal.organisation_id
        ),
    )
    if principal.organisation_kind != OrganisationKind.SUPPLIER:
        raise ValidationFailed.single(
            "region_code", "只有供应商可以申请入驻 (only a supplier applies)"
        )
    async with conn.transaction():
        # An approval whose validity has passed no longer blocks a new application.
        await conn.execute(
            f"""
            update admissions set status = 'expired', updated_at = now()
            where supplier_id = $1 and region_code = $2 and status = 'approved'
              and valid_until < {BUSINESS_DATE_SQL}
            """,
            principal.organisation_id,
            data.region_code,
        )
        admission_id = await _insert_application(conn, principal, data)
        if admission_id is None:
            current = await conn.fetchval(
                "select status from admissions where supplier_id = $1 and region_code = $2 "
                "and status in ('pending', 'approved')",
                principal.organisation_id,
                data.region_code,
            )
            raise Conflict(
                f"已有进行中或有效的入驻 (an admission in this region is already {current})",
                current_state=current,
            )
        created = _read(await _load(conn, admission_id))
        await _changed(conn, principal, "admission.applied", None, created, request_id)
    return created


async def _insert_application(
    conn: Connection, principal: Principal, data: AdmissionApply
) -> int | None:
    """The new application's id, or None when an open one exists (the unique index decides)."""
    admission_id: int | None = await conn.fetchval(
        """
        insert into admissions (supplier_id, region_code, note, applied_by)
        values ($1, $2, $3, $4)
        on conflict (supplier_id, region_code) where status in ('pending', 'approved') do nothing
        returning id
        """,
        principal.organisation_id,
        data.region_code,
        data.note,
        principal.user_id,
    )
    return admission_id


async def _transition(
    conn: Connection,
    principal: Principal,
    admission_id: int,
    *,
    action: str,
    allowed_from: AdmissionStatus,
    to: AdmissionStatus,
    sql_set: str,
    args: tuple[object, ...],
    request_id: str | None,
) -> AdmissionRead:
    async with conn.transaction():
        row = await _load(conn, admission_id, lock=True)
        authorize(principal, action, _resource(row))
        before = _read(row)
        if before.status != allowed_from:
            raise Conflict(
                f"入驻申请当前状态为 {before.status}，不能{_VERBS[to]} "
                f"(admission is {before.status}; cannot move to {to})",
                current_state=before.status,
            )
        await conn.execute(
            f"update admissions set status = $2, {sql_set}, updated_at = now() where id = $1",
            admission_id,
            to,
            *args,
        )
        after = _read(await _load(conn, admission_id))
        await _changed(conn, principal, f"admission.{to}", before, after, request_id)
    return after


_VERBS = {"approved": "批准", "rejected": "驳回", "revoked": "撤销", "withdrawn": "撤回"}


async def approve(
    conn: Connection,
    principal: Principal,
    admission_id: int,
    data: AdmissionApprove,
    *,
    request_id: str | None = None,
) -> AdmissionRead:
    valid_from = data.valid_from or today()
    if data.valid_until is not None and data.valid_until < valid_from:
        raise ValidationFailed.single("valid_until", "不能早于生效日期 (before valid_from)")
    return await _transition(
        conn,
        principal,
        admission_id,
        action="admission.decide",
        allowed_from="pending",
        to="approved",
        sql_set="decided_at = now(), decided_by = $3, valid_from = $4, valid_until = $5",
        args=(principal.user_id, valid_from, data.valid_until),
        request_id=request_id,
    )


async def reject(
    conn: Connection,
    principal: Principal,
    admission_id: int,
    data: Reason,
    *,
    request_id: str | None = None,
) -> AdmissionRead:
    return await _transition(
        conn,
        principal,
        admission_id,
        action="admission.decide",
        allowed_from="pending",
        to="rejected",
        sql_set="decided_at = now(), decided_by = $3, decision_reason = $4",
        args=(principal.user_id, data.reason),
        request_id=request_id,
    )


async def revoke(
    conn: Connection,
    principal: Principal,
    admission_id: int,
    data: Reason,
    *,
    request_id: str | None = None,
) -> AdmissionRead:
    return await _transition(
        conn,
        principal,
        admission_id,
        action="admission.decide",
        allowed_from="approved",
        to="revoked",
        sql_set="revoked_at = now(), revoked_by = $3, revoke_reason = $4",
        args=(principal.user_id, data.reason),
        request_id=request_id,
    )


async def withdraw(
    conn: Connection, principal: Principal, admission_id: int, *, request_id: str | None = None
) -> AdmissionRead:
    return await _transition(
        conn,
        principal,
        admission_id,
        action="admission.withdraw",
        allowed_from="pending",
        to="withdrawn",
        sql_set="decided_at = now(), decided_by = $3",
        args=(principal.user_id,),
        request_id=request_id,
    )
