"""The app factory. Its lifespan owns the database pool, the search client and the cache of
principals (with its LISTEN connection)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response, Router
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import PluginProtocol
from litestar.routes import HTTPRoute
from litestar.status_codes import HTTP_204_NO_CONTENT
from litestar.types import ControllerRouterHandler

import emall
from api.openapi import StructSchemaPlugin
from api.openapi_docs import SwaggerUIOffline, docs_router
from api.problems import EXCEPTION_HANDLERS
from api.request_checks import CheckedRequest, check_query_string
from api.request_id import RequestIdMiddleware
from api.routes.admission import AdmissionController, BanController
from api.routes.budgets import BudgetLineController
from api.routes.categories import CategoryController, TemplateController
from api.routes.identity import ApiKeyController, AuthController, MeController
from api.routes.imports import ImportController
from api.routes.listings import (
    OfferController,
    OfferHistoryController,
    PriceController,
    ProductController,
)
from api.routes.order_flags import OrderFlagController
from api.routes.orders import (
    CartController,
    CheckoutController,
    OrderController,
    OrderLifecycleController,
    SupplierScoreController,
)
from api.routes.organisations import OrganisationController
from api.routes.partnerships import PartnershipController
from api.routes.regions import RegionController
from api.routes.rules import CityRuleController
from api.routes.search import SearchController
from api.routes.system import health, ready
from api.routes.users import UserController
from api.state import AppState
from emall.composition import build_worker
from emall.db.pool import create_pool
from emall.identity.principal_cache import PrincipalCache
from emall.search.client import create_search_client
from emall.search.index import ensure_index, index_uid
from emall.settings import Settings

log = logging.getLogger("emall.api")

API_PREFIX = "/api/v1"
REQUEST_SEARCH_TIMEOUT_S = 2  # seconds a request waits on Meilisearch before answering degraded


def _openapi() -> OpenAPIConfig:
    # the title is ASCII: client generators derive a package name from it
    return OpenAPIConfig(
        title="emall API",
        version=emall.__version__,
        description=(
            "政府采购电子卖场 (emall): a cross-region government procurement e-mall. "
            "Errors are application/problem+json "
            "(RFC 9457). Authenticate with a bearer token from POST /api/v1/auth/token, or an "
            "API key in X-API-Key."
        ),
        path="/schema",
        # a handler's docstring is its operation's description (Litestar's default is not to)
        use_handler_docstrings=True,
        # the viewer and its assets come from the app: an intranet may have no internet
        render_plugins=[SwaggerUIOffline(path=["/", "/swagger"])],
        openapi_router=docs_router("/schema"),
        components=Components(
            security_schemes={
                "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
                "ApiKey": SecurityScheme(
                    type="apiKey", name="X-API-Key", security_scheme_in="header"
                ),
            }
        ),
    )


def _allow(request: Request[Any, Any, Any]) -> Response[None] | None:
    """Answer OPTIONS with every method of the path. (Litestar's own answer lists only the
    methods of the path's first handler when a controller has several: its OPTIONS handler
    keeps the route as it was when that first handler was registered.)"""
    if request.method != "OPTIONS" or request.route_handler.http_methods != {"OPTIONS"}:
        return None
    template = request.scope.get("path_template")
    methods = {
        method
        for route in request.app.routes
        if isinstance(route, HTTPRoute) and route.path_format == template
        for method in route.methods
    }
    return Response(
        content=None,
        status_code=HTTP_204_NO_CONTENT,
        headers={"Allow": ", ".join(sorted(methods | {"OPTIONS"}))},
    )


async def _before_request(request: Request[Any, Any, Any]) -> Response[None] | None:
    await check_query_string(request)  # NUL or bad UTF-8 in the query string
    return _allow(request)


def create_app(
    settings: Settings,
    *,
    run_worker: bool = False,
    extra_route_handlers: Sequence[ControllerRouterHandler] = (),
    plugins: Sequence[PluginProtocol] = (),
) -> Litestar:
    """Build the app. Settings must name concrete servers by the time the app starts up
    (``emall.embedded.services.start_services`` resolves the embedded defaults).

    With ``run_worker`` the outbox worker runs as a task of this process (``emall serve``).
    ``extra_route_handlers`` lets an embedding platform (or a test) mount more routes, and
    ``plugins`` add Litestar plugins (the ``emall`` CLI adds its commands' plugin).
    """

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if settings.database.url is None or settings.search.url is None:
            raise RuntimeError(
                "create_app needs concrete DATABASE_URL and MEILI_URL; run `emall serve`, "
                "which starts the embedded servers"
            )
        pool = await create_pool(
            settings.database.url,
            min_size=settings.database.pool_min,
            max_size=settings.database.pool_max,
        )
        # Requests get a short timeout, so that a hung Meilisearch turns into degraded search
        # within a couple of seconds; the worker's pushes of large batches keep the longer one.
        search = create_search_client(
            settings.search.url, settings.search.master_key, timeout=REQUEST_SEARCH_TIMEOUT_S
        )
        indexer = create_search_client(settings.search.url, settings.search.master_key)
        app.state.pool = pool
        app.state.search = search
        principals = PrincipalCache(ttl_seconds=settings.auth.principal_cache_seconds)
        app.state.principals = principals
        try:  # idempotent; when Meilisearch is down, search answers from PostgreSQL meanwhile
            await ensure_index(search, index_uid(settings.search.index_prefix))
        except Exception as exc:
            log.warning("search index settings not applied at start-up: %r", exc)
        stop_worker = asyncio.Event()
        listener_task = asyncio.create_task(principals.listen(settings.database.url, stop_worker))
        worker_task = (
            asyncio.create_task(build_worker(pool, indexer, settings).run(stop_worker))
            if run_worker
            else None
        )
        try:
            yield
        finally:
            stop_worker.set()
            if worker_task is not None:
                await worker_task
            await listener_task
            await search.aclose()
            await indexer.aclose()
            await pool.close()

    api = Router(
        path=API_PREFIX,
        route_handlers=[
            AuthController,
            MeController,
            ApiKeyController,
            CartController,
            CheckoutController,
            OrderController,
            OrderLifecycleController,
            OrderFlagController,
            SupplierScoreController,
            SearchController,
            UserController,
            RegionController,
            PartnershipController,
            OrganisationController,
            AdmissionController,
            BanController,
            ImportController,
            BudgetLineController,
            ProductController,
            OfferController,
            OfferHistoryController,
            PriceController,
            CityRuleController,
            CategoryController,
            TemplateController,
        ],
    )
    return Litestar(
        route_handlers=[health, ready, api, *extra_route_handlers],
        lifespan=[lifespan],
        state=AppState({"settings": settings}),
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[RequestIdMiddleware()],
        openapi_config=_openapi(),
        plugins=[*plugins, StructSchemaPlugin()],
        request_max_body_size=2 * 1024 * 1024,
        request_class=CheckedRequest,  # refuses NUL, bad UTF-8 and deep nesting in JSON bodies
        before_request=_before_request,
        debug=False,
    )
