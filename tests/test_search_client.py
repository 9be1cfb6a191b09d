"""The Meilisearch client sends Accept-Encoding: identity (gzip costs ~44 ms per search here)."""

from __future__ import annotations

import httpx

from emall.search.client import create_search_client, search_is_available


async def test_client_asks_for_identity_encoding_on_the_wire(meili: tuple[str, str]) -> None:
    seen: list[str | None] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request.headers.get("accept-encoding"))

    client = create_search_client(meili[0], meili[1])
    client.http_client.event_hooks["request"].append(record)
    try:
        assert await search_is_available(client)
        await client.get_version()
        response = await client.http_client.get("/health")
    finally:
        await client.aclose()
    assert seen
    assert all(value == "identity" for value in seen)
    assert response.headers.get("content-encoding") is None


async def test_one_connection_pool_is_reused(meili: tuple[str, str]) -> None:
    client = create_search_client(meili[0], meili[1])
    try:
        for _ in range(5):
            assert await search_is_available(client)
        pool = client.http_client._transport._pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 1
    finally:
        await client.aclose()
