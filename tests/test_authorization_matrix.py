"""The authorisation matrix, generated from the app's route table.

Every operation the app serves must have an entry in ``CASES``; a new route without one fails
``test_every_route_is_in_the_matrix``. Each entry names, per scenario (a target in Neijiang, the
own side of most actors, and one in Zigong, the foreign side), what every demo role must get:

* ``OK``: allowed — anything but 401, 403 or 404 (a 409 from an earlier allowed call is fine);
* ``NO``: refused with 403 — the principal may see the resource but not do this;
* ``HIDDEN``: 404 — another tenant's private resource, whose existence must not leak;
* anonymous callers get 401 on every protected route and are allowed on public ones.

Requests go over HTTP to the real app, and each target is built fresh for each call, so one
actor's allowed change never decides another actor's answer.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from emall.clock import today
from emall.db.pool import Pool
from emall.demo.parties import DEMO_PASSWORD, demo_uscc
from emall.settings import load_settings
from tests.helpers import JWT_SECRET, org_id, token_for

OK, NO, HIDDEN = "ok", "forbidden", "hidden"

ACTORS = (
    "admin",
    "nj_operator",
    "nj_auditor",
    "zg_operator",
    "zg_auditor",
    "nz_auditor",
    "nj_buyer",
    "nj_agency_admin",
    "zg_agency_admin",
    "nj_supplier_admin",
    "nj_supplier_staff",
    "zg_supplier_admin",
)
NJ_SUPPLIER = "内江川南数码科技有限公司"  # nj_supplier_admin's and nj_supplier_staff's
ZG_SUPPLIER = "自贡盐都办公设备有限公司"  # zg_supplier_admin's
NJ_AGENCY = "内江市教育局"  # nj_buyer's and nj_agency_admin's
ZG_AGENCY = "自贡市卫生健康委员会"  # zg_agency_admin's
_serial = itertools.count(1)


@dataclass
class Request:
    method: str
    path: str
    json: Any = None
    params: dict[str, str] | None = None
    content_type: str | None = None  # JSON Lines: json is the one row of the file


Builder = Callable[[Pool], Awaitable[Request]]


@dataclass
class Scenario:
    name: str
    build: Builder
    expect: dict[str, str]


@dataclass
class Case:
    scenarios: list[Scenario]
    public: bool = False


def everyone(outcome: str = OK) -> dict[str, str]:
    return dict.fromkeys(ACTORS, outcome)


def only(
    allowed: set[str], *, seen_by: set[str] = frozenset(), default: str = HIDDEN
) -> dict[str, str]:  # type: ignore[assignment]
    """``allowed`` may act; ``seen_by`` may see but not act (403); everyone else gets ``default``."""
    expect = everyone(default)
    expect.update(dict.fromkeys(seen_by, NO))
    expect.update(dict.fromkeys(allowed, OK))
    return expect


def fixed(
    method: str, path: str, json: Any = None, params: dict[str, str] | None = None
) -> Builder:
    async def build(pool: Pool) -> Request:
        return Request(method, path, json, params)

    return build


# -- targets, each built fresh ----------------------------------------------------------------


async def _partnership(pool: Pool, code: str = "neijiang-zigong") -> int:
    return int(await pool.fetchval("select id from partnerships where code = $1", code))


async def _fresh_user(pool: Pool, organisation: str) -> int:
    n = next(_serial)
    return int(
        await pool.fetchval(
            "insert into users (organisation_id, username, display_name, password_hash, roles) "
            "values ($1, $2, '矩阵用户', 'x', '{agency_buyer}') returning id",
            await org_id(pool, organisation),
            f"matrix_user_{n}",
        )
    )


async def _fresh_admission(pool: Pool, supplier: str, region: str, status: str) -> int:
    supplier_id = await org_id(pool, supplier)
    await pool.execute(
        "update admissions set status = 'withdrawn' where supplier_id = $1 and region_code = $2 "
        "and status in ('pending', 'approved')",
        supplier_id,
        region,
    )
    return int(
        await pool.fetchval(
            "insert into admissions (supplier_id, region_code, status, valid_from) "
            "values ($1, $2, $3, case when $3 = 'approved' then current_date end) returning id",
            supplier_id,
            region,
            status,
        )
    )


async def _fresh_ban(pool: Pool, supplier: str, region: str) -> int:
    return int(
        await pool.fetchval(
            "insert into bans (supplier_id, region_code, reason) values ($1, $2, '矩阵') returning id",
            await org_id(pool, supplier),
            region,
        )
    )


def user_target(organisation: str, action: str = "", json: Any = None) -> Builder:
    async def build(pool: Pool) -> Request:
        user_id = await _fresh_user(pool, organisation)
        method = "GET" if not action else ("PATCH" if action == "patch" else "POST")
        suffix = "" if action in ("", "patch") else f"/{action}"
        return Request(method, f"/api/v1/users/{user_id}{suffix}", json)

    return build


def org_target(organisation: str, method: str, suffix: str = "", json: Any = None) -> Builder:
    async def build(pool: Pool) -> Request:
        return Request(
            method, f"/api/v1/organisations/{await org_id(pool, organisation)}{suffix}", json
        )

    return build


def admission_target(
    supplier: str, region: str, status: str, action: str, json: Any = None
) -> Builder:
    async def build(pool: Pool) -> Request:
        admission_id = await _fresh_admission(pool, supplier, region, status)
        if not action:
            return Request("GET", f"/api/v1/admissions/{admission_id}")
        return Request("POST", f"/api/v1/admissions/{admission_id}/{action}", json)

    return build


def ban_target(supplier: str, region: str, action: str = "") -> Builder:
    async def build(pool: Pool) -> Request:
        ban_id = await _fresh_ban(pool, supplier, region)
        if not action:
            return Request("GET", f"/api/v1/bans/{ban_id}")
        return Request("POST", f"/api/v1/bans/{ban_id}/{action}", {"reason": "矩阵测试"})

    return build


def new_supplier(region: str) -> Builder:
    async def build(pool: Pool) -> Request:
        n = next(_serial)
        body = {
            "kind": "supplier",
            "name": f"矩阵供应商{n}有限公司",
            "region_code": region,
            "uscc": demo_uscc(region, 9000 + n),
        }
        return Request("POST", "/api/v1/organisations", body)

    return build


def partnership_path(
    suffix: str, method: str, json: Any = None, code: str = "neijiang-zigong"
) -> Builder:
    async def build(pool: Pool) -> Request:
        return Request(
            method, f"/api/v1/partnerships/{await _partnership(pool, code)}{suffix}", json
        )

    return build


def leaving_member() -> Builder:
    async def build(pool: Pool) -> Request:
        pid = await _partnership(pool, "chengdu-chongqing")
        region = await pool.fetchval(  # a county of Chengdu that is not a current member
            "select code from regions where parent_code = '510100' and code not in "
            "(select region_code from partnership_members where partnership_id = $1 and left_on is null) "
            "order by code limit 1",
            pid,
        )
        await pool.execute(
            "insert into partnership_members (partnership_id, region_code, joined_on) "
            "values ($1, $2, current_date) on conflict do nothing",
            pid,
            region,
        )
        return Request(
            "POST", f"/api/v1/partnerships/{pid}/members/{region}/leave", {"left_on": "2099-01-01"}
        )

    return build


def api_key_of(username: str) -> Builder:
    async def build(pool: Pool) -> Request:
        user = await pool.fetchrow(
            "select id, organisation_id from users where username = $1", username
        )
        key_id = await pool.fetchval(
            "insert into api_keys (prefix, secret_sha256, name, user_id, organisation_id, roles) "
            "values ($1, decode(repeat('00', 32), 'hex'), 'matrix', $2, $3, '{agency_admin}') returning id",
            f"m{next(_serial):07d}",
            user["id"],
            user["organisation_id"],
        )
        return Request("DELETE", f"/api/v1/api-keys/{key_id}")

    return build


async def _fresh_offer(pool: Pool, status: str) -> int:
    """An offer of the Neijiang supplier in ``status``, reviewed in Neijiang, delivering to both cities."""
    n = next(_serial)
    supplier = await org_id(pool, NJ_SUPPLIER)
    product = await pool.fetchval(
        "insert into products (category_code, brand, model, title) values ('A02010104', '矩阵', $1, '矩阵商品') returning id",
        f"M{n}",
    )
    offer = await pool.fetchval(
        """
        insert into offers (product_id, supplier_id, supplier_sku, status, price_fen, reference_price_fen,
                            reference_source_url, reference_date, review_region_code, stock)
        values ($1, $2, $3, $4, 100000, 120000, 'https://example.cn', '2026-01-01',
                case when $4 = 'draft' then null else '511000' end, 5)
        returning id
        """,
        product,
        supplier,
        f"MX-{n}",
        status,
    )
    await pool.execute(
        "insert into offer_delivery (offer_id, region_code, delivery_days) values ($1, '511000', 2), ($1, '510300', 3)",
        offer,
    )
    await pool.execute(
        "insert into offer_price_history (offer_id, price_fen, reference_price_fen) values ($1, 100000, 120000)",
        offer,
    )
    return int(offer)


def offers_review(decision: str, reason: str | None = None) -> Builder:
    """A bulk review of one fresh submitted Neijiang offer. Its refusals of single offers are in
    the body (an offer another operator may not see is ``not_found`` there): the call itself is
    an operator's, refused with 403 to everyone else."""

    async def build(pool: Pool) -> Request:
        body: dict[str, Any] = {
            "offer_ids": [await _fresh_offer(pool, "submitted")],
            "decision": decision,
        }
        if reason is not None:
            body["reason"] = reason
        return Request("POST", "/api/v1/offers/review", body)

    return build


