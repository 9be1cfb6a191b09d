"""Idempotency-Key handling for state-changing routes: a retry with the same key and body gets
the first answer, a key reused with another request is refused (422).

The key's row is written in the request's transaction (see ``emall.ordering.idempotency``), so a
request that failed leaves nothing behind and can be retried as it was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Response
from litestar.params import HeaderParameter

from emall.db.pool import Connection
from emall.ordering import idempotency
from emall.principals import Principal
from emall.structs import NO_NUL

T = TypeVar("T")

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=NO_NUL,
        description="makes a retry safe: the same key and body give the same result; "
        "the same key with another request answers 422",
    ),
]


async def idempotent(
    conn: Connection,
    principal: Principal,
    key: str | None,
    operation: str,
    body: Any,
    run: Callable[[], Awaitable[T]],
    result_type: type[T],
    status_code: int = 200,
) -> Response[T]:
    """Run ``run`` once per (user, key); ``operation`` names the call and its target."""
    if key is None:
        return Response(await run(), status_code=status_code)
    digest = idempotency.request_hash(operation, body)
    stored = await idempotency.replay(conn, principal, key, operation, digest)
    if stored is not None:
        replayed = msgspec.json.decode(msgspec.json.encode(stored[1]), type=result_type)
        return Response(replayed, status_code=stored[0], headers={"Idempotent-Replayed": "true"})
    result = await run()
    await idempotency.remember(conn, principal, key, operation, digest, status_code, result)
    return Response(result, status_code=status_code)
