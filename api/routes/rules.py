"""City rules (限额标准 and more): the version in force, the version history, new versions."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from api.deps import AUTH, DB
from api.params import PathId
from api.problems import problem_responses
from api.routes.identity import SECURITY
from emall.db.pool import Connection
from emall.principals import Principal
from emall.rules import service
from emall.rules.models import CityRuleCreate, CityRuleRead
from emall.structs import REGION_CODE

RegionPath = Annotated[
    str, PathParameter(pattern=REGION_CODE, description="6-digit code, e.g. 511000")
]
OnDate = Annotated[
    date | None,
    QueryParameter(description="business date (YYYY-MM-DD) to ask about; default today"),
]


class CityRuleController(Controller):
    path = "/"
    tags = ["city rules"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(
        "/city-rules/{region_code:str}",
        operation_id="getCityRule",
        summary="The city rule in force",
        responses=problem_responses(400, 401, 404),
    )
    async def get_rule(
        self,
        region_code: RegionPath,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        on: OnDate = None,
    ) -> CityRuleRead:
        """The version in force for a region today (or on ``on``): its own, or its nearest
        ancestor's (a county uses its city's). 404 when no region of the chain has one."""
        return await service.get_rule_in_force(conn, principal, region_code, on)

    @get(
        "/city-rules/{region_code:str}/versions",
        operation_id="listCityRuleVersions",
        summary="A region's rule versions",
        responses=problem_responses(400, 401),
    )
    async def list_versions(
        self,
        region_code: RegionPath,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> list[CityRuleRead]:
        """Every version the region itself defines, oldest first, each with the day it ends."""
        return await service.list_versions(conn, principal, region_code)

    @post(
        "/city-rules/{region_code:str}/versions",
        operation_id="addCityRuleVersion",
        summary="Add a rule version",
        status_code=201,
        responses=problem_responses(400, 401, 403, 409, 413),
    )
    async def add_version(
        self,
        region_code: RegionPath,
        data: JSONBody[CityRuleCreate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> CityRuleRead:
        """The region's operator adds the next version, in force from ``effective_from`` (today
        or later; one version per date). Versions are never changed or deleted."""
        return await service.add_version(conn, principal, region_code, data, request_id=request_id)

    @get(
        "/city-rule-versions/{rule_id:int}",
        operation_id="getCityRuleVersion",
        summary="One rule version",
        responses=problem_responses(400, 401, 404),
    )
    async def get_version(
        self,
        rule_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> CityRuleRead:
        """A version by id, whether or not it is still in force."""
        return await service.get_version(conn, principal, rule_id)
