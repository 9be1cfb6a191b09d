"""What a search word means: synonym groups, and the terms that name what a goods offer is.

``SYNONYM_GROUPS`` are Meilisearch's query-time synonyms (``emall.search.index``). The same
groups also widen a goods offer's ``category_terms``: the names of its category and of the
category's ancestors (leaf first), each followed by the synonyms it takes, so that 电脑 finds a
台式计算机 by its category, in Meilisearch as in the PostgreSQL mirror (which knows no synonyms).

Only goods (品目 codes ``A…``) have category terms. A service's or works' category names what
is done, often to a thing (计算机设备维修和保养服务): they stay searchable through
``category_names``, ranked below the title, so a query that names a thing finds the goods of
that category before the services that merely mention it.
"""

from __future__ import annotations

from collections.abc import Iterable

# Each group is a set of interchangeable words; each word gets every other one as a synonym.
# Meilisearch 1.21 treats a multi-character Chinese synonym as a phrase of its segmented words.
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("电脑", "计算机"),
    ("笔记本", "便携式计算机", "笔记本电脑"),
    ("台式机", "台式计算机", "台式电脑"),
    ("空调", "空气调节器", "空调机"),
    ("打印纸", "复印纸"),
    ("复印机", "多功能一体机"),
    ("办公椅", "椅子"),
    ("茶叶", "茶"),
    ("大米", "米"),
    ("食用油", "植物油"),
    ("文件柜", "档案柜"),
    ("办公桌", "写字台"),
    ("鸡蛋", "蛋"),
    ("打印机", "打字机"),
)


def synonyms() -> dict[str, list[str]]:
    """Meilisearch's ``synonyms`` setting: every word of a group maps to the others."""
    found: dict[str, list[str]] = {}
    for group in SYNONYM_GROUPS:
        for word in group:
            others = [w for w in group if w != word]
            found[word] = sorted({*found.get(word, []), *others})
    return found


def is_goods(category_code: str) -> bool:
    """Goods are the 品目 codes starting with A (works B, services C)."""
    return category_code.startswith("A")


def _names_what(name: str, word: str) -> bool:
    """Whether a category ``name`` is a kind of ``word``: the name is the word, or ends with it
    (Chinese compounds put the head last: 台式计算机 is a 计算机, 计算机软件 is not). A
    one-character word counts only as the whole name (茶几 is no 茶)."""
    return name == word or (len(word) >= 2 and name.endswith(word))


def category_terms(category_code: str, names: Iterable[str]) -> list[str]:
    """The terms that name what a goods offer is: each category name of the chain (leaf first),
    followed by the synonyms of the groups it names; empty for works and services."""
    if not is_goods(category_code):
        return []
    terms: list[str] = []
    for name in names:
        terms.append(name)
        for group in SYNONYM_GROUPS:
            if any(_names_what(name, word) for word in group):
                terms.extend(group)
    return list(dict.fromkeys(terms))
