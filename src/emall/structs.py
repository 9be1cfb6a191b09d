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

# Text patterns. In Python and ECMA regexes alike, \x00 is NUL and (?![\s\S]) is the end of the
# text ("$" would let a trailing newline through in Python).
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"  # holds more than blanks
REGION_CODE = r"^[1-9][0-9]{5}$"  # GB/T 2260: two digits of province, two of city, two of county
CATEGORY_CODE = r"^[ABC][0-9]{8}$"
URL = r"^https?://[^\s\x00]+$"

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
