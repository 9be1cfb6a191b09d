"""Idempotency keys: a retried request with the same key and body gets the first answer.

The key is per user. Its row is written in the transaction of the change it protects, so a
request that failed leaves no key behind and may simply be retried; concurrent requests with one
key are serialised by an advisory lock on it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from emall.db.pool import Connection
from emall.ordering.errors import IdempotencyMismatch
from emall.principals import Principal


def request_hash(operation: str, body: Any) -> str:
    return hashlib.sha256(operation.encode() + b"\0" + msgspec.json.encode(body)).hexdigest()


async def replay(
    conn: Connection, principal: Principal, key: str, operation: str, digest: str
) -> tuple[int, Any] | None:
    """The stored (status, response) of this key, or None when it is new. Call first, inside the
    transaction; a key reused with another request is refused."""
    await conn.execute(
        "select pg_advisory_xact_lock(hashtextextended('emall.idempotency:' || $1::bigint || ':' || $2, 0))",
        principal.user_id,
        key,
    )
    row = await conn.fetchrow(
        "select operation, request_hash, status_code, response from idempotency_keys where user_id = $1 and key = $2",
        principal.user_id,
        key,
    )
    if row is None:
        return None
    if row["operation"] != operation or row["request_hash"] != digest:
        raise IdempotencyMismatch(
            "该幂等键已用于不同的请求 (this Idempotency-Key was used with a different request)"
        )
    return row["status_code"], row["response"]


async def remember(
    conn: Connection,
    principal: Principal,
    key: str,
    operation: str,
    digest: str,
    status: int,
    response: Any,
) -> None:
    await conn.execute(
        """
        insert into idempotency_keys (user_id, key, operation, request_hash, status_code, response)
        values ($1, $2, $3, $4, $5, $6)
        """,
        principal.user_id,
        key,
        operation,
        digest,
        status,
        msgspec.to_builtins(response),
    )
