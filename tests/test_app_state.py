"""The app's state is typed: every handler and dependency that takes it takes ``AppState``, and
the lifespan fills every attribute ``AppState`` declares."""

from __future__ import annotations

import inspect
from pathlib import Path

from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from api import deps
from api.app import create_app
from api.state import AppState
from tests.helpers import make_settings


def test_every_handler_takes_the_typed_state(tmp_path: Path) -> None:
    app = create_app(
        make_settings(
            "postgresql://unused@/unused?host=/nonexistent",
            "http://127.0.0.1:9",
            "k" * 16,
            tmp_path,
        )
    )
    assert isinstance(app.state, AppState)
    callables = [deps.provide_transaction, deps.provide_principal]
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            callables += [handler.fn for handler in route.route_handlers]
    takers = []
    for fn in callables:
        parameter = inspect.signature(fn).parameters.get("state")
        if parameter is None:
            continue
        annotation = parameter.annotation
        if isinstance(annotation, str):  # postponed: resolve it where the function was written
            annotation = eval(annotation, fn.__globals__)
        assert annotation is AppState, f"{fn.__qualname__} takes state as {annotation}"
        takers.append(fn.__qualname__)
    assert len(takers) >= 10  # the routes that read the pool, search or settings


async def test_the_lifespan_fills_every_declared_attribute(app: Litestar) -> None:
    async with AsyncTestClient(app=app):
        missing = [name for name in AppState.__annotations__ if name not in app.state]
        assert not missing, missing
        assert app.state.index_uid.endswith("offers")
