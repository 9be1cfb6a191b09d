"""Users of an organisation: list, create, read, change, deactivate and reactivate."""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from api.deps import AUTH, DB
from api.params import DEFAULT_LIMIT, PageCursor, PageLimit, PathId
from api.problems import problem_responses
from api.routes.identity import SECURITY
from emall.db.pool import Connection
from emall.identity import users as service
from emall.identity.user_models import UserCreate, UserRead, UserUpdate
from emall.pagination import Page
from emall.principals import Principal


class UserController(Controller):
    path = "/"
    tags = ["users"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(
        "/organisations/{organisation_id:int}/users",
        operation_id="listUsers",
        summary="List an organisation's users",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def list_users(
        self,
        organisation_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[UserRead]:
        """The organisation's users, active and deactivated, ordered by id. Pass ``next_cursor``
        back as ``cursor`` for the next page. Visible to the organisation itself and the
        platform admin; anyone else gets 404."""
        return await service.list_users(
            conn, principal, organisation_id, cursor=cursor, limit=limit
        )

    @post(
        "/organisations/{organisation_id:int}/users",
        operation_id="createUser",
        summary="Create a user in an organisation",
        responses=problem_responses(400, 401, 403, 404, 409, 413),
    )
    async def create_user(
        self,
        organisation_id: PathId,
        data: JSONBody[UserCreate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> UserRead:
        """Create an active user. Only the organisation's admin (or the platform admin) may;
        the roles must suit the organisation's kind, and a taken username is 409."""
        return await service.create_user(
            conn, principal, organisation_id, data, request_id=request_id
        )

    @get(
        "/users/{user_id:int}",
        operation_id="getUser",
        summary="Read a user",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def get_user(
        self,
        user_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> UserRead:
        """One user of the principal's organisation; a user of another organisation is 404."""
        return await service.get_user(conn, principal, user_id)

    @patch(
        "/users/{user_id:int}",
        operation_id="updateUser",
        summary="Change a user's display name or roles",
        responses=problem_responses(400, 401, 403, 404, 409, 413),
    )
    async def update_user(
        self,
        user_id: PathId,
        data: JSONBody[UserUpdate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> UserRead:
        """A partial update: only the fields in the body change. Removing the admin role from
        the organisation's last active admin is 409."""
        return await service.update_user(conn, principal, user_id, data, request_id=request_id)

    @post(
        "/users/{user_id:int}/deactivate",
        operation_id="deactivateUser",
        summary="Deactivate a user",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def deactivate_user(
        self,
        user_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> UserRead:
        """Deactivate a user: their tokens and API keys stop working at once. Deactivating
        yourself, or the organisation's last active admin, is 409. Repeating it changes
        nothing."""
        return await service.deactivate_user(conn, principal, user_id, request_id=request_id)

    @post(
        "/users/{user_id:int}/reactivate",
        operation_id="reactivateUser",
        summary="Reactivate a user",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404),
    )
    async def reactivate_user(
        self,
        user_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> UserRead:
        """Reactivate a deactivated user, with their old password and roles. Repeating it
        changes nothing."""
        return await service.reactivate_user(conn, principal, user_id, request_id=request_id)
