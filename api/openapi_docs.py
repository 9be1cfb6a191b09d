"""The interactive docs at ``/schema``: Swagger UI, served with every asset from the app itself.

A trading centre's intranet often has no internet, and Litestar's viewers load their scripts,
styles and favicon from CDNs, so there they showed a blank page. Here the viewer is Swagger UI
from the npm package ``swagger-ui-dist``, vendored at a pinned version into
``api/static/swagger-ui-<version>/`` (its README names the version and each file's sha256), and
served under ``/schema/assets/``. The page has no inline script (``swagger-init.js`` starts the
viewer with the document's URL from a data attribute), so the ``Content-Security-Policy`` sent
with every page under ``/schema`` can forbid any other origin: a browser then loads nothing
from outside even if a script tried (Swagger UI's online validator badge is also turned off).
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

SWAGGER_UI_VERSION = "5.36.0"
STATIC_DIR = Path(__file__).parent / "static"
SWAGGER_UI_DIR = STATIC_DIR / f"swagger-ui-{SWAGGER_UI_VERSION}"
ASSETS_PATH = "/assets"  # under the OpenAPI router's path: /schema/assets
ASSETS_ROUTE_NAME = "docs-assets"

# Swagger UI's stylesheet draws its icons from data: URIs; its "Try it out" calls the API on
# this origin. Nothing else is allowed: no other origin, no inline or evaluated script.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)


def docs_router(path: str) -> Router:
    """The router Litestar serves the document and the viewer from, with the policy above on
    every answer."""
    return Router(
        path,
        route_handlers=[],
        include_in_schema=False,
        response_headers=[
            ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY),
            ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
        ],
    )


class SwaggerUIOffline(OpenAPIRenderPlugin):
    """Swagger UI from the vendored copy: no CDN, no inline script."""

    def __init__(self, *, path: str | list[str] = "/swagger", **kwargs: Any) -> None:
        super().__init__(path=path, favicon="", style="", **kwargs)

    @staticmethod
    def asset_url(request: Request[Any, Any, Any], file_path: str) -> str:
        return request.app.route_reverse(ASSETS_ROUTE_NAME, file_path=file_path)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        def asset(name: str) -> str:
            return escape(self.asset_url(request, name))

        viewer = f"swagger-ui-{SWAGGER_UI_VERSION}"
        title = escape(str(openapi_schema["info"]["title"]))
        document = escape(self.get_openapi_json_route(request))
        return f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{title}</title>
    <link rel="icon" type="image/png" href="{asset(f"{viewer}/favicon-32x32.png")}">
    <link rel="stylesheet" type="text/css" href="{asset(f"{viewer}/swagger-ui.css")}">
    <link rel="stylesheet" type="text/css" href="{asset("swagger-init.css")}">
  </head>
  <body>
    <noscript>The interactive docs need JavaScript; the document is at {document}.</noscript>
    <div id="swagger-ui" data-openapi-url="{document}"></div>
    <script src="{asset(f"{viewer}/swagger-ui-bundle.js")}"></script>
    <script src="{asset("swagger-init.js")}"></script>
  </body>
</html>
""".encode()

    def receive_router(self, router: Router) -> None:
        router.register(
            create_static_files_router(
                path=ASSETS_PATH,
                directories=[STATIC_DIR],
                name=ASSETS_ROUTE_NAME,
                # the viewer's folder carries its version, so a new version is a new URL
                cache_control=CacheControlHeader(max_age=86400),
                include_in_schema=False,
            )
        )
