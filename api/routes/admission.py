"""Admission (入驻) and bans (禁入)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody

from api.deps import AUTH, DB
from api.params import DEFAULT_LIMIT, IdFilter, PageCursor, PageLimit, PathId, RegionFilter
from api.problems import problem_responses
from api.routes.identity import SECURITY
from emall.admission import bans, service
from emall.admission.models import (
    AdmissionApply,
    AdmissionApprove,
    AdmissionRead,
    AdmissionStatus,
    BanCreate,
    BanRead,
    Reason,
)
from emall.db.pool import Connection
from emall.pagination import Page
from emall.principals import Principal

_DECISION = problem_responses(400, 401, 403, 404, 409, 413)


class AdmissionController(Controller):
    path = "/admissions"
    tags = ["admission"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(
        operation_id="listAdmissions",
        summary="List admissions",
        responses=problem_responses(400, 401),
    )
    async def list_admissions(
        self,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        status: FromQuery[AdmissionStatus | None] = None,
        region_code: RegionFilter = None,
        supplier_id: IdFilter = None,
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[AdmissionRead]:
        """A supplier sees its own; an operator or auditor those in the regions it oversees
        (the review queue is ``status=pending``)."""
        return await service.list_admissions(
            conn,
            principal,
            status=status,
            region_code=region_code,
            supplier_id=supplier_id,
            cursor=cursor,
            limit=limit,
        )

    @post(
        operation_id="applyForAdmission",
        summary="Apply for admission in a region",
        responses=problem_responses(400, 401, 403, 409, 413),
    )
    async def apply(
        self,
        data: JSONBody[AdmissionApply],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> AdmissionRead:
        """A supplier admin applies; the region's operator decides."""
        return await service.apply(conn, principal, data, request_id=request_id)

    @get(
        "/{admission_id:int}",
        operation_id="getAdmission",
        summary="One admission",
        responses=problem_responses(400, 401, 404),
    )
    async def get_admission(
        self,
        admission_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> AdmissionRead:
        """An admission with who decided it and when."""
        return await service.get_admission(conn, principal, admission_id)

    @post(
        "/{admission_id:int}/approve",
        operation_id="approveAdmission",
        summary="Approve",
        status_code=200,
        responses=_DECISION,
    )
    async def approve(
        self,
        admission_id: PathId,
        data: JSONBody[AdmissionApprove],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> AdmissionRead:
        """The region's operator approves a pending application, with validity dates."""
        return await service.approve(conn, principal, admission_id, data, request_id=request_id)

    @post(
        "/{admission_id:int}/reject",
        operation_id="rejectAdmission",
        summary="Reject",
        status_code=200,
        responses=_DECISION,
    )
    async def reject(
        self,
        admission_id: PathId,
        data: JSONBody[Reason],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> AdmissionRead:
        """The region's operator rejects a pending application, with a reason."""
        return await service.reject(conn, principal, admission_id, data, request_id=request_id)

    @post(
        "/{admission_id:int}/revoke",
        operation_id="revokeAdmission",
        summary="Revoke",
        status_code=200,
        responses=_DECISION,
    )
    async def revoke(
        self,
        admission_id: PathId,
        data: JSONBody[Reason],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> AdmissionRead:
        """The region's operator revokes an approval; recognitions through it end at once."""
        return await service.revoke(conn, principal, admission_id, data, request_id=request_id)

    @post(
        "/{admission_id:int}/withdraw",
        operation_id="withdrawAdmission",
        summary="Withdraw",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def withdraw(
        self,
        admission_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> AdmissionRead:
        """The supplier withdraws its pending application."""
        return await service.withdraw(conn, principal, admission_id, request_id=request_id)


class BanController(Controller):
    path = "/bans"
    tags = ["admission"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(operation_id="listBans", summary="List bans", responses=problem_responses(400, 401))
    async def list_bans(
        self,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        region_code: RegionFilter = None,
        supplier_id: IdFilter = None,
        active: FromQuery[bool | None] = None,
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[BanRead]:
        """Bans in the regions the principal oversees, or a supplier's own."""
        return await bans.list_bans(
            conn,
            principal,
            region_code=region_code,
            supplier_id=supplier_id,
            active=active,
            cursor=cursor,
            limit=limit,
        )

    @post(
        operation_id="banSupplier",
        summary="Ban a supplier in a region",
        responses=problem_responses(400, 401, 403, 413),
    )
    async def ban(
        self,
        data: JSONBody[BanCreate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> BanRead:
        """The region's operator suspends a supplier, with a reason and an optional end; the ban
        lifts by itself at ``ends_at``."""
        return await bans.ban(conn, principal, data, request_id=request_id)

    @get(
        "/{ban_id:int}",
        operation_id="getBan",
        summary="One ban",
        responses=problem_responses(400, 401, 404),
    )
    async def get_ban(
        self,
        ban_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> BanRead:
        """A ban, and whether it is active now."""
        return await bans.get_ban(conn, principal, ban_id)

    @post(
        "/{ban_id:int}/lift",
        operation_id="liftBan",
        summary="Lift a ban early",
        status_code=200,
        responses=_DECISION,
    )
    async def lift(
        self,
        ban_id: PathId,
        data: JSONBody[Reason],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> BanRead:
        """The region's operator lifts a ban before its end, with a reason."""
        return await bans.lift(conn, principal, ban_id, data, request_id=request_id)