def offer_target(status: str, method: str, suffix: str = "", json: Any = None) -> Builder:
    async def build(pool: Pool) -> Request:
        return Request(method, f"/api/v1/offers/{await _fresh_offer(pool, status)}{suffix}", json)

    return build


def new_product() -> Builder:
    async def build(pool: Pool) -> Request:
        body = {
            "category_code": "A02010104",
            "brand": "矩阵",
            "model": f"P{next(_serial)}",
            "title": "矩阵新商品",
        }
        return Request("POST", "/api/v1/products", body)

    return build


def new_offer() -> Builder:
    async def build(pool: Pool) -> Request:
        n = next(_serial)
        product = await pool.fetchval(
            "insert into products (category_code, brand, model, title) values ('A02010104', '矩阵', $1, '矩阵商品') returning id",
            f"O{n}",
        )
        body = {
            "product_id": product,
            "supplier_sku": f"NEW-{n}",
            "price_fen": 1000,
            "reference_price_fen": 1200,
            "reference_source_url": "https://example.cn",
            "reference_date": "2026-01-01",
            "stock": 1,
            "delivery": [{"region_code": "511000", "delivery_days": 2}],
        }
        return Request("POST", "/api/v1/offers", body)

    return build


def product_target() -> Builder:
    async def build(pool: Pool) -> Request:
        product = await pool.fetchval(
            "insert into products (category_code, brand, model, title) values ('A02010104', '矩阵', $1, '矩阵商品') returning id",
            f"G{next(_serial)}",
        )
        return Request("GET", f"/api/v1/products/{product}")

    return build


def flag_target() -> Builder:
    async def build(pool: Pool) -> Request:
        offer = await _fresh_offer(pool, "listed")
        flag = await pool.fetchval(
            "insert into offer_flags (offer_id, kind, region_code) values ($1, 'price_above_peers', '511000') returning id",
            offer,
        )
        return Request("POST", f"/api/v1/prices/flags/{flag}/resolve", {"resolution": "矩阵处理"})

    return build


async def _nj_budget_line(pool: Pool) -> int:
    line = await pool.fetchval(
        "insert into budget_lines (agency_id, fiscal_year, funding_source, name, amount_fen) "
        "values ($1, extract(year from now())::int, 'general_public_budget', $2, 100000000) returning id",
        await org_id(pool, NJ_AGENCY),
        f"矩阵预算{next(_serial)}",
    )
    return int(line)


def cart_item_put() -> Builder:
    async def build(pool: Pool) -> Request:
        return Request(
            "PUT",
            "/api/v1/cart/items",
            {"offer_id": await _fresh_offer(pool, "listed"), "quantity": 1},
        )

    return build


