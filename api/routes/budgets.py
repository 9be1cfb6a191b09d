"""Budget lines (预算指标) and their ledger."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from api.deps import AUTH, DB
from api.params import DEFAULT_LIMIT, PageCursor, PageLimit, PathId
from api.problems import problem_responses
from api.routes.identity import SECURITY
from emall.budgets import service
from emall.budgets.models import BudgetAdjust, BudgetLineCreate, BudgetLineRead, LedgerEntry
from emall.db.pool import Connection
from emall.pagination import Page
from emall.principals import Principal

FiscalYear = Annotated[
    int | None, QueryParameter(ge=2000, le=2100, description="only lines of this fiscal year")
]


class BudgetLineController(Controller):
    path = "/budget-lines"
    tags = ["budgets"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @post(
        operation_id="createBudgetLine",
        summary="Create a budget line",
        responses=problem_responses(400, 401, 403, 409, 413),
    )
    async def create_line(
        self,
        data: JSONBody[BudgetLineCreate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> BudgetLineRead:
        """The agency's admin creates a line for their own agency; its amount is allocated at
        once. The same fiscal year, funding source and name twice is a 409."""
        return await service.create_line(conn, principal, data, request_id=request_id)

    @get(
        operation_id="listBudgetLines",
        summary="List budget lines",
        responses=problem_responses(400, 401),
    )
    async def list_lines(
        self,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        fiscal_year: FiscalYear = None,
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[BudgetLineRead]:
        """An agency sees its own lines; an operator or auditor those of the agencies in the
        regions it oversees."""
        return await service.list_lines(
            conn, principal, fiscal_year=fiscal_year, cursor=cursor, limit=limit
        )

    @get(
        "/{line_id:int}",
        operation_id="getBudgetLine",
        summary="One budget line",
        responses=problem_responses(400, 401, 404),
    )
    async def get_line(
        self,
        line_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> BudgetLineRead:
        """A line with its amount, what is reserved and spent, and what is still available."""
        return await service.get_line(conn, principal, line_id)

    @post(
        "/{line_id:int}/adjust",
        operation_id="adjustBudgetLine",
        summary="Raise or cut a budget line",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 413),
    )
    async def adjust_line(
        self,
        line_id: PathId,
        data: JSONBody[BudgetAdjust],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> BudgetLineRead:
        """The agency's admin changes the amount by ``delta_fen`` (negative: a cut), with a
        note. A cut below what is reserved and spent is a 409 that names what is available."""
        return await service.adjust_line(conn, principal, line_id, data, request_id=request_id)

    @get(
        "/{line_id:int}/ledger",
        operation_id="listBudgetLedger",
        summary="A budget line's ledger",
        responses=problem_responses(400, 401, 404),
    )
    async def list_ledger(
        self,
        line_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[LedgerEntry]:
        """Every movement of the line, oldest first: allocate, adjust, reserve, release,
        spend."""
        return await service.ledger(conn, principal, line_id, cursor=cursor, limit=limit)
