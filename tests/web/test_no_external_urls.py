"""Nothing the web pages serve may make a browser fetch from outside this server.

Audit sites are often air-gapped: a page that pulls a script, stylesheet or font from a CDN
breaks there, and elsewhere it tells a third party who is auditing what. This crawls every page
the routes serve and every asset they reference, and also scans every file under
landscape_graphql/static (a file nobody references yet could be referenced tomorrow).

The browser tests check the same thing at run time by blocking and recording every
non-loopback request; this test explains *which* file is at fault.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from landscape_graphql.web import EXAMPLE_QUERIES, graphiql_html, viewer_html
from landscape_graphql.web._common import STATIC_ROOT

from ._server import build_app

# Any absolute URL with a host: http://x, https://x, ws(s)://x or protocol-relative //x.
EXTERNAL = r"(?:(?:https?|wss?):)?//[^/\s\"'`)]"

CSS_RULES = {
    "url()": re.compile(r"url\(\s*[\"']?(" + EXTERNAL + r")", re.I),
    "@import": re.compile(r"@import\s+(?:url\(\s*)?[\"']?(" + EXTERNAL + r")", re.I),
}
# Only places where a browser fetches: a link in an <a href> inside a bundle (GraphiQL
# explorer's credits) is navigation the user chooses, not a request the page makes.
JS_RULES = {
    "static import": re.compile(r"\b(?:from|import)\s*[\"'`](" + EXTERNAL + r")"),
    "dynamic import": re.compile(r"\bimport\s*\(\s*[\"'`](" + EXTERNAL + r")"),
    "fetch": re.compile(r"\bfetch\s*\(\s*[\"'`](" + EXTERNAL + r")"),
    "XMLHttpRequest": re.compile(r"\.open\s*\(\s*[\"'`]\w+[\"'`]\s*,\s*[\"'`](" + EXTERNAL + r")"),
    "worker/beacon/socket": re.compile(
        r"\b(?:Worker|SharedWorker|importScripts|sendBeacon|EventSource|WebSocket)\s*\(\s*[\"'`]("
        + EXTERNAL + r")"),
    "src attribute": re.compile(r"\b(?:src|srcset|srcSet)\s*[:=]\s*[\"'`](" + EXTERNAL + r")"),
    "CSS in JS": re.compile(r"(?:url\(|@import\s+)\s*[\"']?(" + EXTERNAL + r")", re.I),
}
# CDNs never have a legitimate mention in an offline page, even in a string.
CDN_HOSTS = re.compile(r"\b(?:unpkg\.com|cdn\.jsdelivr\.net|esm\.sh|cdnjs\.cloudflare\.com|fonts\.googleapis\.com|"
                       r"fonts\.gstatic\.com|ajax\.googleapis\.com|cdn\.skypack\.dev|ga\.jspm\.io)\b", re.I)
SOURCE_MAP = re.compile(r"sourceMappingURL", re.I)
HTML_URL_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "poster", "data", "background",
                       "manifest", "ping", "xlink:href", "content"}


@dataclass
class Finding:
    where: str
    rule: str
    url: str


@dataclass
class _Html(HTMLParser):
    where: str
    findings: list[Finding] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    _in: str | None = None

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name, value in attrs:
            if value is None:
                continue
            if name == "style":
                self.findings += scan_css(value, f"{self.where} <{tag} style>")
            if name not in HTML_URL_ATTRIBUTES:
                continue
            if name == "content" and attributes.get("http-equiv", "").lower() != "refresh":
                continue  # <meta content> is a URL only in a refresh
            for candidate in re.split(r"[\s,]+", value) if name == "srcset" else [value.split(";url=")[-1]]:
                if re.match(EXTERNAL, candidate.strip(), re.I):
                    self.findings.append(Finding(f"{self.where} <{tag} {name}>", "HTML attribute", candidate))
                elif name in ("src", "href") and tag != "a" and not candidate.startswith(("data:", "#")):
                    self.references.append(candidate)
        self._in = tag if tag in ("style", "script") else None
        self._script_type = (attributes.get("type") or "").lower()

    def handle_data(self, data: str) -> None:
        if self._in == "style":
            self.findings += scan_css(data, f"{self.where} <style>")
        elif self._in == "script" and data.strip():
            if self._script_type == "application/json":
                # Settings blocks are data, but a URL in them would be one the page then uses.
                for value in _strings(json.loads(data)):
                    if re.search(EXTERNAL, value) and re.search(r"(?:https?|wss?):", value):
                        self.findings.append(Finding(f"{self.where} <script json>", "settings URL", value))
            else:
                self.findings += scan_js(data, f"{self.where} <script>")

    def handle_endtag(self, tag: str) -> None:
        self._in = None


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def scan_css(text: str, where: str) -> list[Finding]:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    found = [Finding(where, rule, m.group(1)) for rule, rx in CSS_RULES.items() for m in rx.finditer(text)]
    return found + _common(text, where)


def scan_js(text: str, where: str) -> list[Finding]:
    found = [Finding(where, rule, m.group(1)) for rule, rx in JS_RULES.items() for m in rx.finditer(text)]
    return found + _common(text, where)


def _common(text: str, where: str) -> list[Finding]:
    found = [Finding(where, "CDN host", m.group(0)) for m in CDN_HOSTS.finditer(text)]
    return found + [Finding(where, "source map", m.group(0)) for m in SOURCE_MAP.finditer(text)]


def scan_html(text: str, where: str) -> tuple[list[Finding], list[str]]:
    parser = _Html(where)
    parser.feed(text)
    parser.close()
    return parser.findings + _common(text, where), parser.references


# ------------------------------------------------------------------------------- the scanner


@pytest.mark.parametrize(("kind", "snippet"), [
    ("html", '<script src="https://unpkg.com/graphiql/graphiql.min.js"></script>'),
    ("html", '<link rel="stylesheet" href="//cdn.example.org/x.css">'),
    ("html", '<img srcset="/a.png 1x, https://img.example.org/b.png 2x">'),
    ("html", '<meta http-equiv="refresh" content="0;url=https://elsewhere.example/">'),
    ("html", '<div style="background: url(https://img.example.org/a.png)"></div>'),
    ("html", '<script type="application/json" id="c">{"graphqlPath": "https://api.example.org/graphql"}</script>'),
    ("css", "@import url('https://fonts.example.org/css?family=Roboto');"),
    ("css", "@font-face { src: url(https://fonts.example.org/r.woff2) }"),
    ("js", 'import {x} from "https://esm.example.org/react";'),
    ("js", 'const m = await import("https://esm.example.org/monaco.js");'),
    ("js", "fetch('http://telemetry.example.org/ping', {method: 'POST'})"),
    ("js", 'new Worker("https://cdn.example.org/worker.js")'),
    ("js", 'e.createElement("img",{src:"https://img.example.org/logo.png"})'),
    ("js", "var x=1;\n//# sourceMappingURL=graphiql.js.map"),
    ("js", 'var cdn = "unpkg.com/" + name;'),
])
def test_scanner_finds_what_a_browser_would_fetch(kind: str, snippet: str) -> None:
    findings = {"html": lambda t: scan_html(t, "t")[0], "css": lambda t: scan_css(t, "t"),
                "js": lambda t: scan_js(t, "t")}[kind](snippet)
    assert findings, f"the scanner missed {snippet!r}"


@pytest.mark.parametrize(("kind", "snippet"), [
    ("html", '<script src="/static/graphiql/graphiql.js?v=1"></script><link rel="icon" href="data:,">'),
    ("html", '<a href="/graphql">GraphiQL</a>'),
    ("css", ".a{background:url(data:image/png;base64,AAAA)} .b{background:url(img/x.png)}"),
    ("js", 'createElementNS("http://www.w3.org/2000/svg","path")'),
    ("js", 'createElement("a",{href:"https://github.com/graphql/graphiql"},"Contribute")'),
    ("js", "fetch(config.graphqlPath, {method: 'POST'})"),
])
def test_scanner_accepts_local_and_non_fetching_urls(kind: str, snippet: str) -> None:
    findings = {"html": lambda t: scan_html(t, "t")[0], "css": lambda t: scan_css(t, "t"),
                "js": lambda t: scan_js(t, "t")}[kind](snippet)
    assert findings == []


# ------------------------------------------------------------------------------- what is served


async def _crawl(client: httpx.AsyncClient, page: str, headers: dict[str, str] | None = None) -> list[Finding]:
    """The page and everything it references, as the browser would get them."""
    response = await client.get(page, headers=headers or {})
    assert response.status_code == 200, page
    assert response.headers["content-type"].startswith("text/html")
    findings, references = scan_html(response.text, page)
    assert references, f"{page} references no asset: the crawl would prove nothing"
    for ref in references:
        url = urljoin(f"http://testserver{page}", ref)
        assert urlsplit(url).netloc == "testserver", f"{page} references {ref} on another host"
        asset = await client.get(url)
        assert asset.status_code == 200, f"{page} references {ref}, which is not served"
        kind = asset.headers["content-type"]
        if "css" in kind:
            findings += scan_css(asset.text, ref)
        elif "javascript" in kind:
            findings += scan_js(asset.text, ref)
        elif "html" in kind:
            findings += scan_html(asset.text, ref)[0]
    return findings


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.mark.parametrize(("page", "headers"), [
    ("/graphql", {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}),
    ("/graphiql", None),
    ("/viewer", None),
])
async def test_served_pages_fetch_nothing_from_outside(client: httpx.AsyncClient, page: str,
                                                       headers: dict[str, str] | None) -> None:
    assert await _crawl(client, page, headers) == []


@pytest.mark.parametrize("html", [
    graphiql_html("/graphql", EXAMPLE_QUERIES),
    viewer_html("/graphql"),
], ids=["graphiql_html", "viewer_html"])
def test_page_functions_fetch_nothing_from_outside(html: str) -> None:
    findings, references = scan_html(html, "page")
    assert findings == []
    assert all(ref.startswith("/static/") for ref in references), references


STATIC_FILES = sorted(p for p in STATIC_ROOT.rglob("*") if p.is_file())


def test_static_tree_holds_only_scanned_kinds() -> None:
    # A new kind of asset (an .svg, a .woff2, an .html) needs its own scan rule here first.
    kinds = {p.suffix for p in STATIC_FILES}
    assert kinds <= {".js", ".css", ".txt"}, kinds - {".js", ".css", ".txt"}
    assert {".js", ".css"} <= kinds


@pytest.mark.parametrize("path", [p for p in STATIC_FILES if p.suffix in (".js", ".css")],
                         ids=lambda p: str(p.relative_to(STATIC_ROOT)))
def test_every_static_asset_fetches_nothing_from_outside(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    where = str(path.relative_to(STATIC_ROOT))
    assert (scan_css(text, where) if path.suffix == ".css" else scan_js(text, where)) == []