def cart_item_delete() -> Builder:
    async def build(pool: Pool) -> Request:
        offer = await _fresh_offer(pool, "listed")
        await pool.execute(
            "insert into cart_items (user_id, offer_id, quantity) select id, $1, 1 from users where username = 'nj_buyer'",
            offer,
        )
        return Request("DELETE", f"/api/v1/cart/items/{offer}")

    return build


def checkout_request() -> Builder:
    async def build(pool: Pool) -> Request:
        offer = await _fresh_offer(pool, "listed")
        await pool.execute(
            "insert into cart_items (user_id, offer_id, quantity) select id, $1, 1 from users where username = 'nj_buyer' "
            "on conflict do nothing",
            offer,
        )
        body = {
            "budget_line_id": await _nj_budget_line(pool),
            "acknowledge": ["price_above_median", "splitting"],
        }
        return Request("POST", "/api/v1/checkout", body)

    return build


def order_target() -> Builder:
    async def build(pool: Pool) -> Request:
        order = await pool.fetchval(
            """
            insert into orders (checkout_id, agency_id, buyer_user_id, supplier_id, region_code,
                                delivery_region_code, budget_line_id, city_rule_id, status, total_fen)
            values (gen_random_uuid(), $1, (select id from users where username = 'nj_buyer'), $2, '511000',
                    '511000', $3, (select id from city_rules where region_code = '511000' order by version limit 1),
                    'submitted', 1000)
            returning id
            """,
            await org_id(pool, NJ_AGENCY),
            await org_id(pool, NJ_SUPPLIER),
            await _nj_budget_line(pool),
        )
        return Request("GET", f"/api/v1/orders/{order}")

    return build


def order_flag_target() -> Builder:
    """An open splitting flag on a fresh NJ order, to resolve."""

    async def build(pool: Pool) -> Request:
        order_request = await order_target()(pool)
        order = int(order_request.path.rsplit("/", 1)[1])
        flag = await pool.fetchval(
            "insert into order_flags (order_id, kind, region_code) values ($1, 'splitting', '511000') returning id",
            order,
        )
        return Request("POST", f"/api/v1/order-flags/{flag}/resolve", {"resolution": "矩阵处理"})

    return build


def order_in(status: str, action: str, json: Any = None) -> Builder:
    """An order of the NJ agency from the NJ supplier, with one line, in ``status``."""

    async def build(pool: Pool) -> Request:
        offer = await _fresh_offer(pool, "listed")
        order = await pool.fetchval(
            """
            insert into orders (checkout_id, agency_id, buyer_user_id, supplier_id, region_code,
                                delivery_region_code, budget_line_id, city_rule_id, status, total_fen,
                                accepted_fen)
            values (gen_random_uuid(), $1, (select id from users where username = 'nj_buyer'), $2, '511000',
                    '511000', $3, (select id from city_rules where region_code = '511000' order by version limit 1),
                    $4, 100000, case when $4 = 'accepted' then 0 end)
            returning id
            """,
            await org_id(pool, NJ_AGENCY),
            await org_id(pool, NJ_SUPPLIER),
            await _nj_budget_line(pool),
            status,
        )
        await pool.execute(
            """
            insert into order_lines (order_id, offer_id, product_id, title, unit, category_code, category3_code,
                                     unit_price_fen, quantity, line_total_fen, delivery_days)
            select $1, o.id, o.product_id, '矩阵商品', '台', 'A02010104', 'A02010100', 100000, 1, 100000, 2
            from offers o where o.id = $2
            """,
            order,
            offer,
        )
        return Request("POST", f"/api/v1/orders/{order}/{action}", json)

    return build


def supplier_score_target() -> Builder:
    async def build(pool: Pool) -> Request:
        return Request("GET", f"/api/v1/suppliers/{await org_id(pool, ZG_SUPPLIER)}/score")

    return build


def contact_of(organisation: str) -> Builder:
    async def build(pool: Pool) -> Request:
        oid = await org_id(pool, organisation)
        contact = await pool.fetchval(
            "insert into organisation_contacts (organisation_id, name, phone) values ($1, '张三', '0832-1234567') returning id",
            oid,
        )
        return Request("DELETE", f"/api/v1/organisations/{oid}/contacts/{contact}")

    return build


def template_of(code: str) -> Builder:
    async def build(pool: Pool) -> Request:
        await pool.execute(
            "insert into attribute_templates (category_code, attributes) values ($1, $2) "
            "on conflict do nothing",
            code,
            [{"key": "cpu", "name": "CPU 型号", "type": "text", "required": True}],
        )
        return Request("GET", f"/api/v1/categories/{code}/template")

    return build


def _with_params(inner: Builder, params: dict[str, str]) -> Builder:
    async def build(pool: Pool) -> Request:
        request = await inner(pool)
        request.params = params
        return request

    return build


def import_upload() -> Builder:
    """A one-row JSON Lines file: each supplier imports into its own catalogue."""

    async def build(pool: Pool) -> Request:
        row = {
            "supplier_sku": f"IMP-{next(_serial)}",
            "category_code": "A02010104",
            "brand": "矩阵",
            "model": "导入型号",
            "title": "矩阵导入商品",
            "price_fen": 1000,
            "reference_price_fen": 1200,
            "reference_source_url": "https://example.cn",
            "reference_date": "2026-01-01",
            "stock": 1,
            "delivery": [{"region_code": "511000", "delivery_days": 2}],
        }
        return Request("POST", "/api/v1/imports", row, {"format": "jsonl"}, "application/x-ndjson")

    return build


def import_job_of(supplier: str, suffix: str = "") -> Builder:
    async def build(pool: Pool) -> Request:
        job = await pool.fetchval(
            "insert into import_jobs (supplier_id, format, sha256) values ($1, 'jsonl', $2) returning id",
            await org_id(pool, supplier),
            "0" * 64,
        )
        return Request("GET", f"/api/v1/imports/{job}{suffix}")

    return build


