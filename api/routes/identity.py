"""Log in, who am I, and API keys."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from api.deps import AUTH, DB
from api.params import PathId
from api.problems import problem_responses
from api.state import AppState
from emall.db.pool import Connection
from emall.identity import service
from emall.identity.models import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    TokenRequest,
    TokenResponse,
)
from emall.principals import Principal

SECURITY: list[dict[str, list[str]]] = [{"BearerToken": []}, {"ApiKey": []}]


class AuthController(Controller):
    path = "/auth"
    tags = ["identity"]

    @post(
        "/token",
        operation_id="createToken",
        summary="Log in and get a bearer token",
        status_code=200,
        responses=problem_responses(400, 401, 429, 413),
    )
    async def create_token(
        self, data: JSONBody[TokenRequest], state: AppState, request: Request[Any, Any, Any]
    ) -> TokenResponse:
        """Exchange a username and password for a bearer token (JWT).

        Attempts are throttled per username and client address: past the limit (5 in 5
        minutes by default) that address gets 429 with Retry-After, whatever the password,
        while the user still logs in from elsewhere. Checks of one username from every address
        are slowed past a ceiling (20 by default): each further one waits a delay doubling up
        to a minute, answered meanwhile with 429 and Retry-After.
        """
        settings = state.settings
        address = request.client.host if request.client else None
        return await service.log_in(state.pool, data, settings.auth, address)


class MeController(Controller):
    path = "/me"
    tags = ["identity"]
    dependencies = AUTH
    security = SECURITY

    @get(operation_id="getMe", summary="The acting principal", responses=problem_responses(401))
    async def get_me(self, principal: NamedDependency[Principal]) -> Principal:
        """The principal the credentials stand for: user, organisation, region and roles."""
        return principal


class ApiKeyController(Controller):
    path = "/api-keys"
    tags = ["identity"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @post(
        operation_id="createApiKey",
        summary="Create an API key (shown once)",
        responses=problem_responses(400, 401, 403, 413),
    )
    async def create_api_key(
        self,
        data: JSONBody[ApiKeyCreate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> ApiKeyCreated:
        """Create a key for a partner-city system. The key is in this response and never again;
        only its hash is stored. Only an organisation admin may create keys."""
        return await service.create_api_key(conn, principal, data, request_id=request_id)

    @get(operation_id="listApiKeys", summary="List API keys", responses=problem_responses(401))
    async def list_api_keys(
        self, principal: NamedDependency[Principal], conn: NamedDependency[Connection]
    ) -> list[ApiKeyRead]:
        """An admin sees the organisation's keys; anyone else sees their own."""
        return await service.list_api_keys(conn, principal)

    @delete(
        "/{key_id:int}",
        operation_id="revokeApiKey",
        summary="Revoke an API key",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404),
    )
    async def revoke_api_key(
        self,
        key_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> ApiKeyRead:
        """Revoke a key at once. Revoking a revoked key changes nothing."""
        return await service.revoke_api_key(conn, principal, key_id, request_id=request_id)
