"""Authorisation: the one place that answers "may principal P do action A on resource R?".

Every service calls ``authorize`` before it reads or changes anything private; the API's guards
are a second layer only. The decision has two steps:

1. **Visibility.** A private resource is visible to its own organisation, to the operators and
   auditors whose scope covers the resource's region (a region covers its sub-regions), and to
   the platform admin. A resource the principal cannot see raises ``NotFound``, never
   ``PermissionDenied``, so that another tenant's data does not even leak its existence.
2. **Permission.** The action's rule names the roles that may act and where: in their own
   organisation, in their region scope, or anywhere. A visible resource the principal may not
   act on raises ``PermissionDenied``.

Auditors are read-only by construction: no write rule names the auditor role.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from emall.errors import NotFound, PermissionDenied
from emall.principals import Principal, Role

Where = Literal["anyone", "own_org", "region_scope", "own_org_or_region_scope"]


@dataclass(frozen=True)
class Resource:
    """Just enough of a resource for a decision: what it is and whose it is."""

    kind: str
    key: object
    organisation_id: int | None = None
    region_chain: tuple[str, ...] = ()  # the resource's regions with all their ancestors
    owner_user_id: int | None = None
    public: bool = False


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role] | None  # None: any role
    where: Where
    message: str


def _rule(roles: Iterable[Role] | None, where: Where, message: str) -> Rule:
    return Rule(None if roles is None else frozenset(roles), where, message)


R = Role
ORG_ADMINS = (R.AGENCY_ADMIN, R.SUPPLIER_ADMIN, R.OPERATOR, R.PLATFORM_ADMIN)
OVERSIGHT = (R.OPERATOR, R.AUDITOR)

RULES: dict[str, Rule] = {
    # identity
    "api_key.create": _rule(
        ORG_ADMINS,
        "own_org",
        "只有单位管理员可以创建 API 密钥 (only an organisation admin may create API keys)",
    ),
    "api_key.list": _rule(None, "own_org", ""),
    "api_key.revoke": _rule(
        None, "own_org", "只能吊销自己的 API 密钥 (you may revoke only your own API keys)"
    ),
    "user.read": _rule(None, "own_org", ""),
    "user.manage": _rule(
        ORG_ADMINS,
        "own_org",
        "只有单位管理员可以管理用户 (only an organisation admin may manage users)",
    ),
    # reference data and the public directory
    "region.read": _rule(None, "anyone", ""),
    "category.read": _rule(None, "anyone", ""),
    "template.manage": _rule(
        (R.OPERATOR, R.PLATFORM_ADMIN),
        "anyone",
        "只有交易中心可以维护参数模板 (only operators maintain attribute templates)",
    ),
    "partnership.read": _rule(None, "anyone", ""),
    "partnership.manage": _rule(
        (R.PLATFORM_ADMIN,),
        "anyone",
        "只有平台管理员可以管理合作区域 (only the platform admin manages partnerships)",
    ),
    "partnership.set_recognition": _rule(
        (R.OPERATOR,),
        "region_scope",
        "只有该地区的交易中心可以设置互认 (only the region's operator sets recognition)",
    ),
    "organisation.read": _rule(None, "anyone", ""),
    "organisation.read_private": _rule(None, "own_org_or_region_scope", ""),
    "organisation.create": _rule(
        (R.OPERATOR, R.PLATFORM_ADMIN),
        "region_scope",
        "只有交易中心或平台管理员可以登记单位 (only an operator or the platform admin registers organisations)",
    ),
    "organisation.update": _rule(
        (R.AGENCY_ADMIN, R.SUPPLIER_ADMIN, R.OPERATOR, R.PLATFORM_ADMIN),
        "own_org",
        "只有本单位管理员可以修改单位信息 (only the organisation's admin may change it)",
    ),
    # admission and bans
    "admission.apply": _rule(
        (R.SUPPLIER_ADMIN,),
        "own_org",
        "只有供应商管理员可以申请入驻 (only a supplier admin may apply)",
    ),
    "admission.withdraw": _rule(
        (R.SUPPLIER_ADMIN,),
        "own_org",
        "只有供应商管理员可以撤回申请 (only a supplier admin may withdraw)",
    ),
    "admission.read": _rule(None, "own_org_or_region_scope", ""),
    "admission.decide": _rule(
        (R.OPERATOR,),
        "region_scope",
        "只有该地区的交易中心可以审核入驻 (only the region's operator decides admissions)",
    ),
    "ban.read": _rule(None, "own_org_or_region_scope", ""),
    "ban.manage": _rule(
        (R.OPERATOR,),
        "region_scope",
        "只有该地区的交易中心可以禁入供应商 (only the region's operator bans suppliers)",
    ),
    "sale_right.read": _rule(None, "anyone", ""),
    # the shared catalogue and the listing workflow
    "product.read": _rule(None, "anyone", ""),
    "product.create": _rule(
        (R.SUPPLIER_ADMIN, R.SUPPLIER_STAFF),
        "anyone",
        "只有供应商可以创建商品 (only suppliers create products)",
    ),
    "offer.read": _rule(None, "own_org_or_region_scope", ""),
    "offer.manage": _rule(
        (R.SUPPLIER_ADMIN, R.SUPPLIER_STAFF),
        "own_org",
        "只有本供应商可以维护报价 (only the supplier maintains its offers)",
    ),
    "offer.review": _rule(
        (R.OPERATOR,),
        "region_scope",
        "只有审核地区的交易中心可以审核上架 (only the reviewing region's operator reviews listings)",
    ),
    "offer.delist": _rule(
        (R.SUPPLIER_ADMIN, R.SUPPLIER_STAFF, R.OPERATOR),
        "own_org_or_region_scope",
        "只有供应商或审核地区的交易中心可以下架 (only the supplier or the reviewing operator delists)",
    ),
    "price_rule.read": _rule(None, "anyone", ""),
    "price_rule.manage": _rule(
        (R.OPERATOR,),
        "region_scope",
        "只有该地区的交易中心可以设置价格规则 (only the region's operator sets price rules)",
    ),
    "flag.read": _rule(None, "region_scope", ""),
    "flag.resolve": _rule(
        (R.OPERATOR,),
        "region_scope",
        "只有该地区的交易中心可以处理价格预警 (only the region's operator resolves flags)",
    ),
    "import.manage": _rule(
        (R.SUPPLIER_ADMIN, R.SUPPLIER_STAFF),
        "own_org",
        "只有本供应商可以导入报价 (only the supplier imports its offers)",
    ),
    "import.read": _rule(None, "own_org_or_region_scope", ""),
    # ordering: budgets and city rules
    "budget.read": _rule(None, "own_org_or_region_scope", ""),
    "budget.manage": _rule(
        (R.AGENCY_ADMIN,),
        "own_org",
        "只有本单位管理员可以管理预算指标 (only the agency's admin manages budget lines)",
    ),
    "order.create": _rule(
        (R.AGENCY_BUYER,),
        "own_org",
        "只有采购员可以下单 (only an agency buyer places orders)",
    ),
    "order.read": _rule(None, "own_org_or_region_scope", ""),
    "order.approve": _rule(
        (R.AGENCY_APPROVER,),
        "own_org",
        "只有本单位审批人可以审批订单 (only the agency's approver decides)",
    ),
    "order.approval_queue": _rule(
        (R.AGENCY_APPROVER, R.AGENCY_ADMIN),
        "own_org",
        "只有本单位审批人可以查看待审批订单 (only the agency's approvers see its approval queue)",
    ),
    "order.buyer_act": _rule(
        (R.AGENCY_BUYER, R.AGENCY_APPROVER),
        "own_org",
        "只有本单位采购人员可以操作 (only the agency's buyers act on its orders)",
    ),
    "order.supplier_act": _rule(
        (R.SUPPLIER_ADMIN, R.SUPPLIER_STAFF),
        "own_org",
        "只有订单的供应商可以操作 (only the order's supplier acts here)",
    ),
    "order_flag.read": _rule(None, "region_scope", ""),
    "order_flag.resolve": _rule(
        (R.OPERATOR,),
        "region_scope",
        "只有该地区的交易中心可以处理订单预警 (only the region's operator resolves order flags)",
    ),
    "city_rule.read": _rule(None, "anyone", ""),
    "city_rule.manage": _rule(
        (R.OPERATOR,),
        "region_scope",
        "只有该地区的交易中心可以修改采购规则 (only the region's operator changes its rules)",
    ),
}


def in_region_scope(principal: Principal, region_chain: Iterable[str]) -> bool:
    """True when an operator or auditor oversees one of these regions."""
    if not principal.has_role(*OVERSIGHT):
        return False
    return any(code in principal.scope_regions for code in region_chain)


def list_scope(principal: Principal) -> tuple[bool, int, list[str]]:
    """What a list query may return, as SQL parameters: (sees everything, own organisation id,
    regions overseen). The same visibility as ``can_see``, for many rows at once."""
    everything = principal.has_role(R.PLATFORM_ADMIN)
    overseen = sorted(principal.scope_regions) if principal.has_role(*OVERSIGHT) else []
    return everything, principal.organisation_id, overseen


def can_see(principal: Principal, resource: Resource) -> bool:
    if resource.public or principal.has_role(R.PLATFORM_ADMIN):
        return True
    if (
        resource.organisation_id is not None
        and resource.organisation_id == principal.organisation_id
    ):
        return True
    return in_region_scope(principal, resource.region_chain)


def _where_holds(principal: Principal, rule: Rule, resource: Resource | None) -> bool:
    if rule.where == "anyone" or resource is None:
        return True
    own = (
        resource.organisation_id is not None
        and resource.organisation_id == principal.organisation_id
    )
    scoped = in_region_scope(principal, resource.region_chain)
    if rule.where == "own_org":
        return own
    if rule.where == "region_scope":
        return scoped
    return own or scoped


def authorize(principal: Principal, action: str, resource: Resource | None = None) -> None:
    """Return if allowed; raise NotFound for an unseen private resource, else PermissionDenied."""
    rule = RULES.get(action)
    if rule is None:
        raise PermissionDenied(f"未知操作 (unknown action): {action}")
    if resource is not None and not can_see(principal, resource):
        raise NotFound(RESOURCE_NAMES.get(resource.kind, resource.kind), resource.key)
    if rule.roles is not None and not (rule.roles & principal.roles):
        raise PermissionDenied(rule.message or f"无权操作 (not allowed): {action}")
    if principal.has_role(R.PLATFORM_ADMIN):
        return  # the platform admin acts wherever a rule names it (or names no role)
    if resource is not None and resource.public and action.endswith(".read"):
        return  # reading what is public (a listed offer a buyer may buy, a public profile)
    if not _where_holds(principal, rule, resource):
        raise PermissionDenied(rule.message or f"无权操作 (not allowed): {action}")
    if (
        action == "api_key.revoke"
        and resource is not None
        and not (principal.has_role(*ORG_ADMINS) or resource.owner_user_id == principal.user_id)
    ):
        raise PermissionDenied(rule.message)


def can(principal: Principal, action: str, resource: Resource | None = None) -> bool:
    try:
        authorize(principal, action, resource)
    except (NotFound, PermissionDenied):
        return False
    return True


RESOURCE_NAMES = {
    "api_key": "API 密钥",
    "user": "用户",
    "organisation": "单位",
    "admission": "入驻申请",
    "ban": "禁入记录",
    "partnership": "合作区域",
    "partnership_member": "合作区域成员",
    "region": "行政区划",
    "product": "商品",
    "offer": "报价",
    "flag": "价格预警",
    "import_job": "导入任务",
    "budget_line": "预算指标",
    "city_rule": "采购规则",
    "order": "订单",
    "order_flag": "订单预警",
}
