"""A deterministic, realistic Chinese catalogue for the demo seed and for benchmarks.

``generate_offer_rows(size, seed=...)`` yields ``(supplier_key, row)`` pairs: ``supplier_key`` is
one of the twenty demo suppliers of :mod:`emall.demo.parties` and ``row`` is a plain dict that
``msgspec.convert(row, OfferRow)`` accepts (one bulk-import row: a product identified by
category, brand and model, and the supplier's offer for it, keyed by the supplier's SKU).

* Deterministic: the same ``size`` and ``seed`` give exactly the same rows (one
  ``random.Random(seed)``, never the global generator or the clock).
* Streaming: a generator with bounded memory, so ``size=1_000_000`` works.
* Realistic: real leaf categories of the 2022 procurement catalogue, real-looking brands and
  models, specs that follow :data:`DEMO_TEMPLATES`, prices in fen per category, delivery to the
  supplier's city and its neighbours, and policy tags (SME, energy-saving, eco-label, 832).
* About a fifth of the rows offer a product another supplier already offers (at its own price);
  a supplier never offers one product twice and its SKUs are unique.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from typing import Any, Final, TypeVar

from emall.demo.parties import NEIJIANG, ORGANISATIONS, ZIGONG

__all__ = [
    "CATEGORY_GROUPS",
    "CATEGORY_NAMES",
    "DEMO_SUPPLIER_KEYS",
    "DEMO_TEMPLATES",
    "GROUP_SHARES",
    "POVERTY_ALLEVIATION_COUNTIES",
    "PRICE_BOUNDS_YUAN",
    "SUPPLIER_CATEGORIES",
    "generate_offer_rows",
]

LUZHOU, YIBIN = "510500", "511500"

T = TypeVar("T")

# --------------------------------------------------------------------------------------------
# Categories: leaves of 政府采购品目分类目录（2022年印发）
# --------------------------------------------------------------------------------------------

DESKTOP, LAPTOP = "A02010105", "A02010108"
PRINTER_A3_MONO, PRINTER_A4_MONO, PRINTER_A4_COLOR = "A02021001", "A02021003", "A02021004"
AIR_CONDITIONER = "A02061804"
OFFICE_DESK, MEETING_TABLE, OFFICE_CHAIR, FILE_CABINET = (
    "A05010201",
    "A05010202",
    "A05010301",
    "A05010502",
)
COPY_PAPER = "A05040101"
RICE, EDIBLE_OIL, MEAT, SAUCE, SALT = (
    "A07060102",
    "A07060105",
    "A07060107",
    "A07060206",
    "A07060210",
)
TEA, FUNGI, EGGS, FRUIT = "A07031301", "A07031202", "A07032102", "A07039900"
PRINTING_SERVICE, COMPUTER_SERVICE, OFFICE_EQUIPMENT_SERVICE, AC_SERVICE = (
    "C23090199",
    "C23120100",
    "C23120200",
    "C23120700",
)

CATEGORY_NAMES: Final[dict[str, str]] = {
    DESKTOP: "台式计算机",
    LAPTOP: "便携式计算机",
    PRINTER_A3_MONO: "A3黑白打印机",
    PRINTER_A4_MONO: "A4黑白打印机",
    PRINTER_A4_COLOR: "A4彩色打印机",
    COPY_PAPER: "复印纸",
    OFFICE_DESK: "办公桌",
    MEETING_TABLE: "会议桌",
    OFFICE_CHAIR: "办公椅",
    FILE_CABINET: "文件柜",
    AIR_CONDITIONER: "空调机",
    RICE: "碾磨谷物及谷物加工品",
    EDIBLE_OIL: "植物油及其制品",
    TEA: "茶叶",
    MEAT: "畜禽肉",
    SAUCE: "调味品",
    SALT: "加工盐",
    FUNGI: "食用菌",
    EGGS: "禽蛋",
    FRUIT: "其他农林牧渔业产品",
    PRINTING_SERVICE: "其他印刷服务",
    COMPUTER_SERVICE: "计算机设备维修和保养服务",
    OFFICE_EQUIPMENT_SERVICE: "办公设备维修和保养服务",
    AC_SERVICE: "空调维修和保养服务",
}
"""Every category the generator uses (all leaves of the 2022 catalogue), with its official name."""

_GROUP_MEMBERS: Final[dict[str, tuple[str, ...]]] = {
    "computer": (DESKTOP, LAPTOP),
    "printer": (PRINTER_A3_MONO, PRINTER_A4_MONO, PRINTER_A4_COLOR),
    "paper": (COPY_PAPER,),
    "furniture": (OFFICE_DESK, MEETING_TABLE, OFFICE_CHAIR, FILE_CABINET),
    "air_conditioner": (AIR_CONDITIONER,),
    "farm": (RICE, EDIBLE_OIL, TEA, MEAT, SAUCE, SALT, FUNGI, EGGS, FRUIT),
    "service": (PRINTING_SERVICE, COMPUTER_SERVICE, OFFICE_EQUIPMENT_SERVICE, AC_SERVICE),
}
CATEGORY_GROUPS: Final[dict[str, str]] = {
    code: group for group, codes in _GROUP_MEMBERS.items() for code in codes
}
"""Category code -> product group (computer, printer, paper, furniture, air_conditioner, farm, service)."""

GROUP_SHARES: Final[dict[str, int]] = {
    "computer": 20,
    "printer": 14,
    "paper": 14,
    "furniture": 16,
    "air_conditioner": 16,
    "farm": 15,
    "service": 5,
}
"""The intended share of rows per group, in percent (sums to 100)."""

PRICE_BOUNDS_YUAN: Final[dict[str, tuple[int, int]]] = {
    DESKTOP: (4_000, 9_000),
    LAPTOP: (4_500, 10_000),
    PRINTER_A3_MONO: (1_000, 5_000),
    PRINTER_A4_MONO: (1_000, 5_000),
    PRINTER_A4_COLOR: (1_000, 5_000),
    COPY_PAPER: (150, 350),
    OFFICE_DESK: (300, 5_000),
    MEETING_TABLE: (300, 5_000),
    OFFICE_CHAIR: (300, 5_000),
    FILE_CABINET: (300, 5_000),
    AIR_CONDITIONER: (2_500, 9_000),
    **{code: (20, 300) for code in _GROUP_MEMBERS["farm"]},
    **{code: (500, 50_000) for code in _GROUP_MEMBERS["service"]},
}
"""The offer price range (yuan, inclusive) of each category."""

# Formerly poor counties (国家扶贫开发工作重点县, all out of poverty by 2020) whose farm products
# qualify for the 832 poverty-alleviation reservation.
POVERTY_ALLEVIATION_COUNTIES: Final[tuple[str, ...]] = (
    "四川省泸州市叙永县",
    "四川省泸州市古蔺县",
    "四川省宜宾市屏山县",
    "四川省广元市苍溪县",
    "四川省乐山市马边彝族自治县",
    "四川省巴中市通江县",
    "四川省巴中市南江县",
    "四川省甘孜藏族自治州理塘县",
    "四川省凉山彝族自治州昭觉县",
)

# --------------------------------------------------------------------------------------------
# Suppliers: which demo supplier sells what
# --------------------------------------------------------------------------------------------

SUPPLIER_CATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    "nj_supplier_1": (DESKTOP, LAPTOP, PRINTER_A4_MONO, PRINTER_A4_COLOR, COMPUTER_SERVICE),
    "nj_supplier_2": (
        COPY_PAPER,
        PRINTER_A4_MONO,
        PRINTER_A4_COLOR,
        OFFICE_DESK,
        OFFICE_CHAIR,
        FILE_CABINET,
    ),
    "nj_supplier_3": (OFFICE_DESK, MEETING_TABLE, OFFICE_CHAIR, FILE_CABINET),
    "nj_supplier_4": (DESKTOP, LAPTOP, PRINTER_A4_MONO, PRINTER_A3_MONO),
    "nj_supplier_5": (TEA, FUNGI),
    "nj_supplier_6": (FRUIT, RICE, EGGS),
    "nj_supplier_7": (COPY_PAPER, PRINTING_SERVICE),
    "nj_supplier_8": (AIR_CONDITIONER, AC_SERVICE),
    "nj_supplier_9": (COPY_PAPER, FILE_CABINET),
    "nj_supplier_10": (AIR_CONDITIONER, DESKTOP),
    "zg_supplier_1": (
        PRINTER_A4_MONO,
        PRINTER_A4_COLOR,
        PRINTER_A3_MONO,
        COPY_PAPER,
        DESKTOP,
        OFFICE_EQUIPMENT_SERVICE,
    ),
    "zg_supplier_2": (DESKTOP, LAPTOP, PRINTER_A4_COLOR),
    "zg_supplier_3": (COPY_PAPER,),
    "zg_supplier_4": (SAUCE, EDIBLE_OIL, MEAT, RICE),
    "zg_supplier_5": (TEA,),
    "zg_supplier_6": (AIR_CONDITIONER, AC_SERVICE),
    "zg_supplier_7": (COPY_PAPER,),
    "zg_supplier_8": (OFFICE_DESK, MEETING_TABLE, OFFICE_CHAIR, FILE_CABINET),
    "zg_supplier_9": (DESKTOP, LAPTOP, COMPUTER_SERVICE, OFFICE_EQUIPMENT_SERVICE),
    "zg_supplier_10": (SALT, MEAT, EDIBLE_OIL, FUNGI, FRUIT, EGGS, RICE),
}
"""The categories each demo supplier sells (its line of business, judged by its name)."""

DEMO_SUPPLIER_KEYS: Final[tuple[str, ...]] = tuple(SUPPLIER_CATEGORIES)

_SUPPLIERS = {org.key: org for org in ORGANISATIONS if org.kind == "supplier"}
_SME_SIZES = frozenset({"medium", "small", "micro"})
_SERVICE_BRANDS: Final[dict[str, str]] = {
    "nj_supplier_1": "川南数码",
    "nj_supplier_7": "信达印务",
    "nj_supplier_8": "天诚空调",
    "zg_supplier_1": "盐都办公",
    "zg_supplier_6": "蓝天空调",
    "zg_supplier_9": "华西计算机",
}

# --------------------------------------------------------------------------------------------
# Attribute templates (参数模板)
# --------------------------------------------------------------------------------------------


def _attr(
    key: str,
    name: str,
    type_: str,
    *,
    unit: str | None = None,
    required: bool = False,
    allowed: Sequence[str] | None = None,
    lo: float | None = None,
    hi: float | None = None,
) -> dict[str, Any]:
    return {
        "key": key,
        "name": name,
        "type": type_,
        "unit": unit,
        "required": required,
        "allowed_values": list(allowed) if allowed is not None else None,
        "min": lo,
        "max": hi,
    }


_OS = ("国产操作系统", "Windows", "其他")
_STORAGE_TYPES = ("SSD", "HDD", "SSD+HDD")


def _computer_template(*, screen_required: bool, memory_max: int) -> list[dict[str, Any]]:
    attrs = [
        _attr("cpu_model", "处理器型号", "text", required=True),
        _attr("memory_gb", "内存容量", "integer", unit="GB", required=True, lo=4, hi=memory_max),
        _attr("storage_gb", "硬盘容量", "integer", unit="GB", required=True, lo=64, hi=32768),
        _attr("storage_type", "硬盘类型", "enum", required=True, allowed=_STORAGE_TYPES),
        _attr("os", "操作系统", "enum", required=True, allowed=_OS),
        _attr(
            "screen_inch",
            "显示器尺寸",
            "decimal",
            unit="英寸",
            required=screen_required,
            lo=10,
            hi=40,
        ),
    ]
    if not screen_required:
        return attrs
    attrs[-1]["max"] = 18
    attrs.append(_attr("weight_kg", "整机重量", "decimal", unit="千克", lo=0.5, hi=5))
    return attrs


def _printer_template() -> list[dict[str, Any]]:
    return [
        _attr("print_type", "打印方式", "enum", required=True, allowed=("激光", "喷墨", "针式")),
        _attr("color", "彩色打印", "boolean", required=True),
        _attr("duplex", "自动双面", "boolean", required=True),
        _attr("ppm", "打印速度", "integer", unit="页/分钟", required=True, lo=1, hi=120),
        _attr("max_paper", "最大幅面", "enum", required=True, allowed=("A4", "A3")),
        _attr("network", "网络打印", "boolean"),
        _attr("resolution_dpi", "最高分辨率", "integer", unit="dpi", lo=180, hi=4800),
    ]


def _furniture_template(
    materials: Sequence[str],
    width: tuple[int, int],
    depth: tuple[int, int],
    height: tuple[int, int],
    extra: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    return [
        _attr("material", "主体材质", "enum", required=True, allowed=materials),
        _attr("width_mm", "宽度", "integer", unit="毫米", required=True, lo=width[0], hi=width[1]),
        _attr("depth_mm", "深度", "integer", unit="毫米", required=True, lo=depth[0], hi=depth[1]),
        _attr(
            "height_mm", "高度", "integer", unit="毫米", required=True, lo=height[0], hi=height[1]
        ),
        _attr("color", "颜色", "text"),
        _attr("formaldehyde_grade", "甲醛释放等级", "enum", allowed=("ENF", "E0", "E1")),
        *extra,
    ]


def _farm_template(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _attr("origin", "产地", "text", required=True),
        _attr("net_weight_kg", "净含量", "decimal", unit="千克", required=True, lo=0.05, hi=100),
        _attr("shelf_life_days", "保质期", "integer", unit="天", required=True, lo=1, hi=1095),
        _attr("storage", "储存条件", "enum", required=True, allowed=("常温", "冷藏", "冷冻")),
        _attr("organic", "有机认证", "boolean"),
        *extra,
    ]


def _service_template() -> list[dict[str, Any]]:
    return [
        _attr("service_scope", "服务内容", "text", required=True),
        _attr("response_hours", "响应时间", "integer", unit="小时", required=True, lo=1, hi=168),
        _attr("on_site", "上门服务", "boolean", required=True),
        _attr("service_period_months", "服务期", "integer", unit="月", lo=1, hi=60),
    ]


_FURNITURE_BOARD = ("实木", "人造板", "钢木结合", "钢制")
_CHAIR_MATERIALS = ("网布", "皮革", "布艺", "实木", "塑料", "钢制")
_CABINET_MATERIALS = ("钢制", "实木", "人造板")

DEMO_TEMPLATES: Final[dict[str, list[dict[str, Any]]]] = {
    DESKTOP: _computer_template(screen_required=False, memory_max=512),
    LAPTOP: _computer_template(screen_required=True, memory_max=128),
    PRINTER_A3_MONO: _printer_template(),
    PRINTER_A4_MONO: _printer_template(),
    PRINTER_A4_COLOR: _printer_template(),
    COPY_PAPER: [
        _attr("size", "规格", "enum", required=True, allowed=("A4", "A3", "B5")),
        _attr("gsm", "克重", "integer", unit="克", required=True, lo=60, hi=120),
        _attr("sheets_per_ream", "每包张数", "integer", unit="张", required=True, lo=100, hi=1000),
        _attr("reams_per_box", "每箱包数", "integer", unit="包", required=True, lo=1, hi=10),
        _attr("whiteness", "白度(CIE)", "integer", unit="%", lo=80, hi=170),
        _attr("recycled", "再生纸", "boolean"),
    ],
    OFFICE_DESK: _furniture_template(_FURNITURE_BOARD, (600, 3600), (400, 1800), (650, 800)),
    MEETING_TABLE: _furniture_template(_FURNITURE_BOARD, (1200, 8000), (600, 2400), (700, 800)),
    OFFICE_CHAIR: _furniture_template(
        _CHAIR_MATERIALS,
        (400, 800),
        (400, 800),
        (800, 1400),
        (_attr("adjustable", "升降调节", "boolean"), _attr("armrest", "扶手", "boolean")),
    ),
    FILE_CABINET: _furniture_template(
        _CABINET_MATERIALS,
        (400, 2000),
        (300, 800),
        (700, 2400),
        (
            _attr("doors", "门数", "integer", unit="扇", lo=1, hi=6),
            _attr("lock", "带锁", "boolean"),
        ),
    ),
    AIR_CONDITIONER: [
        _attr("type", "类型", "enum", required=True, allowed=("壁挂式", "柜式", "吸顶式")),
        _attr("cooling_w", "制冷量", "integer", unit="瓦", required=True, lo=1000, hi=30000),
        _attr("heating_w", "制热量", "integer", unit="瓦", lo=1000, hi=40000),
        _attr("horsepower", "匹数", "decimal", unit="匹", required=True, lo=0.5, hi=10),
        _attr("energy_grade", "能效等级", "enum", required=True, allowed=("一级", "二级", "三级")),
        _attr("inverter", "变频", "boolean", required=True),
        _attr("refrigerant", "制冷剂", "enum", allowed=("R32", "R410A")),
    ],
    RICE: _farm_template(
        _attr("grade", "等级", "enum", required=True, allowed=("特级", "一级", "二级", "三级"))
    ),
    EDIBLE_OIL: _farm_template(
        _attr("process", "工艺", "enum", required=True, allowed=("压榨", "浸出"))
    ),
    TEA: _farm_template(
        _attr(
            "tea_type",
            "茶类",
            "enum",
            required=True,
            allowed=("绿茶", "红茶", "黑茶", "白茶", "黄茶", "乌龙茶", "花茶"),
        ),
        _attr("harvest_season", "采摘时节", "enum", allowed=("明前", "雨前", "春茶", "夏秋茶")),
    ),
    MEAT: _farm_template(),
    SAUCE: _farm_template(),
    SALT: _farm_template(_attr("iodized", "加碘", "boolean", required=True)),
    FUNGI: _farm_template(),
    EGGS: _farm_template(
        _attr("egg_count", "枚数", "integer", unit="枚", required=True, lo=6, hi=360)
    ),
    FRUIT: _farm_template(),
    PRINTING_SERVICE: _service_template(),
    COMPUTER_SERVICE: _service_template(),
    OFFICE_EQUIPMENT_SERVICE: _service_template(),
    AC_SERVICE: _service_template(),
}
"""Attribute templates (参数模板) of the categories used: a list of attribute dicts per category,
each with key, name, type (text | integer | decimal | boolean | enum), unit, required,
allowed_values (enum only), min and max (numbers only)."""

# --------------------------------------------------------------------------------------------
# Product makers: one per category, each returns a draft product
# --------------------------------------------------------------------------------------------

# (brand, model candidate, title after the model, specs, base price in yuan, unit, product tags)
_Draft = tuple[str, str, str, dict[str, Any], float, str, tuple[str, ...]]
_Maker = Callable[[random.Random], _Draft]


def _pick(rng: random.Random, items: Sequence[T]) -> T:
    return items[int(rng.random() * len(items))]


def _equipment_tags(rng: random.Random, domestic: bool = False) -> tuple[str, ...]:
    tags: list[str] = []
    if rng.random() < 0.6:
        tags.append("energy_saving")
    if rng.random() < 0.5:
        tags.append("environmental_label")
    if rng.random() < (0.1 if domestic else 0.02):
        tags.append("innovation")
    return tuple(tags)


# (brand, model, CPUs, domestic platform)
_DESKTOPS = (
    ("联想", "开天M90z G1t", ("兆芯 KX-U6780A",), True),
    ("联想", "开天M740J", ("海光 3350",), True),
    ("联想", "启天M450", ("Intel Core i5-12500", "Intel Core i7-12700"), False),
    ("华为", "擎云W515x", ("麒麟 9000C",), True),
    ("华为", "擎云B730E", ("Intel Core i5-12400", "Intel Core i7-12700"), False),
    ("清华同方", "超越E500", ("飞腾 D2000",), True),
    ("清华同方", "超扬A8500", ("Intel Core i5-13400",), False),
    ("长城", "世恒TD120A2", ("飞腾 FT-2000/4",), True),
    ("浪潮", "CE520F", ("飞腾 FT-2000/4", "飞腾 D2000"), True),
    ("中科曙光", "H620-G30", ("海光 3250", "海光 3350"), True),
)
_LAPTOPS = (
    ("联想", "昭阳K4e", ("Intel Core i5-1335U", "Intel Core i7-1355U"), False),
    ("联想", "开天N8", ("兆芯 KX-6640MA",), True),
    ("华为", "擎云L420", ("麒麟 9006C",), True),
    ("华为", "MateBook B3-430", ("Intel Core i5-1135G7",), False),
    ("长城", "UF712", ("飞腾 D2000",), True),
    ("清华同方", "超锐L860", ("龙芯 3A5000",), True),
)


def _make_desktop(rng: random.Random) -> _Draft:
    brand, model, cpus, domestic = _pick(rng, _DESKTOPS)
    cpu = _pick(rng, cpus)
    memory = _pick(rng, (8, 16, 16, 16, 32))
    storage = _pick(rng, (256, 512, 512, 1024, 2048))
    storage_type = "SSD" if storage <= 1024 else _pick(rng, ("SSD", "SSD+HDD"))
    os_name = "国产操作系统" if domestic else _pick(rng, ("Windows", "Windows", "国产操作系统"))
    specs: dict[str, Any] = {
        "cpu_model": cpu,
        "memory_gb": memory,
        "storage_gb": storage,
        "storage_type": storage_type,
        "os": os_name,
    }
    price = 3300 + memory * 45 + storage * 0.9 + (700 if domestic else 0) + rng.random() * 1200
    screen = ""
    if rng.random() < 0.85:
        inches = _pick(rng, (21.5, 23.8, 23.8, 27.0))
        specs["screen_inch"] = inches
        screen = f"/{inches:g}英寸"
        price += 500 + (inches - 21.5) * 100
    tail = f"台式计算机 {cpu}/{memory}GB/{storage}GB {storage_type}{screen}/{os_name}"
    return brand, model, tail, specs, price, "台", _equipment_tags(rng, domestic)


def _make_laptop(rng: random.Random) -> _Draft:
    brand, model, cpus, domestic = _pick(rng, _LAPTOPS)
    cpu = _pick(rng, cpus)
    memory = _pick(rng, (8, 16, 16, 32))
    storage = _pick(rng, (256, 512, 512, 1024))
    inches = _pick(rng, (13.3, 14.0, 14.0, 15.6))
    os_name = "国产操作系统" if domestic else _pick(rng, ("Windows", "Windows", "国产操作系统"))
    weight = round(1.2 + (inches - 13.3) * 0.25 + rng.random() * 0.4, 2)
    specs: dict[str, Any] = {
        "cpu_model": cpu,
        "memory_gb": memory,
        "storage_gb": storage,
        "storage_type": "SSD",
        "os": os_name,
        "screen_inch": inches,
        "weight_kg": weight,
    }
    price = 3800 + memory * 60 + storage * 1.5 + (900 if domestic else 0) + rng.random() * 1500
    tail = f"便携式计算机 {cpu}/{memory}GB/{storage}GB SSD/{inches:g}英寸/{os_name}"
    return brand, model, tail, specs, price, "台", _equipment_tags(rng, domestic)


# (brand, model, print type, pages per minute, duplex, base price)
_PRINTERS: dict[str, tuple[tuple[str, str, str, int, bool, int], ...]] = {
    PRINTER_A4_MONO: (
        ("奔图", "P3305DN", "激光", 33, True, 1500),
        ("奔图", "P3022D", "激光", 22, True, 1100),
        ("联想", "LJ2605D", "激光", 26, True, 1200),
        ("得力", "P2500DNW", "激光", 25, True, 1300),
        ("惠普", "LaserJet Pro 4004dn", "激光", 40, True, 2600),
        ("佳能", "LBP6230dn", "激光", 25, True, 1600),
    ),
    PRINTER_A4_COLOR: (
        ("奔图", "CP2250DN", "激光", 24, True, 2700),
        ("惠普", "Color LaserJet Pro 4203dn", "激光", 33, True, 3900),
        ("佳能", "LBP664Cx", "激光", 27, True, 3400),
        ("联想", "CS2410DN", "激光", 24, True, 2600),
        ("爱普生", "L4268", "喷墨", 10, True, 1200),
    ),
    PRINTER_A3_MONO: (
        ("爱普生", "LQ-1600KIVH", "针式", 4, False, 3200),
        ("得力", "DE-1600K", "针式", 4, False, 2200),
        ("京瓷", "ECOSYS P4040dn", "激光", 40, True, 4300),
        ("奔图", "P4405DN", "激光", 35, True, 3900),
    ),
}


def _printer_maker(code: str) -> _Maker:
    lines = _PRINTERS[code]
    color = code == PRINTER_A4_COLOR
    paper = "A3" if code == PRINTER_A3_MONO else "A4"
    kind = CATEGORY_NAMES[code]

    def make(rng: random.Random) -> _Draft:
        brand, model, print_type, ppm, duplex, base = _pick(rng, lines)
        network = print_type != "针式" and rng.random() < 0.8
        specs: dict[str, Any] = {
            "print_type": print_type,
            "color": color,
            "duplex": duplex,
            "ppm": ppm,
            "max_paper": paper,
            "network": network,
        }
        if print_type != "针式":
            specs["resolution_dpi"] = _pick(rng, (600, 1200, 1200))
        features = f"{ppm}页/分钟" + (" 自动双面" if duplex else "") + (" 网络" if network else "")
        price = base * (0.92 + rng.random() * 0.16) + (200 if network else 0)
        tail = f"{kind} {print_type} {features}"
        return brand, model, tail, specs, price, "台", _equipment_tags(rng)

    return make


_PAPER_LINES = (
    ("得力", "莱茵河", 1.0),
    ("得力", "珊瑚海", 0.95),
    ("晨光", "蓝晨光", 0.97),
    ("晨光", "紫晨光", 1.04),
    ("亚太森博", "百旺", 1.0),
    ("亚太森博", "PaperOne", 1.1),
    ("金光", "传美", 1.02),
    ("金光", "金旗舰", 1.08),
)
# size: (area in m², box configurations in reams)
_PAPER_SIZES = {"A4": (0.06237, (8, 10)), "A3": (0.12474, (4, 5)), "B5": (0.04677, (10,))}


def _make_paper(rng: random.Random) -> _Draft:
    brand, series, factor = _pick(rng, _PAPER_LINES)
    size = _pick(rng, ("A4", "A4", "A4", "A4", "A4", "A4", "A4", "A3", "A3", "B5"))
    area, boxes = _PAPER_SIZES[size]
    gsm = _pick(rng, (70, 70, 70, 80, 80, 75))
    reams = _pick(rng, boxes)
    recycled = rng.random() < 0.1
    specs: dict[str, Any] = {
        "size": size,
        "gsm": gsm,
        "sheets_per_ream": 500,
        "reams_per_box": reams,
    }
    if rng.random() < 0.7:
        specs["whiteness"] = _pick(rng, (150, 155, 160, 165))
    if recycled:
        specs["recycled"] = True
    kg = area * gsm * 500 * reams / 1000
    price = kg * (9.5 + rng.random() * 2.5) * factor
    tags = ("environmental_label",) if recycled or rng.random() < 0.4 else ()
    tail = f"复印纸{' 再生' if recycled else ''} 500张/包 {reams}包/箱"
    return brand, f"{series} {size} {gsm}g", tail, specs, price, "箱", tags


_FURNITURE_BRANDS = (("全友", "QY"), ("双虎", "SH"), ("明珠", "MZ"), ("沱江", "TJ"), ("宏达", "HD"))
_MATERIAL_CODES = {
    "实木": "M",
    "人造板": "R",
    "钢木结合": "S",
    "钢制": "G",
    "网布": "W",
    "皮革": "P",
    "布艺": "B",
    "塑料": "L",
}
_MATERIAL_PRICE = {
    "实木": 2.2,
    "人造板": 1.0,
    "钢木结合": 1.2,
    "钢制": 0.9,
    "网布": 1.0,
    "皮革": 1.6,
    "布艺": 0.9,
    "塑料": 0.6,
}
_COLORS = ("胡桃色", "樱桃木色", "白橡色", "灰白色", "黑色")
# code -> (short code, materials, widths, depths, heights, base yuan per m² of top or per piece)
_FURNITURE: dict[
    str, tuple[str, tuple[str, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], float]
] = {
    OFFICE_DESK: (
        "BGZ",
        ("人造板", "人造板", "实木", "钢木结合"),
        (1200, 1400, 1600, 1800, 2000),
        (600, 700, 800, 1000),
        (750, 760),
        900,
    ),
    MEETING_TABLE: (
        "HYZ",
        ("人造板", "人造板", "实木", "钢木结合"),
        (1800, 2400, 3200, 3600, 4800),
        (900, 1200, 1500),
        (750, 760),
        550,
    ),
    OFFICE_CHAIR: (
        "BGY",
        ("网布", "网布", "皮革", "布艺", "塑料"),
        (600, 620, 650),
        (580, 600, 650),
        (1000, 1100, 1200),
        500,
    ),
    FILE_CABINET: (
        "WJG",
        ("钢制", "钢制", "人造板", "实木"),
        (850, 900, 1000),
        (390, 400, 450),
        (1800, 2000),
        600,
    ),
}


def _furniture_maker(code: str) -> _Maker:
    short, materials, widths, depths, heights, base = _FURNITURE[code]
    kind = CATEGORY_NAMES[code]

    def make(rng: random.Random) -> _Draft:
        brand, prefix = _pick(rng, _FURNITURE_BRANDS)
        material = _pick(rng, materials)
        width, depth, height = _pick(rng, widths), _pick(rng, depths), _pick(rng, heights)
        specs: dict[str, Any] = {
            "material": material,
            "width_mm": width,
            "depth_mm": depth,
            "height_mm": height,
        }
        if code != OFFICE_CHAIR:
            specs["color"] = _pick(rng, _COLORS)
            if material in ("人造板", "实木", "钢木结合"):
                specs["formaldehyde_grade"] = _pick(rng, ("ENF", "E0", "E0", "E1"))
        if code == OFFICE_CHAIR:
            specs["adjustable"] = rng.random() < 0.8
            specs["armrest"] = rng.random() < 0.85
            price = base * _MATERIAL_PRICE[material] * (0.7 + rng.random() * 1.2)
        elif code == FILE_CABINET:
            specs["doors"] = _pick(rng, (2, 2, 4))
            specs["lock"] = True
            price = base * _MATERIAL_PRICE[material] * (0.9 + rng.random() * 0.8)
        else:
            top = width * depth / 1_000_000
            price = (300 + base * top) * _MATERIAL_PRICE[material] * (0.85 + rng.random() * 0.3)
        model = f"{prefix}-{short}{width // 100:02d}{depth // 100:02d}{_MATERIAL_CODES[material]}"
        tail = f"{kind} {material} {width}×{depth}×{height}mm"
        tags = ("environmental_label",) if rng.random() < 0.5 else ()
        return brand, model, tail, specs, price, "张" if code != FILE_CABINET else "组", tags

    return make


_AC_BRANDS = (
    ("格力", ("云佳", "天丽", "京馨")),
    ("美的", ("酷省电", "风尊", "锐静")),
    ("海尔", ("静悦", "雷神者")),
    ("长虹", ("悦享", "优享")),
)
# (type, model letter, cooling W, heating W, horsepower, base price yuan)
_AC_SIZES = (
    ("壁挂式", "G", 2600, 3500, 1.0, 2700),
    ("壁挂式", "G", 3500, 5000, 1.5, 3200),
    ("壁挂式", "G", 3500, 5000, 1.5, 3200),
    ("壁挂式", "G", 5000, 6800, 2.0, 4300),
    ("柜式", "L", 5100, 7200, 2.0, 5600),
    ("柜式", "L", 7200, 9600, 3.0, 7000),
    ("吸顶式", "Q", 5000, 6000, 2.0, 5900),
    ("吸顶式", "Q", 7200, 8000, 3.0, 7400),
)
_GRADE_NUMBER = {"一级": 1, "二级": 2, "三级": 3}


def _make_air_conditioner(rng: random.Random) -> _Draft:
    brand, series = _pick(rng, _AC_BRANDS)
    name = _pick(rng, series)
    ac_type, letter, cooling, heating, hp, base = _pick(rng, _AC_SIZES)
    grade = _pick(rng, ("一级", "一级", "二级", "三级"))
    inverter = grade == "一级" or rng.random() < 0.6
    specs: dict[str, Any] = {
        "type": ac_type,
        "cooling_w": cooling,
        "horsepower": hp,
        "energy_grade": grade,
        "inverter": inverter,
        "refrigerant": "R32" if ac_type == "壁挂式" else _pick(rng, ("R32", "R410A")),
    }
    if rng.random() < 0.9:
        specs["heating_w"] = heating
    model = f"KFR-{cooling // 100}{letter}W/{name}{'BP' if inverter else ''}{_GRADE_NUMBER[grade]}"
    price = base * (1.12 if grade == "一级" else 1.0) * (0.9 + rng.random() * 0.2)
    features = f"{hp:g}匹 {grade}能效 {'变频' if inverter else '定频'}"
    tail = f"{ac_type}空调 {features}{' 冷暖' if 'heating_w' in specs else ' 单冷'}"
    tags: list[str] = []
    if grade == "一级":
        tags.append("energy_saving")
    if rng.random() < 0.3:
        tags.append("environmental_label")
    if rng.random() < 0.02:
        tags.append("innovation")
    return brand, model, tail, specs, price, "台", tuple(tags)


# Farm products, one line each: category | brand | name | origin | unit | shelf life (days) |
# storage | packs as label:kg:base yuan | extra specs as key=value/value (true/false: boolean).
_FARM_TABLE = """
A07060102|沱江源|资中富硒大米|四川省内江市资中县|袋|365|常温|5kg:5:45,10kg:10:85,25kg:25:200|grade=特级/一级/一级/二级
A07060102|乌蒙山|古蔺生态大米|四川省泸州市古蔺县|袋|365|常温|5kg:5:55,10kg:10:105|grade=特级/一级/二级
A07060102|丹山|叙永后山贡米|四川省泸州市叙永县|袋|365|常温|5kg:5:60,10kg:10:115|grade=特级/一级
A07060105|川南油坊|压榨菜籽油|四川省自贡市富顺县|桶|540|常温|1.8L:1.65:40,5L:4.6:95|process=压榨
A07060105|大凉山|高原小榨菜籽油|四川省凉山彝族自治州昭觉县|桶|540|常温|2.5L:2.3:68,5L:4.6:128|process=压榨
A07060105|金沙江|屏山山茶油|四川省宜宾市屏山县|瓶|720|常温|500ml:0.46:88,1L:0.92:168|process=压榨
A07031301|龙都|荣县早春绿茶|四川省自贡市荣县|盒|540|常温|250g:0.25:128,500g:0.5:238|tea_type=绿茶;harvest_season=明前/雨前/春茶
A07031301|威远红|威远工夫红茶|四川省内江市威远县|盒|720|常温|250g:0.25:118,500g:0.5:218|tea_type=红茶;harvest_season=春茶/夏秋茶
A07031301|米仓山|南江翠芽|四川省巴中市南江县|盒|540|常温|250g:0.25:158,500g:0.5:288|tea_type=绿茶;harvest_season=明前/雨前
A07031301|马边|马边高山绿茶|四川省乐山市马边彝族自治县|盒|540|常温|250g:0.25:98,500g:0.5:188|tea_type=绿茶;harvest_season=明前/雨前/春茶
A07060107|甜城|内江黑猪肉 冷鲜五花|四川省内江市市中区|袋|7|冷藏|1kg:1:62,2.5kg:2.5:150|
A07060107|隆昌|隆昌麻鸭 冷冻整只|四川省内江市隆昌市|只|180|冷冻|1.5kg:1.5:58,3kg:3:112|
A07060107|理塘|高原牦牛肉 冷冻|四川省甘孜藏族自治州理塘县|袋|365|冷冻|1kg:1:128,2kg:2:248|
A07060206|富顺豆花|富顺豆花蘸水香辣酱|四川省自贡市富顺县|箱|365|常温|280g×6瓶:1.68:48,280g×12瓶:3.36:92|
A07060206|盐帮|自贡冷吃兔调料|四川省自贡市自流井区|箱|365|常温|200g×10袋:2:56,200g×20袋:4:108|
A07060206|乌蒙山|古蔺麻辣鸡调料|四川省泸州市古蔺县|箱|365|常温|150g×10袋:1.5:45,150g×20袋:3:86|
A07060210|久大|自贡井矿盐 精制|四川省自贡市大安区|箱|1095|常温|400g×10袋:4:28,400g×20袋:8:52|iodized=true/false
A07060210|自贡井盐|深井岩盐|四川省自贡市自流井区|箱|1095|常温|350g×10袋:3.5:35,350g×20袋:7:66|iodized=true/false
A07031202|通江|通江银耳 干货|四川省巴中市通江县|袋|720|常温|250g:0.25:128,500g:0.5:238|
A07031202|威远|威远干香菇|四川省内江市威远县|袋|365|常温|500g:0.5:58,1kg:1:108|
A07031202|大凉山|昭觉野生菌菇干|四川省凉山彝族自治州昭觉县|袋|365|常温|250g:0.25:118,500g:0.5:218|
A07032102|沱江源|资中林下土鸡蛋|四川省内江市资中县|箱|30|冷藏|30枚:1.5:48,60枚:3:92|
A07032102|乌蒙山|古蔺散养土鸡蛋|四川省泸州市古蔺县|箱|30|冷藏|30枚:1.5:56,60枚:3:106|
A07039900|资中血橙|塔罗科血橙 精选果|四川省内江市资中县|箱|20|常温|2.5kg:2.5:45,5kg:5:85,10kg:10:158|
A07039900|苍溪|红心猕猴桃 大果|四川省广元市苍溪县|箱|15|冷藏|2.5kg:2.5:58,5kg:5:108|
A07039900|富顺|富顺枇杷|四川省自贡市富顺县|箱|7|冷藏|2.5kg:2.5:52,5kg:5:98|
"""

# (brand, name, origin, packs of (label, kg, base yuan), unit, shelf days, storage, extra specs)
_FarmLine = tuple[
    str, str, str, tuple[tuple[str, float, int], ...], str, int, str, dict[str, tuple[Any, ...]]
]


def _parse_value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    return int(text) if text.isdigit() else text


def _parse_farm_table(table: str) -> dict[str, tuple[_FarmLine, ...]]:
    lines: dict[str, list[_FarmLine]] = {}
    for line in table.strip().splitlines():
        code, brand, name, origin, unit, shelf, storage, packs, extra = line.split("|")
        pack_list = tuple(
            (label, float(kg), int(base))
            for label, kg, base in (pack.split(":") for pack in packs.split(","))
        )
        extras: dict[str, tuple[Any, ...]] = {}
        for item in filter(None, extra.split(";")):
            key, values = item.split("=")
            extras[key] = tuple(_parse_value(v) for v in values.split("/"))
        lines.setdefault(code, []).append(
            (brand, name, origin, pack_list, unit, int(shelf), storage, extras)
        )
    return {code: tuple(found) for code, found in lines.items()}


_FARM: Final[dict[str, tuple[_FarmLine, ...]]] = _parse_farm_table(_FARM_TABLE)
_POVERTY = frozenset(POVERTY_ALLEVIATION_COUNTIES)


def _farm_maker(code: str) -> _Maker:
    lines = _FARM[code]

    def make(rng: random.Random) -> _Draft:
        brand, name, origin, packs, unit, shelf, storage, extra = _pick(rng, lines)
        label, kg, base = _pick(rng, packs)
        specs: dict[str, Any] = {
            "origin": origin,
            "net_weight_kg": float(kg),
            "shelf_life_days": shelf,
            "storage": storage,
        }
        if code == EGGS:
            specs["egg_count"] = int(label.removesuffix("枚"))
        organic = rng.random() < 0.15
        if organic or rng.random() < 0.5:
            specs["organic"] = organic
        words = [name]
        for key, values in extra.items():
            value = _pick(rng, values)
            specs[key] = value
            if isinstance(value, bool):
                words.append("加碘" if value else "未加碘")
            elif value not in name:
                words.append(str(value))
        words.append(label)
        if organic:
            words.append("有机")
        price = base * (0.9 + rng.random() * 0.2) * (1.2 if organic else 1.0)
        tags = ("poverty_alleviation",) if origin in _POVERTY else ()
        return brand, " ".join(words), f"产地:{origin}", specs, price, unit, tags

    return make


# code -> (scope, response hours, on site, months or 0, base yuan, unit)
_SERVICES: dict[str, tuple[tuple[str, tuple[int, ...], bool, int, int, str], ...]] = {
    PRINTING_SERVICE: (
        ("公文用纸印刷 A4 双面 每万张", (24, 48), False, 0, 1800, "批"),
        ("资料汇编印刷 A4 胶装 每千册", (48, 72), False, 0, 9500, "批"),
        ("信封印刷 每万个", (24, 48), False, 0, 1200, "批"),
        ("宣传册印刷 铜版纸彩印 每千册", (48, 72, 96), False, 0, 6800, "批"),
    ),
    COMPUTER_SERVICE: (
        ("台式计算机年度维保 50台以内", (2, 4, 8), True, 12, 12000, "项"),
        ("网络设备季度巡检", (4, 8), True, 3, 3500, "项"),
        ("计算机上门维修 单次", (2, 4), True, 0, 600, "次"),
        ("机房设备年度运维", (1, 2, 4), True, 12, 38000, "项"),
    ),
    OFFICE_EQUIPMENT_SERVICE: (
        ("打印复印设备年度维保 20台以内", (4, 8), True, 12, 8500, "项"),
        ("复印机上门维修 单次", (4, 8, 24), True, 0, 550, "次"),
        ("碎纸机及装订机年度维保", (8, 24), True, 12, 2800, "项"),
    ),
    AC_SERVICE: (
        ("分体空调清洗保养 10台", (24, 48), True, 0, 900, "次"),
        ("中央空调年度维保", (2, 4, 8), True, 12, 26000, "项"),
        ("空调移机安装 5台", (24, 48), True, 0, 1500, "次"),
        ("空调上门维修 单次", (4, 8), True, 0, 500, "次"),
    ),
}


def _service_maker(code: str) -> Callable[[random.Random, str], _Draft]:
    lines = _SERVICES[code]
    kind = CATEGORY_NAMES[code]

    def make(rng: random.Random, brand: str) -> _Draft:
        scope, hours, on_site, months, base, unit = _pick(rng, lines)
        response = _pick(rng, hours)
        specs: dict[str, Any] = {
            "service_scope": scope,
            "response_hours": response,
            "on_site": on_site,
        }
        if months:
            specs["service_period_months"] = months
        price = base * (0.85 + rng.random() * 0.3)
        tail = f"{kind} {response}小时响应"
        return brand, scope, tail, specs, price, unit, ()

    return make


_MAKERS: Final[dict[str, _Maker]] = {
    DESKTOP: _make_desktop,
    LAPTOP: _make_laptop,
    **{code: _printer_maker(code) for code in _PRINTERS},
    COPY_PAPER: _make_paper,
    **{code: _furniture_maker(code) for code in _FURNITURE},
    AIR_CONDITIONER: _make_air_conditioner,
    **{code: _farm_maker(code) for code in _FARM},
}
_SERVICE_MAKERS = {code: _service_maker(code) for code in _SERVICES}

# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------

_WARRANTY_MONTHS: Final[dict[str, tuple[int, ...]]] = {
    "computer": (12, 36, 36, 36, 60),
    "printer": (12, 12, 24, 36),
    "paper": (0,),
    "furniture": (36, 36, 60),
    "air_conditioner": (36, 72, 72),
    "farm": (0,),
    "service": (0, 0, 3, 12),
}
# How a product that shares its natural model with an earlier one is told apart.
_VARIANT: Final[dict[str, str]] = {
    **dict.fromkeys(("computer", "printer", "paper", "furniture", "air_conditioner"), "{}-{:03d}"),
    "farm": "{} 批次{:03d}",
    "service": "{} 方案{}",
}
_POOL_SIZE = 256  # recent products per category that another supplier may also offer
_REUSE_SHARE = 0.21  # of goods rows; services are never shared (the brand is the provider)
_DATES_2026 = tuple(date(2026, 1, 1) + timedelta(days=d) for d in range(365))
_PARTNER = {NEIJIANG: ZIGONG, ZIGONG: NEIJIANG}


class _Product:
    """A product made once and possibly offered by several suppliers."""

    __slots__ = (
        "base_fen",
        "brand",
        "code",
        "model",
        "specs",
        "suppliers",
        "tags",
        "title",
        "unit",
    )

    def __init__(
        self,
        code: str,
        brand: str,
        model: str,
        title: str,
        specs: dict[str, Any],
        unit: str,
        base_fen: int,
        tags: tuple[str, ...],
        supplier: str,
    ) -> None:
        self.code = code
        self.brand = brand
        self.model = model
        self.title = title
        self.specs = specs
        self.unit = unit
        self.base_fen = base_fen
        self.tags = tags
        self.suppliers = [supplier]


def _reference_url(rng: random.Random, group: str, day: date) -> str:
    n = int(rng.random() * 100_000_000)
    if group == "farm":
        return f"https://www.fupin832.com/product/{n:08d}.html"
    if group == "service":
        stamp = day.strftime("%Y%m%d")
        return f"https://www.ccgp.gov.cn/cggg/dfgg/cjgg/{stamp[:6]}/t{stamp}_{n:08d}.htm"
    if rng.random() < 0.7:
        return f"https://item.jd.com/1000{n:08d}.html"
    return f"https://product.suning.com/0000000000/1{n:08d}.html"


def generate_offer_rows(size: int, *, seed: int = 2020) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``size`` pairs of (demo supplier key, bulk-import row), lazily and deterministically.

    Each row converts strictly with ``msgspec.convert(row, OfferRow)``. The same size and seed
    always give the same rows (and a smaller size gives a prefix of a larger one); memory stays
    bounded whatever the size.
    """
    if size < 0:
        raise ValueError("size must not be negative")
    return _generate(size, seed)


