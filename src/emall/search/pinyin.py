"""Pinyin forms of Chinese text, so that ``dayinji`` and ``dyj`` find 打印机.

Latin letters and digits are kept (lower-cased); punctuation and white space are dropped.
"""

from __future__ import annotations

from functools import lru_cache

from pypinyin import Style, lazy_pinyin


def _keep(piece: str) -> str:
    return "".join(ch for ch in piece.lower() if ch.isascii() and ch.isalnum())


@lru_cache(maxsize=65_536)
def pinyin_forms(text: str) -> tuple[str, str]:
    """(full pinyin without tones, initials): ``A4黑白打印机`` → (``a4heibaidayinji``, ``a4hbdyj``).

    pypinyin passes non-Chinese runs through whole, so a Latin run such as ``KX-U6780A`` keeps
    its letters and digits in both forms.
    """
    full = lazy_pinyin(text, style=Style.NORMAL, errors="default")
    initials = lazy_pinyin(text, style=Style.FIRST_LETTER, errors="default")
    return "".join(_keep(p) for p in full), "".join(_keep(p) for p in initials)


_MAX_RUN = 12  # longer runs of Chinese characters are cut into pieces of this length


def _han_runs(text: str) -> list[str]:
    runs: list[str] = []
    current: list[str] = []
    for ch in text:
        if "\u4e00" <= ch <= "\u9fff":
            current.append(ch)
            continue
        if current:
            runs.append("".join(current))
            current = []
    if current:
        runs.append("".join(current))
    return [run[i : i + _MAX_RUN] for run in runs for i in range(0, len(run), _MAX_RUN)]


@lru_cache(maxsize=65_536)
def pinyin_terms(text: str) -> tuple[str, str]:
    """Search terms for a pinyin field: (full forms, initials), each space-separated.

    Meilisearch matches whole words, and prefixes of the last query word, so ``dayinji`` would
    not find ``heibaidayinji``. Every run of Chinese characters therefore gives its suffixes of
    two or more characters as terms: 黑白打印机 → ``heibaidayinji baidayinji dayinji yinji``
    and ``hbdyj bdyj dyj yj``; with prefix search, any part of the run can be found. Latin
    letters and digits are left to the fields that hold the original text.
    """
    full_terms: list[str] = []
    initial_terms: list[str] = []
    for run in _han_runs(text):
        syllables = lazy_pinyin(run, style=Style.NORMAL)
        initials = lazy_pinyin(run, style=Style.FIRST_LETTER)
        for start in range(0, max(len(run) - 1, 1)):
            full_terms.append("".join(syllables[start:]))
            initial_terms.append("".join(initials[start:]))
    return _unique(full_terms), _unique(initial_terms)


def _unique(terms: list[str]) -> str:
    return " ".join(dict.fromkeys(t for t in terms if t))
