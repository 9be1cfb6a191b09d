"""The OpenAPI document: 3.1, every operation named and its errors documented."""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

METHODS = {"get", "post", "put", "patch", "delete"}
ROOT_PATHS = {"/health", "/ready"}


async def _spec(client: AsyncTestClient[Litestar]) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


async def test_spec_is_openapi_31_with_both_security_schemes(
    client: AsyncTestClient[Litestar],
) -> None:
    spec = await _spec(client)
    assert spec["openapi"].startswith("3.1")
    assert set(spec["components"]["securitySchemes"]) == {"BearerToken", "ApiKey"}


async def test_every_operation_has_an_id_and_documented_problems(
    client: AsyncTestClient[Litestar], app: Litestar
) -> None:
    spec = await _spec(client)
    ids: list[str] = []
    for path, item in spec["paths"].items():
        assert path in ROOT_PATHS or path.startswith("/api/v1/"), path
        for method, operation in item.items():
            if method not in METHODS:
                continue
            ids.append(operation["operationId"])
            errors = {
                code: r for code, r in operation["responses"].items() if code.startswith(("4", "5"))
            }
            if path != "/health":
                assert errors, f"{method.upper()} {path} documents no error response"
            for code, response in errors.items():
                assert "application/problem+json" in response["content"], (path, code)
            if operation.get("security"):
                assert "401" in errors, (
                    f"{method.upper()} {path} is protected but does not document 401"
                )
            if operation.get("requestBody"):
                assert "400" in errors, (
                    f"{method.upper()} {path} takes a body but does not document 400"
                )
                assert "413" in errors, (
                    f"{method.upper()} {path} takes a body but does not document 413 "
                    "(bodies over the app's limit)"
                )
    assert len(ids) == len(set(ids)), "operation ids must be unique"
    # every route of the app is in the document
    routed = {
        (re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path), method.lower())
        for route in app.routes
        for method in getattr(route, "methods", set())
        if method.lower() in METHODS and not route.path.startswith("/schema")
    }
    documented = {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }
    assert routed == documented
