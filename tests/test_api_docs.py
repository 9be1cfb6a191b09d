"""The interactive docs as a newcomer meets them: every operation explained, with the errors it
really answers, and viewers that work without internet (a trading centre's intranet often has
none), because every asset they load comes from the app itself.

The app is built without its lifespan: the OpenAPI document and the docs pages need neither
PostgreSQL nor Meilisearch.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from litestar import Litestar
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.testing import TestClient

from api.app import create_app
from api.openapi_docs import SWAGGER_UI_DIR, SWAGGER_UI_VERSION, SwaggerUIOffline
from emall.settings import load_settings
from tests.helpers import JWT_SECRET
from tests.test_authorization_matrix import CASES, HIDDEN, NO

METHODS = {"get", "post", "put", "patch", "delete"}
ORIGIN = "http://testserver.local"


@pytest.fixture(scope="module")
def docs_app(tmp_path_factory: pytest.TempPathFactory) -> Litestar:
    state = tmp_path_factory.mktemp("docs")
    return create_app(load_settings({"EMALL_JWT_SECRET": JWT_SECRET}, cwd=state))


@pytest.fixture(scope="module")
def docs_client(docs_app: Litestar) -> TestClient[Litestar]:
    # not entered as a context manager: no lifespan, so no database or search is needed
    return TestClient(app=docs_app, base_url=ORIGIN)


@pytest.fixture(scope="module")
def spec(docs_client: TestClient[Litestar]) -> dict[str, Any]:
    response = docs_client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation["operationId"], operation


def _required_errors(operation_id: str, operation: dict[str, Any]) -> dict[str, str]:
    """The error statuses an operation must document, each with the reason the app answers it."""
    required: dict[str, str] = {}
    parameters = operation.get("parameters", [])
    if parameters:
        required["400"] = "every parameter is validated (type, bounds, NUL, UTF-8)"
    if operation.get("requestBody"):
        required["400"] = "it takes a body"
        required["413"] = "it takes a body, and bodies over 2 MiB are refused"
    if operation.get("security"):
        required["401"] = "it needs credentials"
    for parameter in parameters:
        if parameter["in"] == "path" and parameter["schema"].get("type") == "integer":
            required["404"] = f"it reads a resource by id ({parameter['name']})"
        if parameter["in"] == "header" and parameter["name"] == "Idempotency-Key":
            required["422"] = "Idempotency-Key: a key reused with another request"
        if parameter["in"] == "header" and parameter["name"] == "If-Match":
            required["412"] = "If-Match: a stale ETag"
            required["428"] = "If-Match is required"
    # what the authorisation matrix (tests/test_authorization_matrix.py) sees the app answer
    expected = {e for scenario in CASES[operation_id].scenarios for e in scenario.expect.values()}
    if NO in expected:
        required["403"] = "the authorisation matrix expects a 403 for some role"
    if HIDDEN in expected:
        required["404"] = "the authorisation matrix expects a 404 (another tenant's resource)"
    return required


def test_every_operation_has_a_summary_a_description_and_its_errors(
    spec: dict[str, Any],
) -> None:
    failures: list[str] = []
    seen: set[str] = set()
    for name, operation_id, operation in _operations(spec):
        seen.add(operation_id)
        if not (operation.get("summary") or "").strip():
            failures.append(f"{name} ({operation_id}): no summary")
        if not (operation.get("description") or "").strip():
            failures.append(f"{name} ({operation_id}): no description")
        documented = set(operation["responses"])
        for status, reason in _required_errors(operation_id, operation).items():
            if status not in documented:
                failures.append(f"{name} ({operation_id}): does not document {status}: {reason}")
    assert not failures, "\n".join(failures)
    assert seen == CASES.keys(), "the document and the authorisation matrix name other routes"


def test_checkout_and_cart_descriptions_say_what_their_errors_mean(spec: dict[str, Any]) -> None:
    by_id = {operation_id: operation for _, operation_id, operation in _operations(spec)}
    checkout = by_id["checkout"]["description"]
    for words in ("409", "422", "Idempotency-Key", "budget_line_id", "/api/v1/budget-lines"):
        assert words in checkout, f"checkout's description does not mention {words}"
    for words in ("min_order_qty", "422", "GET /api/v1/offers/{offer_id}"):
        assert words in by_id["putCartItem"]["description"], words


# --- the viewer: nothing from outside the app -----------------------------------------------


class _Page(HTMLParser):
    """What a page makes the browser load: every URL in an attribute that loads something, and
    the text of inline scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []  # external scripts, in order
        self.inline: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            if not value:
                continue
            if name in ("src", "data", "poster", "srcset") or (name == "href" and tag != "a"):
                self.urls.extend(part.split()[0] for part in value.split(",") if part.strip())
            elif name.startswith("data-") and name.endswith("url"):
                self.urls.append(value)  # what the viewer's script fetches (the document)
            elif name == "style" or name.startswith("on"):
                self.inline.append(value)
        if tag == "script" and values.get("src"):
            self.scripts.append(values["src"])
        elif tag in ("script", "style"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None and data.strip():
            self.inline.append(data)


_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)\s]*))|@import\s+['"]([^'"]+)""")
_CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
    ".json": ("application/vnd.oai.openapi+json", "application/json"),
}
# the only sources a docs page may name in its Content-Security-Policy
_ALLOWED_SOURCES = {"'self'", "'none'"}
_ALLOWED_EXTRA = {"img-src": {"data:"}, "font-src": {"data:"}, "style-src": {"'unsafe-inline'"}}


def _same_origin(url: str) -> bool:
    parts = urlsplit(urljoin(ORIGIN + "/", url))
    return f"{parts.scheme}://{parts.netloc}" == ORIGIN


