"""The one base class every data Struct in emall derives from.

Options shared by all Structs live here, as in msgspec's own examples: unknown fields are
refused (a typo in a request body is an error, not silently ignored) and every Struct takes
keyword arguments only, so that field order never matters.
"""

from __future__ import annotations

import msgspec


class Struct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for every msgspec Struct that crosses a boundary (API, database, settings)."""


class FrozenStruct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base for immutable values, such as the acting principal."""
