"""Dependencies: the request's transaction, the acting principal, the request id.

Each request that changes data gets one connection and one transaction through a yield
dependency: it commits when the handler and response succeed and rolls back otherwise.
Nested ``conn.transaction()`` blocks inside the library become savepoints.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from api.request_id import request_id_of
from emall.db.pool import Connection, Pool
from emall.errors import NotAuthenticated
from emall.identity.models import Principal
from emall.identity.service import resolve_principal
from emall.settings import Settings


async def provide_transaction(state: State) -> AsyncGenerator[Connection, None]:
    pool: Pool = state.pool
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            yield conn
        except BaseException:
            await tx.rollback()
            raise
        else:
            await tx.commit()


def _credential(request: Request[Any, Any, Any]) -> str | None:
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() not in {"bearer", "apikey"} or not value.strip():
            raise NotAuthenticated(
                "Authorization 头格式应为 'Bearer <令牌>' (expected 'Authorization: Bearer <token>')"
            )
        return value.strip()
    api_key = request.headers.get("x-api-key")
    return api_key.strip() if api_key else None


async def provide_principal(request: Request[Any, Any, Any], state: State) -> Principal:
    credential = _credential(request)
    if credential is None:
        raise NotAuthenticated("请先登录 (credentials required: a bearer token or an API key)")
    settings: Settings = state.settings
    return await resolve_principal(state.pool, credential, settings.auth.jwt_secret)


def provide_request_id(request: Request[Any, Any, Any]) -> str | None:
    return request_id_of(request)


DB = {"conn": Provide(provide_transaction)}
AUTH = {
    "principal": Provide(provide_principal),
    "request_id": Provide(provide_request_id, sync_to_thread=False),
}
