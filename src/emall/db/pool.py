"""The asyncpg pool, with msgspec as the json/jsonb codec, and the transaction helper.

Nested ``transaction()`` calls on one connection become savepoints (asyncpg does this itself).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import msgspec

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
else:
    # asyncpg's classes are generic only in its stubs; at run time (where Litestar reads handler
    # signatures) the names stand for the plain classes, and a pooled connection is a proxy.
    Connection = Any
    Pool = asyncpg.Pool

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def _encode_json(value: Any) -> str:
    return _encoder.encode(value).decode()


def _decode_json(value: str) -> Any:
    return _decoder.decode(value)


async def init_connection(conn: Connection) -> None:
    """Register msgspec for json and jsonb on a new connection."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=_encode_json, decoder=_decode_json, format="text"
        )


# A new connection that PostgreSQL does not answer (a frozen or overloaded server) fails after
# this long: asyncpg's own default is 60 s, and a request would hang that long before its 503.
CONNECT_TIMEOUT_SECONDS = 3.0


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    application_name: str = "emall",
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
) -> Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        server_settings={"application_name": application_name, "timezone": "UTC"},
        command_timeout=60,
        timeout=connect_timeout,
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[Connection]:
    """Acquire a connection and run the block in one transaction (commit, or roll back on error)."""
    async with pool.acquire() as conn, conn.transaction():
        yield conn
