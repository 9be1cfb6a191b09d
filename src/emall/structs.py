"""The one base class every data Struct in emall derives from.

Options shared by all Structs live here, as in msgspec's own examples: unknown fields are
refused (a typo in a request body is an error, not silently ignored) and every Struct takes
keyword arguments only, so that field order never matters.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

# A row id sent by a client. Ids are PostgreSQL bigints: a larger number names no row (and
# asyncpg cannot even send one past 2**63 - 1), so it is refused when the body is read. The
# bound sits just below bigint's limit and is exact as a float, as OpenAPI bounds are written.
MAX_ID = 9_000_000_000_000_000_000
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]


class Struct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for every msgspec Struct that crosses a boundary (API, database, settings)."""


class FrozenStruct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base for immutable values, such as the acting principal."""
