"""City rules: versions per region, each in force from its date until the next version's.

* A version is added, never updated or deleted; old versions stay readable by id.
* Versions are numbered per region in the order they are added (1, 2, …; an advisory lock per
  region keeps concurrent adds from sharing a number). Which version is in force on a day is
  decided by the dates alone: the one with the latest ``effective_from`` on or before that day.
* ``effective_from`` may not lie before today (rules are not rewritten retroactively) and may
  not repeat another version's date in the same region.
* A region without a version in force uses its nearest ancestor's (a county uses its city's).
"""

from __future__ import annotations

from datetime import date

import asyncpg

from emall.audit import record_event
from emall.clock import today
from emall.db.pool import Connection, Pool
from emall.errors import Conflict, NotFound, ValidationFailed
from emall.policy import Resource, authorize
from emall.principals import Principal
from emall.regions.service import require_region
from emall.rules.models import CityRuleCreate, CityRuleRead

# effective_until: the day before the next (by date) version of the same region takes over
_COLUMNS = """
    r.id, r.region_code, r.version, r.effective_from,
    (select min(n.effective_from) - 1 from city_rules n
     where n.region_code = r.region_code and n.effective_from > r.effective_from) as effective_until,
    r.ceiling_fen, r.approval_threshold_fen, r.splitting_window_days, r.payment_term_days,
    r.note, r.created_by, r.created_at
"""


def _read(row: asyncpg.Record) -> CityRuleRead:
    return CityRuleRead(**dict(row))


async def rule_in_force(
    conn: Connection | Pool, region_code: str, on: date | None = None
) -> CityRuleRead | None:
    """The version in force on ``on`` (default: today) for the region, or for its nearest
    ancestor with a version in force then; None when no region of the chain has one."""
    row = await conn.fetchrow(
        f"""
        select {_COLUMNS}
        from city_rules r
        join unnest(region_chain($1)) with ordinality as c(code, depth) on c.code = r.region_code
        where r.effective_from <= $2
        order by c.depth, r.effective_from desc
        limit 1
        """,
        region_code,
        on or today(),
    )
    return None if row is None else _read(row)


async def get_rule_in_force(
    conn: Connection | Pool, principal: Principal, region_code: str, on: date | None = None
) -> CityRuleRead:
    """As ``rule_in_force`` for a caller; NotFound when no rule applies on that day."""
    authorize(principal, "city_rule.read")
    await require_region(conn, region_code, "region_code")
    rule = await rule_in_force(conn, region_code, on)
    if rule is None:
        day = (on or today()).isoformat()
        raise NotFound("采购规则", f"{region_code} @ {day}")
    return rule


async def list_versions(
    conn: Connection | Pool, principal: Principal, region_code: str
) -> list[CityRuleRead]:
    """All versions a region itself defines, oldest first (ancestors' are not included)."""
    authorize(principal, "city_rule.read")
    await require_region(conn, region_code, "region_code")
    rows = await conn.fetch(
        f"select {_COLUMNS} from city_rules r where r.region_code = $1 order by r.version",
        region_code,
    )
    return [_read(r) for r in rows]


async def get_version(conn: Connection | Pool, principal: Principal, rule_id: int) -> CityRuleRead:
    authorize(principal, "city_rule.read")
    row = await conn.fetchrow(f"select {_COLUMNS} from city_rules r where r.id = $1", rule_id)
    if row is None:
        raise NotFound("采购规则", rule_id)
    return _read(row)


async def add_version(
    conn: Connection,
    principal: Principal,
    region_code: str,
    data: CityRuleCreate,
    *,
    request_id: str | None = None,
) -> CityRuleRead:
    """The region's operator adds the next version of its rules."""
    chain = await require_region(conn, region_code, "region_code")
    authorize(
        principal,
        "city_rule.manage",
        Resource("city_rule", region_code, region_chain=chain, public=True),
    )
    if data.approval_threshold_fen > data.ceiling_fen:
        raise ValidationFailed.single(
            "approval_threshold_fen",
            f"审批阈值不得高于限额标准 (the approval threshold may not exceed the ceiling "
            f"{data.ceiling_fen} fen)",
        )
    first_day = today()
    if data.effective_from < first_day:
        raise ValidationFailed.single(
            "effective_from",
            f"生效日期不得早于今天 {first_day.isoformat()}，规则不可追溯修改 "
            f"(rules are not changed retroactively: the date may not be before today)",
        )
    async with conn.transaction():
        # one adder per region at a time, until this transaction ends: distinct version numbers
        await conn.execute(
            "select pg_advisory_xact_lock(hashtextextended('emall.city_rule:' || $1, 0))",
            region_code,
        )
        existing = await conn.fetchval(
            "select version from city_rules where region_code = $1 and effective_from = $2",
            region_code,
            data.effective_from,
        )
        if existing is not None:
            raise Conflict(
                f"版本 {existing} 已于 {data.effective_from.isoformat()} 生效，请换一个日期 "
                f"(version {existing} already takes effect on that date)"
            )
        rule_id = await conn.fetchval(
            """
            insert into city_rules (region_code, version, effective_from, ceiling_fen,
                                    approval_threshold_fen, splitting_window_days,
                                    payment_term_days, note, created_by)
            select $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8
            from city_rules where region_code = $1
            returning id
            """,
            region_code,
            data.effective_from,
            data.ceiling_fen,
            data.approval_threshold_fen,
            data.splitting_window_days,
            data.payment_term_days,
            data.note,
            principal.user_id,
        )
        row = await conn.fetchrow(f"select {_COLUMNS} from city_rules r where r.id = $1", rule_id)
        assert row is not None
        added = _read(row)
        await record_event(
            conn,
            actor=principal,
            action="city_rule.added",
            entity_type="city_rule",
            entity_id=added.id,
            region_code=region_code,
            after=added,
            request_id=request_id,
        )
    return added
