"""What the GraphiQL page and the lineage viewer share: where the assets live, how a page is
sent, and the policy that keeps a browser from fetching anything outside this server."""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_ROOT = Path(__file__).resolve().parent.parent / "static"

# Audit sites are often air-gapped, and a page that silently reached for a CDN would half-work
# there and leak the auditor's activity elsewhere. The policy makes the browser refuse any such
# request even if a vendored script tried one. 'unsafe-inline' for styles only: React and
# CodeMirror set style attributes; no inline script is ever needed (settings travel in JSON
# data blocks, which CSP does not execute).
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; object-src 'none'"
)
# A <meta> policy keeps working when a caller sends our HTML string in its own response;
# frame-ancestors is only honoured as a header, so it is added there.
META_CONTENT_SECURITY_POLICY = _POLICY
PAGE_HEADERS: dict[str, str] = {
    "Content-Security-Policy": f"{_POLICY}; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def html_response(html: str) -> HTMLResponse:
    return HTMLResponse(html, headers=PAGE_HEADERS)


def json_for_script(value: Any) -> str:
    """JSON that is safe inside <script type="application/json">: no '</script>' can close the
    block early and no '<!--' can switch the parser's state, whatever the strings contain."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


@cache
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def asset_url(static_path: str, folder: str, name: str) -> str:
    """URL of a packaged asset with a content hash, so a browser that cached the previous
    version of an upgraded package cannot pair an old script with a new page."""
    return f"{static_path.rstrip('/')}/{name}?v={_digest(STATIC_ROOT / folder / name)}"


def normalise_path(path: str, what: str) -> str:
    """A same-origin absolute path: anything else would let a page send queries elsewhere."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path or any(c.isspace() for c in path):
        raise ValueError(f"{what} must be an absolute path on this server, like '/graphql'; got {path!r}")
    return path.rstrip("/") or "/"


class PackagedAssets(StaticFiles):
    """StaticFiles for one folder of landscape_graphql/static, with headers for versioned assets."""

    def __init__(self, folder: str) -> None:
        super().__init__(directory=STATIC_ROOT / folder)

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result,
                      scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Page URLs carry ?v=<content hash>, so a hit can be kept; a bare URL is revalidated.
        query = scope.get("query_string", b"")
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if query.startswith(b"v=") else "no-cache"
        )
        return response
