"""Categories (品目) and attribute templates (参数模板): the packaged catalogue, lookups, the
tree, templates over HTTP, and the spec rules offers are checked with."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.catalogue.models import AttributeSpec, TemplateWrite
from emall.catalogue.service import category_chain, require_leaf_category
from emall.catalogue.templates import check_specs, check_template, load_template
from emall.db.pool import Pool
from emall.errors import ValidationFailed
from tests.helpers import token_for

CATALOGUE_CSV = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "emall"
    / "data"
    / "procurement_catalogue_2022.csv"
)
DESKTOP = "A02010105"
TEMPLATE_PATH = f"/api/v1/categories/{DESKTOP}/template"

Row = tuple[str, str, str | None, int, str]


def _csv_rows() -> list[Row]:
    with CATALOGUE_CSV.open(encoding="utf-8", newline="") as handle:
        return [
            (r["code"], r["name"], r["parent"] or None, int(r["level"]), r["description"])
            for r in csv.DictReader(handle)
        ]


_ROWS = _csv_rows()
_BY_CODE = {r[0]: r for r in _ROWS}
_CHILDREN: dict[str | None, list[str]] = defaultdict(list)
for _row in sorted(_ROWS):
    _CHILDREN[_row[2]].append(_row[0])


def _name(code: str) -> str:
    return _BY_CODE[code][1]


def _fields(response: Any) -> list[str]:
    assert response.headers["content-type"].startswith("application/problem+json")
    return [e["field"] for e in response.json()["errors"]]


def _desktop_template() -> dict[str, Any]:
    return {
        "attributes": [
            {"key": "cpu", "name": "CPU 型号", "type": "text", "required": True},
            {
                "key": "memory_gb",
                "name": "内存",
                "type": "integer",
                "unit": "GB",
                "required": True,
                "min": 4,
                "max": 512,
            },
            {"key": "storage_gb", "name": "存储", "type": "integer", "unit": "GB"},
            {
                "key": "os",
                "name": "操作系统",
                "type": "enum",
                "allowed_values": ["国产操作系统", "Windows", "其他"],
            },
            {
                "key": "screen_inch",
                "name": "屏幕尺寸",
                "type": "decimal",
                "unit": "英寸",
                "min": 10,
                "max": 40,
            },
        ]
    }


def _attributes() -> list[AttributeSpec]:
    return TemplateWrite(
        attributes=[AttributeSpec(**a) for a in _desktop_template()["attributes"]]
    ).attributes


async def _without_templates(pool: Pool, *codes: str) -> int:
    """Remove any (demo) templates of ``codes``; the id of the last audit event so far."""
    await pool.execute(
        "delete from attribute_templates where category_code = any($1::text[])", list(codes)
    )
    return int(await pool.fetchval("select coalesce(max(id), 0) from audit_events"))


async def _walk(client: AsyncTestClient[Litestar], path: str, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        pages.append([c["code"] for c in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


# -- the packaged catalogue -----------------------------------------------------------------------


async def test_categories_table_equals_the_packaged_csv(pool: Pool) -> None:
    assert len(_ROWS) == 4301
    rows = await pool.fetch(
        "select code, name, parent_code, level, description, is_leaf from categories"
    )
    actual = {(r["code"], r["name"], r["parent_code"], r["level"], r["description"]) for r in rows}
    assert len(rows) == len(actual) == 4301
    assert actual == set(_ROWS), sorted(actual ^ set(_ROWS))[:10]
    parents = {r[2] for r in _ROWS if r[2]}
    leaves = {r["code"] for r in rows if r["is_leaf"]}
    assert leaves == {r[0] for r in _ROWS} - parents
    assert DESKTOP in leaves and "A02010100" not in leaves


async def test_category_with_ancestors_needs_no_credentials(
    client: AsyncTestClient[Litestar],
) -> None:
    response = await client.get(f"/api/v1/categories/{DESKTOP}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["code"], body["name"], body["parent_code"], body["level"]) == (
        DESKTOP,
        "台式计算机",
        "A02010100",
        4,
    )
    assert body["is_leaf"] is True
    assert body["children_count"] == 0
    assert [(a["code"], a["name"], a["level"]) for a in body["ancestors"]] == [
        ("A02010100", "计算机", 3),
        ("A02010000", _name("A02010000"), 2),
        ("A02000000", "设备", 1),
    ]
    assert [a["name"] for a in body["ancestors"]] == [
        _name("A02010100"),
        _name("A02010000"),
        _name("A02000000"),
    ]
    assert all(a["is_leaf"] is False for a in body["ancestors"])

    computers = (await client.get("/api/v1/categories/A02010100")).json()
    assert computers["children_count"] == len(_CHILDREN["A02010100"]) == 10
    assert computers["is_leaf"] is False
    top = (await client.get("/api/v1/categories/A02000000")).json()
    assert top["ancestors"] == [] and top["parent_code"] is None
    # descriptions come through as printed
    office = (await client.get("/api/v1/categories/A01010100")).json()
    assert office["description"] == _BY_CODE["A01010100"][4] != ""


async def test_category_chain_and_require_leaf(pool: Pool) -> None:
    assert await category_chain(pool, DESKTOP) == (
        DESKTOP,
        "A02010100",
        "A02010000",
        "A02000000",
    )
    assert await category_chain(pool, "A99999999") == ()
    assert await category_chain(pool, "nonsense") == ()

    leaf = await require_leaf_category(pool, DESKTOP, "category_code")
    assert (leaf.code, leaf.name, leaf.is_leaf) == (DESKTOP, "台式计算机", True)
    with pytest.raises(ValidationFailed) as unknown:
        await require_leaf_category(pool, "A99999999", "items[0].category_code")
    assert [e.field for e in unknown.value.errors] == ["items[0].category_code"]
    assert "未知的品目代码" in unknown.value.errors[0].reason
    with pytest.raises(ValidationFailed) as branch:
        await require_leaf_category(pool, "A02010100", "category_code")
    assert [e.field for e in branch.value.errors] == ["category_code"]
    reason = branch.value.errors[0].reason
    assert reason.startswith("只能选择末级品目")
    assert "A02010100 计算机 has 10 children" in reason


async def test_search_by_name(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/api/v1/categories", params={"q": "打印机", "limit": 200})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    codes = [c["code"] for c in items]
    assert "A02021000" in codes
    assert codes == sorted(r[0] for r in _ROWS if "打印机" in r[1])
    assert all("打印机" in c["name"] for c in items)
    padded = await client.get("/api/v1/categories", params={"q": "  台式计算机 "})
    assert [c["code"] for c in padded.json()["items"]] == [DESKTOP]


async def test_like_wildcards_are_literal(client: AsyncTestClient[Litestar]) -> None:
    for q in ("%", "_", "打%", "_印机", "\\"):
        response = await client.get("/api/v1/categories", params={"q": q})
        assert response.status_code == 200, (q, response.text)
        assert response.json()["items"] == [], q


async def test_level_parent_and_leaf_filters(client: AsyncTestClient[Litestar]) -> None:
    top = await client.get("/api/v1/categories", params={"level": 1, "limit": 200})
    assert [c["code"] for c in top.json()["items"]] == sorted(r[0] for r in _ROWS if r[3] == 1)
    assert len(top.json()["items"]) == 43

    leaves = await client.get(
        "/api/v1/categories", params={"parent_code": "A02010000", "leaf": "true", "limit": 200}
    )
    expected_leaves = [c for c in _CHILDREN["A02010000"] if not _CHILDREN[c]]
    assert [c["code"] for c in leaves.json()["items"]] == expected_leaves
    assert all(c["is_leaf"] for c in leaves.json()["items"])

    branches = await client.get(
        "/api/v1/categories", params={"parent_code": "A02010000", "leaf": "false", "limit": 200}
    )
    expected_branches = [c for c in _CHILDREN["A02010000"] if _CHILDREN[c]]
    assert [c["code"] for c in branches.json()["items"]] == expected_branches
    assert "A02010100" in expected_branches
    assert sorted(expected_leaves + expected_branches) == _CHILDREN["A02010000"]

    named_leaves = await client.get("/api/v1/categories", params={"q": "计算机", "leaf": "true"})
    assert DESKTOP in [c["code"] for c in named_leaves.json()["items"]]
    assert "A02010100" not in [c["code"] for c in named_leaves.json()["items"]]


async def test_bad_filters_are_400_naming_the_field(client: AsyncTestClient[Litestar]) -> None:
    for level in (0, 5, "x"):
        response = await client.get("/api/v1/categories", params={"level": level})
        assert response.status_code == 400, (level, response.text)
        assert any("level" in f for f in _fields(response))
    parent = await client.get("/api/v1/categories", params={"parent_code": "A99999999"})
    assert parent.status_code == 422  # well-formed, but no such category
    assert _fields(parent) == ["parent_code"]
    leaf = await client.get("/api/v1/categories", params={"leaf": "maybe"})
    assert leaf.status_code == 400
    assert any("leaf" in f for f in _fields(leaf))
    cursor = await client.get("/api/v1/categories", params={"cursor": "not-a-cursor!"})
    assert cursor.status_code == 400
    assert _fields(cursor) == ["query.cursor"]


async def test_children_walk_every_page_with_limit_7(client: AsyncTestClient[Litestar]) -> None:
    expected = _CHILDREN["A02010100"]
    assert DESKTOP in expected
    pages = await _walk(client, "/api/v1/categories/A02010100/children", 7)
    assert [len(p) for p in pages] == [7, 3]
    assert [code for page in pages for code in page] == expected

    whole = await _walk(client, "/api/v1/categories/A02000000/children", 200)
    assert [code for page in whole for code in page] == _CHILDREN["A02000000"]

    leaf = await client.get(f"/api/v1/categories/{DESKTOP}/children")
    assert leaf.json() == {"items": [], "next_cursor": None}


async def test_unknown_and_malformed_codes(client: AsyncTestClient[Litestar]) -> None:
    for suffix in ("", "/children", "/template"):
        unknown = await client.get(f"/api/v1/categories/A99999999{suffix}")
        assert unknown.status_code == 404, (suffix, unknown.text)
        assert unknown.headers["content-type"].startswith("application/problem+json")
        for bad in ("A0201010", "A020101050", "D02010105", "a02010105", "台式计算机"):
            malformed = await client.get(f"/api/v1/categories/{bad}{suffix}")
            assert malformed.status_code == 400, (bad, suffix, malformed.text)
            assert any("code" in f for f in _fields(malformed))


# -- the tree -------------------------------------------------------------------------------------


def _expected_tree(code: str, depth: int) -> dict[str, Any]:
    return {
        "code": code,
        "name": _name(code),
        "is_leaf": not _CHILDREN[code],
        "children": [_expected_tree(c, depth - 1) for c in _CHILDREN[code]] if depth else [],
    }


async def test_tree_below_a_root(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/api/v1/categories/tree", params={"root": "A02010000", "depth": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == [_expected_tree("A02010000", 2)]
    computers = next(n for n in body[0]["children"] if n["code"] == "A02010100")
    assert [n["code"] for n in computers["children"]] == _CHILDREN["A02010100"]
    assert all(n["children"] == [] for n in computers["children"])

    shallow = (
        await client.get("/api/v1/categories/tree", params={"root": "A02010000", "depth": 1})
    ).json()
    assert shallow == [_expected_tree("A02010000", 1)]
    # a node at the last level lists no children, but says it is not a leaf
    assert any(not n["is_leaf"] and n["children"] == [] for n in shallow[0]["children"])

    leaf = (await client.get("/api/v1/categories/tree", params={"root": DESKTOP})).json()
    assert leaf == [{"code": DESKTOP, "name": "台式计算机", "is_leaf": True, "children": []}]


async def test_tree_of_the_whole_catalogue(client: AsyncTestClient[Litestar]) -> None:
    body = (await client.get("/api/v1/categories/tree", params={"depth": 1})).json()
    assert [(n["code"], n["name"], n["is_leaf"]) for n in body] == [
        ("A", "货物", False),
        ("B", "工程", False),
        ("C", "服务", False),
    ]
    for node in body:
        tops = [r[0] for r in sorted(_ROWS) if r[3] == 1 and r[0].startswith(node["code"])]
        assert [n["code"] for n in node["children"]] == tops
        assert all(n["children"] == [] for n in node["children"])

    default = (await client.get("/api/v1/categories/tree")).json()
    goods = default[0]["children"]
    assert goods[1] == _expected_tree("A02000000", 1)

    deepest = await client.get("/api/v1/categories/tree", params={"depth": 3})
    assert deepest.status_code == 200

    def count(nodes: list[dict[str, Any]]) -> int:
        return sum(1 + count(n["children"]) for n in nodes)

    assert count(deepest.json()) == 3 + sum(1 for r in _ROWS if r[3] <= 3)


async def test_tree_refuses_bad_depth_and_root(client: AsyncTestClient[Litestar]) -> None:
    for depth in (0, 4, "x"):
        response = await client.get("/api/v1/categories/tree", params={"depth": depth})
        assert response.status_code == 400, (depth, response.text)
        assert any("depth" in f for f in _fields(response))
    malformed = await client.get("/api/v1/categories/tree", params={"root": "A0201"})
    assert malformed.status_code == 400
    assert any("root" in f for f in _fields(malformed))
    unknown = await client.get("/api/v1/categories/tree", params={"root": "A99999999"})
    assert unknown.status_code == 404


# -- templates over HTTP --------------------------------------------------------------------------


async def test_operator_puts_a_template_and_each_change_bumps_the_version(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    last_event = await _without_templates(pool, DESKTOP, "A02010104")
    operator = await token_for(pool, "nj_operator")
    missing = await client.get(TEMPLATE_PATH)
    assert missing.status_code == 200, missing.text
    assert missing.json()["version"] == 0

    created = await client.put(TEMPLATE_PATH, json=_desktop_template(), headers=operator)
    assert created.status_code == 200, created.text
    body = created.json()
    assert (body["category_code"], body["category_name"], body["version"]) == (
        DESKTOP,
        "台式计算机",
        1,
    )
    assert [a["key"] for a in body["attributes"]] == [
        "cpu",
        "memory_gb",
        "storage_gb",
        "os",
        "screen_inch",
    ]
    memory = body["attributes"][1]
    assert (memory["unit"], memory["required"], memory["min"], memory["max"]) == (
        "GB",
        True,
        4,
        512,
    )
    operator_id = await pool.fetchval("select id from users where username = 'nj_operator'")
    assert body["updated_by"] == operator_id

    # public read, no credentials
    read = await client.get(TEMPLATE_PATH)
    assert read.status_code == 200
    assert read.json() == body

    # the same attributes again change nothing
    same = await client.put(TEMPLATE_PATH, json=_desktop_template(), headers=operator)
    assert same.status_code == 200
    assert same.json()["version"] == 1

    changed = _desktop_template()
    changed["attributes"][2]["required"] = True
    zg = await token_for(pool, "zg_operator")
    updated = await client.put(TEMPLATE_PATH, json=changed, headers=zg)
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == 2
    assert updated.json()["attributes"][2]["required"] is True

    admin = await token_for(pool, "admin")
    again = await client.put(
        TEMPLATE_PATH,
        json={"attributes": [{"key": "cpu", "name": "CPU 型号", "type": "text"}]},
        headers=admin,
    )
    assert again.json()["version"] == 3

    events = await pool.fetch(
        "select action, actor_user_id, before, after, request_id from audit_events "
        "where entity_type = 'attribute_template' and entity_id = $1 and id > $2 order by id",
        DESKTOP,
        last_event,
    )
    assert [e["action"] for e in events] == ["template.updated"] * 3
    assert events[0]["actor_user_id"] == operator_id
    assert events[0]["before"] is None
    assert events[0]["after"]["version"] == 1
    assert len(events[0]["after"]["attributes"]) == 5
    assert events[1]["before"]["version"] == 1
    assert events[1]["before"]["attributes"][2]["required"] is False
    assert events[1]["after"]["version"] == 2
    assert events[1]["after"]["attributes"][2]["required"] is True
    assert events[2]["before"]["version"] == 2
    assert [a["key"] for a in events[2]["after"]["attributes"]] == ["cpu"]
    assert all(e["request_id"] for e in events)

    assert [a.key for a in await load_template(pool, DESKTOP)] == ["cpu"]
    assert await load_template(pool, "A02010104") == []


async def test_a_category_without_a_template_answers_an_empty_one(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """A leaf without a template, and a category above the leaves, answer 200 with an empty
    template (a client builds its form from it without a special case for 404); an unknown code
    is still 404."""
    await _without_templates(pool, DESKTOP)
    for code in (DESKTOP, "A02010100"):
        response = await client.get(f"/api/v1/categories/{code}/template")
        assert response.status_code == 200, (code, response.text)
        assert response.json() == {
            "category_code": code,
            "category_name": _name(code),
            "attributes": [],
            "version": 0,
            "updated_at": None,
            "updated_by": None,
        }
    unknown = await client.get("/api/v1/categories/A99999999/template")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")


async def test_list_templates(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    codes = ("A02010104", DESKTOP, "A02010108")
    await _without_templates(pool, *codes)
    operator = await token_for(pool, "nj_operator")
    before = await pool.fetch("select category_code from attribute_templates")
    expected = sorted({r["category_code"] for r in before} | set(codes))
    for code in ("A02010108", DESKTOP, "A02010104"):
        response = await client.put(
            f"/api/v1/categories/{code}/template", json=_desktop_template(), headers=operator
        )
        assert response.status_code == 200, response.text
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/api/v1/templates", params=params)).json()
        assert len(body["items"]) <= 2
        seen += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [t["category_code"] for t in seen] == expected
    ours = {t["category_code"]: t for t in seen if t["category_code"] in codes}
    assert {code: t["category_name"] for code, t in ours.items()} == {c: _name(c) for c in codes}
    assert all(t["version"] == 1 and len(t["attributes"]) == 5 for t in ours.values())
    bad = await client.get("/api/v1/templates", params={"cursor": "%%%"})
    assert bad.status_code == 400
    assert _fields(bad) == ["query.cursor"]
    forged = await client.get("/api/v1/templates", params={"cursor": "bm90IGpzb24"})
    assert forged.status_code == 422
    assert _fields(forged) == ["cursor"]


async def test_template_refusals_name_the_field(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    last_event = await _without_templates(pool, DESKTOP)
    operator = await token_for(pool, "nj_operator")

    branch = await client.put(
        "/api/v1/categories/A02010100/template", json=_desktop_template(), headers=operator
    )
    assert branch.status_code == 422, branch.text
    assert _fields(branch) == ["category_code"]
    assert "末级品目" in branch.json()["errors"][0]["reason"]

    unknown = await client.put(
        "/api/v1/categories/A99999999/template", json=_desktop_template(), headers=operator
    )
    assert unknown.status_code == 404

    malformed = await client.put(
        "/api/v1/categories/A0201/template", json=_desktop_template(), headers=operator
    )
    assert malformed.status_code == 400

    def with_attribute(index: int, **changes: Any) -> dict[str, Any]:
        body = _desktop_template()
        body["attributes"][index].update(changes)
        for key, value in changes.items():
            if value is None:
                del body["attributes"][index][key]
        return body

    cases: list[tuple[dict[str, Any], list[str]]] = [
        (with_attribute(3, allowed_values=None), ["attributes[3].allowed_values"]),
        (with_attribute(3, allowed_values=[]), ["attributes[3].allowed_values"]),
        (with_attribute(3, allowed_values=["其他", "其他"]), ["attributes[3].allowed_values"]),
        (with_attribute(0, allowed_values=["x"]), ["attributes[0].allowed_values"]),
        (with_attribute(2, key="memory_gb"), ["attributes[2].key"]),
        (with_attribute(0, min=1), ["attributes[0].min"]),
        (with_attribute(4, min=50), ["attributes[4].max"]),
        (with_attribute(1, name="   "), ["attributes[1].name"]),
        (
            with_attribute(3, allowed_values=None, min=1),
            ["attributes[3].allowed_values", "attributes[3].min"],
        ),
    ]
    for body, fields in cases:  # each well-formed, each refused by a rule of templates
        response = await client.put(TEMPLATE_PATH, json=body, headers=operator)
        assert response.status_code == 422, (fields, response.text)
        assert _fields(response) == fields, response.text

    # refused by the types alone
    for body, fragment in [
        (with_attribute(0, key="CPU"), "attributes[0].key"),
        (with_attribute(0, key="cpu\n"), "attributes[0].key"),
        (with_attribute(0, key="a" * 41), "attributes[0].key"),
        (with_attribute(1, type="float"), "attributes[1].type"),
        (with_attribute(1, name="名" * 41), "attributes[1].name"),
        (with_attribute(1, colour="red"), "attributes[1].colour"),
        ({"attributes": []}, "attributes"),
        ({"attributes": [_desktop_template()["attributes"][0]] * 51}, "attributes"),
        ({}, "attributes"),
    ]:
        response = await client.put(TEMPLATE_PATH, json=body, headers=operator)
        assert response.status_code == 400, (fragment, response.text)
        assert any(fragment in f for f in _fields(response)), (fragment, response.text)

    assert (await client.get(TEMPLATE_PATH)).json()["version"] == 0  # nothing stored
    assert (
        await pool.fetchval(
            "select count(*) from audit_events where action = 'template.updated' and id > $1",
            last_event,
        )
        == 0
    )


async def test_only_operators_and_the_platform_admin_maintain_templates(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    await _without_templates(pool, DESKTOP)
    for username in ("nj_buyer", "nj_auditor", "nj_supplier_admin"):
        refused = await client.put(
            TEMPLATE_PATH, json=_desktop_template(), headers=await token_for(pool, username)
        )
        assert refused.status_code == 403, (username, refused.text)
        assert "交易中心" in refused.json()["detail"]
    anonymous = await client.put(TEMPLATE_PATH, json=_desktop_template())
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(TEMPLATE_PATH)).json()["version"] == 0  # nothing stored


# -- check_template and check_specs (pure) --------------------------------------------------------


def test_the_desktop_template_is_acceptable() -> None:
    assert check_template(TemplateWrite(attributes=_attributes())) == []


def test_valid_specs_give_no_errors() -> None:
    attributes = _attributes()
    full = {
        "cpu": "龙芯 3A6000",
        "memory_gb": 16,
        "storage_gb": 512,
        "os": "国产操作系统",
        "screen_inch": 23.8,
    }
    assert check_specs(attributes, full) == []
    assert check_specs(attributes, {"cpu": "i5-12400", "memory_gb": 4}) == []
    assert check_specs(attributes, {"cpu": "x", "memory_gb": 512, "screen_inch": "15.6"}) == []
    assert check_specs(attributes, {"cpu": "x", "memory_gb": 8, "screen_inch": 10}) == []
    assert check_specs(attributes, {"cpu": "x", "memory_gb": 8, "screen_inch": 40.0}) == []


def test_missing_required_attributes() -> None:
    errors = check_specs(_attributes(), {})
    assert [e.field for e in errors] == ["specs.cpu", "specs.memory_gb"]
    assert all(e.reason.startswith("缺少必填参数") for e in errors)
    assert "required" in errors[0].reason
    nulls = check_specs(_attributes(), {"cpu": None, "memory_gb": 8, "storage_gb": None})
    assert [e.field for e in nulls] == ["specs.cpu", "specs.storage_gb"]
    assert nulls[0].reason.startswith("缺少必填参数")
    assert "null" in nulls[1].reason


def test_unknown_keys_are_refused() -> None:
    errors = check_specs(
        _attributes(), {"cpu": "x", "memory_gb": 8, "colour": "黑色", "颜色": "黑"}
    )
    assert [e.field for e in errors] == ["specs.colour", "specs.颜色"]
    assert "unknown attribute" in errors[0].reason
    assert errors[0].reason.startswith("参数模板中没有该参数")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("memory_gb", True),
        ("memory_gb", 8.0),
        ("memory_gb", 8.5),
        ("memory_gb", "8"),
        ("storage_gb", False),
        ("screen_inch", True),
        ("screen_inch", "15,6"),
        ("screen_inch", "大约15"),
        ("screen_inch", "1e3"),
        ("screen_inch", ""),
        ("screen_inch", [15.6]),
        ("cpu", 3),
        ("cpu", ""),
        ("cpu", "   "),
        ("cpu", "x" * 201),
        ("cpu", {"model": "x"}),
        ("os", "Linux"),
        ("os", 1),
        ("os", "windows"),
    ],
)
def test_type_mismatches(key: str, value: object) -> None:
    specs: dict[str, object] = {"cpu": "i5", "memory_gb": 8, key: value}
    errors = check_specs(_attributes(), specs)
    assert [e.field for e in errors] == [f"specs.{key}"], (key, value)
    assert "(" in errors[0].reason and not errors[0].reason.startswith("(")


def test_booleans_and_text_limits() -> None:
    attributes = [
        AttributeSpec(key="energy_saving", name="节能认证", type="boolean", required=True),
        AttributeSpec(key="note", name="备注", type="text"),
    ]
    assert check_specs(attributes, {"energy_saving": False, "note": "x" * 200}) == []
    errors = check_specs(attributes, {"energy_saving": "是", "note": "x" * 201})
    assert [e.field for e in errors] == ["specs.energy_saving", "specs.note"]
    assert check_specs(attributes, {"energy_saving": 1})[0].field == "specs.energy_saving"


def test_min_and_max() -> None:
    attributes = _attributes()
    low = check_specs(attributes, {"cpu": "x", "memory_gb": 2, "screen_inch": "9.9"})
    assert [e.field for e in low] == ["specs.memory_gb", "specs.screen_inch"]
    assert low[0].reason.startswith("「内存」不能小于 4GB")
    assert "at least 4" in low[0].reason
    assert "10英寸" in low[1].reason
    high = check_specs(attributes, {"cpu": "x", "memory_gb": 1024, "screen_inch": 40.5})
    assert [e.field for e in high] == ["specs.memory_gb", "specs.screen_inch"]
    assert "at most 512" in high[0].reason
    huge = check_specs(attributes, {"cpu": "x", "memory_gb": 10**400})
    assert [e.field for e in huge] == ["specs.memory_gb"]
    infinite = check_specs(attributes, {"cpu": "x", "memory_gb": 8, "screen_inch": "9" * 400})
    assert [e.field for e in infinite] == ["specs.screen_inch"]


def test_many_errors_at_once_under_another_field_name() -> None:
    errors = check_specs(
        _attributes(),
        {"memory_gb": "很多", "storage_gb": -1.5, "os": "DOS", "screen_inch": 99, "gpu": "x"},
        field="items[2].specs",
    )
    assert [e.field for e in errors] == [
        "items[2].specs.cpu",
        "items[2].specs.memory_gb",
        "items[2].specs.storage_gb",
        "items[2].specs.os",
        "items[2].specs.screen_inch",
        "items[2].specs.gpu",
    ]


def test_without_a_template_specs_are_a_flat_object_of_scalars() -> None:
    assert check_specs([], {}) == []
    assert check_specs([], {"颜色": "黑色", "count": 3, "weight": 1.5, "new": True}) == []
    errors = check_specs([], {"ok": "x", "list": [1], "nested": {"a": 1}, "nothing": None})
    assert [e.field for e in errors] == ["specs.list", "specs.nested", "specs.nothing"]
    assert check_specs([], {"nan": float("nan")})[0].field == "specs.nan"
    for not_an_object in (["a"], "text", 3, None):
        refused = check_specs([], not_an_object)
        assert [e.field for e in refused] == ["specs"]
        assert [e.field for e in check_specs(_attributes(), not_an_object)] == ["specs"]
