"""Regions (行政区划): public reference data, no credentials needed."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import FromQuery, PathParameter

from api.params import DEFAULT_LIMIT, PageCursor, PageLimit, RegionFilter, TextFilter
from api.problems import problem_responses
from api.state import AppState
from emall.pagination import Page
from emall.regions import service
from emall.regions.models import RegionDetail, RegionLevel, RegionRead
from emall.structs import REGION_CODE

# A malformed code is a 400 naming ``code``; a well-formed unknown one is a 404.
RegionCodePath = Annotated[
    str, PathParameter(pattern=REGION_CODE, description="6-digit code, e.g. 511000")
]


class RegionController(Controller):
    path = "/regions"
    tags = ["regions"]

    @get(operation_id="listRegions", summary="Search regions", responses=problem_responses(400))
    async def list_regions(
        self,
        state: AppState,
        q: TextFilter = None,
        level: FromQuery[RegionLevel | None] = None,
        parent_code: RegionFilter = None,
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
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
    async def get_region(self, state: AppState, code: RegionCodePath) -> RegionDetail:
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
        state: AppState,
        code: RegionCodePath,
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[RegionRead]:
        """The cities of a province, or the counties of a city."""
        return await service.children(state.pool, code, cursor=cursor, limit=limit)
