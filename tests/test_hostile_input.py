"""Reliability drill 4: hostile input gets a clear 4xx and reaches nothing unescaped.

The operations and their parameters come from the app's own OpenAPI document, so a new route is
drilled without anyone listing it here. Valid request bodies come from the authorisation
matrix's builders (tests/test_authorization_matrix.py), which already hold one allowed request
for every operation; each of their fields is then made hostile in turn.

A "clear 4xx" is an application/problem+json answer; when the input is refused as invalid (400)
the problem names the field that was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.db.pool import Pool
from emall.settings import Settings
from emall.structs import NO_NUL
from tests.helpers import token_for
from tests.test_authorization_matrix import CASES, OK
from tests.test_authorization_matrix import Request as MatrixRequest
from tests.test_search_api import drain

API = "/api/v1"
BODY_LIMIT = 2 * 1024 * 1024  # api/app.py request_max_body_size
INT64_MAX = 2**63 - 1
SQL_INJECTIONS = ("' or 1=1 --", "'; drop table users; --", '"; drop table users; --')
FILTER_INJECTIONS = ('x" OR region = "510300', ") OR (", 'x" OR brand EXISTS OR brand = "x')
WILDCARDS = ("%", "_", "\\")
HOSTILE_TEXT = (*SQL_INJECTIONS, *FILTER_INJECTIONS, *WILDCARDS, "a\x00b", "x" * 10_000)
METHODS = ("get", "post", "put", "patch", "delete")
# a valid value for each path parameter, so that the query parameters are what is judged
PATH_VALUES = {
    "code": {"/regions/": "511000", "/categories/": "A02010105"},
    "region_code": "511000",
    "category_code": "A02010105",
}


async def _spec(client: AsyncTestClient[Litestar]) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def _fill_path(path: str, operation: dict[str, Any]) -> str:
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "path":
            continue
        name = parameter["name"]
        value = PATH_VALUES.get(name, "1")
        if isinstance(value, dict):
            value = next(v for prefix, v in value.items() if prefix in path)
        path = path.replace("{" + name + "}", str(value))
    return path


def _query_parameters(operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in operation.get("parameters", []) if p["in"] == "query"]


def _options(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [schema, *schema.get("oneOf", []), *schema.get("anyOf", [])]


def _types(schema: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for option in _options(schema):
        kinds = option.get("type", [])
        found |= set(kinds if isinstance(kinds, list) else [kinds])
    return found - {"null"}


def _is_free_text(schema: dict[str, Any]) -> bool:
    """A string the API takes as it comes: no enum, pattern or format to refuse it by."""
    constrained = any(
        key in option and option[key] != NO_NUL  # no NUL: every string says so
        for option in _options(schema)
        for key in ("pattern", "enum", "format", "$ref")
    )
    return _types(schema) == {"string"} and not constrained


def _problem(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/problem+json"), (
        response.status_code,
        response.text[:300],
    )
    problem: dict[str, Any] = response.json()
    return problem


def _names_field(problem: dict[str, Any], name: str) -> bool:
    return any(name in error["field"] for error in problem.get("errors", []))


async def _admin(pool: Pool) -> dict[str, str]:
    return await token_for(pool, "admin")


async def _counts(pool: Pool) -> dict[str, int]:
    tables = ("users", "organisations", "offers", "products", "regions", "categories")
    return {t: int(await pool.fetchval(f"select count(*) from {t}")) for t in tables}


# -- query parameters -------------------------------------------------------------------------


async def test_injection_and_junk_in_every_query_parameter(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """Every query parameter of every operation gets SQL and Meilisearch filter injections,
    LIKE wildcards, a NUL byte and 10,000 characters. Constrained parameters (numbers, enums,
    dates, patterns) refuse them with a 400 naming the parameter; free text is taken as
    literal text: it matches no row and changes no table."""
    spec = await _spec(client)
    headers = await _admin(pool)
    before = await _counts(pool)
    failures: list[str] = []
    sent = 0
    for method, path, operation in _operations(spec):
        url = _fill_path(path, operation)
        if not _query_parameters(operation):
            continue
        # what the request is without the hostile parameter: a refusal for another reason
        # (no permission, a required parameter left out) may stand
        baseline = await client.request(method, url, headers=headers)
        for parameter in _query_parameters(operation):
            name, schema = parameter["name"], parameter["schema"]
            for value in HOSTILE_TEXT:
                response = await client.request(method, url, params={name: value}, headers=headers)
                sent += 1
                where = f"{method} {url}?{name}={value[:40]!r}: {response.status_code}"
                if response.status_code >= 500:
                    failures.append(f"{where} {response.text[:200]}")
                    continue
                if response.status_code >= 400:
                    problem = _problem(response)
                    if (
                        response.status_code == 400
                        and not _names_field(problem, name)
                        and response.status_code != baseline.status_code
                    ):
                        failures.append(f"{where} does not name {name}: {problem['detail'][:120]}")
                    continue
                if not _is_free_text(schema):
                    failures.append(f"{where}: accepted by a constrained parameter")
                elif method == "GET" and value != "x" * 10_000:
                    items = response.json().get("items")
                    if items:  # a literal search for an injection matches nothing
                        failures.append(f"{where}: matched {len(items)} rows")
    assert sent > 500
    assert not failures, "\n".join(failures)
    assert await _counts(pool) == before


async def test_like_wildcards_are_literal(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    headers = await _admin(pool)
    everything = await client.get(f"{API}/organisations", params={"limit": 200}, headers=headers)
    assert len(everything.json()["items"]) > 10
    for wildcard in ("%", "_", "%%", "\\%"):
        response = await client.get(f"{API}/organisations", params={"q": wildcard}, headers=headers)
        assert response.status_code == 200
        assert response.json()["items"] == [], wildcard
    # and a real fragment still matches
    found = await client.get(f"{API}/organisations", params={"q": "内江"}, headers=headers)
    assert found.json()["items"]


async def test_filter_injection_does_not_widen_a_search(
    client: AsyncTestClient[Litestar], pool: Pool, settings: Settings
) -> None:
    """The brand is the one free-text value put into a Meilisearch filter: an injected
    ``OR`` stays inside its quotes, so it matches no brand instead of every offer."""
    assert await drain(pool, settings) > 0  # the demo listings reach this test's index
    headers = await token_for(pool, "nj_buyer")
    baseline = await client.get(f"{API}/search", headers=headers)
    assert baseline.status_code == 200
    assert baseline.json()["total_estimate"] > 0
    brand = next(iter(baseline.json()["facets"]["brand"]))
    one_brand = await client.get(f"{API}/search", params={"brand": brand}, headers=headers)
    assert 0 < one_brand.json()["total_estimate"] < baseline.json()["total_estimate"]
    for injected in (
        f'{brand}" OR brand != "{brand}',
        'x" OR brand EXISTS OR brand = "x',
        'x" OR buyable_regions = "510300',
        'x\\" OR brand EXISTS OR brand = \\"x',
        "x' OR 1=1 OR brand = 'x",
        ") OR (brand EXISTS",
    ):
        response = await client.get(f"{API}/search", params={"brand": injected}, headers=headers)
        assert response.status_code == 200, (injected, response.text)
        assert response.json()["total_estimate"] == 0, injected
    # the region filter is the server's: a client-supplied region must be a plain code
    widened = await client.get(
        f"{API}/search",
        params={"delivery_region": '511000" OR delivery_regions EXISTS OR "x'},
        headers=headers,
    )
    assert widened.status_code == 400
    assert _names_field(_problem(widened), "delivery_region")


async def test_out_of_range_numbers_in_every_query_parameter(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """Huge page sizes, numbers past 2^63 and negative numbers where the document says
    they cannot be: each refused with a 400 naming the parameter."""
    spec = await _spec(client)
    headers = await _admin(pool)
    failures: list[str] = []
    checked = set()
    for method, path, operation in _operations(spec):
        for parameter in _query_parameters(operation):
            name, schema = parameter["name"], parameter["schema"]
            if "integer" not in _types(schema):
                continue
            values = [2**63, 10**30, -(2**63) - 1]
            if "maximum" in schema:
                values.append(int(schema["maximum"]) + 1)
                if schema["maximum"] < 10**9:
                    values.append(10**9)
            if "minimum" in schema:
                values.append(int(schema["minimum"]) - 1)
            for value in values:
                url = _fill_path(path, operation)
                response = await client.request(
                    method, url, params={name: str(value)}, headers=headers
                )
                checked.add(name)
                if response.status_code != 400 or not _names_field(_problem(response), name):
                    failures.append(
                        f"{method} {url}?{name}={value}: {response.status_code} {response.text[:200]}"
                    )
    assert {"limit", "page_size", "supplier_id"} <= checked
    assert not failures, "\n".join(failures)


# -- bodies -------------------------------------------------------------------------------------


def _leaves(
    value: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _replaced(value: Any, path: tuple[str | int, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


def _field_name(path: tuple[str | int, ...]) -> str:
    return next(str(step) for step in reversed(path) if isinstance(step, str))


async def _allowed_request(
    operation: str, pool: Pool
) -> tuple[MatrixRequest, dict[str, str]] | None:
    """The matrix's request for ``operation`` and the headers of an actor allowed to send it."""
    for scenario in CASES[operation].scenarios:
        allowed = sorted(actor for actor, outcome in scenario.expect.items() if outcome == OK)
        if allowed:
            request = await scenario.build(pool)
            if isinstance(request.json, dict):
                return request, await token_for(pool, allowed[0])
    return None


