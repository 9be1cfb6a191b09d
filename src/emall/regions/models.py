"""Region data as the API shows it."""

from __future__ import annotations

from typing import Literal

from emall.structs import Struct

RegionLevel = Literal["province", "city", "county"]


class RegionRead(Struct):
    code: str
    name: str
    level: RegionLevel
    parent_code: str | None


class RegionDetail(Struct):
    """One region with its ancestors (nearest first) and the number of its children."""

    code: str
    name: str
    level: RegionLevel
    parent_code: str | None
    ancestors: list[RegionRead]
    children_count: int