def _generate(size: int, seed: int) -> Iterator[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    rand = rng.random

    group_slots: list[str] = []
    for group, share in GROUP_SHARES.items():
        group_slots.extend([group] * share)
    n_slots = len(group_slots)
    # group -> the suppliers selling in it, each as (key, its categories in the group)
    sellers: dict[str, list[tuple[str, list[str]]]] = {group: [] for group in GROUP_SHARES}
    for supplier, supplier_codes in SUPPLIER_CATEGORIES.items():
        for group in GROUP_SHARES:
            in_group = [code for code in supplier_codes if CATEGORY_GROUPS[code] == group]
            if in_group:
                sellers[group].append((supplier, in_group))
    home = {key: _SUPPLIERS[key].region_code for key in SUPPLIER_CATEGORIES}
    sme = {key: _SUPPLIERS[key].sme_size in _SME_SIZES for key in SUPPLIER_CATEGORIES}
    sku_prefix = {key: key.upper() for key in SUPPLIER_CATEGORIES}
    sku_count = dict.fromkeys(SUPPLIER_CATEGORIES, 0)
    bounds = {code: (lo * 100, hi * 100) for code, (lo, hi) in PRICE_BOUNDS_YUAN.items()}
    pools: dict[str, list[_Product]] = {code: [] for code in CATEGORY_NAMES}
    pool_next = dict.fromkeys(CATEGORY_NAMES, 0)
    model_count: dict[tuple[str, str, str], int] = {}

    for _ in range(size):
        group = group_slots[int(rand() * n_slots)]
        candidates = sellers[group]
        supplier, codes = candidates[int(rand() * len(candidates))]
        code = codes[int(rand() * len(codes))]

        product: _Product | None = None
        if group != "service" and rand() < _REUSE_SHARE:
            pool = pools[code]
            for _attempt in range(4):
                if not pool:
                    break
                chosen = pool[int(rand() * len(pool))]
                if supplier not in chosen.suppliers:
                    chosen.suppliers.append(supplier)
                    product = chosen
                    break
        if product is None:
            if group == "service":
                draft = _SERVICE_MAKERS[code](rng, _SERVICE_BRANDS[supplier])
            else:
                draft = _MAKERS[code](rng)
            brand, candidate, tail, specs, base_yuan, unit, tags = draft
            identity = (code, brand, candidate)
            seen = model_count.get(identity, 0)
            model_count[identity] = seen + 1
            model = _VARIANT[group].format(candidate, seen + 1) if seen else candidate
            lo, hi = bounds[code]
            base_fen = min(max(int(base_yuan * 100), lo), hi)
            title = f"{brand} {model} {tail}"
            product = _Product(code, brand, model, title, specs, unit, base_fen, tags, supplier)
            pool = pools[code]
            if len(pool) < _POOL_SIZE:
                pool.append(product)
            else:
                slot = pool_next[code]
                pool[slot] = product
                pool_next[code] = (slot + 1) % _POOL_SIZE

        # The offer: this supplier's terms.
        lo, hi = bounds[code]
        raw = product.base_fen * (0.93 + rand() * 0.12)
        # farm products to the jiao (45.80 元), everything else to the yuan
        price = int(raw / 10) * 10 if group == "farm" else int(raw / 100) * 100
        price = min(max(price, lo), hi)
        reference = price + price * (5 + int(rand() * 21)) // 100
        reference = -(-reference // 100) * 100
        day = _DATES_2026[int(rand() * 365)]

        city = home[supplier]
        delivery = [{"region_code": city, "delivery_days": 1 + int(rand() * 3)}]
        if rand() < 0.7:
            delivery.append({"region_code": _PARTNER[city], "delivery_days": 2 + int(rand() * 4)})
        if rand() < 0.25:
            delivery.append({"region_code": LUZHOU, "delivery_days": 3 + int(rand() * 5)})
        if rand() < 0.25:
            delivery.append({"region_code": YIBIN, "delivery_days": 3 + int(rand() * 5)})

        warranties = _WARRANTY_MONTHS[group]
        sku_count[supplier] += 1
        row = {
            "supplier_sku": f"{sku_prefix[supplier]}-{sku_count[supplier]:07d}",
            "category_code": product.code,
            "brand": product.brand,
            "model": product.model,
            "title": product.title,
            "specs": product.specs.copy(),
            "unit": product.unit,
            "price_fen": price,
            "reference_price_fen": reference,
            "reference_source_url": _reference_url(rng, group, day),
            "reference_date": day,
            "stock": 100_000 if group == "service" else int(rand() * 501),
            "delivery": delivery,
            "min_order_qty": 5 if group == "paper" and rand() < 0.3 else 1,
            "warranty_months": warranties[int(rand() * len(warranties))],
            "policy_tags": ["sme", *product.tags] if sme[supplier] else list(product.tags),
        }
        yield supplier, row
