"""Organisations: the directory, registration, profiles, contacts and qualifications."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.db.pool import Pool
from emall.organisations.uscc import USCC_ALPHABET, uscc_check_char
from tests.helpers import login

BASE = "/api/v1/organisations"
NJ_SUPPLIER = "内江川南数码科技有限公司"


def _uscc(division: str, serial: int) -> str:
    body = f"91{division}MA{serial:06d}0"
    return body + uscc_check_char(body)


def _one_char_changed(uscc: str, index: int = 10) -> str:
    ch = uscc[index]
    replacement = USCC_ALPHABET[(USCC_ALPHABET.index(ch) + 1) % 10]  # another digit
    return uscc[:index] + replacement + uscc[index + 1 :]


def _fields(response: Any) -> list[str]:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return [e["field"] for e in response.json()["errors"]]


async def _all(
    client: AsyncTestClient[Litestar], headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(BASE, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def _org_id(pool: Pool, name: str) -> int:
    org_id = await pool.fetchval("select id from organisations where name = $1", name)
    assert org_id is not None, name
    return int(org_id)


def _supplier(name: str, region: str, serial: int, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "supplier",
        "name": name,
        "region_code": region,
        "uscc": _uscc(region, serial),
        "sme_size": "small",
        **extra,
    }


# The directory ----------------------------------------------------------------------------------


async def test_directory_filters_by_kind_region_and_name(
    client: AsyncTestClient[Litestar],
) -> None:
    headers = await login(client, "nj_buyer")
    everyone = await _all(client, headers)
    assert len(everyone) == 30
    assert [o["id"] for o in everyone] == sorted(o["id"] for o in everyone)

    suppliers = await _all(client, headers, kind="supplier")
    assert len(suppliers) == 20
    assert all(o["kind"] == "supplier" and o["uscc"] for o in suppliers)

    neijiang = await _all(client, headers, region_code="511000")
    names = {o["name"] for o in neijiang}
    assert "内江市市中区人民政府办公室" in names  # in 511002, a county of Neijiang
    assert "自贡市卫生健康委员会" not in names
    assert {o["region_code"] for o in neijiang} == {"511000", "511002"}

    agencies = await _all(client, headers, kind="agency", region_code="510300")
    assert {o["name"] for o in agencies} == {"自贡市卫生健康委员会", "自贡市公安局", "富顺县财政局"}
    fushun = next(o for o in agencies if o["region_code"] == "510322")
    assert fushun["region_name"] == "富顺县"

    found = await _all(client, headers, q="川南")
    assert {o["name"] for o in found} == {NJ_SUPPLIER, "自贡川南纸业有限公司"}
    assert await _all(client, headers, q="%") == []
    assert await _all(client, headers, q="内江_") == []
    both = await _all(client, headers, q="家具", kind="supplier", region_code="510300")
    assert [o["name"] for o in both] == ["自贡宏达家具有限公司"]

    one = await client.get(f"{BASE}/{suppliers[0]['id']}", headers=headers)
    assert one.status_code == 200
    assert one.json() == suppliers[0]
    assert (await client.get(f"{BASE}/999999", headers=headers)).status_code == 404


async def test_directory_pages(client: AsyncTestClient[Litestar]) -> None:
    headers = await login(client, "zg_supplier_admin")
    whole = await _all(client, headers, kind="supplier")
    pages: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"kind": "supplier", "limit": 7}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get(BASE, params=params, headers=headers)).json()
        pages.append(len(body["items"]))
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [7, 7, 6]
    paged = await _all(client, headers, kind="supplier", limit=7)
    assert paged == whole


async def test_directory_refuses_bad_parameters(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get(BASE)).status_code == 401
    headers = await login(client, "nj_buyer")
    region = await client.get(BASE, params={"region_code": "999999"}, headers=headers)
    assert region.status_code == 422  # well-formed, but no such region
    assert _fields(region) == ["region_code"]
    kind = await client.get(BASE, params={"kind": "bank"}, headers=headers)
    assert kind.status_code == 400
    assert any("kind" in f for f in _fields(kind))
    for limit in (0, 201):
        response = await client.get(BASE, params={"limit": limit}, headers=headers)
        assert response.status_code == 400
        assert any("limit" in f for f in _fields(response))
    cursor = await client.get(BASE, params={"cursor": "garbage"}, headers=headers)
    assert cursor.status_code == 422
    assert _fields(cursor) == ["cursor"]


# Registration -----------------------------------------------------------------------------------


async def test_operator_registers_a_supplier_whose_admin_can_log_in(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    operator = await login(client, "nj_operator")
    body = _supplier(
        "内江东兴新材料有限公司",
        "511011",
        1,
        contact_phone="0832-2222222",
        address="内江市东兴区汉渝大道",
        admin={
            "username": "DX_Admin",
            "display_name": "东兴新材料管理员",
            "password": "long-enough-1",
        },
    )
    created = await client.post(BASE, json=body, headers=operator)
    assert created.status_code == 201, created.text
    org = created.json()
    assert (org["kind"], org["name"], org["region_code"], org["region_name"]) == (
        "supplier",
        "内江东兴新材料有限公司",
        "511011",
        "东兴区",
    )
    assert org["uscc"] == body["uscc"]
    assert (org["sme_size"], org["contact_phone"], org["address"]) == (
        "small",
        "0832-2222222",
        "内江市东兴区汉渝大道",
    )

    token = await client.post(
        "/api/v1/auth/token", json={"username": "dx_admin", "password": "long-enough-1"}
    )
    assert token.status_code == 200, token.text
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["username"] == "dx_admin"
    assert me.json()["roles"] == ["supplier_admin"]
    assert me.json()["organisation_id"] == org["id"]
    assert me.json()["organisation_kind"] == "supplier"

    actions = await pool.fetch(
        "select action, entity_type, region_code, actor_user_id from audit_events "
        "where (entity_type = 'organisation' and entity_id = $1) "
        "   or (entity_type = 'user' and after->>'organisation_id' = $1) order by id",
        str(org["id"]),
    )
    assert [(a["action"], a["entity_type"], a["region_code"]) for a in actions] == [
        ("organisation.created", "organisation", "511011"),
        ("user.created", "user", "511011"),
    ]
    operator_id = await pool.fetchval("select id from users where username = 'nj_operator'")
    assert {a["actor_user_id"] for a in actions} == {operator_id}

    # the USCC is normalised: lower case and blanks around it are accepted
    lower = _supplier("内江市中新科技有限公司", "511002", 2)
    lower["uscc"] = f"  {lower['uscc'].lower()} "
    normalised = await client.post(BASE, json=lower, headers=operator)
    assert normalised.status_code == 201, normalised.text
    assert normalised.json()["uscc"] == _uscc("511002", 2)


async def test_uscc_is_checked(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    operator = await login(client, "nj_operator")
    before = await pool.fetchval("select count(*) from organisations")

    valid = _uscc("511000", 3)
    for index in (0, 4, 10, 17):
        bad = _supplier("内江错码公司", "511000", 3, uscc=_one_char_changed(valid, index))
        response = await client.post(BASE, json=bad, headers=operator)
        assert response.status_code == 422, (index, response.text)
        assert _fields(response) == ["uscc"]

    missing = _supplier("内江无码公司", "511000", 4)
    del missing["uscc"]
    response = await client.post(BASE, json=missing, headers=operator)
    assert response.status_code == 422
    assert _fields(response) == ["uscc"]
    null = await client.post(BASE, json={**missing, "uscc": None}, headers=operator)
    assert null.status_code == 422
    assert _fields(null) == ["uscc"]
    short = await client.post(BASE, json={**missing, "uscc": valid[:17]}, headers=operator)
    assert short.status_code == 422  # normalised first (blanks, case), then checked
    assert _fields(short) == ["uscc"]

    assert await pool.fetchval("select count(*) from organisations") == before

    # an agency needs none
    agency = await client.post(
        BASE,
        json={"kind": "agency", "name": "内江市东兴区财政局", "region_code": "511011"},
        headers=operator,
    )
    assert agency.status_code == 201
    assert agency.json()["uscc"] is None


async def test_duplicates_are_409(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    operator = await login(client, "nj_operator")
    existing = await pool.fetchval("select uscc from organisations where name = $1", NJ_SUPPLIER)
    same_uscc = await client.post(
        BASE, json=_supplier("另一家公司", "511000", 5, uscc=existing), headers=operator
    )
    assert same_uscc.status_code == 409
    assert "uscc" in same_uscc.json()["detail"]

    same_name = await client.post(BASE, json=_supplier(NJ_SUPPLIER, "511000", 6), headers=operator)
    assert same_name.status_code == 409

    taken = await client.post(
        BASE,
        json=_supplier(
            "内江新公司",
            "511000",
            7,
            admin={"username": "nj_buyer", "display_name": "重名", "password": "long-enough-1"},
        ),
        headers=operator,
    )
    assert taken.status_code == 409
    # nothing of it was kept
    assert await pool.fetchval("select count(*) from organisations where name = '内江新公司'") == 0


async def test_who_may_register_where(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    nj = await login(client, "nj_operator")
    zigong = await client.post(BASE, json=_supplier("自贡新公司", "510300", 8), headers=nj)
    assert zigong.status_code == 403
    fushun = await client.post(BASE, json=_supplier("富顺新公司", "510322", 9), headers=nj)
    assert fushun.status_code == 403

    operator_org = await client.post(
        BASE,
        json={"kind": "operator", "name": "内江另一交易中心", "region_code": "511000"},
        headers=nj,
    )
    assert operator_org.status_code == 422
    assert _fields(operator_org) == ["kind"]
    platform_org = await client.post(
        BASE,
        json={"kind": "platform", "name": "另一平台", "region_code": "511000"},
        headers=nj,
    )
    assert platform_org.status_code == 422
    assert _fields(platform_org) == ["kind"]

    unknown = await client.post(BASE, json=_supplier("无地区公司", "999999", 10), headers=nj)
    assert unknown.status_code == 422
    assert _fields(unknown) == ["region_code"]

    for username in ("nj_buyer", "nj_agency_admin", "nj_supplier_admin", "nj_auditor"):
        headers = await login(client, username)
        refused = await client.post(BASE, json=_supplier("越权公司", "511000", 11), headers=headers)
        assert refused.status_code == 403, username

    admin = await login(client, "admin")
    kunming = await client.post(
        BASE,
        json={
            "kind": "operator",
            "name": "昆明市公共资源交易中心",
            "region_code": "530100",
            "admin": {
                "username": "km_operator",
                "display_name": "昆明",
                "password": "long-enough-1",
            },
        },
        headers=admin,
    )
    assert kunming.status_code == 201, kunming.text
    anywhere = await client.post(BASE, json=_supplier("自贡平台公司", "510300", 12), headers=admin)
    assert anywhere.status_code == 201
    km = await login(client, "km_operator", "long-enough-1")
    me = (await client.get("/api/v1/me", headers=km)).json()
    assert me["roles"] == ["operator"]
    # the new operator registers in its own region, not in Neijiang
    own = await client.post(BASE, json=_supplier("昆明新公司", "530102", 13), headers=km)
    assert own.status_code == 201, own.text
    foreign = await client.post(BASE, json=_supplier("内江远方公司", "511000", 14), headers=km)
    assert foreign.status_code == 403


# Profiles ---------------------------------------------------------------------------------------


async def test_supplier_admin_updates_own_profile(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    supplier_id = await _org_id(pool, NJ_SUPPLIER)
    headers = await login(client, "nj_supplier_admin")
    before = (await client.get(f"{BASE}/{supplier_id}", headers=headers)).json()

    response = await client.patch(
        f"{BASE}/{supplier_id}", json={"contact_phone": "0832-8888888"}, headers=headers
    )
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["contact_phone"] == "0832-8888888"
    for key in ("name", "sme_size", "address", "uscc", "region_code", "kind"):
        assert after[key] == before[key], key

    cleared = await client.patch(
        f"{BASE}/{supplier_id}",
        json={"sme_size": None, "name": "内江川南数码科技股份有限公司"},
        headers=headers,
    )
    assert cleared.status_code == 200
    assert cleared.json()["sme_size"] is None
    assert cleared.json()["contact_phone"] == "0832-8888888"
    assert cleared.json()["name"] == "内江川南数码科技股份有限公司"

    events = await pool.fetch(
        "select before, after, actor_user_id, region_code from audit_events "
        "where entity_type = 'organisation' and entity_id = $1 and action = 'organisation.updated' "
        "order by id",
        str(supplier_id),
    )
    assert len(events) == 2
    assert events[0]["before"]["contact_phone"] is None
    assert events[0]["after"]["contact_phone"] == "0832-8888888"
    assert events[0]["region_code"] == "511000"
    assert events[1]["before"]["sme_size"] == "small"
    assert events[1]["after"]["sme_size"] is None
    outbox = await pool.fetch(
        "select payload, xmin::text as xmin from outbox where topic = 'supplier.changed' "
        "and aggregate_type = 'organisation' and aggregate_id = $1 order by id",
        str(supplier_id),
    )
    assert [o["payload"] for o in outbox] == [
        {"fields": ["contact_phone"]},
        {"fields": ["name", "sme_size"]},
    ]
    audit_xmin = await pool.fetch(
        "select xmin::text as xmin from audit_events where entity_type = 'organisation' "
        "and entity_id = $1 and action = 'organisation.updated' order by id",
        str(supplier_id),
    )
    assert [a["xmin"] for a in audit_xmin] == [o["xmin"] for o in outbox]

    bad = await client.patch(f"{BASE}/{supplier_id}", json={"sme_size": "huge"}, headers=headers)
    assert bad.status_code == 400
    assert any("sme_size" in f for f in _fields(bad))
    frozen = await client.patch(f"{BASE}/{supplier_id}", json={"uscc": "x"}, headers=headers)
    assert frozen.status_code == 400


async def test_others_may_not_update_a_profile(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    supplier_id = await _org_id(pool, NJ_SUPPLIER)
    counts = await pool.fetchval("select count(*) from audit_events")
    for username in ("zg_supplier_admin", "nj_agency_admin", "nj_supplier_staff", "nj_operator"):
        headers = await login(client, username)
        response = await client.patch(
            f"{BASE}/{supplier_id}", json={"contact_phone": "0000-0000000"}, headers=headers
        )
        assert response.status_code == 403, (username, response.text)
    assert await pool.fetchval("select count(*) from audit_events") == counts

    admin = await login(client, "admin")
    missing = await client.patch(f"{BASE}/999999", json={"address": "x"}, headers=admin)
    assert missing.status_code == 404


async def test_agency_admin_update_and_name_clash(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    agency_id = await _org_id(pool, "内江市教育局")
    headers = await login(client, "nj_agency_admin")
    response = await client.patch(
        f"{BASE}/{agency_id}", json={"address": "内江市市中区"}, headers=headers
    )
    assert response.status_code == 200
    assert response.json()["address"] == "内江市市中区"
    # only suppliers' changes reach the search documents
    assert (
        await pool.fetchval(
            "select count(*) from outbox where aggregate_type = 'organisation' "
            "and aggregate_id = $1",
            str(agency_id),
        )
        == 0
    )
    clash = await client.patch(
        f"{BASE}/{agency_id}", json={"name": "内江市第一人民医院"}, headers=headers
    )
    assert clash.status_code == 409, clash.text
    assert "内江市第一人民医院" in clash.json()["detail"]


# Contacts and qualifications ----------------------------------------------------------------------


async def test_owner_keeps_contacts_which_others_cannot_see(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    supplier_id = await _org_id(pool, NJ_SUPPLIER)
    owner = await login(client, "nj_supplier_admin")
    url = f"{BASE}/{supplier_id}/contacts"
    added = await client.post(
        url, json={"name": "张三", "title": "销售经理", "phone": "13800000000"}, headers=owner
    )
    assert added.status_code == 201, added.text
    contact = added.json()
    assert (contact["organisation_id"], contact["name"], contact["email"]) == (
        supplier_id,
        "张三",
        None,
    )
    second = await client.post(url, json={"name": "李四", "email": "li@example.com"}, headers=owner)
    assert second.status_code == 201
    unreachable = await client.post(url, json={"name": "王五"}, headers=owner)
    assert unreachable.status_code == 422
    assert _fields(unreachable) == ["phone"]

    listed = await client.get(url, headers=owner)
    assert listed.status_code == 200
    assert [c["name"] for c in listed.json()] == ["张三", "李四"]
    staff = await client.get(url, headers=await login(client, "nj_supplier_staff"))
    assert [c["name"] for c in staff.json()] == ["张三", "李四"]

    for username in ("zg_agency_admin", "cd_buyer", "zg_supplier_admin", "zg_operator"):
        headers = await login(client, username)
        assert (await client.get(url, headers=headers)).status_code == 404, username
        assert (
            await client.get(f"{BASE}/{supplier_id}/qualifications", headers=headers)
        ).status_code == 404, username
        write = await client.post(url, json={"name": "x", "phone": "12345"}, headers=headers)
        assert write.status_code == 404, username
    # the same answer as for an organisation that does not exist
    assert (await client.get(f"{BASE}/999999/contacts", headers=owner)).status_code == 404

    nj_operator = await login(client, "nj_operator")
    assert len((await client.get(url, headers=nj_operator)).json()) == 2

    removed = await client.delete(f"{url}/{contact['id']}", headers=owner)
    assert removed.status_code == 204
    assert [c["name"] for c in (await client.get(url, headers=owner)).json()] == ["李四"]
    again = await client.delete(f"{url}/{contact['id']}", headers=owner)
    assert again.status_code == 404
    actions = await pool.fetch(
        "select action from audit_events where entity_type = 'organisation' and entity_id = $1 "
        "order by id",
        str(supplier_id),
    )
    assert [a["action"] for a in actions][-3:] == [
        "contact.added",
        "contact.added",
        "contact.removed",
    ]


async def test_qualifications_and_who_may_read_them(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    supplier_id = await _org_id(pool, NJ_SUPPLIER)
    owner = await login(client, "nj_supplier_admin")
    url = f"{BASE}/{supplier_id}/qualifications"
    expired = await client.post(
        url,
        json={
            "kind": "ISO 9001 质量管理体系认证",
            "number": "ISO-2019-001",
            "issuer": "中国质量认证中心",
            "valid_from": "2019-01-01",
            "valid_until": "2021-12-31",
        },
        headers=owner,
    )
    assert expired.status_code == 201, expired.text
    assert expired.json()["expired"] is True
    current = await client.post(
        url,
        json={
            "kind": "营业执照",
            "number": "BL-001",
            "issuer": "内江市市场监督管理局",
            "valid_from": "2015-06-01",
            "document_url": "https://example.com/licence.pdf",
        },
        headers=owner,
    )
    assert current.status_code == 201
    assert current.json()["expired"] is False
    later = await client.post(
        url,
        json={
            "kind": "安全生产许可证",
            "number": "AQ-9",
            "issuer": "四川省应急管理厅",
            "valid_from": "2024-01-01",
            "valid_until": "2099-12-31",
        },
        headers=owner,
    )
    assert later.json()["expired"] is False

    backwards = await client.post(
        url,
        json={
            "kind": "x",
            "number": "y",
            "issuer": "z",
            "valid_from": "2024-01-01",
            "valid_until": "2023-01-01",
        },
        headers=owner,
    )
    assert backwards.status_code == 422
    assert _fields(backwards) == ["valid_until"]

    listed = await client.get(url, headers=owner)
    assert [(q["number"], q["expired"]) for q in listed.json()] == [
        ("ISO-2019-001", True),
        ("BL-001", False),
        ("AQ-9", False),
    ]

    for username in ("nj_operator", "nj_auditor", "nz_auditor", "admin"):
        response = await client.get(url, headers=await login(client, username))
        assert response.status_code == 200, username
        assert len(response.json()) == 3

    zg_operator = await login(client, "zg_operator")
    zg_auditor = await login(client, "zg_auditor")
    assert (await client.get(url, headers=zg_operator)).status_code == 404
    assert (await client.get(url, headers=zg_auditor)).status_code == 404

    applied = await client.post("/api/v1/admissions", json={"region_code": "510300"}, headers=owner)
    assert applied.status_code == 201, applied.text

    seen = await client.get(url, headers=zg_operator)
    assert seen.status_code == 200
    assert [q["number"] for q in seen.json()] == ["ISO-2019-001", "BL-001", "AQ-9"]
    assert (await client.get(url, headers=zg_auditor)).status_code == 200
    # the Zigong operator reads; it does not write
    write = await client.post(
        url,
        json={"kind": "x", "number": "y", "issuer": "z", "valid_from": "2024-01-01"},
        headers=zg_operator,
    )
    assert write.status_code == 403
    # an unrelated agency still sees nothing
    other = await client.get(url, headers=await login(client, "cd_buyer"))
    assert other.status_code == 404


async def test_expired_is_computed_on_reading(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    supplier_id = await _org_id(pool, NJ_SUPPLIER)
    await pool.execute(
        "insert into supplier_qualifications (organisation_id, kind, number, issuer, valid_from, "
        "valid_until) values ($1, '3C 认证', 'CCC-1', '中国质量认证中心', date '2000-01-01', "
        "current_date - 400)",
        supplier_id,
    )
    owner = await login(client, "nj_supplier_admin")
    listed = (await client.get(f"{BASE}/{supplier_id}/qualifications", headers=owner)).json()
    assert [(q["number"], q["expired"]) for q in listed] == [("CCC-1", True)]


async def test_blank_names_are_400_naming_the_field(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    operator = await login(client, "nj_operator")
    blank = await client.post(
        BASE, json={"kind": "agency", "name": "   ", "region_code": "511000"}, headers=operator
    )
    assert blank.status_code == 400
    assert _fields(blank) == ["name"]

    supplier_id = await _org_id(pool, NJ_SUPPLIER)
    owner = await login(client, "nj_supplier_admin")
    rename = await client.patch(f"{BASE}/{supplier_id}", json={"name": "  "}, headers=owner)
    assert rename.status_code == 400
    assert _fields(rename) == ["name"]
    contact = await client.post(
        f"{BASE}/{supplier_id}/contacts", json={"name": " ", "phone": "12345"}, headers=owner
    )
    assert contact.status_code == 400
    assert _fields(contact) == ["name"]
    qualification = await client.post(
        f"{BASE}/{supplier_id}/qualifications",
        json={"kind": " ", "number": "1", "issuer": "x", "valid_from": "2020-01-01"},
        headers=owner,
    )
    assert qualification.status_code == 400
    assert _fields(qualification) == ["kind"]
