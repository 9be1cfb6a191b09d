"""Admission, bans and the one question "may supplier S sell to region R today?"."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.admission.rights import on_date, sale_right
from emall.db.pool import Pool
from tests.helpers import org_id, principal_of, token_for

NJ, ZG, LUZHOU, CHENGDU, FUSHUN, KUNMING = (
    "511000",
    "510300",
    "510500",
    "510100",
    "510322",
    "530100",
)
NJ_ONLY = "内江市甜城办公用品有限公司"  # nj_supplier_2: admitted in Neijiang only
NJ_BANNED_IN_ZG = "内江东兴区鑫源电器有限公司"  # nj_supplier_10: admitted in NJ, banned in ZG
NJ_PENDING = "内江天诚空调设备有限公司"  # nj_supplier_8: pending in Neijiang
OWN_SUPPLIER = "内江川南数码科技有限公司"  # nj_supplier_1, whose admin is nj_supplier_admin


async def right(
    client: AsyncTestClient[Litestar], pool: Pool, supplier: str, region: str
) -> dict[str, Any]:
    headers = await token_for(pool, "nj_buyer")
    response = await client.get(
        f"/api/v1/organisations/{await org_id(pool, supplier)}/sale-right",
        params={"region_code": region},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- the one question ---------------------------------------------------------------------------


async def test_admitted_region_and_its_counties(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    direct = await right(client, pool, NJ_ONLY, NJ)
    assert direct["allowed"] and direct["basis"] == "admission"
    assert direct["admitted_in"] == NJ
    operator = await pool.fetchval("select id from users where username = 'nj_operator'")
    assert direct["admitted_by"] == operator and direct["admitted_at"] is not None
    county = await right(client, pool, NJ_ONLY, "511002")  # 市中区 of Neijiang
    assert county["allowed"] and county["basis"] == "admission"


async def test_recognition_across_neijiang_zigong(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    zigong = await right(client, pool, NJ_ONLY, ZG)
    assert zigong["allowed"] and zigong["basis"] == "recognition"
    assert zigong["partnership_name"] == "内自同城化"
    assert zigong["admitted_in"] == NJ
    fushun = await right(client, pool, NJ_ONLY, FUSHUN)  # a county of Zigong
    assert fushun["allowed"] and fushun["partnership_name"] == "内自同城化"
    luzhou = await right(client, pool, NJ_ONLY, LUZHOU)  # only through 川南经济区
    assert luzhou["allowed"] and luzhou["partnership_name"] == "川南经济区"
    chengdu = await right(client, pool, NJ_ONLY, CHENGDU)
    assert not chengdu["allowed"] and chengdu["basis"] is None


async def test_region_in_no_partnership(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    kunming = await right(client, pool, NJ_ONLY, KUNMING)
    assert not kunming["allowed"]
    assert "not admitted in this region or a partner region" in kunming["reason"]


async def test_opt_out_of_recognition(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    zg_operator = await token_for(pool, "zg_operator")
    partnerships = {
        p["code"]: p["id"]
        for p in (await client.get("/api/v1/partnerships", headers=zg_operator)).json()["items"]
    }
    url = f"/api/v1/partnerships/{partnerships['neijiang-zigong']}/members/{ZG}/recognition"
    assert (
        await client.put(url, json={"recognises_admissions": False}, headers=zg_operator)
    ).status_code == 200
    # still recognised through the other partnership both cities belong to
    via_other = await right(client, pool, NJ_ONLY, ZG)
    assert via_other["allowed"] and via_other["partnership_name"] == "川南经济区"
    url = f"/api/v1/partnerships/{partnerships['south-sichuan']}/members/{ZG}/recognition"
    assert (
        await client.put(url, json={"recognises_admissions": False}, headers=zg_operator)
    ).status_code == 200
    refused = await right(client, pool, NJ_ONLY, ZG)
    assert not refused["allowed"] and "opted out" in refused["reason"]
    # Neijiang did not opt out: a Zigong supplier is still recognised there
    zg_supplier = await right(client, pool, "自贡恐龙文化用品有限公司", NJ)
    assert zg_supplier["allowed"] and zg_supplier["basis"] == "recognition"
    # a supplier admitted in Zigong itself is unaffected
    assert (await right(client, pool, "自贡恐龙文化用品有限公司", ZG))["basis"] == "admission"


async def test_ban_in_one_partner_region(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    in_zigong = await right(client, pool, NJ_BANNED_IN_ZG, ZG)
    assert not in_zigong["allowed"] and in_zigong["ban_id"] is not None
    assert "banned" in in_zigong["reason"]
    assert (await right(client, pool, NJ_BANNED_IN_ZG, NJ))["allowed"]
    assert (await right(client, pool, NJ_BANNED_IN_ZG, LUZHOU))[
        "allowed"
    ]  # the ban is Zigong's only
    assert not (await right(client, pool, NJ_BANNED_IN_ZG, FUSHUN))["allowed"]  # and its counties'


async def test_ban_in_the_admitting_region_suspends_recognition(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    nj_operator = await token_for(pool, "nj_operator")
    supplier = await org_id(pool, NJ_ONLY)
    banned = await client.post(
        "/api/v1/bans",
        json={"supplier_id": supplier, "region_code": NJ, "reason": "合同违约"},
        headers=nj_operator,
    )
    assert banned.status_code == 201, banned.text
    assert not (await right(client, pool, NJ_ONLY, NJ))["allowed"]
    assert not (await right(client, pool, NJ_ONLY, ZG))["allowed"]
    lifted = await client.post(
        f"/api/v1/bans/{banned.json()['id']}/lift", json={"reason": "整改完成"}, headers=nj_operator
    )
    assert lifted.status_code == 200 and lifted.json()["active"] is False
    assert (await right(client, pool, NJ_ONLY, ZG))["allowed"]


async def test_revocation_propagates_at_once(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    assert (await right(client, pool, NJ_ONLY, ZG))["allowed"]
    admission_id = await pool.fetchval(
        "select id from admissions where supplier_id = $1 and region_code = $2",
        await org_id(pool, NJ_ONLY),
        NJ,
    )
    nj_operator = await token_for(pool, "nj_operator")
    revoked = await client.post(
        f"/api/v1/admissions/{admission_id}/revoke",
        json={"reason": "资质失效"},
        headers=nj_operator,
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["in_force"] is False
    for region in (NJ, ZG, LUZHOU):
        assert not (await right(client, pool, NJ_ONLY, region))["allowed"], region


async def test_expiry_propagates_and_a_new_application_is_possible(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    supplier = await org_id(pool, NJ_ONLY)
    yesterday = date.today() - timedelta(days=2)
    await pool.execute(
        "update admissions set valid_until = $2 where supplier_id = $1 and region_code = $3",
        supplier,
        yesterday,
        NJ,
    )
    assert not (await right(client, pool, NJ_ONLY, ZG))["allowed"]
    # the library answers for any moment: before the expiry, the recognition held
    principal = await principal_of(pool, "nj_buyer")
    earlier = await sale_right(
        pool, principal, supplier, ZG, at=on_date(yesterday - timedelta(days=30))
    )
    assert earlier.allowed and earlier.basis == "recognition"
    # the supplier applies again; the expired approval is marked expired, not left blocking
    admin_id = await pool.fetchval("select id from users where username = 'nj_supplier_admin'")
    await pool.execute("update users set organisation_id = $1 where id = $2", supplier, admin_id)
    again = await client.post(
        "/api/v1/admissions",
        json={"region_code": NJ},
        headers=await token_for(pool, "nj_supplier_admin"),
    )
    assert again.status_code == 201, again.text
    statuses = await pool.fetch(
        "select status from admissions where supplier_id = $1 and region_code = $2 order by id",
        supplier,
        NJ,
    )
    assert [r["status"] for r in statuses] == ["expired", "pending"]


async def test_ban_lifts_by_itself_when_it_ends(pool: Pool) -> None:
    supplier = await org_id(pool, NJ_ONLY)
    now = datetime.now(UTC)
    await pool.execute(
        "insert into bans (supplier_id, region_code, reason, starts_at, ends_at) values ($1, $2, 'x', $3, $4)",
        supplier,
        NJ,
        now - timedelta(days=1),
        now + timedelta(days=1),
    )
    principal = await principal_of(pool, "nj_buyer")
    assert not (await sale_right(pool, principal, supplier, NJ, at=now)).allowed
    later = await sale_right(pool, principal, supplier, NJ, at=now + timedelta(days=2))
    assert later.allowed and later.basis == "admission"


async def test_sale_right_bad_input(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    headers = await token_for(pool, "nj_buyer")
    supplier = await org_id(pool, NJ_ONLY)
    unknown = await client.get(
        f"/api/v1/organisations/{supplier}/sale-right",
        params={"region_code": "999999"},
        headers=headers,
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "region_code"
    missing = await client.get(f"/api/v1/organisations/{supplier}/sale-right", headers=headers)
    assert missing.status_code == 400 and "region_code" in missing.text
    agency = await org_id(pool, "内江市教育局")
    not_supplier = await client.get(
        f"/api/v1/organisations/{agency}/sale-right", params={"region_code": NJ}, headers=headers
    )
    assert not_supplier.status_code == 404


# -- the admission workflow ---------------------------------------------------------------------


async def test_apply_approve_with_audit_and_outbox(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    supplier = await token_for(pool, "nj_supplier_admin")
    applied = await client.post(
        "/api/v1/admissions", json={"region_code": LUZHOU, "note": "申请入驻泸州"}, headers=supplier
    )
    assert applied.status_code == 201, applied.text
    admission = applied.json()
    assert admission["status"] == "pending" and admission["supplier_name"] == OWN_SUPPLIER
    duplicate = await client.post(
        "/api/v1/admissions", json={"region_code": LUZHOU}, headers=supplier
    )
    assert duplicate.status_code == 409 and duplicate.json()["current_state"] == "pending"

    # Luzhou has no operator in the demo: Neijiang's operator does not oversee it
    nj_operator = await token_for(pool, "nj_operator")
    outside = await client.post(
        f"/api/v1/admissions/{admission['id']}/approve", json={}, headers=nj_operator
    )
    assert outside.status_code == 404
    admin = await token_for(pool, "admin")
    assert (
        await client.post(f"/api/v1/admissions/{admission['id']}/approve", json={}, headers=admin)
    ).status_code == 403

    applied_nj = await client.post(
        "/api/v1/admissions", json={"region_code": "511500"}, headers=supplier
    )
    assert applied_nj.status_code == 201
    events = await pool.fetch(
        "select action, before, after from audit_events where entity_type = 'admission' and entity_id = $1 order by id",
        str(admission["id"]),
    )
    assert [e["action"] for e in events] == ["admission.applied"]
    assert events[0]["before"] is None and events[0]["after"]["status"] == "pending"
    outbox = await pool.fetch(
        "select topic, aggregate_id from outbox where topic = 'visibility.changed' and payload->>'admission_id' = $1",
        str(admission["id"]),
    )
    assert len(outbox) == 1


async def test_operator_decides_in_own_region_only(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    pending = await pool.fetchval(
        "select id from admissions where supplier_id = $1 and status = 'pending'",
        await org_id(pool, NJ_PENDING),
    )
    zg_operator = await token_for(pool, "zg_operator")
    hidden = await client.post(
        f"/api/v1/admissions/{pending}/approve", json={}, headers=zg_operator
    )
    assert hidden.status_code == 404
    auditor = await token_for(pool, "nj_auditor")
    assert (await client.get(f"/api/v1/admissions/{pending}", headers=auditor)).status_code == 200
    assert (
        await client.post(f"/api/v1/admissions/{pending}/approve", json={}, headers=auditor)
    ).status_code == 403
    nj_operator = await token_for(pool, "nj_operator")
    approved = await client.post(
        f"/api/v1/admissions/{pending}/approve",
        json={"valid_from": "2026-01-01", "valid_until": "2028-12-31"},
        headers=nj_operator,
    )
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "approved" and body["valid_until"] == "2028-12-31"
    assert body["decided_by"] == await pool.fetchval(
        "select id from users where username = 'nj_operator'"
    )
    again = await client.post(
        f"/api/v1/admissions/{pending}/reject", json={"reason": "重复"}, headers=nj_operator
    )
    assert again.status_code == 409 and again.json()["current_state"] == "approved"
    events = await pool.fetch(
        "select action from audit_events where entity_type = 'admission' and entity_id = $1 order by id",
        str(pending),
    )
    assert [e["action"] for e in events][-1] == "admission.approved"


async def test_reject_needs_a_reason_and_withdraw_is_the_suppliers(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    supplier = await token_for(pool, "nj_supplier_admin")
    first = (
        await client.post("/api/v1/admissions", json={"region_code": LUZHOU}, headers=supplier)
    ).json()
    zg_pending = await pool.fetchval(
        "select id from admissions where status = 'pending' and region_code = $1", ZG
    )
    zg_operator = await token_for(pool, "zg_operator")
    no_reason = await client.post(
        f"/api/v1/admissions/{zg_pending}/reject", json={}, headers=zg_operator
    )
    assert no_reason.status_code == 400 and no_reason.json()["errors"][0]["field"] == "reason"
    rejected = await client.post(
        f"/api/v1/admissions/{zg_pending}/reject", json={"reason": "资质不全"}, headers=zg_operator
    )
    assert (
        rejected.json()["status"] == "rejected" and rejected.json()["decision_reason"] == "资质不全"
    )
    staff = await token_for(pool, "nj_supplier_staff")
    assert (
        await client.post(f"/api/v1/admissions/{first['id']}/withdraw", headers=staff)
    ).status_code == 403
    withdrawn = await client.post(f"/api/v1/admissions/{first['id']}/withdraw", headers=supplier)
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    buyer = await token_for(pool, "nj_buyer")
    assert (
        await client.post("/api/v1/admissions", json={"region_code": NJ}, headers=buyer)
    ).status_code == 403


async def test_lists_are_scoped(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    async def regions_seen(username: str, **params: str) -> set[str]:
        response = await client.get(
            "/api/v1/admissions",
            params={"limit": "200", **params},
            headers=await token_for(pool, username),
        )
        assert response.status_code == 200, response.text
        return {a["region_code"] for a in response.json()["items"]}

    assert await regions_seen("nj_operator", status="pending") == {NJ}
    assert await regions_seen("zg_auditor", status="pending") == {ZG}
    assert await regions_seen("nz_auditor", status="pending") == {NJ, ZG}
    assert await regions_seen("nj_buyer") == set()
    own = await client.get("/api/v1/admissions", headers=await token_for(pool, "nj_supplier_admin"))
    assert {a["supplier_name"] for a in own.json()["items"]} == {OWN_SUPPLIER}


async def test_bans_are_managed_by_the_regions_operator(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    supplier = await org_id(pool, NJ_ONLY)
    zg_operator = await token_for(pool, "zg_operator")
    outside = await client.post(
        "/api/v1/bans",
        json={"supplier_id": supplier, "region_code": NJ, "reason": "越权"},
        headers=zg_operator,
    )
    assert outside.status_code == 403
    not_supplier = await client.post(
        "/api/v1/bans",
        json={
            "supplier_id": await org_id(pool, "内江市教育局"),
            "region_code": ZG,
            "reason": "误操作",
        },
        headers=zg_operator,
    )
    assert (
        not_supplier.status_code == 422
        and not_supplier.json()["errors"][0]["field"] == "supplier_id"
    )
    ends = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    created = await client.post(
        "/api/v1/bans",
        json={"supplier_id": supplier, "region_code": ZG, "reason": "价格欺诈", "ends_at": ends},
        headers=zg_operator,
    )
    assert created.status_code == 201 and created.json()["active"] is True
    delayed = await pool.fetchval(
        "select count(*) from outbox where topic = 'visibility.changed' and available_at > now() + interval '29 days'"
    )
    assert delayed == 1, "the end of a ban must also refresh visibility"
    listed = await client.get(
        "/api/v1/bans", params={"active": "true"}, headers=await token_for(pool, "zg_auditor")
    )
    assert {b["supplier_id"] for b in listed.json()["items"]} >= {supplier}
    own = await client.get("/api/v1/bans", headers=await token_for(pool, "nj_supplier_admin"))
    assert own.json()["items"] == []
    foreign = await client.get(
        f"/api/v1/bans/{created.json()['id']}", headers=await token_for(pool, "nj_operator")
    )
    assert foreign.status_code == 404
    lift = await client.post(
        f"/api/v1/bans/{created.json()['id']}/lift", json={"reason": "整改"}, headers=zg_operator
    )
    assert lift.status_code == 200
    twice = await client.post(
        f"/api/v1/bans/{created.json()['id']}/lift", json={"reason": "整改"}, headers=zg_operator
    )
    assert twice.status_code == 409