def city_rule_target(region: str, kind: str) -> Builder:
    """``in_force``: GET the rule in force (one effective today is ensured); ``version``: GET a
    fresh version by id; ``add``: POST a new version on a date no other call uses."""

    async def build(pool: Pool) -> Request:
        if kind == "add":
            day = (today() + timedelta(days=next(_serial))).isoformat()
            body = {"effective_from": day, "ceiling_fen": 100_000, "approval_threshold_fen": 0}
            return Request("POST", f"/api/v1/city-rules/{region}/versions", body)
        rule_id = await pool.fetchval(
            "insert into city_rules (region_code, version, effective_from, ceiling_fen, approval_threshold_fen) "
            "select $1, coalesce(max(version), 0) + 1, $2, 100000, 0 from city_rules where region_code = $1 "
            "on conflict do nothing returning id",
            region,
            today() if kind == "in_force" else date(2090, 1, 1) + timedelta(days=next(_serial)),
        )
        if kind == "in_force":
            return Request("GET", f"/api/v1/city-rules/{region}")
        return Request("GET", f"/api/v1/city-rule-versions/{rule_id}")

    return build


def new_budget_line() -> Builder:
    async def build(pool: Pool) -> Request:
        body = {
            "fiscal_year": 2026,
            "funding_source": "general_public_budget",
            "name": f"矩阵预算{next(_serial)}",
            "amount_fen": 100000,
        }
        return Request("POST", "/api/v1/budget-lines", body)

    return build


def budget_line_of(agency: str, suffix: str = "", json: Any = None) -> Builder:
    async def build(pool: Pool) -> Request:
        line = await pool.fetchval(
            "insert into budget_lines (agency_id, fiscal_year, funding_source, name, amount_fen) "
            "values ($1, 2026, 'own_funds', $2, 100000) returning id",
            await org_id(pool, agency),
            f"矩阵预算{next(_serial)}",
        )
        return Request(
            "POST" if json is not None else "GET", f"/api/v1/budget-lines/{line}{suffix}", json
        )

    return build


# -- expectations -------------------------------------------------------------------------------

ORG_ADMINS = {
    "admin",
    "nj_operator",
    "zg_operator",
    "nj_agency_admin",
    "zg_agency_admin",
    "nj_supplier_admin",
    "zg_supplier_admin",
}
NJ_OVERSIGHT = {"nj_operator", "nj_auditor", "nz_auditor"}
ZG_OVERSIGHT = {"zg_operator", "zg_auditor", "nz_auditor"}
NJ_SUPPLIER_USERS = {"nj_supplier_admin", "nj_supplier_staff"}
SUPPLIER_USERS = NJ_SUPPLIER_USERS | {"zg_supplier_admin"}
NJ_AGENCY_USERS = {"nj_buyer", "nj_agency_admin"}
OTHER_THAN_ADMIN = set(ACTORS) - {"admin"}

