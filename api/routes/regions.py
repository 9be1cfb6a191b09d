"""Regions (行政区划): public reference data, no credentials needed."""

from __future__ import annotations

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery

from api.problems import problem_responses
from emall.pagination import Limit, Page
from emall.regions import service
from emall.regions.models import RegionDetail, RegionLevel, RegionRead


class RegionController(Controller):
    path = "/regions"
    tags = ["regions"]

    @get(operation_id="listRegions", summary="Search regions", responses=problem_responses(400))
    async def list_regions(
        self,
        state: State,
        q: FromQuery[str | None] = None,
        level: FromQuery[RegionLevel | None] = None,
        parent_code: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[Limit] = 50,
    ) -> Page[RegionRead]:
        """Regions whose Chinese name contains ``q`` (e.g. 内江), by level and parent, in code order."""
        return await service.list_regions(
            state.pool, q=q, level=level, parent_code=parent_code, cursor=cursor, limit=limit
        )

    @get(
        "/{code:str}",
        operation_id="getRegion",
        summary="One region with its ancestors",
        responses=problem_responses(400, 404),
    )
    async def get_region(self, state: State, code: FromPath[str]) -> RegionDetail:
        """A region, its ancestors (nearest first) and how many children it has."""
        return await service.get_region(state.pool, code)

    @get(
        "/{code:str}/children",
        operation_id="listRegionChildren",
        summary="Children of a region",
        responses=problem_responses(400, 404),
    )
    async def children(
        self,
        state: State,
        code: FromPath[str],
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[Limit] = 50,
    ) -> Page[RegionRead]:
        """The cities of a province, or the counties of a city."""
        return await service.children(state.pool, code, cursor=cursor, limit=limit)