def _json_body_operations() -> list[str]:
    # an import's body is a file, read row by row later: test_hostile_rows_in_an_import_file
    return sorted(set(CASES) - {"createImportJob"})


async def test_hostile_values_in_every_body_field(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """Every field of a valid body for every operation, in turn: a number past 2^63 in an
    integer field must be a 400 naming it; a NUL byte or 10,000 characters in a text field must
    be a clear 4xx, never a 5xx (PostgreSQL cannot store a NUL)."""
    failures: list[str] = []
    operations = 0
    for operation in _json_body_operations():
        found = await _allowed_request(operation, pool)
        if found is None:
            continue
        base, headers = found
        operations += 1
        for path, value in list(_leaves(base.json)):
            field = _field_name(path) if any(isinstance(s, str) for s in path) else "body"
            hostile: list[Any] = []
            if isinstance(value, bool):
                hostile = ["true"]
            elif isinstance(value, int):
                hostile = [2**63, -(2**63) - 1, 10**30]
            elif isinstance(value, str):
                hostile = [value + "\x00", "x" * 10_000]
            for bad in hostile:
                request = await _allowed_request(operation, pool)  # a fresh target each time
                assert request is not None
                fresh, _ = request
                body = _replaced(fresh.json, path, bad)
                response = await client.request(
                    fresh.method, fresh.path, json=body, params=fresh.params, headers=headers
                )
                where = f"{operation} {fresh.method} {fresh.path} {field}={str(bad)[:30]!r}"
                if response.status_code >= 500:
                    failures.append(f"{where}: {response.status_code} {response.text[:300]}")
                elif isinstance(bad, int) and not isinstance(bad, bool):
                    if response.status_code != 400 or not _names_field(_problem(response), field):
                        failures.append(f"{where}: {response.status_code} {response.text[:300]}")
                elif response.status_code >= 400:
                    _problem(response)
    assert operations > 25
    assert not failures, "\n".join(failures)


NOT_JSON = (
    "text/plain",
    "application/xml",
    "text/xml",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "image/png",
    "",  # none at all
)


async def test_every_json_body_must_be_sent_as_json(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """A valid JSON body sent as text, XML, a form or an image is refused with 415 (before,
    every route read it as JSON whatever it was labelled), for every operation with a JSON body;
    the same body labelled as JSON, with or without its charset, is not."""
    failures: list[str] = []
    operations = 0
    for operation in _json_body_operations():
        found = await _allowed_request(operation, pool)
        if found is None:
            continue
        request, headers = found
        operations += 1
        content = json.dumps(request.json).encode()
        for media_type in NOT_JSON:
            response = await client.request(
                request.method,
                request.path,
                content=content,
                params=request.params,
                headers={**headers, "Content-Type": media_type},
            )
            problem = response.headers.get("content-type", "")
            if response.status_code != 415 or not problem.startswith("application/problem+json"):
                failures.append(f"{operation} as {media_type!r}: {response.status_code}")
            elif "application/json" not in response.json()["detail"]:
                failures.append(f"{operation} as {media_type!r}: 415 without naming JSON")
        labelled = await client.request(
            request.method,
            request.path,
            content=content,
            params=request.params,
            headers={**headers, "Content-Type": "application/json; charset=utf-8"},
        )
        if labelled.status_code in (415, 400) or labelled.status_code >= 500:
            failures.append(f"{operation} as JSON: {labelled.status_code} {labelled.text[:200]}")
    assert operations > 25
    assert not failures, "\n".join(failures)


async def test_an_import_accepts_only_its_file_types(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """The import's body is a file: CSV, JSON Lines or bytes named by format or filename; JSON,
    text, a form or an image is a 415 that names the types it takes."""
    headers = await token_for(pool, "nj_supplier_admin")
    for media_type in (*NOT_JSON, "application/json"):
        response = await client.post(
            f"{API}/imports",
            params={"format": "jsonl", "filename": "offers.jsonl"},
            content=b'{"supplier_sku": "X"}\n',
            headers={**headers, "Content-Type": media_type},
        )
        assert response.status_code == 415, (media_type, response.text)
        assert "text/csv" in _problem(response)["detail"]
    for media_type in ("application/x-ndjson", "application/jsonl", "application/octet-stream"):
        response = await client.post(
            f"{API}/imports",
            params={"format": "jsonl", "filename": "offers.jsonl"},
            content=b'{"supplier_sku": "X"}\n',
            headers={**headers, "Content-Type": media_type},
        )
        assert response.status_code == 202, (media_type, response.text)


async def test_negative_quantities_and_prices_are_refused(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    failures: list[str] = []
    for operation in ("putCartItem", "createOffer", "updateOffer", "createBudgetLine"):
        found = await _allowed_request(operation, pool)
        assert found is not None, operation
        base, headers = found
        for path, value in _leaves(base.json):
            field = _field_name(path)
            if not isinstance(value, int) or not any(
                word in field for word in ("quantity", "qty", "price", "stock", "amount")
            ):
                continue
            fresh, _ = await _allowed_request(operation, pool) or (base, headers)
            body = _replaced(fresh.json, path, -1)
            response = await client.request(
                fresh.method, fresh.path, json=body, params=fresh.params, headers=headers
            )
            if response.status_code != 400 or not _names_field(_problem(response), field):
                failures.append(
                    f"{operation} {field}=-1: {response.status_code} {response.text[:200]}"
                )
    assert not failures, "\n".join(failures)


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


async def test_deep_json_oversized_and_malformed_bodies(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """For every operation that takes a JSON body: JSON nested 10,000 deep, a body past the
    2 MiB limit and bytes that are not UTF-8 are each a clear 4xx."""
    spec = await _spec(client)
    headers = await _admin(pool)
    failures: list[str] = []
    bodies = 0
    for method, path, operation in _operations(spec):
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            continue
        bodies += 1
        url = _fill_path(path, operation)
        json_headers = {**headers, "Content-Type": "application/json"}
        cases = {
            "deep array": (_deep(10_000).encode(), {400}),
            "deep object": (('{"a":' * 10_000 + "1" + "}" * 10_000).encode(), {400}),
            "over 2 MiB": (b'{"name": "' + b"x" * BODY_LIMIT + b'"}', {413}),
            "bad UTF-8": (b'{"name": "\xff\xfe\xc3\x28"}', {400}),
            "truncated": (b'{"name": "x', {400}),
        }
        for label, (raw, expected) in cases.items():
            response = await client.request(method, url, content=raw, headers=json_headers)
            if response.status_code not in expected:
                failures.append(
                    f"{method} {url} {label}: {response.status_code} {response.text[:200]}"
                )
                continue
            _problem(response)
    assert bodies > 25
    assert not failures, "\n".join(failures)


async def test_deep_json_inside_a_free_form_field(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """An offer's specs are free-form JSON: 10,000 levels there must not reach PostgreSQL's
    parser (which would fail on its stack) but be refused up front."""
    found = await _allowed_request("createOffer", pool)
    assert found is not None
    base, headers = found
    assert isinstance(base.json, dict)
    depth = 10_000
    body = json.loads(json.dumps(base.json))
    body["specs"] = "__deep__"
    raw = json.dumps(body).replace('"__deep__"', '{"k":' * depth + '"x"' + "}" * depth)
    response = await client.post(
        base.path, content=raw, headers={**headers, "Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text[:300]
    _problem(response)


async def test_bad_utf8_in_query_strings_and_paths(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    spec = await _spec(client)
    headers = await _admin(pool)
    failures: list[str] = []
    for method, path, operation in _operations(spec):
        url = _fill_path(path, operation)
        for parameter in _query_parameters(operation):
            response = await client.request(
                method, f"{url}?{parameter['name']}=%FF%FE%C3%28", headers=headers
            )
            if not 400 <= response.status_code < 500:
                failures.append(f"{method} {url}?{parameter['name']}=%FF: {response.status_code}")
            else:
                _problem(response)
    for url in (f"{API}/regions/%FF%FE", f"{API}/categories/%C3%28", f"{API}/organisations/%FF"):
        response = await client.get(url, headers=headers)
        if not 400 <= response.status_code < 500:
            failures.append(f"GET {url}: {response.status_code}")
    assert not failures, "\n".join(failures)


async def test_bad_utf8_import_file_is_refused_naming_the_file(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    headers = await token_for(pool, "nj_supplier_admin")
    response = await client.post(
        f"{API}/imports",
        params={"format": "csv"},
        content=b"supplier_sku,title\n\xff\xfe,\xc3\x28\n",
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 400, response.text  # unreadable bytes: not the document's shape
    assert _names_field(_problem(response), "file")


async def test_oversized_body_without_content_length_is_refused(
    app: Litestar, client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """A chunked body announces no length; the limit still holds while it streams."""
    headers = await _admin(pool)
    chunks = [b" " * (BODY_LIMIT // 2)] * 4
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if chunks:
            return {"type": "http.request", "body": chunks.pop(), "more_body": bool(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"{API}/organisations",
        "raw_path": f"{API}/organisations".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
            (b"authorization", headers["Authorization"].encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    assert (b"content-type", b"application/problem+json") in start["headers"]
    assert chunks, "the app stopped reading once the limit was passed"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price_fen", 2**63),
        ("stock", -1),
        ("title", "a\x00b"),
        ("specs", "__deep__"),
    ],
)
async def test_hostile_rows_in_an_import_file(
    field: str, value: Any, client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """A hostile row of a bulk import is a row error naming the field; the other rows of the
    file are still saved."""
    found = await _allowed_request("createImportJob", pool)
    assert found is not None
    request, headers = found
    rows = [dict(request.json, supplier_sku=f"HOSTILE-{n}", model=f"HOSTILE-{n}") for n in range(3)]
    rows[1][field] = value
    lines = [json.dumps(row) for row in rows]
    lines[1] = lines[1].replace('"__deep__"', '{"k":' * 10_000 + "1" + "}" * 10_000)
    created = await client.post(
        request.path,
        params=request.params,
        content="\n".join(lines).encode(),
        headers={**headers, "Content-Type": "application/x-ndjson"},
    )
    assert created.status_code == 202, created.text
    job = created.json()
    for _ in range(100):
        job = (await client.get(f"{API}/imports/{job['id']}", headers=headers)).json()
        if job["status"] in ("succeeded", "failed"):
            break
        await anyio.sleep(0.05)
    assert job["status"] == "succeeded", job["failure"]
    assert [(e["row"], e["field"]) for e in job["errors"]] == [(2, field)]
    assert job["created_rows"] == 2


# -- known bugs in files this drill may not change ---------------------------------------------


@pytest.mark.parametrize("name", ["agency_id", "supplier_id"])
async def test_order_list_filters_past_int64(
    name: str, client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    response = await client.get(
        f"{API}/orders", params={name: str(2**63)}, headers=await _admin(pool)
    )
    assert response.status_code == 400
    assert _names_field(_problem(response), name)


@pytest.mark.parametrize(
    ("operation", "field"), [("checkout", "budget_line_id"), ("putCartItem", "offer_id")]
)
async def test_body_ids_past_int64(
    operation: str, field: str, client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    found = await _allowed_request(operation, pool)
    assert found is not None
    request, headers = found
    path = next(p for p, _ in _leaves(request.json) if _field_name(p) == field)
    response = await client.request(
        request.method,
        request.path,
        json=_replaced(request.json, path, 2**63),
        params=request.params,
        headers=headers,
    )
    assert response.status_code == 400
    assert _names_field(_problem(response), field)
