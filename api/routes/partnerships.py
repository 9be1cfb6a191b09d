"""Partnerships (合作区域) and their members over time."""

from __future__ import annotations

from datetime import date

from litestar import Controller, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody

from api.deps import AUTH, DB
from api.params import DEFAULT_LIMIT, PageCursor, PageLimit, PathId, RegionFilter
from api.problems import problem_responses
from api.routes.identity import SECURITY
from api.routes.regions import RegionCodePath
from emall.db.pool import Connection
from emall.pagination import Page
from emall.partnerships import service
from emall.partnerships.models import (
    MemberCreate,
    MemberLeave,
    PartnershipCreate,
    PartnershipRead,
    PartnershipUpdate,
    RecognitionUpdate,
)
from emall.principals import Principal


class PartnershipController(Controller):
    path = "/partnerships"
    tags = ["partnerships"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(
        operation_id="listPartnerships",
        summary="List partnerships",
        responses=problem_responses(400, 401),
    )
    async def list_partnerships(
        self,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        region_code: RegionFilter = None,
        active_on: FromQuery[date | None] = None,
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[PartnershipRead]:
        """Partnerships with their members; filter by a member region or a date in force."""
        return await service.list_partnerships(
            conn,
            principal,
            region_code=region_code,
            active_on=active_on,
            cursor=cursor,
            limit=limit,
        )

    @post(
        operation_id="createPartnership",
        summary="Create a partnership",
        responses=problem_responses(400, 401, 403, 409, 413),
    )
    async def create_partnership(
        self,
        data: JSONBody[PartnershipCreate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> PartnershipRead:
        """Platform admin only: a named alliance of regions with effective dates."""
        return await service.create_partnership(conn, principal, data, request_id=request_id)

    @get(
        "/{partnership_id:int}",
        operation_id="getPartnership",
        summary="One partnership",
        responses=problem_responses(400, 401, 404),
    )
    async def get_partnership(
        self,
        partnership_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> PartnershipRead:
        """A partnership with its whole membership history."""
        return await service.get_partnership(conn, principal, partnership_id)

    @patch(
        "/{partnership_id:int}",
        operation_id="updatePartnership",
        summary="Change a partnership",
        responses=problem_responses(400, 401, 403, 404, 413),
    )
    async def update_partnership(
        self,
        partnership_id: PathId,
        data: JSONBody[PartnershipUpdate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> PartnershipRead:
        """Platform admin only: name, description or end date."""
        return await service.update_partnership(
            conn, principal, partnership_id, data, request_id=request_id
        )

    @post(
        "/{partnership_id:int}/members",
        operation_id="addPartnershipMember",
        summary="Add a member region",
        responses=problem_responses(400, 401, 403, 404, 409, 413),
    )
    async def add_member(
        self,
        partnership_id: PathId,
        data: JSONBody[MemberCreate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> PartnershipRead:
        """Platform admin only: a region joins on a date."""
        return await service.add_member(
            conn, principal, partnership_id, data, request_id=request_id
        )

    @post(
        "/{partnership_id:int}/members/{region_code:str}/leave",
        operation_id="endPartnershipMembership",
        summary="A member region leaves",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 413),
    )
    async def end_membership(
        self,
        partnership_id: PathId,
        region_code: RegionCodePath,
        data: JSONBody[MemberLeave],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> PartnershipRead:
        """Platform admin only: the membership ends on ``left_on``; its history stays."""
        return await service.end_membership(
            conn, principal, partnership_id, region_code, data, request_id=request_id
        )

    @put(
        "/{partnership_id:int}/members/{region_code:str}/recognition",
        operation_id="setRecognition",
        summary="Opt out of (or into) recognition",
        responses=problem_responses(400, 401, 403, 404, 413),
    )
    async def set_recognition(
        self,
        partnership_id: PathId,
        region_code: RegionCodePath,
        data: JSONBody[RecognitionUpdate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> PartnershipRead:
        """The member region's operator decides whether it recognises admissions granted by the
        partnership's other regions."""
        return await service.set_recognition(
            conn, principal, partnership_id, region_code, data, request_id=request_id
        )