CASES: dict[str, Case] = {
    "health": Case([Scenario("anyone", fixed("GET", "/health"), everyone())], public=True),
    "ready": Case([Scenario("anyone", fixed("GET", "/ready"), everyone())], public=True),
    "createToken": Case(
        [
            Scenario(
                "anyone",
                fixed(
                    "POST",
                    "/api/v1/auth/token",
                    {"username": "nj_buyer", "password": DEMO_PASSWORD},
                ),
                everyone(),
            )
        ],
        public=True,
    ),
    "listRegions": Case(
        [Scenario("anyone", fixed("GET", "/api/v1/regions", params={"q": "内江"}), everyone())],
        public=True,
    ),
    "getRegion": Case(
        [Scenario("anyone", fixed("GET", "/api/v1/regions/511000"), everyone())], public=True
    ),
    "listRegionChildren": Case(
        [Scenario("anyone", fixed("GET", "/api/v1/regions/510300/children"), everyone())],
        public=True,
    ),
    "getMe": Case([Scenario("self", fixed("GET", "/api/v1/me"), everyone())]),
    # API keys
    "createApiKey": Case(
        [
            Scenario(
                "own",
                fixed("POST", "/api/v1/api-keys", {"name": "矩阵"}),
                only(ORG_ADMINS, default=NO),
            )
        ]
    ),
    "listApiKeys": Case([Scenario("own", fixed("GET", "/api/v1/api-keys"), everyone())]),
    "revokeApiKey": Case(
        [
            Scenario(
                "NJ agency key",
                api_key_of("nj_agency_admin"),
                only({"admin", "nj_agency_admin"}, seen_by={"nj_buyer"}),
            ),
            Scenario(
                "ZG agency key", api_key_of("zg_agency_admin"), only({"admin", "zg_agency_admin"})
            ),
        ]
    ),
    # users
    "listUsers": Case(
        [
            Scenario(
                "NJ agency",
                org_target(NJ_AGENCY, "GET", "/users"),
                only(NJ_AGENCY_USERS | {"admin"}),
            ),
            Scenario(
                "ZG agency",
                org_target(ZG_AGENCY, "GET", "/users"),
                only({"zg_agency_admin", "admin"}),
            ),
        ]
    ),
    "createUser": Case(
        [
            Scenario(
                "NJ agency",
                org_target(
                    NJ_AGENCY,
                    "POST",
                    "/users",
                    {
                        "username": "matrix_new",
                        "display_name": "新用户",
                        "password": "long-enough-pw",
                        "roles": ["agency_buyer"],
                    },
                ),
                only({"admin", "nj_agency_admin"}, seen_by={"nj_buyer"}),
            ),
            Scenario(
                "ZG agency",
                org_target(
                    ZG_AGENCY,
                    "POST",
                    "/users",
                    {
                        "username": "matrix_zg",
                        "display_name": "新用户",
                        "password": "long-enough-pw",
                        "roles": ["agency_buyer"],
                    },
                ),
                only({"admin", "zg_agency_admin"}),
            ),
        ]
    ),
    "getUser": Case(
        [
            Scenario("NJ agency user", user_target(NJ_AGENCY), only(NJ_AGENCY_USERS | {"admin"})),
            Scenario("ZG agency user", user_target(ZG_AGENCY), only({"zg_agency_admin", "admin"})),
        ]
    ),
    "updateUser": Case(
        [
            Scenario(
                "NJ agency user",
                user_target(NJ_AGENCY, "patch", {"display_name": "改名"}),
                only({"admin", "nj_agency_admin"}, seen_by={"nj_buyer"}),
            ),
            Scenario(
                "ZG agency user",
                user_target(ZG_AGENCY, "patch", {"display_name": "改名"}),
                only({"admin", "zg_agency_admin"}),
            ),
        ]
    ),
    "deactivateUser": Case(
        [
            Scenario(
                "NJ agency user",
                user_target(NJ_AGENCY, "deactivate"),
                only({"admin", "nj_agency_admin"}, seen_by={"nj_buyer"}),
            ),
        ]
    ),
    "reactivateUser": Case(
        [
            Scenario(
                "NJ agency user",
                user_target(NJ_AGENCY, "reactivate"),
                only({"admin", "nj_agency_admin"}, seen_by={"nj_buyer"}),
            ),
        ]
    ),
    # organisations
    "listOrganisations": Case(
        [
            Scenario(
                "directory",
                fixed("GET", "/api/v1/organisations", params={"region_code": "511000"}),
                everyone(),
            )
        ]
    ),
    "getOrganisation": Case(
        [Scenario("public profile", org_target(ZG_SUPPLIER, "GET"), everyone())]
    ),
    "createOrganisation": Case(
        [
            Scenario(
                "in Neijiang", new_supplier("511000"), only({"admin", "nj_operator"}, default=NO)
            ),
            Scenario(
                "in Zigong", new_supplier("510300"), only({"admin", "zg_operator"}, default=NO)
            ),
        ]
    ),
    "updateOrganisation": Case(
        [
            Scenario(
                "NJ supplier",
                org_target(NJ_SUPPLIER, "PATCH", json={"address": "内江市东兴区"}),
                only({"admin", "nj_supplier_admin"}, default=NO),
            ),
        ]
    ),
    "listContacts": Case(
        [
            Scenario(
                "NJ supplier",
                org_target(NJ_SUPPLIER, "GET", "/contacts"),
                only(NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "addContact": Case(
        [
            Scenario(
                "NJ supplier",
                org_target(
                    NJ_SUPPLIER, "POST", "/contacts", {"name": "李四", "phone": "0832-7654321"}
                ),
                only({"admin", "nj_supplier_admin"}, seen_by={"nj_supplier_staff"} | NJ_OVERSIGHT),
            ),
        ]
    ),
    "removeContact": Case(
        [
            Scenario(
                "NJ supplier",
                contact_of(NJ_SUPPLIER),
                only({"admin", "nj_supplier_admin"}, seen_by={"nj_supplier_staff"} | NJ_OVERSIGHT),
            ),
        ]
    ),
    "listQualifications": Case(
        [
            Scenario(
                "NJ supplier",
                org_target(NJ_SUPPLIER, "GET", "/qualifications"),
                only(NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
            Scenario(
                "ZG supplier",
                org_target(ZG_SUPPLIER, "GET", "/qualifications"),
                only({"zg_supplier_admin", "admin"} | ZG_OVERSIGHT),
            ),
        ]
    ),
    "addQualification": Case(
        [
            Scenario(
                "NJ supplier",
                org_target(
                    NJ_SUPPLIER,
                    "POST",
                    "/qualifications",
                    {
                        "kind": "营业执照",
                        "number": "N1",
                        "issuer": "内江市市场监督管理局",
                        "valid_from": "2024-01-01",
                    },
                ),
                only({"admin", "nj_supplier_admin"}, seen_by={"nj_supplier_staff"} | NJ_OVERSIGHT),
            ),
        ]
    ),
    "getSaleRight": Case(
        [Scenario("any supplier", org_target(ZG_SUPPLIER, "GET", "/sale-right"), everyone())]
    ),
    # partnerships
    "listPartnerships": Case([Scenario("all", fixed("GET", "/api/v1/partnerships"), everyone())]),
    "getPartnership": Case([Scenario("one", partnership_path("", "GET"), everyone())]),
    "createPartnership": Case(
        [
            Scenario(
                "new",
                fixed(
                    "POST",
                    "/api/v1/partnerships",
                    {"code": "matrix", "name": "矩阵合作区", "effective_from": "2026-01-01"},
                ),
                only({"admin"}, default=NO),
            )
        ]
    ),
    "updatePartnership": Case(
        [
            Scenario(
                "one",
                partnership_path("", "PATCH", {"description": "更新"}),
                only({"admin"}, default=NO),
            )
        ]
    ),
    "addPartnershipMember": Case(
        [
            Scenario(
                "one",
                partnership_path(
                    "/members", "POST", {"region_code": "510500", "joined_on": "2026-01-01"}
                ),
                only({"admin"}, default=NO),
            )
        ]
    ),
    "endPartnershipMembership": Case(
        [Scenario("one", leaving_member(), only({"admin"}, default=NO))]
    ),
    "setRecognition": Case(
        [
            Scenario(
                "Neijiang's membership",
                partnership_path(
                    "/members/511000/recognition", "PUT", {"recognises_admissions": True}
                ),
                only({"nj_operator"}, default=NO),
            ),
            Scenario(
                "Zigong's membership",
                partnership_path(
                    "/members/510300/recognition", "PUT", {"recognises_admissions": True}
                ),
                only({"zg_operator"}, default=NO),
            ),
        ]
    ),
    # admission
    "listAdmissions": Case(
        [Scenario("scoped list", fixed("GET", "/api/v1/admissions"), everyone())]
    ),
    "applyForAdmission": Case(
        [
            Scenario(
                "to Luzhou",
                fixed("POST", "/api/v1/admissions", {"region_code": "510500"}),
                only({"nj_supplier_admin", "zg_supplier_admin"}, default=NO),
            )
        ]
    ),
    "getAdmission": Case(
        [
            Scenario(
                "NJ supplier in NJ",
                admission_target(NJ_SUPPLIER, "511002", "approved", ""),
                only(NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
            Scenario(
                "ZG supplier in ZG",
                admission_target(ZG_SUPPLIER, "510302", "approved", ""),
                only({"zg_supplier_admin", "admin"} | ZG_OVERSIGHT),
            ),
        ]
    ),
    "approveAdmission": Case(
        [
            Scenario(
                "in NJ",
                admission_target(NJ_SUPPLIER, "511002", "pending", "approve", {}),
                only({"nj_operator"}, seen_by=NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
            Scenario(
                "in ZG",
                admission_target(ZG_SUPPLIER, "510302", "pending", "approve", {}),
                only({"zg_operator"}, seen_by={"zg_supplier_admin", "admin"} | ZG_OVERSIGHT),
            ),
        ]
    ),
    "rejectAdmission": Case(
        [
            Scenario(
                "in NJ",
                admission_target(
                    NJ_SUPPLIER, "511002", "pending", "reject", {"reason": "资料不全"}
                ),
                only({"nj_operator"}, seen_by=NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "revokeAdmission": Case(
        [
            Scenario(
                "in NJ",
                admission_target(NJ_SUPPLIER, "511002", "approved", "revoke", {"reason": "违规"}),
                only({"nj_operator"}, seen_by=NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "withdrawAdmission": Case(
        [
            Scenario(
                "own application",
                admission_target(NJ_SUPPLIER, "511002", "pending", "withdraw"),
                only({"nj_supplier_admin"}, seen_by={"nj_supplier_staff", "admin"} | NJ_OVERSIGHT),
            ),
        ]
    ),
    # bans
    # ordering: the cart and checkout are the agency buyer's; an order is its agency's and supplier's
    "getCart": Case(
        [Scenario("own cart", fixed("GET", "/api/v1/cart"), only({"nj_buyer"}, default=NO))]
    ),
    "putCartItem": Case(
        [Scenario("a listed NJ offer", cart_item_put(), only({"nj_buyer"}, default=NO))]
    ),
    "removeCartItem": Case(
        [Scenario("an item of nj_buyer's", cart_item_delete(), only({"nj_buyer"}, default=NO))]
    ),
    "checkout": Case(
        [Scenario("nj_buyer's cart", checkout_request(), only({"nj_buyer"}, default=NO))]
    ),
    "listOrders": Case([Scenario("scoped list", fixed("GET", "/api/v1/orders"), everyone())]),
    "listOrdersToApprove": Case(
        [
            Scenario(
                "own agency's queue",
                fixed("GET", "/api/v1/orders/approval-queue"),
                only({"nj_agency_admin", "zg_agency_admin"}, default=NO),
            )
        ]
    ),
    "listOrderFlags": Case(
        [Scenario("scoped queue", fixed("GET", "/api/v1/order-flags"), everyone())]
    ),
    "resolveOrderFlag": Case(
        [
            Scenario(
                "NJ order flag",
                order_flag_target(),
                only({"nj_operator"}, seen_by={"nj_auditor", "nz_auditor", "admin"}),
            ),
        ]
    ),
    "getOrder": Case(
        [
            Scenario(
                "an NJ agency's order from the NJ supplier",
                order_target(),
                only(NJ_AGENCY_USERS | NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "approveOrder": Case(
        [
            Scenario(
                "waiting NJ order",
                order_in("pending_approval", "approve"),
                only(set(), seen_by=NJ_AGENCY_USERS | NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "rejectOrder": Case(
        [
            Scenario(
                "waiting NJ order",
                order_in("pending_approval", "reject", {"reason": "矩阵驳回"}),
                only(set(), seen_by=NJ_AGENCY_USERS | NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "confirmOrder": Case(
        [
            Scenario(
                "submitted NJ order",
                order_in("submitted", "confirm", {}),
                only(NJ_SUPPLIER_USERS, seen_by=NJ_AGENCY_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "declineOrder": Case(
        [
            Scenario(
                "submitted NJ order",
                order_in("submitted", "decline", {"reason": "矩阵拒单"}),
                only(NJ_SUPPLIER_USERS, seen_by=NJ_AGENCY_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "shipOrder": Case(
        [
            Scenario(
                "confirmed NJ order",
                order_in("confirmed", "ship"),
                only(NJ_SUPPLIER_USERS, seen_by=NJ_AGENCY_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "deliverOrder": Case(
        [
            Scenario(
                "shipped NJ order",
                order_in("shipped", "deliver"),
                only(NJ_SUPPLIER_USERS, seen_by=NJ_AGENCY_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "acceptOrder": Case(
        [
            Scenario(
                "delivered NJ order",
                order_in("delivered", "accept", {}),
                only(
                    {"nj_buyer"},
                    seen_by={"nj_agency_admin"} | NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"},
                ),
            ),
        ]
    ),
    "settleOrder": Case(
        [
            Scenario(
                "accepted NJ order",
                order_in(
                    "accepted",
                    "settle",
                    {"amount_fen": 0, "paid_on": "2026-11-30", "reference": "矩阵"},
                ),
                only(
                    {"nj_buyer"},
                    seen_by={"nj_agency_admin"} | NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"},
                ),
            ),
        ]
    ),
    "cancelOrder": Case(
        [
            Scenario(
                "submitted NJ order",
                order_in("submitted", "cancel", {"reason": "矩阵撤单"}),
                only(
                    {"nj_buyer"},
                    seen_by={"nj_agency_admin"} | NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"},
                ),
            ),
        ]
    ),
    "rateOrder": Case(
        [
            Scenario(
                "accepted NJ order",
                order_in("accepted", "evaluation", {"quality": 5, "delivery": 5, "service": 5}),
                only(
                    {"nj_buyer"},
                    seen_by={"nj_agency_admin"} | NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"},
                ),
            ),
        ]
    ),
    "getSupplierScore": Case([Scenario("any supplier", supplier_score_target(), everyone())]),
    # search: every principal searches what its own region may buy
    "searchOffers": Case(
        [Scenario("own region", fixed("GET", "/api/v1/search", params={"q": "计算机"}), everyone())]
    ),
    "suggestSearch": Case(
        [
            Scenario(
                "own region",
                fixed("GET", "/api/v1/search/suggest", params={"q": "联想"}),
                everyone(),
            )
        ]
    ),
    "getSearchSyncStatus": Case(
        [Scenario("status", fixed("GET", "/api/v1/search/status"), everyone())]
    ),
    # products, offers, the listing workflow and prices
    "listProducts": Case([Scenario("all", fixed("GET", "/api/v1/products"), everyone())]),
    "getProduct": Case([Scenario("one", product_target(), everyone())]),
    "createProduct": Case([Scenario("new", new_product(), only(SUPPLIER_USERS, default=NO))]),
    "listOffers": Case([Scenario("scoped list", fixed("GET", "/api/v1/offers"), everyone())]),
    "createOffer": Case([Scenario("new", new_offer(), only(SUPPLIER_USERS, default=NO))]),
    "getOffer": Case(
        [
            Scenario(
                "NJ draft",
                offer_target("draft", "GET"),
                only(NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
            Scenario(
                "NJ listed, delivering to both cities", offer_target("listed", "GET"), everyone()
            ),
        ]
    ),
    "updateOffer": Case(
        [
            Scenario(
                "NJ draft",
                offer_target("draft", "PATCH", json={"stock": 3}),
                only(NJ_SUPPLIER_USERS, seen_by=NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "submitOffer": Case(
        [
            Scenario(
                "NJ draft",
                offer_target("draft", "POST", "/submit"),
                only(NJ_SUPPLIER_USERS, seen_by=NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "approveOffer": Case(
        [
            Scenario(
                "submitted in NJ",
                offer_target("submitted", "POST", "/approve"),
                only(
                    {"nj_operator"},
                    seen_by=NJ_SUPPLIER_USERS | {"nj_auditor", "nz_auditor", "admin"},
                ),
            ),
        ]
    ),
    "rejectOffer": Case(
        [
            Scenario(
                "submitted in NJ",
                offer_target("submitted", "POST", "/reject", {"reason": "矩阵驳回"}),
                only(
                    {"nj_operator"},
                    seen_by=NJ_SUPPLIER_USERS | {"nj_auditor", "nz_auditor", "admin"},
                ),
            ),
        ]
    ),
    "reviewOffers": Case(
        [
            Scenario(
                "approve one submitted in NJ",
                offers_review("approve"),
                only({"nj_operator", "zg_operator"}, default=NO),
            ),
            Scenario(
                "reject one submitted in NJ",
                offers_review("reject", "矩阵批量驳回"),
                only({"nj_operator", "zg_operator"}, default=NO),
            ),
        ]
    ),
    "delistOffer": Case(
        [
            Scenario(
                "listed in NJ",
                offer_target("listed", "POST", "/delist", {"reason": "矩阵下架"}),
                only(NJ_SUPPLIER_USERS | {"nj_operator"}, default=NO),
            ),
        ]
    ),
    "getOfferPriceHistory": Case(
        [
            Scenario(
                "NJ draft",
                offer_target("draft", "GET", "/price-history"),
                only(NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "getOfferAuditTrail": Case(
        [
            Scenario(
                "NJ listed",
                offer_target("listed", "GET", "/audit"),
                only(NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "getPriceStats": Case(
        [Scenario("a category", fixed("GET", "/api/v1/prices/stats/A02010105"), everyone())]
    ),
    "getPriceRule": Case(
        [Scenario("a region", fixed("GET", "/api/v1/prices/rules/511000"), everyone())]
    ),
    "putPriceRule": Case(
        [
            Scenario(
                "Neijiang",
                fixed("PUT", "/api/v1/prices/rules/511000", {"max_rise_bp": 1000}),
                only({"nj_operator"}, default=NO),
            ),
            Scenario(
                "Zigong",
                fixed("PUT", "/api/v1/prices/rules/510300", {"max_rise_bp": 1000}),
                only({"zg_operator"}, default=NO),
            ),
        ]
    ),
    "listPriceFlags": Case(
        [Scenario("scoped queue", fixed("GET", "/api/v1/prices/flags"), everyone())]
    ),
    # city rules
    "getCityRule": Case([Scenario("Neijiang", city_rule_target("511000", "in_force"), everyone())]),
    "listCityRuleVersions": Case(
        [Scenario("Neijiang", fixed("GET", "/api/v1/city-rules/511000/versions"), everyone())]
    ),
    "getCityRuleVersion": Case(
        [Scenario("Neijiang", city_rule_target("511000", "version"), everyone())]
    ),
    "addCityRuleVersion": Case(
        [
            Scenario(
                "Neijiang",
                city_rule_target("511000", "add"),
                only({"nj_operator"}, default=NO),
            ),
            Scenario(
                "Zigong",
                city_rule_target("510300", "add"),
                only({"zg_operator"}, default=NO),
            ),
        ]
    ),
    "resolvePriceFlag": Case(
        [
            Scenario(
                "NJ flag",
                flag_target(),
                only({"nj_operator"}, seen_by={"nj_auditor", "nz_auditor", "admin"}),
            ),
        ]
    ),
    "listBans": Case([Scenario("scoped list", fixed("GET", "/api/v1/bans"), everyone())]),
    "banSupplier": Case(
        [
            Scenario(
                "in NJ", fixed("POST", "/api/v1/bans", None), only({"nj_operator"}, default=NO)
            ),
        ]
    ),
    "getBan": Case(
        [
            Scenario(
                "NJ supplier banned in ZG",
                ban_target(NJ_SUPPLIER, "510300"),
                only(NJ_SUPPLIER_USERS | ZG_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    "liftBan": Case(
        [
            Scenario(
                "NJ supplier banned in ZG",
                ban_target(NJ_SUPPLIER, "510300", "lift"),
                only(
                    {"zg_operator"},
                    seen_by=NJ_SUPPLIER_USERS | {"zg_auditor", "nz_auditor", "admin"},
                ),
            ),
        ]
    ),
    # categories and attribute templates
    "listCategories": Case(
        [
            Scenario(
                "anyone", fixed("GET", "/api/v1/categories", params={"q": "计算机"}), everyone()
            )
        ],
        public=True,
    ),
    "getCategoryTree": Case(
        [
            Scenario(
                "anyone",
                fixed("GET", "/api/v1/categories/tree", params={"root": "A02010000"}),
                everyone(),
            )
        ],
        public=True,
    ),
    "getCategory": Case(
        [Scenario("anyone", fixed("GET", "/api/v1/categories/A02010105"), everyone())],
        public=True,
    ),
    "listCategoryChildren": Case(
        [Scenario("anyone", fixed("GET", "/api/v1/categories/A02010100/children"), everyone())],
        public=True,
    ),
    "getAttributeTemplate": Case(
        [Scenario("anyone", template_of("A02010104"), everyone())], public=True
    ),
    "listAttributeTemplates": Case(
        [Scenario("anyone", fixed("GET", "/api/v1/templates"), everyone())], public=True
    ),
    "putAttributeTemplate": Case(
        [
            Scenario(
                "desktop computers",
                fixed(
                    "PUT",
                    "/api/v1/categories/A02010105/template",
                    {"attributes": [{"key": "cpu", "name": "CPU 型号", "type": "text"}]},
                ),
                only({"admin", "nj_operator", "zg_operator"}, default=NO),
            )
        ]
    ),
    # budget lines
    "createBudgetLine": Case(
        [
            Scenario(
                "own agency",
                new_budget_line(),
                only({"nj_agency_admin", "zg_agency_admin"}, default=NO),
            )
        ]
    ),
    "listBudgetLines": Case(
        [Scenario("scoped list", fixed("GET", "/api/v1/budget-lines"), everyone())]
    ),
    "getBudgetLine": Case(
        [
            Scenario(
                "NJ agency line",
                budget_line_of(NJ_AGENCY),
                only(NJ_AGENCY_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
            Scenario(
                "ZG agency line",
                budget_line_of(ZG_AGENCY),
                only({"zg_agency_admin", "admin"} | ZG_OVERSIGHT),
            ),
        ]
    ),
    "adjustBudgetLine": Case(
        [
            Scenario(
                "NJ agency line",
                budget_line_of(NJ_AGENCY, "/adjust", {"delta_fen": 5000, "note": "矩阵追加"}),
                only({"nj_agency_admin"}, seen_by={"nj_buyer", "admin"} | NJ_OVERSIGHT),
            ),
            Scenario(
                "ZG agency line",
                budget_line_of(ZG_AGENCY, "/adjust", {"delta_fen": -5000, "note": "矩阵调减"}),
                only({"zg_agency_admin"}, seen_by={"admin"} | ZG_OVERSIGHT),
            ),
        ]
    ),
    "listBudgetLedger": Case(
        [
            Scenario(
                "NJ agency line",
                budget_line_of(NJ_AGENCY, "/ledger"),
                only(NJ_AGENCY_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
        ]
    ),
    # bulk import
    "createImportJob": Case(
        [
            Scenario(
                "own supplier",
                import_upload(),
                only(NJ_SUPPLIER_USERS | {"zg_supplier_admin"}, default=NO),
            )
        ]
    ),
    "listImportJobs": Case([Scenario("own", fixed("GET", "/api/v1/imports"), everyone())]),
    "getImportJob": Case(
        [
            Scenario(
                "NJ supplier's job",
                import_job_of(NJ_SUPPLIER),
                only(NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
            Scenario(
                "ZG supplier's job",
                import_job_of(ZG_SUPPLIER),
                only({"zg_supplier_admin", "admin"} | ZG_OVERSIGHT),
            ),
        ]
    ),
    "listImportJobRows": Case(
        [
            Scenario(
                "NJ supplier's job",
                import_job_of(NJ_SUPPLIER, "/rows"),
                only(NJ_SUPPLIER_USERS | NJ_OVERSIGHT | {"admin"}),
            ),
            Scenario(
                "ZG supplier's job",
                import_job_of(ZG_SUPPLIER, "/rows"),
                only({"zg_supplier_admin", "admin"} | ZG_OVERSIGHT),
            ),
        ]
    ),
}


def _ban_body() -> Builder:
    async def build(pool: Pool) -> Request:
        supplier = await org_id(pool, NJ_SUPPLIER)
        return Request(
            "POST",
            "/api/v1/bans",
            {"supplier_id": supplier, "region_code": "511000", "reason": "矩阵测试"},
        )

    return build


CASES["banSupplier"].scenarios[0].build = _ban_body()
CASES["getSaleRight"].scenarios[0].build = (
    lambda inner: _with_params(inner, {"region_code": "511000"})
)(org_target(ZG_SUPPLIER, "GET", "/sale-right"))


def _operations(app: Litestar) -> set[str]:
    found = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if route.path.startswith("/schema") or handler.operation_id is None:
                continue
            found.add(str(handler.operation_id))
    return found


def test_every_route_is_in_the_matrix(tmp_path: Path) -> None:
    app = create_app(load_settings({"EMALL_JWT_SECRET": JWT_SECRET}, cwd=tmp_path))
    operations = _operations(app)
    assert operations - CASES.keys() == set(), "routes missing from the authorisation matrix"
    assert CASES.keys() - operations == set(), "matrix entries for routes that no longer exist"


def _classify(status: int) -> str:
    return {403: NO, 404: HIDDEN}.get(status, OK if status not in (401,) else "unauthenticated")


async def _call(
    client: AsyncTestClient[Litestar], request: Request, headers: dict[str, str]
) -> int:
    if request.content_type is not None:
        response = await client.request(
            request.method,
            request.path,
            content=msgspec.json.encode(request.json) + b"\n",
            params=request.params,
            headers={**headers, "Content-Type": request.content_type},
        )
    else:
        response = await client.request(
            request.method, request.path, json=request.json, params=request.params, headers=headers
        )
    assert response.status_code < 500, (
        f"{request.method} {request.path}: {response.status_code} {response.text}"
    )
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
    return response.status_code


@pytest.mark.parametrize("operation", sorted(CASES))
async def test_matrix(operation: str, client: AsyncTestClient[Litestar], pool: Pool) -> None:
    case = CASES[operation]
    tokens = {actor: await token_for(pool, actor) for actor in ACTORS}
    failures: list[str] = []
    for scenario in case.scenarios:
        anonymous = await _call(client, await scenario.build(pool), {})
        if case.public:
            assert anonymous != 401, f"{operation} is public but refused an anonymous call"
        elif anonymous != 401:
            failures.append(f"{scenario.name}: anonymous got {anonymous}, expected 401")
        # refusals first, so that an allowed change cannot alter a later refusal's answer
        for actor in sorted(ACTORS, key=lambda a: scenario.expect[a] == OK):
            request = await scenario.build(pool)
            status = await _call(client, request, tokens[actor])
            got = _classify(status)
            if got != scenario.expect[actor]:
                failures.append(
                    f"{scenario.name}: {actor} got {status} ({got}), expected {scenario.expect[actor]}"
                )
    assert not failures, f"{operation}:\n  " + "\n  ".join(failures)


def test_matrix_expectations_name_every_actor() -> None:
    for operation, case in CASES.items():
        for scenario in case.scenarios:
            assert set(scenario.expect) == set(ACTORS), (operation, scenario.name)
            assert re.fullmatch(r"[a-zA-Z]+", operation)
