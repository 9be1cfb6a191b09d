"""Reliability drill 3: schemathesis over the whole OpenAPI document, as every role.

The app runs in-process over its own copy of the demo database. Two kinds of cases reach it:

* fuzzing: hypothesis-generated cases, valid and invalid, for every operation, as each role
  and anonymously; seeded per (role, operation, mode), so that a run is reproducible;
* the coverage phase: schemathesis' deterministic cases (boundary values, missing and wrong-typed
  fields, numbers past every bound), valid and invalid, for every operation.

Every response must be a non-5xx whose status, content type, headers and body are the ones the
document declares; invalid input must be refused with a 4xx, and valid input must not be
refused as invalid (a 400: the statuses valid input may meet are in schemathesis.toml, which
also says why); a method the document does not list for a path is a 405 naming the ones it
does, and OPTIONS lists exactly those. Failures are collected and reported together, each with
a curl line, so one run shows everything that is wrong.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from litestar import Litestar
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from emall.identity.tokens import issue_token
from tests.helpers import JWT_SECRET, run_sync

# bulk imports take JSON Lines as text; schemathesis sends it as it sends text/plain
schemathesis.serializer.alias(["application/x-ndjson", "application/jsonl"], "text/plain")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,  # with the statuses of schemathesis.toml
    unsupported_method,  # an undocumented method: 405 with Allow
    allow_header_conformance,  # OPTIONS: Allow lists the documented methods
]
# the configuration a city's CLI run uses too
CONFIG = Path(__file__).resolve().parents[1] / "schemathesis.toml"
# one demo user per role; None is an anonymous caller
PRINCIPALS: dict[str, str | None] = {
    "anonymous": None,
    "platform_admin": "admin",
    "operator": "nj_operator",
    "auditor": "nz_auditor",
    "agency_buyer": "nj_buyer",
    "agency_approver": "nj_approver",
    "agency_admin": "zg_agency_admin",
    "supplier_admin": "nj_supplier_admin",
    "supplier_staff": "zg_supplier_staff",
}
# hypothesis' first example is the simplest one; the second is where the roles' seeds differ
FUZZ_EXAMPLES = {GenerationMode.POSITIVE: 2, GenerationMode.NEGATIVE: 2}
MIN_FUZZED_CASES = 1_000
# the coverage phase runs as the role authorisation lets furthest, in shares side by side
COVERAGE_ROLE = "platform_admin"
COVERAGE_SHARES = 2
# logging in with made-up credentials is the one 401 a valid principal may meet
MAY_REFUSE_A_VALID_PRINCIPAL = {"POST /api/v1/auth/token"}

Operation = schemathesis.APIOperation


@dataclass
class Run:
    """What one principal's run sent, what came back, and what was wrong."""

    principal: str
    headers: dict[str, str]
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)

    def send(self, case: schemathesis.Case, session: Any) -> None:
        label = case.operation.label
        self.cases[label] += 1
        try:
            response = case.call(session=session, headers=self.headers, timeout=30)
            self.statuses[(label, response.status_code)] += 1
            case.validate_response(response, checks=CHECKS, headers=self.headers)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is a Base…
            kinds = getattr(exc, "exceptions", [exc])
            key = (label, ",".join(sorted({type(kind).__name__ for kind in kinds})))
            self.failures.setdefault(key, str(exc))

    def lost_principal(self) -> list[str]:
        """Operations that answered 401 to a principal that stays valid all along (a fuzzed
        case must never deactivate or demote the very user it runs as)."""
        if not self.headers:
            return []
        return sorted(
            {
                label
                for (label, status) in self.statuses
                if status == 401 and label not in MAY_REFUSE_A_VALID_PRINCIPAL
            }
        )

    def report(self) -> str:
        lines = [f"{len(self.failures)} failing (operation, check) pairs as {self.principal}:"]
        for (label, kinds), text in sorted(self.failures.items()):
            lines.append(f"\n### {label} [{kinds}]\n{text[:2000]}")
        return "\n".join(lines)


def _headers_for(database_url: str, username: str | None) -> dict[str, str]:
    if username is None:
        return {}

    async def user_id() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            found = await conn.fetchval("select id from users where username = $1", username)
        finally:
            await conn.close()
        assert found is not None, username
        return int(found)

    token, _ = issue_token(run_sync(user_id), secret=JWT_SECRET, ttl_seconds=3600)
    return {"Authorization": f"Bearer {token}"}


def _drive(
    app: Litestar,
    database_url: str,
    principal: str,
    mine: Callable[[int], bool],
    each: Callable[[Any, int, Operation, Run, Any], None],
) -> Run:
    """Run ``each`` over the operations ``mine`` picks (by index), as ``principal``; check that
    every one of them got cases."""
    run = Run(principal, _headers_for(database_url, PRINCIPALS[principal]))
    schema = schemathesis.openapi.from_asgi(
        "/schema/openapi.json", app, config=SchemathesisConfig.from_path(CONFIG)
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    picked = [operation for index, operation in enumerate(operations) if mine(index)]
    try:
        with asgi.get_client(app) as session:
            for index, operation in enumerate(operations):
                if mine(index):
                    each(schema, index, operation, run, session)
    finally:
        asgi.shutdown_lifespans()  # closes this app's pool before its database is dropped
    assert {operation.label for operation in picked} == set(run.cases), "operations left out"
    return run


def _fuzz(schema: Any, index: int, operation: Operation, run: Run, session: Any) -> None:
    modes = [GenerationMode.POSITIVE]
    raw = operation.definition.raw
    # invalid input is refused before authorisation matters: each operation's invalid cases
    # are fuzzed as one of the principals in turn (and the coverage phase has them all)
    takes_input = raw.get("parameters") or raw.get("requestBody")
    if takes_input and index % len(PRINCIPALS) == list(PRINCIPALS).index(run.principal):
        modes.append(GenerationMode.NEGATIVE)
    for mode in modes:
        key = f"{run.principal} {operation.label} {mode.value}"

        @seed(zlib.crc32(key.encode()))
        @settings(
            max_examples=FUZZ_EXAMPLES[mode],
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def send(case: schemathesis.Case) -> None:
            run.send(case, session)

        send()


def _coverage(schema: Any, index: int, operation: Operation, run: Run, session: Any) -> None:
    config = schema.config.generation_for(operation=operation, phase="coverage")
    for case in schema.iter_coverage_cases(
        operation, generation_modes=list(GenerationMode), generation_config=config
    ):
        run.send(case, session)


@pytest.mark.parametrize("principal", list(PRINCIPALS))
def test_fuzzing_as_each_role(principal: str, app: Litestar, database_url: str) -> None:
    run = _drive(app, database_url, principal, lambda _: True, _fuzz)
    # each role's share of the drill's 1,000 fuzzed cases
    assert sum(run.cases.values()) * len(PRINCIPALS) >= MIN_FUZZED_CASES, run.cases
    assert not run.failures, run.report()
    assert not run.lost_principal(), run.lost_principal()


@pytest.mark.parametrize("share", range(COVERAGE_SHARES))
def test_coverage_phase(share: int, app: Litestar, database_url: str) -> None:
    run = _drive(
        app, database_url, COVERAGE_ROLE, lambda index: index % COVERAGE_SHARES == share, _coverage
    )
    assert not run.failures, run.report()
    assert not run.lost_principal(), run.lost_principal()
