"""Partnerships (合作区域): listing, membership over time, recognition, audit and outbox."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.db.pool import Pool
from emall.partnerships.service import partner_regions
from tests.helpers import login

BASE = "/api/v1/partnerships"
DEMO = {
    "neijiang-zigong": {"511000", "510300"},
    "south-sichuan": {"510300", "510500", "511000", "511500"},
    "chengdu-chongqing": {"510100", "500000"},
}


def _fields(response: Any) -> list[str]:
    assert response.headers["content-type"].startswith("application/problem+json")
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


async def _id_of(client: AsyncTestClient[Litestar], headers: dict[str, str], code: str) -> int:
    found = [p["id"] for p in await _all(client, headers) if p["code"] == code]
    assert len(found) == 1, code
    return int(found[0])


async def _trail(pool: Pool, partnership_id: int) -> list[tuple[str, str]]:
    """(audit action, outbox topic) pairs written in the same transaction, oldest first."""
    rows = await pool.fetch(
        """
        select a.action, o.topic
        from audit_events a
        join outbox o on o.aggregate_type = 'partnership' and o.aggregate_id = a.entity_id
                     and o.xmin = a.xmin and not o.payload ? 'dated'
        where a.entity_type = 'partnership' and a.entity_id = $1
        order by a.id
        """,
        str(partnership_id),
    )
    return [(r["action"], r["topic"]) for r in rows]


async def _counts(pool: Pool) -> tuple[int, int]:
    audit = await pool.fetchval(
        "select count(*) from audit_events where entity_type = 'partnership'"
    )
    outbox = await pool.fetchval("select count(*) from outbox where topic = 'visibility.changed'")
    return audit, outbox


async def test_list_shows_the_demo_partnerships_with_members(
    client: AsyncTestClient[Litestar],
) -> None:
    headers = await login(client, "nj_buyer")
    items = await _all(client, headers)
    assert {p["code"]: {m["region_code"] for m in p["members"]} for p in items} == DEMO
    nz = next(p for p in items if p["code"] == "neijiang-zigong")
    assert nz["name"] == "内自同城化"
    assert nz["effective_from"] == "2020-07-28"
    assert nz["effective_to"] is None
    names = {m["region_code"]: m["region_name"] for m in nz["members"]}
    assert names == {"511000": "内江市", "510300": "自贡市"}
    assert all(m["joined_on"] == "2020-07-28" and m["left_on"] is None for m in nz["members"])
    assert all(m["recognises_admissions"] for m in nz["members"])

    paged = await _all(client, headers, limit=1)
    assert [p["id"] for p in paged] == [p["id"] for p in items]
    assert len(paged) == 3

    one = await client.get(f"{BASE}/{nz['id']}", headers=headers)
    assert one.status_code == 200
    assert one.json() == nz
    missing = await client.get(f"{BASE}/999999", headers=headers)
    assert missing.status_code == 404


async def test_list_needs_credentials(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get(BASE)
    assert response.status_code == 401


async def test_filter_by_region_takes_its_ancestors(client: AsyncTestClient[Litestar]) -> None:
    headers = await login(client, "nj_buyer")
    county = await _all(client, headers, region_code="511002")
    assert {p["code"] for p in county} == {"neijiang-zigong", "south-sichuan"}
    chengdu = await _all(client, headers, region_code="510104")
    assert {p["code"] for p in chengdu} == {"chengdu-chongqing"}
    assert await _all(client, headers, region_code="530100") == []

    unknown = await client.get(BASE, params={"region_code": "999999"}, headers=headers)
    assert unknown.status_code == 422  # well-formed, but no such region
    assert _fields(unknown) == ["region_code"]
    malformed = await client.get(BASE, params={"region_code": "abc"}, headers=headers)
    assert malformed.status_code == 400
    assert _fields(malformed) == ["query.region_code"]


async def test_filter_by_date_in_force(client: AsyncTestClient[Litestar]) -> None:
    headers = await login(client, "nj_buyer")
    before = await _all(client, headers, active_on="2020-07-27")
    assert {p["code"] for p in before} == {"chengdu-chongqing"}
    signed = await _all(client, headers, active_on="2020-07-28")
    assert {p["code"] for p in signed} == {"chengdu-chongqing", "neijiang-zigong"}
    later = await _all(client, headers, active_on="2021-01-01")
    assert {p["code"] for p in later} == set(DEMO)
    assert await _all(client, headers, region_code="511002", active_on="2020-07-27") == []
    both = await _all(client, headers, region_code="511002", active_on="2020-12-31")
    assert {p["code"] for p in both} == {"neijiang-zigong"}

    bad = await client.get(BASE, params={"active_on": "2020-13-01"}, headers=headers)
    assert bad.status_code == 400
    assert any("active_on" in f for f in _fields(bad))


async def test_bad_list_parameters(client: AsyncTestClient[Litestar]) -> None:
    headers = await login(client, "nj_buyer")
    for limit in (0, 201):
        response = await client.get(BASE, params={"limit": limit}, headers=headers)
        assert response.status_code == 400
        assert any("limit" in f for f in _fields(response))
    cursor = await client.get(BASE, params={"cursor": "nope"}, headers=headers)
    assert cursor.status_code == 422  # base64url, but not a cursor this server wrote
    assert _fields(cursor) == ["cursor"]


async def test_platform_admin_creates_a_partnership(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    admin = await login(client, "admin")
    body = {
        "code": "yibin-luzhou",
        "name": "宜泸同城化",
        "description": "宜宾、泸州两市合作",
        "effective_from": "2024-03-01",
        "members": [
            {"region_code": "511500", "joined_on": "2024-03-01"},
            {"region_code": "510500", "joined_on": "2024-04-01", "recognises_admissions": False},
        ],
    }
    created = await client.post(BASE, json=body, headers=admin)
    assert created.status_code == 201, created.text
    data = created.json()
    assert data["code"] == "yibin-luzhou"
    assert data["effective_to"] is None
    assert [
        (m["region_code"], m["region_name"], m["joined_on"], m["recognises_admissions"])
        for m in data["members"]
    ] == [
        ("511500", "宜宾市", "2024-03-01", True),
        ("510500", "泸州市", "2024-04-01", False),
    ]
    fetched = await client.get(f"{BASE}/{data['id']}", headers=admin)
    assert fetched.json() == data
    assert await _trail(pool, data["id"]) == [("partnership.created", "visibility.changed")]
    event = await pool.fetchrow(
        "select actor_user_id, after from audit_events "
        "where entity_type = 'partnership' and entity_id = $1",
        str(data["id"]),
    )
    assert event is not None
    assert event["actor_user_id"] is not None
    assert event["after"]["code"] == "yibin-luzhou"
    payload = await pool.fetchval(
        "select payload from outbox where aggregate_type = 'partnership' and aggregate_id = $1",
        str(data["id"]),
    )
    assert payload == {"regions": ["510500", "511500"]}

    # without members, too
    bare = await client.post(
        BASE,
        json={"code": "empty-one", "name": "空", "effective_from": "2024-01-01"},
        headers=admin,
    )
    assert bare.status_code == 201
    assert bare.json()["members"] == []


async def test_create_refuses_bad_input_and_duplicates(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    admin = await login(client, "admin")
    counts = await _counts(pool)
    base = {"code": "new-one", "name": "新合作区", "effective_from": "2024-01-01"}

    unknown = await client.post(
        BASE,
        json={**base, "members": [{"region_code": "999999", "joined_on": "2024-01-01"}]},
        headers=admin,
    )
    assert unknown.status_code == 422
    assert _fields(unknown) == ["members[0].region_code"]

    second = await client.post(
        BASE,
        json={
            **base,
            "members": [
                {"region_code": "511000", "joined_on": "2024-01-01"},
                {"region_code": "123456", "joined_on": "2024-01-01"},
            ],
        },
        headers=admin,
    )
    assert second.status_code == 422
    assert _fields(second) == ["members[1].region_code"]

    twice = await client.post(
        BASE,
        json={
            **base,
            "members": [
                {"region_code": "511000", "joined_on": "2024-01-01"},
                {"region_code": "511000", "joined_on": "2024-02-01"},
            ],
        },
        headers=admin,
    )
    assert twice.status_code == 409

    duplicate = await client.post(BASE, json={**base, "code": "neijiang-zigong"}, headers=admin)
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"].startswith("application/problem+json")

    bad_code = await client.post(BASE, json={**base, "code": "Bad Code"}, headers=admin)
    assert bad_code.status_code == 400
    assert _fields(bad_code) == ["code"]

    dates = await client.post(BASE, json={**base, "effective_to": "2023-12-31"}, headers=admin)
    assert dates.status_code == 422
    assert _fields(dates) == ["effective_to"]

    unknown_field = await client.post(BASE, json={**base, "colour": "red"}, headers=admin)
    assert unknown_field.status_code == 400

    # nothing of the refused requests was kept
    codes = {p["code"] for p in await _all(client, admin)}
    assert codes == set(DEMO)
    assert await _counts(pool) == counts


async def test_only_the_platform_admin_manages_partnerships(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    admin = await login(client, "admin")
    pid = await _id_of(client, admin, "neijiang-zigong")
    counts = await _counts(pool)
    body = {"code": "mine", "name": "我的", "effective_from": "2024-01-01"}
    for username in ("nj_operator", "nj_buyer", "nz_auditor", "nj_supplier_admin"):
        headers = await login(client, username)
        assert (await client.post(BASE, json=body, headers=headers)).status_code == 403
        patched = await client.patch(f"{BASE}/{pid}", json={"name": "x"}, headers=headers)
        assert patched.status_code == 403
        added = await client.post(
            f"{BASE}/{pid}/members",
            json={"region_code": "511500", "joined_on": "2024-01-01"},
            headers=headers,
        )
        assert added.status_code == 403
        left = await client.post(
            f"{BASE}/{pid}/members/510300/leave", json={"left_on": "2024-01-01"}, headers=headers
        )
        assert left.status_code == 403
    assert await _counts(pool) == counts


async def test_members_join_and_leave_with_history(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    admin = await login(client, "admin")
    pid = await _id_of(client, admin, "neijiang-zigong")

    added = await client.post(
        f"{BASE}/{pid}/members",
        json={"region_code": "511500", "joined_on": "2024-01-01"},
        headers=admin,
    )
    assert added.status_code == 201, added.text
    assert {m["region_code"] for m in added.json()["members"]} == {"511000", "510300", "511500"}

    again = await client.post(
        f"{BASE}/{pid}/members",
        json={"region_code": "511000", "joined_on": "2024-01-01"},
        headers=admin,
    )
    assert again.status_code == 409

    unknown = await client.post(
        f"{BASE}/{pid}/members",
        json={"region_code": "999999", "joined_on": "2024-01-01"},
        headers=admin,
    )
    assert unknown.status_code == 422
    assert _fields(unknown) == ["region_code"]

    no_such = await client.post(
        f"{BASE}/999999/members",
        json={"region_code": "511500", "joined_on": "2024-01-01"},
        headers=admin,
    )
    assert no_such.status_code == 404

    early = await client.post(
        f"{BASE}/{pid}/members/511500/leave", json={"left_on": "2023-12-31"}, headers=admin
    )
    assert early.status_code == 422
    assert _fields(early) == ["left_on"]

    left = await client.post(
        f"{BASE}/{pid}/members/511500/leave", json={"left_on": "2024-06-30"}, headers=admin
    )
    assert left.status_code == 200, left.text
    yibin = [m for m in left.json()["members"] if m["region_code"] == "511500"]
    assert [(m["joined_on"], m["left_on"]) for m in yibin] == [("2024-01-01", "2024-06-30")]

    shown = (await client.get(f"{BASE}/{pid}", headers=admin)).json()
    assert shown == left.json()

    not_member = await client.post(
        f"{BASE}/{pid}/members/511500/leave", json={"left_on": "2024-07-01"}, headers=admin
    )
    assert not_member.status_code == 404

    # a region that left no longer belongs (without a date, ended memberships do not count)
    buyer = await login(client, "nj_buyer")
    current = await _all(client, buyer, region_code="511500")
    assert {p["code"] for p in current} == {"south-sichuan"}

    # it may not rejoin inside its past membership
    overlap = await client.post(
        f"{BASE}/{pid}/members",
        json={"region_code": "511500", "joined_on": "2024-03-01"},
        headers=admin,
    )
    assert overlap.status_code == 422
    assert _fields(overlap) == ["joined_on"]

    # it may join again; both memberships stay in the history
    rejoined = await client.post(
        f"{BASE}/{pid}/members",
        json={"region_code": "511500", "joined_on": "2025-01-01"},
        headers=admin,
    )
    assert rejoined.status_code == 201
    yibin = [m for m in rejoined.json()["members"] if m["region_code"] == "511500"]
    assert [(m["joined_on"], m["left_on"]) for m in yibin] == [
        ("2024-01-01", "2024-06-30"),
        ("2025-01-01", None),
    ]

    current = await _all(client, buyer, region_code="511500")
    assert {p["code"] for p in current} == {"neijiang-zigong", "south-sichuan"}

    # the date filter follows membership: Yibin was a member in March 2024 only
    march = await _all(client, buyer, region_code="511500", active_on="2024-03-01")
    assert {p["code"] for p in march} == {"neijiang-zigong", "south-sichuan"}
    august = await _all(client, buyer, region_code="511500", active_on="2024-08-01")
    assert {p["code"] for p in august} == {"south-sichuan"}

    assert await _trail(pool, pid) == [
        ("partnership.member_added", "visibility.changed"),
        ("partnership.member_left", "visibility.changed"),
        ("partnership.member_added", "visibility.changed"),
    ]
    left_event = await pool.fetchrow(
        "select before, after from audit_events where entity_type = 'partnership' "
        "and entity_id = $1 and action = 'partnership.member_left'",
        str(pid),
    )
    assert left_event is not None
    before, after = left_event["before"], left_event["after"]
    assert next(m for m in before["members"] if m["region_code"] == "511500")["left_on"] is None
    assert (
        next(m for m in after["members"] if m["region_code"] == "511500")["left_on"] == "2024-06-30"
    )


async def test_patch_changes_only_the_fields_given(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    admin = await login(client, "admin")
    pid = await _id_of(client, admin, "south-sichuan")
    original = (await client.get(f"{BASE}/{pid}", headers=admin)).json()

    renamed = await client.patch(f"{BASE}/{pid}", json={"name": "川南经济区（新）"}, headers=admin)
    assert renamed.status_code == 200, renamed.text
    data = renamed.json()
    assert data["name"] == "川南经济区（新）"
    for key in ("code", "description", "effective_from", "effective_to", "members"):
        assert data[key] == original[key], key

    ended = await client.patch(
        f"{BASE}/{pid}", json={"effective_to": "2030-12-31", "description": "到期"}, headers=admin
    )
    assert ended.json()["effective_to"] == "2030-12-31"
    # the end date changes visibility by itself: a refresh is queued for the day after
    dated = await pool.fetchval(
        "select count(*) from outbox where aggregate_type = 'partnership' and aggregate_id = $1 "
        "and payload ? 'dated' and (available_at at time zone 'Asia/Shanghai')::date = '2031-01-01'",
        str(pid),
    )
    assert dated >= 1
    assert ended.json()["description"] == "到期"
    assert ended.json()["name"] == "川南经济区（新）"

    reopened = await client.patch(f"{BASE}/{pid}", json={"effective_to": None}, headers=admin)
    assert reopened.json()["effective_to"] is None
    assert reopened.json()["description"] == "到期"

    unchanged = await client.patch(f"{BASE}/{pid}", json={}, headers=admin)
    assert unchanged.status_code == 200
    assert unchanged.json() == reopened.json()

    too_early = await client.patch(
        f"{BASE}/{pid}", json={"effective_to": "2020-12-31"}, headers=admin
    )
    assert too_early.status_code == 422
    assert _fields(too_early) == ["effective_to"]
    assert (
        await client.patch(f"{BASE}/{pid}", json={"code": "x"}, headers=admin)
    ).status_code == 400
    missing = await client.patch(f"{BASE}/999999", json={"name": "x"}, headers=admin)
    assert missing.status_code == 404

    assert await _trail(pool, pid) == [("partnership.updated", "visibility.changed")] * 3
    first = await pool.fetchrow(
        "select before, after from audit_events where entity_type = 'partnership' "
        "and entity_id = $1 and action = 'partnership.updated' order by id limit 1",
        str(pid),
    )
    assert first is not None
    assert first["before"]["name"] == "川南经济区"
    assert first["after"]["name"] == "川南经济区（新）"


async def test_member_region_operator_sets_recognition(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    admin = await login(client, "admin")
    pid = await _id_of(client, admin, "neijiang-zigong")
    url = f"{BASE}/{pid}/members/510300/recognition"

    counts = await _counts(pool)
    for username in ("nj_operator", "nj_buyer", "zg_buyer", "zg_auditor", "nz_auditor", "admin"):
        headers = await login(client, username)
        refused = await client.put(url, json={"recognises_admissions": False}, headers=headers)
        assert refused.status_code == 403, (username, refused.text)
    assert await _counts(pool) == counts

    zg = await login(client, "zg_operator")
    opted_out = await client.put(url, json={"recognises_admissions": False}, headers=zg)
    assert opted_out.status_code == 200, opted_out.text
    members = {m["region_code"]: m["recognises_admissions"] for m in opted_out.json()["members"]}
    assert members == {"510300": False, "511000": True}
    shown = (await client.get(f"{BASE}/{pid}", headers=zg)).json()
    assert {m["region_code"]: m["recognises_admissions"] for m in shown["members"]} == members

    # Zigong's operator may not change Neijiang's choice
    other = await client.put(
        f"{BASE}/{pid}/members/511000/recognition",
        json={"recognises_admissions": False},
        headers=zg,
    )
    assert other.status_code == 403

    # a region that is not a member: 404; an unknown partnership: 404
    chengdu = await _id_of(client, admin, "chengdu-chongqing")
    not_member = await client.put(
        f"{BASE}/{chengdu}/members/510300/recognition",
        json={"recognises_admissions": False},
        headers=zg,
    )
    assert not_member.status_code == 404
    no_such = await client.put(
        f"{BASE}/999999/members/510300/recognition",
        json={"recognises_admissions": False},
        headers=zg,
    )
    assert no_such.status_code == 404
    bad_body = await client.put(url, json={"recognises_admissions": "no"}, headers=zg)
    assert bad_body.status_code == 400

    opted_in = await client.put(url, json={"recognises_admissions": True}, headers=zg)
    assert opted_in.status_code == 200
    assert all(m["recognises_admissions"] for m in opted_in.json()["members"])

    assert await _trail(pool, pid) == [
        ("partnership.recognition_changed", "visibility.changed"),
        ("partnership.recognition_changed", "visibility.changed"),
    ]
    actor = await pool.fetchval(
        "select u.username from audit_events a join users u on u.id = a.actor_user_id "
        "where a.entity_type = 'partnership' and a.entity_id = $1 order by a.id limit 1",
        str(pid),
    )
    assert actor == "zg_operator"


async def test_a_change_and_its_records_share_one_transaction(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    admin = await login(client, "admin")
    pid = await _id_of(client, admin, "chengdu-chongqing")
    response = await client.post(
        f"{BASE}/{pid}/members",
        json={"region_code": "512000", "joined_on": "2024-01-01"},
        headers=admin,
    )
    assert response.status_code == 201
    member_xmin = await pool.fetchval(
        "select xmin::text from partnership_members where partnership_id = $1 "
        "and region_code = '512000'",
        pid,
    )
    audit_xmin = await pool.fetchval(
        "select xmin::text from audit_events where entity_type = 'partnership' "
        "and entity_id = $1 and action = 'partnership.member_added'",
        str(pid),
    )
    outbox = await pool.fetchrow(
        "select xmin::text as xmin, payload from outbox where topic = 'visibility.changed' "
        "and aggregate_type = 'partnership' and aggregate_id = $1",
        str(pid),
    )
    assert outbox is not None
    assert member_xmin == audit_xmin == outbox["xmin"]
    assert outbox["payload"] == {"regions": ["500000", "510100", "512000"]}


async def test_partner_regions(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    links = await partner_regions(pool, "511002")
    assert {link.region_code for link in links} == {"510300", "510500", "511500"}
    assert {(link.region_code, link.partnership_code) for link in links} == {
        ("510300", "neijiang-zigong"),
        ("510300", "south-sichuan"),
        ("510500", "south-sichuan"),
        ("511500", "south-sichuan"),
    }
    assert "510100" not in {link.region_code for link in links}
    assert {link.region_code for link in await partner_regions(pool, "511000")} == {
        "510300",
        "510500",
        "511500",
    }
    chengdu = await partner_regions(pool, "510104")
    assert [(link.region_code, link.partnership_name) for link in chengdu] == [
        ("500000", "成渝地区双城经济圈")
    ]
    assert await partner_regions(pool, "530100") == []
    assert await partner_regions(pool, "999999") == []
    assert await partner_regions(pool, "510000") == []

    # on a date: before the signing, none; before south-sichuan, only Zigong
    assert await partner_regions(pool, "511002", date(2020, 7, 27)) == []
    autumn = await partner_regions(pool, "511002", date(2020, 9, 1))
    assert [(link.region_code, link.partnership_code) for link in autumn] == [
        ("510300", "neijiang-zigong")
    ]

    # a member that left is no longer a partner
    admin = await login(client, "admin")
    south = await _id_of(client, admin, "south-sichuan")
    left = await client.post(
        f"{BASE}/{south}/members/511500/leave", json={"left_on": "2024-01-01"}, headers=admin
    )
    assert left.status_code == 200
    now = {link.region_code for link in await partner_regions(pool, "511002")}
    assert now == {"510300", "510500"}
    then = await partner_regions(pool, "511002", date(2023, 12, 31))
    assert "511500" in {link.region_code for link in then}


async def test_partner_regions_follow_recognition(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """A region that opts out of recognition in a partnership no longer sees that partnership's
    admissions; the other members still see its own."""
    admin = await login(client, "admin")
    pid = await _id_of(client, admin, "neijiang-zigong")
    zg = await login(client, "zg_operator")
    response = await client.put(
        f"{BASE}/{pid}/members/510300/recognition",
        json={"recognises_admissions": False},
        headers=zg,
    )
    assert response.status_code == 200
    zigong = await partner_regions(pool, "510322")
    assert {(link.region_code, link.partnership_code) for link in zigong} == {
        ("511000", "south-sichuan"),
        ("510500", "south-sichuan"),
        ("511500", "south-sichuan"),
    }
    neijiang = await partner_regions(pool, "511000")
    assert ("510300", "neijiang-zigong") in {
        (link.region_code, link.partnership_code) for link in neijiang
    }


async def test_malformed_member_region_in_the_path_is_400(
    client: AsyncTestClient[Litestar],
) -> None:
    admin = await login(client, "admin")
    pid = await _id_of(client, admin, "neijiang-zigong")
    zg = await login(client, "zg_operator")
    recognition = await client.put(
        f"{BASE}/{pid}/members/51030/recognition", json={"recognises_admissions": False}, headers=zg
    )
    assert recognition.status_code == 400
    assert any("region_code" in f for f in _fields(recognition))
    leave = await client.post(
        f"{BASE}/{pid}/members/abcdef/leave", json={"left_on": "2024-01-01"}, headers=admin
    )
    assert leave.status_code == 400
    assert any("region_code" in f for f in _fields(leave))
