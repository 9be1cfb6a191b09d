"""The demo catalogue generator (emall.demo.generator): no database needed.

The checks here are independent of the module's own tables where they can be: categories are
read from the shipped CSV, specs are checked by a small checker written here, and groups are
told apart by category-code prefix, not by the module's CATEGORY_GROUPS.
"""

from __future__ import annotations

import csv
import inspect
import itertools
import re
import time
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import msgspec
import pytest

import emall
from emall.demo.generator import (
    CATEGORY_NAMES,
    DEMO_TEMPLATES,
    POVERTY_ALLEVIATION_COUNTIES,
    generate_offer_rows,
)
from emall.demo.parties import NEIJIANG, ORGANISATIONS, ZIGONG
from emall.listings.models import OfferRow

CSV_PATH = Path(emall.__file__).parent / "data" / "procurement_catalogue_2022.csv"
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CJK_RE = re.compile(r"[\u4e00-\u9fff]")
TYPES = {"text", "integer", "decimal", "boolean", "enum"}
ATTRIBUTE_KEYS = {"key", "name", "type", "unit", "required", "allowed_values", "min", "max"}
SIZE = 2000

SUPPLIERS = {o.key: o for o in ORGANISATIONS if o.kind == "supplier"}
EXPECTED_SUPPLIER_KEYS = {f"{c}_supplier_{i}" for c in ("nj", "zg") for i in range(1, 11)}
NEARBY = {"510500", "511500"}  # 泸州, 宜宾

# Price ranges in yuan per group, written out from the brief (inclusive).
PRICE_YUAN = {
    "desktop": (4_000, 9_000),
    "laptop": (4_000, 12_000),
    "printer": (1_000, 5_000),
    "paper": (150, 350),
    "air_conditioner": (2_500, 9_000),
    "furniture": (300, 5_000),
    "farm": (20, 300),
    "service": (500, 50_000),
}


def group_of(code: str) -> str:
    """The product group by category-code prefix, independent of the module's own mapping."""
    if code == "A02010105":
        return "desktop"
    if code == "A02010108":
        return "laptop"
    if code.startswith("A020210"):
        return "printer"
    if code.startswith("A050401"):
        return "paper"
    if code.startswith("A0501"):
        return "furniture"
    if code == "A02061804":
        return "air_conditioner"
    if code.startswith("A07"):
        return "farm"
    if code.startswith("C"):
        return "service"
    raise AssertionError(f"unexpected category {code}")


