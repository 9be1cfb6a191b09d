"""Categories (品目) and attribute templates (参数模板).

Reads are public reference data, no credentials needed; only operators and the platform admin
maintain templates.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter

from api.deps import AUTH, DB
from api.params import DEFAULT_LIMIT, CategoryFilter, PageCursor, PageLimit, TextFilter
from api.problems import problem_responses
from api.routes.identity import SECURITY
from api.state import AppState
from emall.catalogue import service, templates
from emall.catalogue.models import (
    CategoryDetail,
    CategoryNode,
    CategoryRead,
    TemplateRead,
    TemplateWrite,
)
from emall.db.pool import Connection
from emall.pagination import Page
from emall.principals import Principal
from emall.structs import CATEGORY_CODE

_CODE_PATTERN = CATEGORY_CODE

# A malformed code is a 400 naming ``code``; a well-formed unknown one is a 404.
CategoryCodePath = Annotated[
    str,
    PathParameter(pattern=_CODE_PATTERN, description="9-character code, e.g. A02010105"),
]
CategoryLevel = Annotated[int | None, QueryParameter(ge=1, le=4, description="1-4")]
TreeRoot = Annotated[
    str | None,
    QueryParameter(
        pattern=_CODE_PATTERN,
        description="the root category; leave out for the whole catalogue (A 货物, B 工程, C 服务)",
    ),
]
TreeDepth = Annotated[
    int,
    QueryParameter(
        ge=1, le=service.MAX_TREE_DEPTH, description="levels below the root, 1-3 (default 2)"
    ),
]


class CategoryController(Controller):
    path = "/categories"
    tags = ["catalogue"]

    @get(
        operation_id="listCategories",
        summary="Search categories",
        responses=problem_responses(400),
    )
    async def list_categories(
        self,
        state: AppState,
        q: TextFilter = None,
        level: CategoryLevel = None,
        parent_code: CategoryFilter = None,
        leaf: FromQuery[bool | None] = None,
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[CategoryRead]:
        """Categories whose Chinese name contains ``q`` (e.g. 打印机), by level, parent and
        leafness (only leaf categories take offers), in code order."""
        return await service.list_categories(
            state.pool,
            None,
            q=q,
            level=level,
            parent_code=parent_code,
            leaf=leaf,
            cursor=cursor,
            limit=limit,
        )

    @get(
        "/tree",
        operation_id="getCategoryTree",
        summary="The category tree",
        responses=problem_responses(400, 404),
    )
    async def get_tree(
        self, state: AppState, root: TreeRoot = None, depth: TreeDepth = 2
    ) -> list[CategoryNode]:
        """The tree below ``root``, ``depth`` levels deep: a one-element list holding the root.
        Without a root: the three parts A 货物, B 工程 and C 服务 with the top-level categories
        below them. A node at the last level has no children listed, even when not a leaf."""
        return await service.tree(state.pool, None, root, depth)

    @get(
        "/{code:str}",
        operation_id="getCategory",
        summary="One category with its ancestors",
        responses=problem_responses(400, 404),
    )
    async def get_category(self, state: AppState, code: CategoryCodePath) -> CategoryDetail:
        """A category, its ancestors (nearest first) and how many children it has."""
        return await service.get_category(state.pool, None, code)

    @get(
        "/{code:str}/children",
        operation_id="listCategoryChildren",
        summary="Children of a category",
        responses=problem_responses(400, 404),
    )
    async def children(
        self,
        state: AppState,
        code: CategoryCodePath,
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[CategoryRead]:
        """The direct children of a category, in code order (none for a leaf)."""
        return await service.children(state.pool, None, code, cursor=cursor, limit=limit)

    @get(
        "/{code:str}/template",
        operation_id="getAttributeTemplate",
        summary="The attribute template of a category",
        responses=problem_responses(400, 404),
    )
    async def get_template(self, state: AppState, code: CategoryCodePath) -> TemplateRead:
        """The specification fields offers in this category give. A category without a template
        (any existing category, leaf or not) answers 200 with an empty one: ``attributes`` is
        ``[]``, ``version`` 0, ``updated_at`` and ``updated_by`` null. An unknown category code
        is 404; a malformed one 400."""
        return await templates.get_template(state.pool, None, code)

    @put(
        "/{code:str}/template",
        operation_id="putAttributeTemplate",
        summary="Create or replace the attribute template of a leaf category",
        dependencies={**AUTH, **DB},
        security=SECURITY,
        responses=problem_responses(400, 401, 403, 404, 413),
    )
    async def put_template(
        self,
        code: CategoryCodePath,
        data: JSONBody[TemplateWrite],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> TemplateRead:
        """Operators and the platform admin only. The category must be a leaf. Each change
        bumps ``version``; putting the same attributes again changes nothing."""
        return await templates.put_template(conn, principal, code, data, request_id=request_id)


class TemplateController(Controller):
    path = "/templates"
    tags = ["catalogue"]

    @get(
        operation_id="listAttributeTemplates",
        summary="List attribute templates",
        responses=problem_responses(400),
    )
    async def list_templates(
        self, state: AppState, cursor: PageCursor = None, limit: PageLimit = DEFAULT_LIMIT
    ) -> Page[TemplateRead]:
        """Every category's template, in category code order."""
        return await templates.list_templates(state.pool, None, cursor=cursor, limit=limit)
