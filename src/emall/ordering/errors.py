"""Refusals of checkout that carry more than a message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from emall.errors import Conflict, EmallError, ErrorKind
from emall.ordering.models import CheckoutWarning


class CeilingExceeded(EmallError):
    """The order is above the e-mall ceiling: a formal procurement procedure is required."""

    code = "ceiling_exceeded"
    kind = ErrorKind.INVALID
    title = "超过电子卖场限额 (above the e-mall ceiling)"

    def __init__(self, total_fen: int, ceiling_fen: int, rule_version: int) -> None:
        self.total_fen = total_fen
        self.ceiling_fen = ceiling_fen
        self.rule_version = rule_version
        super().__init__(
            f"订单金额 {total_fen} 分超过电子卖场限额 {ceiling_fen} 分，须依法采用政府采购正式程序 "
            f"(above the e-mall ceiling of {ceiling_fen} fen: a formal procurement procedure is "
            f"required; rule version {rule_version})"
        )


class WarningsToAcknowledge(Conflict):
    """Checkout needs the buyer to acknowledge these warnings first (send them in acknowledge)."""

    code = "warnings_to_acknowledge"

    def __init__(self, warnings: list[CheckoutWarning], unacknowledged: Sequence[str]) -> None:
        self.warnings = warnings
        super().__init__(
            "请阅读并确认以下提示后再提交 (acknowledge these warnings to proceed): "
            + ", ".join(unacknowledged),
            current_state="needs_acknowledgement",
        )

    def details(self) -> dict[str, Any]:
        return {**super().details(), "warnings": self.warnings}


class IdempotencyMismatch(EmallError):
    """An Idempotency-Key reused with a different request."""

    code = "idempotency_key_reused"
    kind = ErrorKind.INVALID
    title = "幂等键冲突 (idempotency key reused)"