@pytest.fixture(scope="module")
def catalogue() -> dict[str, dict[str, str]]:
    with CSV_PATH.open(encoding="utf-8", newline="") as f:
        return {row["code"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def rows() -> list[tuple[str, dict[str, Any]]]:
    return list(generate_offer_rows(SIZE))


def check_specs(specs: dict[str, Any], template: list[dict[str, Any]]) -> list[str]:
    """Independent spec checker: the errors of ``specs`` against ``template`` (empty if valid)."""
    errors: list[str] = []
    by_key = {a["key"]: a for a in template}
    errors.extend(f"unknown attribute {k}" for k in specs if k not in by_key)
    for key, attr in by_key.items():
        if key not in specs:
            if attr["required"]:
                errors.append(f"missing {key}")
            continue
        value = specs[key]
        kind = attr["type"]
        if kind == "text":
            ok = isinstance(value, str) and value.strip() != ""
        elif kind == "boolean":
            ok = isinstance(value, bool)
        elif kind == "enum":
            ok = isinstance(value, str) and value in attr["allowed_values"]
        elif kind == "integer":
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:  # decimal
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            errors.append(f"{key}: {value!r} is not a valid {kind}")
            continue
        if kind in ("integer", "decimal"):
            if attr["min"] is not None and value < attr["min"]:
                errors.append(f"{key}: {value} < {attr['min']}")
            if attr["max"] is not None and value > attr["max"]:
                errors.append(f"{key}: {value} > {attr['max']}")
    return errors


def identity(row: dict[str, Any]) -> tuple[str, str, str]:
    """Product identity as the database compares it: brand and model without case or spaces."""
    return (
        row["category_code"],
        re.sub(r"\s+", "", row["brand"]).lower(),
        re.sub(r"\s+", "", row["model"]).lower(),
    )


# -- categories and templates ------------------------------------------------------------------


def test_categories_exist_and_are_leaves(
    catalogue: dict[str, dict[str, str]], rows: list[tuple[str, dict[str, Any]]]
) -> None:
    parents = {r["parent"] for r in catalogue.values() if r["parent"]}
    used = set(CATEGORY_NAMES) | set(DEMO_TEMPLATES) | {row["category_code"] for _, row in rows}
    assert used == set(DEMO_TEMPLATES), "every category used has a template, and no more"
    for code in sorted(used):
        assert code in catalogue, code
        assert code not in parents, f"{code} {catalogue[code]['name']} is not a leaf"
        assert CATEGORY_NAMES[code] == catalogue[code]["name"], code


def test_templates_are_well_formed() -> None:
    assert len(DEMO_TEMPLATES) >= 15
    for code, template in DEMO_TEMPLATES.items():
        assert template, code
        keys = [a["key"] for a in template]
        assert len(keys) == len(set(keys)), f"{code}: duplicate keys"
        assert any(a["required"] for a in template), code
        for attr in template:
            where = f"{code}.{attr.get('key')}"
            assert set(attr) == ATTRIBUTE_KEYS, where
            assert isinstance(attr["key"], str) and KEY_RE.match(attr["key"]), where
            assert isinstance(attr["name"], str) and CJK_RE.search(attr["name"]), where
            assert attr["type"] in TYPES, where
            assert attr["unit"] is None or (isinstance(attr["unit"], str) and attr["unit"]), where
            assert isinstance(attr["required"], bool), where
            if attr["type"] == "enum":
                values = attr["allowed_values"]
                assert isinstance(values, list) and values, where
                assert all(isinstance(v, str) and v for v in values), where
                assert len(values) == len(set(values)), where
            else:
                assert attr["allowed_values"] is None, where
            if attr["type"] in ("integer", "decimal"):
                for bound in (attr["min"], attr["max"]):
                    assert bound is None or (
                        isinstance(bound, int | float) and not isinstance(bound, bool)
                    ), where
                if attr["min"] is not None and attr["max"] is not None:
                    assert attr["min"] <= attr["max"], where
            else:
                assert attr["min"] is None and attr["max"] is None, where


def test_brief_attributes_present() -> None:
    def keys(code: str) -> dict[str, dict[str, Any]]:
        return {a["key"]: a for a in DEMO_TEMPLATES[code]}

    desktop = keys("A02010105")
    assert desktop["cpu_model"]["type"] == "text" and desktop["cpu_model"]["required"]
    assert desktop["memory_gb"]["unit"] == "GB"
    assert (desktop["memory_gb"]["min"], desktop["memory_gb"]["max"]) == (4, 512)
    assert desktop["os"]["allowed_values"] == ["国产操作系统", "Windows", "其他"]
    assert {"print_type", "color", "duplex", "ppm", "max_paper"} <= set(keys("A02021003"))
    assert {"size", "gsm", "sheets_per_ream", "reams_per_box"} <= set(keys("A05040101"))
    assert {"material", "width_mm", "depth_mm", "height_mm"} <= set(keys("A05010201"))
    ac = keys("A02061804")
    assert ac["type"]["allowed_values"] == ["壁挂式", "柜式", "吸顶式"]
    assert ac["energy_grade"]["allowed_values"] == ["一级", "二级", "三级"]
    assert ac["cooling_w"]["unit"] == "瓦"
    for code, template in DEMO_TEMPLATES.items():
        attrs = {a["key"]: a for a in template}
        if code.startswith("A07"):
            assert attrs["origin"]["required"] and attrs["origin"]["type"] == "text"
            assert {"net_weight_kg", "shelf_life_days", "organic"} <= set(attrs)
        if code.startswith("C"):
            assert {"service_scope", "response_hours"} <= set(attrs)


def test_spec_checker_is_not_vacuous() -> None:
    template = DEMO_TEMPLATES["A02010105"]
    good = {
        "cpu_model": "飞腾 FT-2000/4",
        "memory_gb": 16,
        "storage_gb": 512,
        "storage_type": "SSD",
        "os": "国产操作系统",
    }
    assert check_specs(good, template) == []
    assert check_specs({**good, "memory_gb": 2}, template)
    assert check_specs({**good, "memory_gb": True}, template)
    assert check_specs({**good, "os": "DOS"}, template)
    assert check_specs({**good, "colour": "red"}, template)
    assert check_specs({k: v for k, v in good.items() if k != "cpu_model"}, template)


# -- rows ------------------------------------------------------------------------------------


def test_rows_convert_strictly(rows: list[tuple[str, dict[str, Any]]]) -> None:
    assert len(rows) == SIZE
    for _, row in rows:
        offer = msgspec.convert(row, OfferRow)
        assert offer.supplier_sku == row["supplier_sku"]
        # and through JSON, as a JSONL import would carry it
        assert msgspec.json.decode(msgspec.json.encode(row), type=OfferRow) == offer


def test_specs_follow_the_template(rows: list[tuple[str, dict[str, Any]]]) -> None:
    for _, row in rows:
        errors = check_specs(row["specs"], DEMO_TEMPLATES[row["category_code"]])
        assert errors == [], (row["title"], errors)


def test_titles_name_brand_and_model(rows: list[tuple[str, dict[str, Any]]]) -> None:
    for _, row in rows:
        assert row["title"].startswith(f"{row['brand']} {row['model']} "), row["title"]
        assert CJK_RE.search(row["title"]), row["title"]
        assert len(row["title"]) <= 200 and len(row["model"]) <= 100


def test_deterministic() -> None:
    first = list(generate_offer_rows(500, seed=7))
    assert first == list(generate_offer_rows(500, seed=7))
    assert first != list(generate_offer_rows(500, seed=8))
    # a prefix does not depend on the size asked for
    assert list(generate_offer_rows(100, seed=7)) == first[:100]
    assert list(generate_offer_rows(0)) == []
    with pytest.raises(ValueError, match="negative"):
        generate_offer_rows(-1)


def test_suppliers_are_the_demo_suppliers(rows: list[tuple[str, dict[str, Any]]]) -> None:
    assert set(SUPPLIERS) == EXPECTED_SUPPLIER_KEYS
    used = {supplier for supplier, _ in rows}
    assert used == EXPECTED_SUPPLIER_KEYS  # all twenty appear in 2,000 rows


def test_identities_and_skus_are_unique(rows: list[tuple[str, dict[str, Any]]]) -> None:
    product_fields = ("category_code", "brand", "model", "title", "specs", "unit")
    products: dict[tuple[str, str, str], dict[str, Any]] = {}
    offered: set[tuple[str, tuple[str, str, str]]] = set()
    skus: set[tuple[str, str]] = set()
    for supplier, row in rows:
        key = identity(row)
        fields = {f: row[f] for f in product_fields}
        # one identity, one product: every offer of it describes it the same way
        assert products.setdefault(key, fields) == fields, key
        assert (supplier, key) not in offered, f"{supplier} offers {key} twice"
        offered.add((supplier, key))
        assert (supplier, row["supplier_sku"]) not in skus
        skus.add((supplier, row["supplier_sku"]))
        assert row["supplier_sku"].startswith(supplier.upper() + "-")


def test_some_products_have_several_suppliers(rows: list[tuple[str, dict[str, Any]]]) -> None:
    suppliers_of: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    seen: set[tuple[str, str, str]] = set()
    reused = 0
    for supplier, row in rows:
        key = identity(row)
        reused += key in seen
        seen.add(key)
        suppliers_of[key].add(supplier)
    shared = [k for k, s in suppliers_of.items() if len(s) >= 2]
    assert len(shared) >= 50
    assert 0.10 <= reused / len(rows) <= 0.30, reused / len(rows)
    # shared products are offered at different prices by different suppliers
    prices: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    for _, row in rows:
        prices[identity(row)].add(row["price_fen"])
    assert sum(len(prices[k]) >= 2 for k in shared) >= len(shared) // 2


def test_prices_are_realistic(rows: list[tuple[str, dict[str, Any]]]) -> None:
    for _, row in rows:
        price, reference = row["price_fen"], row["reference_price_fen"]
        lo, hi = PRICE_YUAN[group_of(row["category_code"])]
        assert lo * 100 <= price <= hi * 100, (row["title"], price)
        assert price * 1.05 <= reference <= price * 1.25 + 100, (price, reference)
        assert re.match(r"^https?://\S+$", row["reference_source_url"])
        day = row["reference_date"]
        assert isinstance(day, date) and day.year == 2026
        group = group_of(row["category_code"])
        if group == "service":
            assert row["stock"] >= 1000
        else:
            assert 0 <= row["stock"] <= 500
        if group != "paper":
            assert row["min_order_qty"] == 1
    paper_moq = Counter(
        r["min_order_qty"] for _, r in rows if group_of(r["category_code"]) == "paper"
    )
    assert paper_moq[1] > paper_moq[5] > 0


def test_delivery(rows: list[tuple[str, dict[str, Any]]]) -> None:
    partner = {NEIJIANG: ZIGONG, ZIGONG: NEIJIANG}
    to_partner = to_nearby = 0
    for supplier, row in rows:
        home = SUPPLIERS[supplier].region_code
        days = {d["region_code"]: d["delivery_days"] for d in row["delivery"]}
        assert len(days) == len(row["delivery"]), "a region at most once"
        assert home in days and 1 <= days[home] <= 3
        assert set(days) <= {home, partner[home], *NEARBY}
        if partner[home] in days:
            to_partner += 1
            assert 2 <= days[partner[home]] <= 5
        for region in NEARBY & set(days):
            to_nearby += 1
            assert 3 <= days[region] <= 7
    assert to_partner > len(rows) / 2  # often
    assert 0 < to_nearby < len(rows)  # sometimes


def test_mix(rows: list[tuple[str, dict[str, Any]]]) -> None:
    groups = Counter(group_of(row["category_code"]) for _, row in rows)
    share = {g: n / len(rows) for g, n in groups.items()}
    assert 0.10 <= share["farm"] <= 0.20, share
    assert 0.025 <= share["service"] <= 0.08, share
    computers = share["desktop"] + share["laptop"]
    dominant = [computers, share["printer"], share["paper"], share["furniture"]]
    dominant.append(share["air_conditioner"])
    assert all(0.08 <= s <= 0.30 for s in dominant), share
    assert sum(dominant) >= 0.72, share
    assert len({row["category_code"] for _, row in rows}) == len(DEMO_TEMPLATES)


def test_policy_tags(rows: list[tuple[str, dict[str, Any]]]) -> None:
    poverty = set(POVERTY_ALLEVIATION_COUNTIES)
    tagged: Counter[str] = Counter()
    for supplier, row in rows:
        tags = row["policy_tags"]
        group = group_of(row["category_code"])
        assert len(tags) == len(set(tags))
        tagged.update(tags)
        assert ("sme" in tags) == (SUPPLIERS[supplier].sme_size in {"small", "micro", "medium"})
        if "poverty_alleviation" in tags:
            assert group == "farm", row["title"]
        if group == "farm":
            assert ("poverty_alleviation" in tags) == (row["specs"]["origin"] in poverty)
        if "energy_saving" in tags:
            assert group in {"desktop", "laptop", "printer", "air_conditioner"}, row["title"]
        if group == "air_conditioner" and row["specs"]["energy_grade"] == "一级":
            assert "energy_saving" in tags
        if group == "service":
            assert set(tags) <= {"sme"}
    farm_rows = sum(group_of(r["category_code"]) == "farm" for _, r in rows)
    assert 0 < tagged["poverty_alleviation"] < farm_rows
    equipment = sum(
        group_of(r["category_code"]) in {"desktop", "laptop", "printer", "air_conditioner"}
        for _, r in rows
    )
    assert 0.3 * equipment < tagged["energy_saving"] < 0.9 * equipment
    assert tagged["environmental_label"] > 0
    assert 0 < tagged["innovation"] < 0.1 * len(rows)


# -- streaming and speed ---------------------------------------------------------------------


def test_streaming_is_lazy() -> None:
    # A generator over a size no list could hold: taking ten rows proves nothing is built ahead.
    rows = generate_offer_rows(10**12)
    assert inspect.isgenerator(rows)
    first = list(itertools.islice(rows, 10))
    assert len(first) == 10
    assert first == list(generate_offer_rows(10))


def test_generation_rate() -> None:
    n = 20_000
    started = time.perf_counter()
    count = sum(1 for _ in generate_offer_rows(n, seed=11))
    elapsed = time.perf_counter() - started
    assert count == n
    print(f"\ngenerate_offer_rows: {n / elapsed:,.0f} rows/s ({n} rows in {elapsed:.3f} s)")
