"""Authorisation: the one place that answers "may principal P do action A on resource R?".

Every service calls ``authorize`` before it reads or changes anything private. The API's
guards are a second layer only. A resource of another tenant that the principal may not see
raises ``NotFound`` rather than ``PermissionDenied``, so that its existence does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass

from emall.errors import NotFound, PermissionDenied
from emall.identity.models import ADMIN_ROLES, Principal


@dataclass(frozen=True)
class OwnedResource:
    """Just enough of a resource for a decision: what it is, whose it is."""

    kind: str  # e.g. "api_key"
    key: object
    organisation_id: int
    owner_user_id: int | None = None


def _is_org_admin(principal: Principal) -> bool:
    return principal.has_role(*ADMIN_ROLES)


def authorize(principal: Principal, action: str, resource: OwnedResource | None = None) -> None:
    """Return if allowed; raise PermissionDenied, or NotFound for an unseen private resource."""
    if resource is not None and resource.organisation_id != principal.organisation_id:
        raise NotFound(_RESOURCE_NAMES.get(resource.kind, resource.kind), resource.key)

    match action:
        case "api_key.create":
            if not _is_org_admin(principal):
                raise PermissionDenied(
                    "只有单位管理员可以创建 API 密钥 (only an organisation admin may create API keys)"
                )
        case "api_key.list":
            return
        case "api_key.revoke":
            assert resource is not None
            if not (_is_org_admin(principal) or resource.owner_user_id == principal.user_id):
                raise PermissionDenied(
                    "只能吊销自己的 API 密钥 (you may revoke only your own API keys)"
                )
        case _:
            raise PermissionDenied(f"未知操作 (unknown action): {action}")


_RESOURCE_NAMES = {"api_key": "API 密钥"}
