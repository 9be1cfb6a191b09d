"""The demo seed: organisations of the Neijiang–Zigong partnership and a user for each role.

Idempotent: a second run changes nothing. Every demo user has the password ``DEMO_PASSWORD``;
the README lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from emall.audit import record_event
from emall.db.pool import Pool
from emall.identity.passwords import hash_password

DEMO_PASSWORD = "emall-demo-2020"


@dataclass(frozen=True)
class DemoOrganisation:
    key: str
    kind: str
    name: str
    region_code: str


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    organisation: str  # DemoOrganisation.key
    roles: tuple[str, ...]


ORGANISATIONS = (
    DemoOrganisation("platform", "platform", "内自同城化政府采购电子卖场", "510000"),
    DemoOrganisation("nj_centre", "operator", "内江市公共资源交易服务中心", "511000"),
    DemoOrganisation("zg_centre", "operator", "自贡市公共资源交易服务中心", "510300"),
    DemoOrganisation("nj_education", "agency", "内江市教育局", "511000"),
    DemoOrganisation("zg_health", "agency", "自贡市卫生健康委员会", "510300"),
    DemoOrganisation("nj_supplier", "supplier", "内江川南数码科技有限公司", "511000"),
    DemoOrganisation("zg_supplier", "supplier", "自贡盐都办公设备有限公司", "510300"),
)

USERS = (
    DemoUser("admin", "平台管理员", "platform", ("platform_admin",)),
    DemoUser("nj_operator", "内江交易中心经办人", "nj_centre", ("operator",)),
    DemoUser("nj_auditor", "内江交易中心审计员", "nj_centre", ("auditor",)),
    DemoUser("zg_operator", "自贡交易中心经办人", "zg_centre", ("operator",)),
    DemoUser("zg_auditor", "自贡交易中心审计员", "zg_centre", ("auditor",)),
    DemoUser("nj_buyer", "内江市教育局采购员", "nj_education", ("agency_buyer",)),
    DemoUser("nj_approver", "内江市教育局审批人", "nj_education", ("agency_approver",)),
    DemoUser("nj_agency_admin", "内江市教育局管理员", "nj_education", ("agency_admin",)),
    DemoUser("zg_buyer", "自贡市卫健委采购员", "zg_health", ("agency_buyer",)),
    DemoUser("zg_approver", "自贡市卫健委审批人", "zg_health", ("agency_approver",)),
    DemoUser("zg_agency_admin", "自贡市卫健委管理员", "zg_health", ("agency_admin",)),
    DemoUser("nj_supplier_admin", "川南数码管理员", "nj_supplier", ("supplier_admin",)),
    DemoUser("nj_supplier_staff", "川南数码业务员", "nj_supplier", ("supplier_staff",)),
    DemoUser("zg_supplier_admin", "盐都办公管理员", "zg_supplier", ("supplier_admin",)),
    DemoUser("zg_supplier_staff", "盐都办公业务员", "zg_supplier", ("supplier_staff",)),
)


@dataclass(frozen=True)
class SeedReport:
    organisations_created: int
    users_created: int


async def seed_demo(pool: Pool) -> SeedReport:
    org_ids: dict[str, int] = {}
    orgs_created = users_created = 0
    existing_users = {
        r["username"]
        for r in await pool.fetch(
            "select username from users where username = any($1::text[])",
            [u.username for u in USERS],
        )
    }
    # Hash before the transaction: each hash takes ~0.1 s and must not hold a connection open.
    hashes = {
        u.username: await hash_password(DEMO_PASSWORD)
        for u in USERS
        if u.username not in existing_users
    }
    async with pool.acquire() as conn, conn.transaction():
        for org in ORGANISATIONS:
            row = await conn.fetchrow(
                """
                insert into organisations (kind, name, region_code) values ($1, $2, $3)
                on conflict (kind, name, region_code) do nothing
                returning id
                """,
                org.kind,
                org.name,
                org.region_code,
            )
            if row is not None:
                orgs_created += 1
                org_ids[org.key] = row["id"]
                await record_event(
                    conn,
                    actor=None,
                    action="organisation.created",
                    entity_type="organisation",
                    entity_id=row["id"],
                    region_code=org.region_code,
                    after={"kind": org.kind, "name": org.name, "region_code": org.region_code},
                )
            else:
                org_ids[org.key] = await conn.fetchval(
                    "select id from organisations where kind = $1 and name = $2 and region_code = $3",
                    org.kind,
                    org.name,
                    org.region_code,
                )
        for user in USERS:
            if user.username not in hashes:
                continue
            user_id = await conn.fetchval(
                """
                insert into users (organisation_id, username, display_name, password_hash, roles)
                values ($1, $2, $3, $4, $5)
                on conflict (username) do nothing
                returning id
                """,
                org_ids[user.organisation],
                user.username,
                user.display_name,
                hashes[user.username],
                list(user.roles),
            )
            if user_id is not None:
                users_created += 1
                await record_event(
                    conn,
                    actor=None,
                    action="user.created",
                    entity_type="user",
                    entity_id=user_id,
                    after={"username": user.username, "roles": list(user.roles)},
                )
    return SeedReport(organisations_created=orgs_created, users_created=users_created)
