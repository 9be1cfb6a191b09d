"""The OpenAPI document: 3.1, every operation named and its errors documented."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.params import ParameterKwarg
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from api.app import create_app
from emall.pagination import encode_cursor
from emall.search.models import SearchRequest
from emall.structs import MAX_ID, REGION_CODE
from tests.helpers import make_settings, token_for

METHODS = {"get", "post", "put", "patch", "delete"}
ROOT_PATHS = {"/health", "/ready"}
UNUSED = "http://127.0.0.1:9"  # the document is built without a database or Meilisearch


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


# -- the document states what the server enforces -----------------------------------------------
#
# Built once from an app that never starts: the document needs no database.


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Litestar, dict[str, Any]]:
    state = tmp_path_factory.mktemp("openapi")
    settings = make_settings(
        "postgresql://unused@/unused?host=/nonexistent", UNUSED, "k" * 16, state
    )
    app = create_app(settings)
    return app, app.openapi_schema.to_schema()


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from _walk(child)


def _patterns(document: dict[str, Any]) -> set[str]:
    return {node["pattern"] for node in _walk(document) if isinstance(node.get("pattern"), str)}


def _strings_to_try() -> list[str]:
    """Each blank either engine knows (and a few it does not), a NUL, other scripts' digits and
    a trailing newline, around the kinds of text the patterns take."""
    odd = [chr(c) for c in range(0x3001) if chr(c).isspace()]
    odd += ["\ufeff", "\u180e", "\u200b", "\x00", "\u0661", "\uff11", "é", "\n"]
    bases = ["", "a", "511000", "A02010105", "http://x", "a@b.c", "abc-def", "12345", "a_b"]
    bases += [str(MAX_ID), "x y"]
    found = set(bases)
    for base in bases:
        for c in odd:
            found |= {base + c, c + base, base + c + "z", base[:1] + c + base[1:]}
    return sorted(found)


def test_every_pattern_means_the_same_to_python_and_to_ecma(
    built: tuple[Litestar, dict[str, Any]],
) -> None:
    """The server checks patterns with Python's re; a client and a fuzzer read the document's
    as ECMA-262 regexes. Each pattern must accept exactly the same strings in both (node runs
    the ECMA side: the quick start needs npm, so node is there)."""
    patterns = sorted(_patterns(built[1]))
    assert len(patterns) >= 10, patterns
    strings = _strings_to_try()
    node = shutil.which("node")
    assert node, "node is needed to read the patterns as ECMA-262 regexes"
    script = """
const [patterns, strings] = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(patterns.map(p => strings.map(s => new RegExp(p, "u").test(s)))));
"""
    ecma = json.loads(
        subprocess.run(
            [node, "-e", script],
            input=json.dumps([patterns, strings]),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    differ = {
        pattern: [
            s for s, js in zip(strings, answers, strict=True) if js != bool(re.search(pattern, s))
        ][:5]
        for pattern, answers in zip(patterns, ecma, strict=True)
    }
    assert not {p: d for p, d in differ.items() if d}, "patterns Python and ECMA read apart"


_BOUNDS = {
    "ge": "minimum",
    "gt": "exclusiveMinimum",
    "le": "maximum",
    "lt": "exclusiveMaximum",
    "min_length": "minLength",
    "max_length": "maxLength",
    "pattern": "pattern",
}


def _options(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [schema, *schema.get("oneOf", []), *schema.get("anyOf", [])]


def test_every_parameter_states_the_bounds_the_server_checks(
    built: tuple[Litestar, dict[str, Any]],
) -> None:
    """Each bound of a query, path or header parameter (which Litestar enforces) is in the
    document, 0 included (Litestar leaves out a bound that is falsy)."""
    app, document = built
    missing: list[str] = []
    checked = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in document["paths"]:
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                operation = document["paths"][route.path_format][method.lower()]
                params = {p["name"]: p for p in operation.get("parameters", [])}
                dependencies = handler.resolve_dependencies()
                for name, field in handler.parsed_fn_signature.parameters.items():
                    kwarg = field.kwarg_definition
                    if not isinstance(kwarg, ParameterKwarg) or name in dependencies:
                        continue
                    named = kwarg.query or kwarg.header or kwarg.name or name
                    options = _options(params[named]["schema"])
                    for attr, key in _BOUNDS.items():
                        bound = getattr(kwarg, attr)
                        if bound is None:
                            continue
                        checked += 1
                        if not any(option.get(key) == bound for option in options):
                            missing.append(f"{method} {route.path_format} {named}: {key} {bound}")
    assert checked > 50, checked
    assert not missing, missing


def _component(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def _request_schemas(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for media, body in operation.get("requestBody", {}).get("content", {}).items():
                yield f"{method.upper()} {path} {media}", body["schema"]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return _component(document, ref.rsplit("/", 1)[1]) if ref else schema


def _request_nodes(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node a request body may hold, however deep, through every reference."""
    seen: set[str] = set()
    stack = list(_request_schemas(document))
    assert stack
    while stack:
        label, schema = stack.pop()
        for node in _walk(schema):
            ref = node.get("$ref")
            if ref and ref not in seen:
                seen.add(ref)
                stack.append((ref, _resolve(document, node)))
            yield label, node
    assert len(seen) > 20, seen


