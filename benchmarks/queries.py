"""The search query mix: about 200 Chinese, pinyin and model-number queries.

Terms come from the demo catalogue generator itself (so that they find something at every
size): Chinese words of titles, category names and brands; their pinyin and initials as
emall indexes them (``emall.search.pinyin``); and model numbers, whole or as a prefix. Every
second query also carries a delivery region, a category and a price range taken from an offer
the term came from. Deterministic: the same mix every run.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from emall.demo.generator import CATEGORY_NAMES, generate_offer_rows
from emall.search.models import SearchRequest
from emall.search.pinyin import pinyin_forms

SAMPLE_ROWS = 3_000
_HAN_WORD = re.compile(r"^[\u4e00-\u9fff]{2,8}$")
# Words buyers type that the catalogue holds through synonyms (emall.search.index), and the
# category whose offers they should find.
_SYNONYMS = {
    "电脑": "A02010105",
    "笔记本": "A02010108",
    "台式机": "A02010105",
    "空调": "A02061804",
    "打印纸": "A05040101",
    "办公桌": "A05010201",
    "茶叶": "A07031301",
    "大米": "A07060102",
}


@dataclass(frozen=True)
class Query:
    kind: str  # chinese | pinyin | model
    request: SearchRequest

    @property
    def filtered(self) -> bool:
        return self.request.category is not None


def _parent(code: str) -> str:
    """The category one level up (A02010105 → A02010100)."""
    return code[:7] + "00" if code[7:] != "00" else code[:5] + "0000"


def query_mix(total: int = 200, *, seed: int = 7) -> list[Query]:
    rng = random.Random(seed)
    rows = [row for _, row in generate_offer_rows(SAMPLE_ROWS)]
    words: dict[str, dict[str, object]] = {}  # a Chinese word → a row holding it
    models: dict[str, dict[str, object]] = {}
    for row in rows:
        for token in str(row["title"]).split():
            if _HAN_WORD.match(token):
                words.setdefault(token, row)
        models.setdefault(str(row["model"]), row)
    for code, name in CATEGORY_NAMES.items():
        holder = next((r for r in rows if r["category_code"] == code), None)
        if holder is not None:
            words.setdefault(name, holder)
    chinese = sorted(words)
    rng.shuffle(chinese)
    model_names = sorted(m for m in models if re.search(r"[A-Za-z0-9]{3}", m))
    rng.shuffle(model_names)

    n_chinese = total * 2 // 5
    n_pinyin = total * 3 // 10
    n_model = total - n_chinese - n_pinyin
    picked: list[tuple[str, str, dict[str, object]]] = []
    for word, code in _SYNONYMS.items():
        picked.append(("chinese", word, next(r for r in rows if r["category_code"] == code)))
    for word in chinese[: n_chinese - len(_SYNONYMS)]:
        picked.append(("chinese", word, words[word]))
    for word in chinese[n_chinese : n_chinese + n_pinyin]:  # other words than the Chinese ones
        full, initials = pinyin_forms(word)
        picked.append(("pinyin", full if len(picked) % 2 else initials, words[word]))
    for model in model_names[:n_model]:
        term = model if rng.random() < 0.6 else re.split(r"[-/ ]", model)[0]
        picked.append(("model", term, models[model]))
    rng.shuffle(picked)

    queries: list[Query] = []
    for number, (kind, term, row) in enumerate(picked):
        if number % 2:
            price = int(str(row["price_fen"]))
            delivery = rng.choice([str(d["region_code"]) for d in row["delivery"]])  # type: ignore[attr-defined]
            request = SearchRequest(
                q=term,
                category=_parent(str(row["category_code"])),
                delivery_region=delivery,
                price_min=price * 7 // 10,
                price_max=price * 13 // 10,
            )
        else:
            request = SearchRequest(q=term)
        queries.append(Query(kind, request))
    return queries


def api_path(request: SearchRequest) -> str:
    """``GET /api/v1/search`` with the request's parameters, as a client would send them."""
    params: list[tuple[str, str]] = [("q", request.q)]
    for name in ("category", "brand", "delivery_region"):
        value = getattr(request, name)
        if value is not None:
            params.append((name, value))
    params += [("policy_tag", tag) for tag in request.policy_tags]
    for name in ("price_min", "price_max"):
        value = getattr(request, name)
        if value is not None:
            params.append((name, str(value)))
    if request.sort != "relevance":
        params.append(("sort", request.sort))
    return "/api/v1/search?" + urlencode(params)


def describe(queries: list[Query]) -> str:
    kinds = {kind: sum(q.kind == kind for q in queries) for kind in ("chinese", "pinyin", "model")}
    filtered = sum(q.filtered for q in queries)
    return (
        f"{len(queries)} queries ({kinds['chinese']} Chinese, {kinds['pinyin']} pinyin, "
        f"{kinds['model']} model numbers); {filtered} with a delivery region, a category and a "
        "price range; every one with the buyer's region filter and three facets, as emall sends"
    )