def _viewer_pages(app: Litestar) -> list[str]:
    config = app.openapi_config
    assert config is not None and config.path is not None
    pages = [config.path]
    for plugin in config.render_plugins:
        if not isinstance(plugin, JsonRenderPlugin | YamlRenderPlugin):
            pages.extend(f"{config.path}{path}" for path in plugin.paths if path != "/")
    return pages


def test_the_only_viewer_is_the_vendored_one(docs_app: Litestar) -> None:
    config = docs_app.openapi_config
    assert config is not None
    viewers = [
        p for p in config.render_plugins if not isinstance(p, JsonRenderPlugin | YamlRenderPlugin)
    ]
    assert viewers, "no interactive docs"
    assert all(isinstance(p, SwaggerUIOffline) for p in viewers), (
        f"a viewer that loads its assets from a CDN is enabled: {viewers}"
    )


@pytest.mark.parametrize(
    "viewer", ["/schema/scalar", "/schema/redoc", "/schema/rapidoc", "/schema/elements"]
)
def test_the_cdn_viewers_are_off(docs_client: TestClient[Litestar], viewer: str) -> None:
    assert docs_client.get(viewer).status_code == 404


def test_every_docs_page_forbids_other_origins(
    docs_app: Litestar, docs_client: TestClient[Litestar]
) -> None:
    """The browser enforces it: whatever a script tries, nothing is loaded from elsewhere."""
    for page in _viewer_pages(docs_app):
        policy = docs_client.get(page).headers.get("content-security-policy")
        assert policy, f"{page}: no Content-Security-Policy"
        directives = {
            name: set(sources)
            for name, *sources in (d.split() for d in policy.split(";") if d.strip())
        }
        assert directives.get("default-src") == {"'self'"}, f"{page}: {policy}"
        assert directives.get("script-src") == {"'self'"}, f"{page}: inline scripts allowed"
        for name, sources in directives.items():
            extra = sources - _ALLOWED_SOURCES - _ALLOWED_EXTRA.get(name, set())
            assert not extra, f"{page}: {name} allows {extra}"


def test_every_docs_page_loads_its_assets_from_the_app(
    docs_app: Litestar, docs_client: TestClient[Litestar]
) -> None:
    for page in _viewer_pages(docs_app):
        response = docs_client.get(page)
        assert response.status_code == 200, page
        assert response.headers["content-type"].startswith("text/html"), page
        parsed = _Page()
        parsed.feed(response.text)
        assert not parsed.inline, f"{page}: inline script or style: {parsed.inline}"
        assert [urlsplit(u).path.rsplit("/", 1)[-1] for u in parsed.scripts] == [
            "swagger-ui-bundle.js",
            "swagger-init.js",
        ], f"{page}: expected the vendored viewer and its start-up script"
        assert any(u.endswith("/swagger-ui.css") for u in parsed.urls), page
        assert any(u.endswith("/openapi.json") for u in parsed.urls), page
        fetched: set[str] = set()
        queue = [urljoin(ORIGIN + page, url) for url in parsed.urls]
        while queue:
            url = queue.pop()
            if url in fetched:
                continue
            fetched.add(url)
            assert not url.startswith("//") and _same_origin(url), f"{page} loads {url}"
            asset = docs_client.get(url)
            assert asset.status_code == 200, f"{page}: {url} answers {asset.status_code}"
            suffix = "." + urlsplit(url).path.rsplit(".", 1)[-1]
            content_type = asset.headers["content-type"].split(";")[0]
            assert content_type in _CONTENT_TYPES[suffix], f"{url}: {content_type}"
            if suffix == ".css":  # what a stylesheet loads in turn: data: URIs or the app
                for match in _CSS_URL.finditer(asset.text):
                    ref = next(group for group in match.groups() if group is not None)
                    if ref and not ref.startswith("data:"):
                        queue.append(urljoin(url, ref))
        assert len(fetched) >= 5, fetched


def test_the_start_up_script_turns_the_online_validator_off(
    docs_client: TestClient[Litestar],
) -> None:
    """Swagger UI's default shows a badge image from its online validator."""
    script = docs_client.get("/schema/assets/swagger-init.js").text
    assert re.search(r"validatorUrl:\s*null", script)
    assert not re.findall(r"https?://", script)


def test_the_vendored_files_are_the_npm_packages(docs_client: TestClient[Litestar]) -> None:
    """The folder's README names the npm package, its version and each file's sha256; the
    files in the folder, and those the app serves, are exactly those."""
    readme = (SWAGGER_UI_DIR / "README.md").read_text()
    package = re.search(r"`swagger-ui-dist@([0-9.]+)`", readme)
    assert package and package.group(1) == SWAGGER_UI_VERSION
    assert SWAGGER_UI_DIR.name == f"swagger-ui-{SWAGGER_UI_VERSION}"
    listed = dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", readme, re.M))
    files = {p.name for p in SWAGGER_UI_DIR.iterdir() if p.name != "README.md"}
    assert set(listed) == files, "every vendored file, and only those, is listed with its sha256"
    assert {"LICENSE", "NOTICE", "swagger-ui-bundle.js", "swagger-ui.css"} <= files
    for name, digest in listed.items():
        actual = hashlib.sha256((SWAGGER_UI_DIR / name).read_bytes()).hexdigest()
        assert actual == digest, f"{name}: sha256 {actual}, the README says {digest}"
        served = docs_client.get(f"/schema/assets/{SWAGGER_UI_DIR.name}/{name}")
        assert hashlib.sha256(served.content).hexdigest() == digest, f"{name} as served"
