"""Errors carry their kind: the API maps kinds, not classes, so a domain's own error (even one
the API has never heard of) answers with its kind's status, its details and its headers."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from litestar import Litestar, get
from litestar.testing import TestClient

import emall
from api.problems import _BY_KIND, EXCEPTION_HANDLERS
from emall.errors import EmallError, ErrorKind


class TenderClosed(EmallError):
    """A later domain's error, unknown to api/problems.py."""

    code = "tender_closed"
    kind = ErrorKind.CONFLICT

    def details(self) -> dict[str, Any]:
        return {"current_state": "closed"}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "60"}


@get("/closed", sync_to_thread=False)
def closed() -> None:
    raise TenderClosed("投标已截止 (the tender is closed)")


def test_an_error_the_api_does_not_know_answers_by_its_kind() -> None:
    app = Litestar([closed], exception_handlers=EXCEPTION_HANDLERS)
    with TestClient(app) as client:
        response = client.get("/closed")
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "60"
    body = response.json()
    assert body["type"] == "urn:emall:problem:tender_closed"
    assert body["current_state"] == "closed"
    assert body["detail"] == "投标已截止 (the tender is closed)"


def _subclasses(cls: type[EmallError]) -> list[type[EmallError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_kind_has_a_status_and_every_library_error_a_kind() -> None:
    assert set(_BY_KIND) == set(ErrorKind)
    for module in pkgutil.walk_packages(emall.__path__, "emall."):
        importlib.import_module(module.name)
    errors = [e for e in _subclasses(EmallError) if e.__module__.startswith("emall.")]
    assert len(errors) >= 12
    for error in errors:
        assert "kind" in vars(error) or any(
            "kind" in vars(base) for base in error.__mro__[1:] if base is not EmallError
        ), f"{error.__name__} declares no kind"
