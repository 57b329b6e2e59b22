"""`GET /`: the web page for people (photo in, breeds out), served by the API itself.

The page is one HTML document with its CSS and JS inlined from web/ at first use, so it is one route on API
Gateway and one request in the browser. The Content-Security-Policy allows exactly those two inline blocks by
their sha256 hashes (no 'unsafe-inline'), images only from the photos the user picks (blob:), and requests
only to this origin. The page needs no API key and holds no secret: it asks the user for the key when
`POST /predict` answers 403 and keeps it in the browser's localStorage.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import Response


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


@lru_cache(maxsize=1)
def page() -> tuple[str, dict[str, str]]:
    """The HTML with CSS and JS inlined, and the response headers (computed once per execution environment)."""
    from importlib import resources  # imported here, as for openapi.json: ~10 ms of cold start on the first page view

    folder = resources.files(__package__).joinpath("web")
    html = folder.joinpath("index.html").read_text(encoding="utf-8")
    css = folder.joinpath("page.css").read_text(encoding="utf-8")
    js = folder.joinpath("page.js").read_text(encoding="utf-8")
    if "<style></style>" not in html or "<script></script>" not in html or "</script" in js:
        raise RuntimeError("web/index.html needs one empty <style></style> and <script></script> to fill")
    html = html.replace("<style></style>", f"<style>{css}</style>")
    html = html.replace("<script></script>", f"<script>{js}</script>")
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src {_sha256_source(js)}",
            f"style-src {_sha256_source(css)}",
            # Previews are object URLs of the user's own files; the favicon is an empty data: URL.
            "img-src blob: data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    headers = {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "geolocation=(), microphone=(), payment=(), usb=()",
        # Revalidate every time: a new deployment must not leave old page code calling a newer API.
        "Cache-Control": "no-cache",
    }
    return html, headers


def register(app: Any, route_methods: dict[str, tuple[str, ...]]) -> None:
    """Add `GET /` to the resolver (and to the path -> methods table that tells 405 from 404)."""
    route_methods["/"] = ("GET",)

    @app.get(
        "/",
        operation_id="webPage",
        summary="The web page for people: pick photos, see the breeds. Needs no API key; it asks for one when "
        "POST /predict does.",
        security=[],  # API Gateway serves GET / without a key (terraform/modules/api/web_page.tf)
        responses={
            200: {
                "description": "The page (HTML with inline CSS and JS allowed by its Content-Security-Policy hashes).",
                "content": {"text/html": {"schema": {"type": "string"}}},
            }
        },
    )
    def web_page() -> Response:
        html, headers = page()
        # A plain text body: API Gateway passes it through untouched (isBase64Encoded false), so text/html
        # must not be one of the API's binary media types.
        return Response(status_code=200, content_type="text/html; charset=utf-8", body=html, headers=dict(headers))
