"""The order-flag queue of a region's operator: splitting (拆单), overdue payment, price."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody

from api.deps import AUTH, DB
from api.params import DEFAULT_LIMIT, PageCursor, PageLimit, PathId
from api.problems import problem_responses
from api.routes.identity import SECURITY
from emall.db.pool import Connection
from emall.ordering import flags
from emall.ordering.models import FlagKind, OrderFlagRead, OrderFlagResolve
from emall.pagination import Page
from emall.principals import Principal


class OrderFlagController(Controller):
    path = "/order-flags"
    tags = ["ordering"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(
        operation_id="listOrderFlags",
        summary="The order-flag queue",
        responses=problem_responses(400, 401),
    )
    async def list_flags(
        self,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        kind: FromQuery[FlagKind | None] = None,
        open_only: FromQuery[bool] = True,
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[OrderFlagRead]:
        """Orders flagged in the regions the operator or auditor oversees, oldest first: order
        splitting found at checkout, payment overdue after acceptance."""
        return await flags.list_order_flags(
            conn, principal, kind=kind, open_only=open_only, cursor=cursor, limit=limit
        )

    @post(
        "/{flag_id:int}/resolve",
        operation_id="resolveOrderFlag",
        summary="Resolve an order flag",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 413),
    )
    async def resolve(
        self,
        flag_id: PathId,
        data: JSONBody[OrderFlagResolve],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> OrderFlagRead:
        """The region's operator records what it did about the flag."""
        return await flags.resolve_order_flag(conn, principal, flag_id, data, request_id=request_id)
