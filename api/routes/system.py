"""Liveness and readiness, outside /api/v1 so that probes need no version."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get

from api.problems import problem_response, problem_responses
from api.state import AppState
from emall.search.client import search_is_available
from emall.search.index import settings_match
from emall.structs import Struct


class Health(Struct):
    status: str


class Ready(Struct):
    status: str
    components: dict[str, str]


@get("/health", operation_id="health", tags=["system"], summary="Liveness")
async def health() -> Health:
    """The process is up and serving requests. Checks no dependency."""
    return Health(status="ok")


async def _postgres_up(state: AppState) -> bool:
    try:
        async with asyncio.timeout(2):
            return bool(await state.pool.fetchval("select 1"))
    except Exception:
        return False


async def _meilisearch_up(state: AppState) -> bool:
    try:
        async with asyncio.timeout(2):
            if not await search_is_available(state.search):
                return False
            await state.search.get_version()  # needs the key: checks we may use the server
            return True
    except Exception:
        return False


async def _index_ready(state: AppState) -> bool:
    """The offers index exists with the settings emall applies at start-up."""
    try:
        async with asyncio.timeout(2):
            return await settings_match(state.search, state.index_uid)
    except Exception:
        return False


@get(
    "/ready",
    operation_id="ready",
    tags=["system"],
    summary="Readiness",
    responses=problem_responses(503),
)
async def ready(request: Request[Any, Any, Any], state: AppState) -> Response[Any]:
    """PostgreSQL, Meilisearch and the offers index's settings are each checked; 503 names the
    part that is down."""
    pg, meili, index = await asyncio.gather(
        _postgres_up(state), _meilisearch_up(state), _index_ready(state)
    )
    components = {
        "postgres": "up" if pg else "down",
        "meilisearch": "up" if meili else "down",
        "search_index": "up" if index else "down",
    }
    down = [name for name, value in components.items() if value == "down"]
    if down:
        return problem_response(
            request,
            status=503,
            code="unavailable",
            title="服务未就绪 (not ready)",
            detail="不可用的组件 (components down): " + ", ".join(down),
            components=down,
        )
    return Response(Ready(status="ready", components=components))
