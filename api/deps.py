"""Dependencies: the request's transaction, the acting principal, the request id.

Each request that changes data gets one connection and one transaction through a yield
dependency: it commits when the handler and response succeed and rolls back otherwise.
Nested ``conn.transaction()`` blocks inside the library become savepoints. A read (GET, HEAD)
gets its connection without BEGIN and COMMIT: under READ COMMITTED each statement reads its own
snapshot anyway, so the transaction bought nothing but two round trips.

The transaction depends on the principal, so a request with missing or bad credentials is
refused before it takes a connection. (Litestar resolves sibling dependencies together and,
when one of them fails, never runs the cleanup of a yield dependency that already started: the
connection would stay checked out, mid-transaction, until garbage collection. A burst of bad
tokens could then drain the pool.)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from litestar import Request
from litestar.di import NamedDependency, Provide

from api.request_id import request_id_of
from api.state import AppState
from emall.db.pool import Connection, Pool
from emall.errors import NotAuthenticated
from emall.identity.service import resolve_principal
from emall.principals import Principal

if TYPE_CHECKING:
    from asyncpg import Record
    from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger("emall.api")


_READS = frozenset({"GET", "HEAD"})


async def provide_transaction(
    request: Request[Any, Any, Any], state: AppState, principal: NamedDependency[Principal]
) -> AsyncGenerator[Connection, None]:
    del principal  # resolved first: see the module docstring
    pool: Pool = state.pool
    conn = await pool.acquire()
    if request.method in _READS:
        try:
            yield conn
        finally:
            await _release(pool, conn)
        return
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            yield conn
        except BaseException:
            # When PostgreSQL dropped the connection (a restart, a crash) there is nothing to
            # roll back, and asyncpg has already taken the connection back: the rollback raises.
            # The request's own error says what happened (a 503), so it is the one raised.
            try:
                await tx.rollback()
            except Exception as rollback_error:
                log.info("rollback skipped, the connection is gone: %r", rollback_error)
            raise
        else:
            await tx.commit()
    finally:
        await _release(pool, conn)


async def _release(pool: Pool, conn: PoolConnectionProxy[Record]) -> None:
    """Give the connection back to the pool. One that PostgreSQL broke mid-operation cannot be
    reset: asyncpg closes it (the pool opens a new one later) and raises, which must not replace
    the request's outcome: the commit happened, or its own error is the one raised."""
    try:
        await pool.release(conn)
    except Exception as release_error:
        log.info("connection closed instead of reused: %r", release_error)


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


async def provide_principal(request: Request[Any, Any, Any], state: AppState) -> Principal:
    credential = _credential(request)
    if credential is None:
        raise NotAuthenticated("请先登录 (credentials required: a bearer token or an API key)")
    settings = state.settings
    return await resolve_principal(
        state.pool, credential, settings.auth.jwt_secret, state.principals
    )


def provide_request_id(request: Request[Any, Any, Any]) -> str | None:
    return request_id_of(request)


DB = {"conn": Provide(provide_transaction)}  # always used together with AUTH
AUTH = {
    "principal": Provide(provide_principal),
    "request_id": Provide(provide_request_id, sync_to_thread=False),
}
