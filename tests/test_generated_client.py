"""A client generated from the OpenAPI document, as an embedding city would make one.

``openapi-python-client`` (with the repository's ``openapi-python-client.yaml``) generates a
package from the document without a single warning, the package installs (built by its own
build backend, offline) and imports, every operation of the document is in it, and its calls
work against the served app: a login, an import sent as a file, a cart, and a refusal read as a
typed Problem. Before issue 15 the generator dropped cancelOrder, declineOrder and rejectOrder
(two schemas titled Reason), the package name came from a Chinese title and did not install,
the import's body was a plain string and ``Problem.warnings`` was untyped."""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from litestar import Litestar

from api.app import create_app
from emall.db.pool import Pool
from emall.demo.parties import DEMO_PASSWORD
from tests.drills_support import served
from tests.helpers import make_settings
from tests.test_imports import good_row, use_test_templates

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "openapi-python-client.yaml"
PACKAGE = "emall_api_client"
UNUSED = "http://127.0.0.1:9"


def _uv() -> str:
    """The uv that runs the tests (``uv run`` says where it is), or the one on PATH."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise AssertionError("the generated client is installed with uv: run the tests with uv")
    return uv


def _snake(operation_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)  # the generator formats with the venv's ruff
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The document, the client generated from it and installed into a directory of its own."""
    work = tmp_path_factory.mktemp("client")
    settings = make_settings(
        "postgresql://unused@/unused?host=/nonexistent", UNUSED, "k" * 16, work / "state"
    )
    document = create_app(settings).openapi_schema.to_schema()
    (work / "openapi.json").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    generator = Path(sys.executable).with_name("openapi-python-client")
    # --fail-on-warning: a part of the document the generator cannot read fails the test
    _run(
        [
            str(generator),
            "generate",
            "--path",
            "openapi.json",
            "--config",
            str(CONFIG),
            "--meta",
            "uv",
            "--fail-on-warning",
            "--output-path",
            str(work / "emall-api-client"),
        ],
        work,
    )
    site = work / "site"
    _run(
        [
            _uv(),
            "pip",
            "install",
            "--python",
            sys.executable,
            "--no-deps",
            "--no-index",
            "--no-build-isolation",  # uv_build comes from the dev group: no download
            "--target",
            str(site),
            str(work / "emall-api-client"),
        ],
        work,
    )
    sys.path.insert(0, str(site))
    try:
        yield site, document
    finally:
        sys.path.remove(str(site))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_the_generated_client_has_every_operation(
    generated: tuple[Path, dict[str, Any]],
) -> None:
    site, document = generated
    assert (site / f"{PACKAGE}-0.1.0.dist-info").is_dir() or any(
        p.name.startswith("emall_api_client-") for p in site.glob("*.dist-info")
    ), "installed without its metadata"
    operations = {
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    assert {"cancelOrder", "declineOrder", "rejectOrder", "createImportJob"} <= operations
    api = importlib.import_module(f"{PACKAGE}.api")
    modules = {
        info.name.rsplit(".", 1)[1]: info.name
        for info in pkgutil.walk_packages(api.__path__, f"{PACKAGE}.api.")
        if not info.ispkg
    }
    missing = sorted(op for op in operations if _snake(op) not in modules)
    assert not missing, f"the generated client lacks {missing}"
    for op in operations:
        module = importlib.import_module(modules[_snake(op)])
        for call in ("sync", "sync_detailed", "asyncio", "asyncio_detailed"):
            assert callable(getattr(module, call, None)), f"{op} has no {call}"
    assert len(modules) == len(operations), sorted(set(modules) - {_snake(o) for o in operations})
    # a refusal's warnings are typed: the client can read what it must acknowledge
    problem = importlib.import_module(f"{PACKAGE}.models.problem").Problem
    assert "CheckoutWarning" in str(problem.__annotations__["warnings"])


async def test_the_generated_client_talks_to_the_server(
    generated: tuple[Path, dict[str, Any]], app: Litestar, pool: Pool
) -> None:
    client_module = importlib.import_module(PACKAGE)
    types = importlib.import_module(f"{PACKAGE}.types")
    models = importlib.import_module(f"{PACKAGE}.models")
    identity = f"{PACKAGE}.api.identity"
    create_token = importlib.import_module(f"{identity}.create_token")
    get_cart = importlib.import_module(f"{PACKAGE}.api.ordering.get_cart")
    checkout = importlib.import_module(f"{PACKAGE}.api.ordering.checkout")
    create_import_job = importlib.import_module(f"{PACKAGE}.api.imports.create_import_job")
    get_import_job = importlib.import_module(f"{PACKAGE}.api.imports.get_import_job")

    await use_test_templates(pool)  # the rows' specs fit these templates
    async with served(app) as base_url, contextlib.AsyncExitStack() as stack:
        anonymous = await stack.enter_async_context(client_module.Client(base_url=base_url))

        async def token(username: str) -> str:
            body = models.TokenRequest(username=username, password=DEMO_PASSWORD)
            issued = await create_token.asyncio_detailed(client=anonymous, body=body)
            assert issued.status_code == 200, issued.content
            return str(issued.parsed.access_token)

        supplier = client_module.AuthenticatedClient(
            base_url=base_url, token=await token("nj_supplier_admin")
        )
        await stack.enter_async_context(supplier)
        stack.enter_context(supplier)  # the sync call's connection too
        rows = "".join(
            json.dumps({**good_row(i), "supplier_sku": f"GEN-{i}"}, ensure_ascii=False) + "\n"
            for i in (1, 2)
        )
        upload = types.File(payload=io.BytesIO(rows.encode()), file_name="offers.jsonl")
        # a file-like payload is a sync stream to httpx: sent by the sync call (in a thread,
        # as the server runs on this event loop)
        queued = await anyio.to_thread.run_sync(
            functools.partial(
                create_import_job.sync_detailed,
                client=supplier,
                body=upload,
                filename="offers.jsonl",
            )
        )
        assert queued.status_code == 202, queued.content
        job = queued.parsed
        assert isinstance(job, models.ImportJobRead) and job.id > 0
        for _ in range(600):
            got = await get_import_job.asyncio(client=supplier, job_id=job.id)
            assert isinstance(got, models.ImportJobRead)
            if got.status.value in ("succeeded", "failed"):
                break
            await anyio.sleep(0.05)
        assert got.status.value == "succeeded", got
        assert (got.created_rows, got.error_rows) == (2, 0), got

        buyer = await stack.enter_async_context(
            client_module.AuthenticatedClient(base_url=base_url, token=await token("nj_buyer"))
        )
        cart = await get_cart.asyncio(client=buyer)
        assert isinstance(cart, models.Cart) and cart.items == []
        line = await pool.fetchval(
            "select l.id from budget_lines l join users u on u.organisation_id = l.agency_id "
            "where u.username = 'nj_buyer' order by l.id limit 1"
        )
        refused = await checkout.asyncio_detailed(
            client=buyer, body=models.CheckoutRequest(budget_line_id=line)
        )
        assert refused.status_code == 422, refused.content
        problem = refused.parsed
        assert isinstance(problem, models.Problem) and problem.status == 422
        assert problem.errors and problem.errors[0].field == "cart"
