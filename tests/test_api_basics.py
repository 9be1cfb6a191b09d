"""The API base: health, readiness, problem+json errors, request ids."""

from __future__ import annotations

import socket
from pathlib import Path

from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from api.app import create_app
from emall.settings import Settings
from tests.helpers import login, make_settings

PROBLEM = "application/problem+json"


async def test_health_answers_without_dependencies(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_checks_both_components(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json()["components"] == {
        "postgres": "up",
        "meilisearch": "up",
        "search_index": "up",
    }


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_ready_names_meilisearch_when_it_is_down(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, f"http://127.0.0.1:{_closed_port()}", "k" * 32, tmp_path)
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["components"] == ["meilisearch", "search_index"]
    assert "meilisearch" in body["detail"]


async def test_ready_names_meilisearch_when_the_key_is_wrong(
    database_url: str, meili: tuple[str, str], tmp_path: Path
) -> None:
    settings = make_settings(database_url, meili[0], "wrong-key-" + "x" * 22, tmp_path)
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    assert response.json()["components"] == ["meilisearch", "search_index"]


async def test_login_then_me_returns_the_principal(client: AsyncTestClient[Litestar]) -> None:
    headers = await login(client, "nj_buyer")
    response = await client.get("/api/v1/me", headers=headers)
    assert response.status_code == 200, response.text
    me = response.json()
    assert me["username"] == "nj_buyer"
    assert me["organisation_kind"] == "agency"
    assert me["organisation_name"] == "内江市教育局"
    assert me["region_code"] == "511000"
    assert me["roles"] == ["agency_buyer"]
    assert me["auth_method"] == "token"


async def test_malformed_body_names_the_field(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post("/api/v1/auth/token", json={"username": 5, "password": "x"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 400
    assert [e["field"] for e in body["errors"]] == ["username"]
    assert "str" in body["errors"][0]["reason"]


async def test_missing_and_unknown_fields_are_named(client: AsyncTestClient[Litestar]) -> None:
    missing = await client.post("/api/v1/auth/token", json={"username": "nj_buyer"})
    assert missing.status_code == 400
    assert "password" in [e["field"] for e in missing.json()["errors"]] or "password" in str(
        missing.json()["errors"]
    )
    unknown = await client.post(
        "/api/v1/auth/token", json={"username": "nj_buyer", "password": "x", "role": "admin"}
    )
    assert unknown.status_code == 400
    assert "role" in str(unknown.json()["errors"])


async def test_invalid_json_is_a_problem(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post(
        "/api/v1/auth/token", content=b'{"username": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["errors"][0]["field"] == "body"


async def test_bad_token_is_401(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/api/v1/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_no_credentials_is_401(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["type"] == "urn:emall:problem:not_authenticated"


async def test_unknown_route_and_method_are_problems(client: AsyncTestClient[Litestar]) -> None:
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(PROBLEM)
    wrong_method = await client.put("/api/v1/me")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"].startswith(PROBLEM)


async def test_unexpected_error_leaks_nothing_and_carries_request_id(
    settings: Settings, caplog: object
) -> None:
    @get("/boom", operation_id="boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app = create_app(settings, extra_route_handlers=[boom])
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    request_id = response.headers["x-request-id"]
    assert body["request_id"] == request_id
    assert request_id in body["detail"]


async def test_request_id_is_echoed(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = await client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["x-request-id"] != "bad id\twith spaces"
    assert len(generated.headers["x-request-id"]) == 32