def test_request_objects_refuse_unknown_fields(built: tuple[Litestar, dict[str, Any]]) -> None:
    """Every object a request body holds, however deep, says that unknown fields are refused
    (msgspec refuses them: emall.structs.Struct)."""
    open_objects = [
        f"{label}: {node.get('title')}"
        for label, node in _request_nodes(built[1])
        if node.get("type") == "object"
        and "properties" in node
        and node.get("additionalProperties") is not False
    ]
    assert not open_objects, open_objects


def test_cursors_are_stated_as_encode_cursor_writes_them(
    built: tuple[Litestar, dict[str, Any]],
) -> None:
    from api.params import CURSOR  # imported here: the old main had none

    document = built[1]
    cursors = [
        p["schema"]
        for _, _, operation in _operations(document)
        for p in operation.get("parameters", [])
        if p["name"] == "cursor"
    ]
    assert len(cursors) > 10
    for schema in cursors:
        assert schema["pattern"] == CURSOR and schema["maxLength"] == 512, schema
    for values in [(1,), (MAX_ID,), ("2026-12-07T06:50:00+00:00", 42), ("品目", -1, None)]:
        written = encode_cursor(*values)
        assert re.search(CURSOR, written) and len(written) <= 512, written
    for foreign in ["", "a b", "a+b/c=", "abc\n", "游标"]:
        assert not re.search(CURSOR, foreign), foreign


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def test_region_codes_refuse_what_names_no_region(built: tuple[Litestar, dict[str, Any]]) -> None:
    """Every region code the API takes, as a parameter or a field, has the GB/T 2260 pattern,
    which refuses 000000 and the like before any lookup."""
    document = built[1]
    found = [
        f"{method} {path} {p['name']}"
        for method, path, operation in _operations(document)
        for p in operation.get("parameters", [])
        if "region" in p["name"]
        and not any(o.get("pattern") == REGION_CODE for o in _options(p["schema"]))
        and "integer" not in json.dumps(p["schema"])
    ]
    assert not found, found
    fields = [
        (f"{label}.{name}", prop)
        for label, node in _request_nodes(document)
        for name, prop in (node.get("properties") or {}).items()
        if name.endswith("region_code")
    ]
    assert len(fields) > 3
    for name, prop in fields:
        patterns = {node.get("pattern") for node in _walk(prop)} - {None}
        assert patterns == {REGION_CODE}, (name, prop)
    for bad in ["000000", "012345", "51100", "5110000", "511000\n", "５１１０００"]:
        assert not re.search(REGION_CODE, bad), bad
    assert re.search(REGION_CODE, "511000")


def _takes_nul(schema: dict[str, Any]) -> bool:
    """Whether a string with a NUL in it matches ``schema`` (a parameter's bounds sit beside
    its oneOf; a body's on the string itself)."""
    options = _options(schema)
    texts = [o for o in options if o.get("type") == "string" and "enum" not in o]
    if not texts or any("format" in o for o in texts):
        return False
    patterns = [o["pattern"] for o in options if "pattern" in o]
    return not any(re.search(p, "a\x00b") is None for p in patterns)


def test_every_text_the_api_takes_refuses_nul(built: tuple[Litestar, dict[str, Any]]) -> None:
    """A string parameter or body field has a pattern that refuses NUL, as the server refuses
    NUL in any string (or it is an enum or has a format)."""
    document = built[1]
    free = [
        f"{method} {path} {p['name']}"
        for method, path, operation in _operations(document)
        for p in operation.get("parameters", [])
        if _takes_nul(p["schema"])
    ]
    free += [
        f"{label}: {json.dumps(node)[:100]}"
        for label, node in _request_nodes(document)
        if node.get("type") == "string" and _takes_nul(node)
    ]
    assert not free, free


