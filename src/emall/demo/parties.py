"""The demo seed: the Neijiang (511000) – Zigong (510300) partnership, ready to use.

It holds the three demo partnerships, operators and auditors for both cities, several agencies
and twenty suppliers (most admitted in one city only, some in both, one pending, one banned),
and a user for each role. Idempotent: a second run changes nothing. Every demo user has the
password ``DEMO_PASSWORD``; the README lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from emall.audit import record_event
from emall.clock import today
from emall.db.pool import Connection, Pool
from emall.identity.passwords import hash_password
from emall.organisations.uscc import uscc_check_char

DEMO_PASSWORD = "emall-demo-2020"
NEIJIANG, ZIGONG = "511000", "510300"


@dataclass(frozen=True)
class DemoOrganisation:
    key: str
    kind: str
    name: str
    region_code: str
    uscc: str | None = None
    sme_size: str | None = None


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    organisation: str  # DemoOrganisation.key
    roles: tuple[str, ...]
    scope_partnership: str | None = None  # a partnership code, for a partnership auditor


@dataclass(frozen=True)
class DemoPartnership:
    code: str
    name: str
    effective_from: date
    members: tuple[str, ...]
    description: str = ""


def demo_uscc(region_code: str, serial: int, prefix: str = "91") -> str:
    """A well-formed USCC (GB 32100-2015) for a demo company: valid checksum, made-up body."""
    body = f"{prefix}{region_code}MA{serial:06d}"[:16]
    body += "0"  # the 9-character organisation code ends in a digit
    return body + uscc_check_char(body)


PARTNERSHIPS = (
    DemoPartnership(
        "neijiang-zigong",
        "内自同城化",
        date(2020, 7, 28),
        (NEIJIANG, ZIGONG),
        "内江、自贡两市公共资源交易合作协议（2020年7月28日签署）",
    ),
    DemoPartnership(
        "south-sichuan", "川南经济区", date(2021, 1, 1), (ZIGONG, "510500", NEIJIANG, "511500")
    ),
    DemoPartnership(
        "chengdu-chongqing", "成渝地区双城经济圈", date(2020, 1, 3), ("510100", "500000")
    ),
)

_NJ_SUPPLIERS = (
    ("内江川南数码科技有限公司", "small"),
    ("内江市甜城办公用品有限公司", "micro"),
    ("四川沱江家具制造有限公司", "medium"),
    ("内江华联电脑有限公司", "small"),
    ("内江威远茶叶有限公司", "small"),
    ("资中血橙农业开发有限公司", "micro"),
    ("内江市信达印务有限公司", "small"),
    ("内江天诚空调设备有限公司", "medium"),
    ("隆昌夏布文化用品有限公司", "micro"),
    ("内江东兴区鑫源电器有限公司", "small"),
)
_ZG_SUPPLIERS = (
    ("自贡盐都办公设备有限公司", "small"),
    ("自贡市灯城电子科技有限公司", "medium"),
    ("自贡恐龙文化用品有限公司", "micro"),
    ("富顺豆花食品有限公司", "small"),
    ("荣县茶业有限公司", "micro"),
    ("自贡蓝天空调工程有限公司", "small"),
    ("自贡川南纸业有限公司", "medium"),
    ("自贡宏达家具有限公司", "small"),
    ("自贡华西计算机系统有限公司", "medium"),
    ("自贡井盐农副产品有限公司", "micro"),
)


def _suppliers() -> tuple[DemoOrganisation, ...]:
    result = []
    for city, key, rows in ((NEIJIANG, "nj", _NJ_SUPPLIERS), (ZIGONG, "zg", _ZG_SUPPLIERS)):
        for index, (name, size) in enumerate(rows, start=1):
            result.append(
                DemoOrganisation(
                    f"{key}_supplier_{index}",
                    "supplier",
                    name,
                    city,
                    demo_uscc(city, index + (0 if key == "nj" else 100)),
                    size,
                )
            )
    return tuple(result)


ORGANISATIONS = (
    DemoOrganisation("platform", "platform", "内自同城化政府采购电子卖场", "510000"),
    DemoOrganisation("nj_centre", "operator", "内江市公共资源交易服务中心", NEIJIANG),
    DemoOrganisation("zg_centre", "operator", "自贡市公共资源交易服务中心", ZIGONG),
    DemoOrganisation("nj_education", "agency", "内江市教育局", NEIJIANG),
    DemoOrganisation("nj_hospital", "agency", "内江市第一人民医院", NEIJIANG),
    DemoOrganisation("nj_shizhong", "agency", "内江市市中区人民政府办公室", "511002"),
    DemoOrganisation("zg_health", "agency", "自贡市卫生健康委员会", ZIGONG),
    DemoOrganisation("zg_police", "agency", "自贡市公安局", ZIGONG),
    DemoOrganisation("zg_fushun", "agency", "富顺县财政局", "510322"),
    DemoOrganisation("cd_agency", "agency", "成都市机关事务管理局", "510100"),
    *_suppliers(),
)

USERS = (
    DemoUser("admin", "平台管理员", "platform", ("platform_admin",)),
    DemoUser("nz_auditor", "内自同城化审计员", "platform", ("auditor",), "neijiang-zigong"),
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
    DemoUser("cd_buyer", "成都市机关事务管理局采购员", "cd_agency", ("agency_buyer",)),
    DemoUser("nj_supplier_admin", "川南数码管理员", "nj_supplier_1", ("supplier_admin",)),
    DemoUser("nj_supplier_staff", "川南数码业务员", "nj_supplier_1", ("supplier_staff",)),
    DemoUser("zg_supplier_admin", "盐都办公管理员", "zg_supplier_1", ("supplier_admin",)),
    DemoUser("zg_supplier_staff", "盐都办公业务员", "zg_supplier_1", ("supplier_staff",)),
    # an admin for every other demo supplier (nj_supplier_2 → nj_s2_admin), so that each can
    # upload its catalogue
    *(
        DemoUser(
            f"{city}_s{n}_admin",
            f"{city.upper()}供应商{n}管理员",
            f"{city}_supplier_{n}",
            ("supplier_admin",),
        )
        for city in ("nj", "zg")
        for n in range(2, 11)
    ),
)

# (supplier key, region, status); approvals are decided by that region's operator.
ADMISSIONS: tuple[tuple[str, str, str], ...] = (
    *((f"nj_supplier_{i}", NEIJIANG, "approved") for i in range(1, 8)),
    ("nj_supplier_8", NEIJIANG, "pending"),
    ("nj_supplier_9", NEIJIANG, "approved"),
    ("nj_supplier_9", ZIGONG, "approved"),
    ("nj_supplier_10", NEIJIANG, "approved"),
    *((f"zg_supplier_{i}", ZIGONG, "approved") for i in range(1, 8)),
    ("zg_supplier_8", ZIGONG, "pending"),
    ("zg_supplier_10", ZIGONG, "approved"),
    ("zg_supplier_10", NEIJIANG, "approved"),
)
# nj_supplier_10 is banned in Zigong: admitted in Neijiang, it may not sell there.
BANS = (("nj_supplier_10", ZIGONG, "虚假响应，暂停交易 (false bid documents; suspended)"),)
OPERATOR_OF = {NEIJIANG: "nj_operator", ZIGONG: "zg_operator"}


@dataclass(frozen=True)
class SeedReport:
    organisations_created: int
    users_created: int
    offers_listed: int = 0


async def _organisations(conn: Connection) -> tuple[dict[str, int], int]:
    ids: dict[str, int] = {}
    created = 0
    for org in ORGANISATIONS:
        row = await conn.fetchrow(
            """
            insert into organisations (kind, name, region_code, uscc, sme_size) values ($1, $2, $3, $4, $5)
            on conflict (kind, name, region_code) do nothing
            returning id
            """,
            org.kind,
            org.name,
            org.region_code,
            org.uscc,
            org.sme_size,
        )
        if row is not None:
            created += 1
            ids[org.key] = row["id"]
            await record_event(
                conn,
                actor=None,
                action="organisation.created",
                entity_type="organisation",
                entity_id=row["id"],
                region_code=org.region_code,
                after={
                    "kind": org.kind,
                    "name": org.name,
                    "region_code": org.region_code,
                    "uscc": org.uscc,
                },
            )
        else:
            ids[org.key] = await conn.fetchval(
                "select id from organisations where kind = $1 and name = $2 and region_code = $3",
                org.kind,
                org.name,
                org.region_code,
            )
    return ids, created


async def _partnerships(conn: Connection) -> dict[str, int]:
    ids: dict[str, int] = {}
    for p in PARTNERSHIPS:
        pid = await conn.fetchval(
            """
            insert into partnerships (code, name, description, effective_from) values ($1, $2, $3, $4)
            on conflict (code) do nothing returning id
            """,
            p.code,
            p.name,
            p.description,
            p.effective_from,
        )
        if pid is None:
            ids[p.code] = await conn.fetchval("select id from partnerships where code = $1", p.code)
            continue
        ids[p.code] = pid
        for region in p.members:
            await conn.execute(
                "insert into partnership_members (partnership_id, region_code, joined_on) values ($1, $2, $3)",
                pid,
                region,
                p.effective_from,
            )
        await record_event(
            conn,
            actor=None,
            action="partnership.created",
            entity_type="partnership",
            entity_id=pid,
            after={"code": p.code, "name": p.name, "members": list(p.members)},
        )
    return ids


async def _admissions(conn: Connection, org_ids: dict[str, int]) -> None:
    operators = {
        region: await conn.fetchval("select id from users where username = $1", username)
        for region, username in OPERATOR_OF.items()
    }
    for supplier, region, status in ADMISSIONS:
        exists = await conn.fetchval(
            "select 1 from admissions where supplier_id = $1 and region_code = $2",
            org_ids[supplier],
            region,
        )
        if exists:
            continue
        decided = status == "approved"
        admission_id = await conn.fetchval(
            """
            insert into admissions (supplier_id, region_code, status, note, decided_at, decided_by,
                                    valid_from, valid_until)
            values ($1, $2, $3, '演示数据 (demo)', case when $4 then now() end,
                    case when $4 then $5::bigint end,
                    case when $4 then date '2024-01-01' end, case when $4 then date '2028-12-31' end)
            returning id
            """,
            org_ids[supplier],
            region,
            status,
            decided,
            operators[region],
        )
        await record_event(
            conn,
            actor=None,
            action=f"admission.{status}",
            entity_type="admission",
            entity_id=admission_id,
            region_code=region,
            after={"supplier_id": org_ids[supplier], "region_code": region, "status": status},
        )
    for supplier, region, reason in BANS:
        exists = await conn.fetchval(
            "select 1 from bans where supplier_id = $1 and region_code = $2",
            org_ids[supplier],
            region,
        )
        if not exists:
            ban_id = await conn.fetchval(
                "insert into bans (supplier_id, region_code, reason, created_by) values ($1, $2, $3, $4) returning id",
                org_ids[supplier],
                region,
                reason,
                operators[region],
            )
            await record_event(
                conn,
                actor=None,
                action="ban.created",
                entity_type="ban",
                entity_id=ban_id,
                region_code=region,
                after={"supplier_id": org_ids[supplier], "reason": reason},
            )


# City rules of the two cities (amounts in fen): the e-mall ceiling, the approval threshold,
# the anti-splitting window and the payment term, in force since 2024-01-01.
CITY_RULES = (
    (NEIJIANG, 40_000_000, 5_000_000, 30, 30, "内江市电子卖场采购规则（演示）"),
    (ZIGONG, 30_000_000, 3_000_000, 30, 15, "自贡市电子卖场采购规则（演示）"),
)


# Budget lines of the demo agencies for the current fiscal year (fen): (agency, source, name, amount).
BUDGET_LINES = (
    ("nj_education", "general_public_budget", "办公设备购置", 80_000_000),
    ("nj_education", "general_public_budget", "办公用品及耗材", 10_000_000),
    ("nj_hospital", "own_funds", "医疗辅助设备及办公设备", 50_000_000),
    ("zg_health", "general_public_budget", "办公设备购置", 60_000_000),
    ("zg_police", "general_public_budget", "办公家具及设备", 40_000_000),
)


async def _budgets(conn: Connection, org_ids: dict[str, int]) -> None:
    year = today().year
    for agency, source, name, amount in BUDGET_LINES:
        line_id = await conn.fetchval(
            """
            insert into budget_lines (agency_id, fiscal_year, funding_source, name, amount_fen)
            values ($1, $2, $3, $4, $5)
            on conflict (agency_id, fiscal_year, funding_source, name) do nothing returning id
            """,
            org_ids[agency],
            year,
            source,
            name,
            amount,
        )
        if line_id is None:
            continue
        await conn.execute(
            "insert into budget_ledger (budget_line_id, kind, amount_fen, note) values ($1, 'allocate', $2, '演示数据 (demo)')",
            line_id,
            amount,
        )
        await record_event(
            conn,
            actor=None,
            action="budget_line.created",
            entity_type="budget_line",
            entity_id=line_id,
            after={"agency_id": org_ids[agency], "fiscal_year": year, "amount_fen": amount},
        )


async def _city_rules(conn: Connection) -> None:
    for region, ceiling, threshold, window, term, note in CITY_RULES:
        rule_id = await conn.fetchval(
            """
            insert into city_rules (region_code, version, effective_from, ceiling_fen,
                                    approval_threshold_fen, splitting_window_days,
                                    payment_term_days, note)
            values ($1, 1, date '2024-01-01', $2, $3, $4, $5, $6)
            on conflict (region_code, version) do nothing returning id
            """,
            region,
            ceiling,
            threshold,
            window,
            term,
            note,
        )
        if rule_id is not None:
            await record_event(
                conn,
                actor=None,
                action="city_rule.added",
                entity_type="city_rule",
                entity_id=rule_id,
                region_code=region,
                after={"ceiling_fen": ceiling, "approval_threshold_fen": threshold},
            )


async def seed_parties(pool: Pool) -> SeedReport:
    existing_users = {
        r["username"]
        for r in await pool.fetch(
            "select username from users where username = any($1::text[])",
            [u.username for u in USERS],
        )
    }
    # Hash before the transaction (~0.1 s) so that it holds no connection. Every demo user has
    # the same published password, so one hash serves them all (demo data only).
    missing = [u.username for u in USERS if u.username not in existing_users]
    shared = await hash_password(DEMO_PASSWORD) if missing else ""
    hashes = dict.fromkeys(missing, shared)
    users_created = 0
    async with pool.acquire() as conn, conn.transaction():
        org_ids, orgs_created = await _organisations(conn)
        partnership_ids = await _partnerships(conn)
        for user in USERS:
            if user.username not in hashes:
                continue
            user_id = await conn.fetchval(
                """
                insert into users (organisation_id, username, display_name, password_hash, roles,
                                   scope_partnership_id)
                values ($1, $2, $3, $4, $5, $6)
                on conflict (username) do nothing
                returning id
                """,
                org_ids[user.organisation],
                user.username,
                user.display_name,
                hashes[user.username],
                list(user.roles),
                partnership_ids.get(user.scope_partnership or ""),
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
        await _admissions(conn, org_ids)
        await _city_rules(conn)
        await _budgets(conn, org_ids)
    return SeedReport(organisations_created=orgs_created, users_created=users_created)
