"""Product search: query, suggestions, and the sync status."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from api.deps import AUTH
from api.params import PriceFilter
from api.problems import problem_responses
from api.routes.identity import SECURITY
from api.state import AppState
from emall.composition import lags as outbox_lags
from emall.errors import convert
from emall.listings.models import PolicyTag
from emall.outbox.worker import ConsumerLag
from emall.principals import Principal
from emall.search import query
from emall.search.models import MAX_QUERY_LENGTH, SearchRequest, SearchResult, Sort, Suggestions
from emall.structs import CATEGORY_CODE, NO_NUL, REGION_CODE, Struct

Q = Annotated[
    str,
    QueryParameter(
        max_length=MAX_QUERY_LENGTH,
        pattern=NO_NUL,
        description="Chinese, pinyin, initials or a model number",
    ),
]


class SyncStatus(Struct):
    """Search's own lag (``lag_seconds``, ``pending``, ``parked``: the ``search`` consumer's),
    and every consumer of the outbox beside it, each on its own."""

    lag_seconds: float
    pending: int
    parked: int
    consumers: list[ConsumerLag]


class SearchController(Controller):
    path = "/search"
    tags = ["search"]
    dependencies = AUTH
    security = SECURITY

    @get(
        operation_id="searchOffers",
        summary="Search listed offers",
        responses=problem_responses(400, 401),
    )
    async def search(
        self,
        state: AppState,
        principal: NamedDependency[Principal],
        q: Q = "",
        category: Annotated[
            str | None,
            QueryParameter(pattern=CATEGORY_CODE, description="a category code at any level"),
        ] = None,
        brand: Annotated[
            str | None, QueryParameter(min_length=1, max_length=100, pattern=NO_NUL)
        ] = None,
        policy_tag: Annotated[
            list[PolicyTag] | None, QueryParameter(description="repeat for several (all must hold)")
        ] = None,
        price_min: PriceFilter = None,
        price_max: PriceFilter = None,
        delivery_region: Annotated[str | None, QueryParameter(pattern=REGION_CODE)] = None,
        sort: Annotated[Sort, QueryParameter()] = "relevance",
        page: Annotated[int, QueryParameter(ge=1, le=100)] = 1,
        page_size: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> SearchResult:
        """Offers the principal's region may buy and that deliver there (the region filter is
        built on the server), with highlights, facets (brand, category, policy tags), a total
        estimate and the processing time. ``degraded: true`` means Meilisearch was unreachable
        and PostgreSQL answered."""
        # decoded, not constructed: every constraint of SearchRequest runs on the query
        request = convert(
            {
                "q": q,
                "category": category,
                "brand": brand,
                "policy_tags": policy_tag or [],
                "price_min": price_min,
                "price_max": price_max,
                "delivery_region": delivery_region,
                "sort": sort,
                "page": page,
                "page_size": page_size,
            },
            SearchRequest,
        )
        return await query.search(state.pool, state.search, state.index_uid, principal, request)

    @get(
        "/suggest",
        operation_id="suggestSearch",
        summary="Completions for a search box",
        responses=problem_responses(400, 401),
    )
    async def suggest(
        self, state: AppState, principal: NamedDependency[Principal], q: Q
    ) -> Suggestions:
        """Up to eight titles of offers the principal may buy that match what was typed."""
        return await query.suggest(state.pool, state.search, state.index_uid, principal, q)

    @get(
        "/status",
        operation_id="getSearchSyncStatus",
        summary="Search sync lag",
        responses=problem_responses(401),
    )
    async def status(self, state: AppState, principal: NamedDependency[Principal]) -> SyncStatus:
        """How far search is behind the catalogue: the age in seconds of the oldest change that
        is due and not yet searchable, and how many such changes wait or were parked. Every other
        consumer of the outbox (payment checks, order events, later webhooks and statistics) is
        listed in ``consumers`` with its own lag, never summed into search's; a consumer named
        ``unhandled`` would list rows whose topic nothing consumes."""
        consumers = await outbox_lags(state.pool)
        mine = next(lag for lag in consumers if lag.consumer == "search")
        return SyncStatus(
            lag_seconds=mine.lag_seconds,
            pending=mine.pending,
            parked=mine.parked,
            consumers=consumers,
        )