def test_integer_map_keys_are_stated_as_msgspec_reads_them(
    built: tuple[Litestar, dict[str, Any]],
) -> None:
    document = built[1]
    for struct, field in [("AcceptRequest", "accepted"), ("ConfirmRequest", "quantities")]:
        schema = _component(document, struct)["properties"][field]
        pattern = schema["propertyNames"]["pattern"]
        for key in ["1", "42", str(MAX_ID)]:
            assert re.search(pattern, key), (field, key)
        for key in ["0", "01", "-1", "+1", "1.0", " 1", "1\n", str(MAX_ID + 1), "x"]:
            assert not re.search(pattern, key), (field, key)
        assert schema["additionalProperties"]["minimum"] == 0


def test_offer_update_states_its_price_bounds(built: tuple[Litestar, dict[str, Any]]) -> None:
    prop = _component(built[1], "OfferUpdate")["properties"]["price_fen"]
    assert prop["exclusiveMinimum"] == 0 and prop["maximum"] == 9_000_000_000_000_000, prop


def test_path_ids_are_bounded(built: tuple[Litestar, dict[str, Any]]) -> None:
    """An id past the bound is a 400 before it reaches PostgreSQL, and the document says so."""
    document = built[1]
    ids = [
        (f"{method} {path} {p['name']}", p["schema"])
        for method, path, operation in _operations(document)
        for p in operation.get("parameters", [])
        if p["in"] == "path" and p["schema"].get("type") == "integer"
    ]
    assert len(ids) > 20
    for label, schema in ids:
        assert (schema.get("minimum"), schema.get("maximum")) == (1, MAX_ID), label


def test_problem_warnings_are_typed(built: tuple[Litestar, dict[str, Any]]) -> None:
    """A client reads the warnings checkout needs acknowledged as CheckoutWarning objects."""
    document = built[1]
    warnings = _component(document, "Problem")["properties"]["warnings"]
    items = [o["items"] for o in _options(warnings) if o.get("type") == "array"]
    assert items == [{"$ref": "#/components/schemas/CheckoutWarning"}], warnings
    assert _component(document, "CheckoutWarning")["properties"]


def test_search_parameters_state_search_requests_constraints(
    built: tuple[Litestar, dict[str, Any]],
) -> None:
    """The search route decodes its query into SearchRequest; the document's parameters state
    the same bounds, so nothing the document allows is refused by the Struct (or the reverse)."""
    _, spec = built
    params = {p["name"]: p["schema"] for p in spec["paths"]["/api/v1/search"]["get"]["parameters"]}
    _, definitions = msgspec.json.schema_components([SearchRequest])
    fields = definitions["SearchRequest"]["properties"]
    keys = ("maxLength", "minLength", "pattern", "minimum", "maximum", "enum")
    named = {"policy_tags": "policy_tag"}

    def bounds(schema: dict[str, Any]) -> dict[str, Any]:
        for option in schema.get("anyOf", schema.get("oneOf", [])):
            if option.get("type") != "null":  # Litestar states the bounds beside the oneOf
                rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
                return bounds({**option, **rest})
        if schema.get("type") == "array":
            return {"items": bounds(schema["items"])}
        if "$ref" in schema:
            return bounds(definitions[schema["$ref"].rsplit("/", 1)[1]])
        found = {k: schema[k] for k in keys if k in schema}
        if "enum" in found:
            found["enum"] = sorted(found["enum"])
        return found

    assert {named.get(f, f) for f in fields} <= set(params)
    for field, schema in fields.items():
        assert bounds(params[named.get(field, field)]) == bounds(schema), field


async def test_the_search_query_is_decoded_with_its_constraints(
    client: AsyncTestClient[Litestar], pool: Any
) -> None:
    headers = await token_for(pool, "nj_buyer")
    refused = await client.get("/api/v1/search", params={"brand": ""}, headers=headers)
    assert refused.status_code == 400, refused.text
    assert any(e["field"].endswith("brand") for e in refused.json()["errors"]), refused.text
    found = await client.get("/api/v1/search", params={"brand": "联想"}, headers=headers)
    assert found.status_code == 200, found.text
