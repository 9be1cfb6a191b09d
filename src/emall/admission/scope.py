"""SQL visibility filters for lists: what a principal may list of admissions and bans."""

from __future__ import annotations

from emall.identity.models import Principal, Role
from emall.policy import OVERSIGHT


def list_scope(principal: Principal) -> tuple[bool, int, list[str]]:
    """(sees everything, own organisation id, regions overseen) for a list query.

    Used as ``($1 or t.supplier_id = $2 or region_chain(t.region_code) && $3::text[])``.
    """
    everything = principal.has_role(Role.PLATFORM_ADMIN)
    overseen = sorted(principal.scope_regions) if principal.has_role(*OVERSIGHT) else []
    return everything, principal.organisation_id, overseen


SCOPE_SQL = (
    "($1::boolean or t.supplier_id = $2::bigint or region_chain(t.region_code) && $3::text[])"
)
