"""The one base class every data Struct in emall derives from, and the constrained types that
several domains share.

Options shared by all Structs live here, as in msgspec's own examples: unknown fields are
refused (a typo in a request body is an error, not silently ignored) and every Struct takes
keyword arguments only, so that field order never matters.

The constraints are the ones msgspec checks when a request is decoded, and the OpenAPI document
is generated from them (``api/openapi.py``), so what the document allows is what is accepted.
PostgreSQL text cannot hold a NUL character and the API refuses one in any string
(``api/request_checks.py``); every pattern below therefore excludes NUL itself, and a string
without a pattern is documented with ``NO_NUL``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

# A row id sent by a client. Ids are PostgreSQL bigints: a larger number names no row (and
# asyncpg cannot even send one past 2**63 - 1), so it is refused when the body is read. The
# bound sits just below bigint's limit and is exact as a float, as OpenAPI bounds are written.
MAX_ID = 9_000_000_000_000_000_000
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]

# Text patterns, written so that Python's re (which msgspec and Litestar check them with) and
# the ECMA-262 regexes of OpenAPI (which a client or a fuzzer reads them with) agree on every
# string. The two differ on "$", which in Python also matches before a trailing newline, and on
# the shorthand classes: Python's \s is str.isspace() (with \x1c-\x1f and \x85, without the BOM),
# ECMA's is its own list (with \ufeff, without those), and Python's \d and \w take every script's
# digits. So the patterns use END for the end of the text and SPACE for a blank (the union of
# both engines' whitespace), spell out [0-9] and [A-Za-z], and never write \s, \d, \w or \b
# (tests/test_openapi.py checks every pattern of the document). \x00 is NUL in both.
END = r"(?![\s\S])"  # [\s\S] is any character in both engines, whatever each calls a blank
SPACE = r"\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NO_NUL = rf"^[^\x00]*{END}"
NOT_BLANK = rf"^[^\x00]*[^{SPACE}\x00][^\x00]*{END}"  # holds more than blanks
# GB/T 2260: two digits of province, two of city, two of county
REGION_CODE = rf"^[1-9][0-9]{{5}}{END}"
CATEGORY_CODE = rf"^[ABC][0-9]{{8}}{END}"
URL = rf"^https?://[^{SPACE}\x00]+{END}"
# one line that neither starts nor ends with a blank
ONE_LINE = rf"^[^{SPACE}\x00](?:[^\x00\n]*[^{SPACE}\x00])?{END}"

RegionCode = Annotated[
    str,
    msgspec.Meta(
        pattern=REGION_CODE,
        examples=["511000"],
        description="行政区划代码: a 6-digit administrative division code (a code that names no "
        "division is refused with 422)",
    ),
]
CategoryCode = Annotated[
    str,
    msgspec.Meta(
        pattern=CATEGORY_CODE,
        examples=["A02010105"],
        description="品目代码: a code of the 2022 procurement catalogue (one that is not in it is "
        "refused with 422)",
    ),
]
ReasonText = Annotated[str, msgspec.Meta(min_length=2, max_length=1000)]


class Struct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for every msgspec Struct that crosses a boundary (API, database, settings)."""


class FrozenStruct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base for immutable values, such as the acting principal."""


class Reason(Struct):
    """Why: the reason given for a refusal, a revocation or a cancellation."""

    reason: ReasonText
