"""The web app's routes: one HTML shell for every page, and its static files (package data).

The app is ES modules with Preact + htm (one vendored, pinned module), so there is no build step:
the files under ``static/`` are what the browser runs. Pages get a strict Content-Security-Policy
(scripts and styles from this origin only, no inline script, no eval, requests to this origin only);
static files get a content ETag, and the vendored module, whose name carries its version, is immutable.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from ..errors import NotFound
from .offline_files import router as offline_files_router

# 'wasm-unsafe-eval' lets the offline search compile onnxruntime's WebAssembly (no JS eval);
# worker-src 'self' allows its Web Worker and the service worker, both from this origin.
CSP = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".md": "text/plain",
    ".txt": "text/plain",
}
# The pages of the app; each serves the same shell and the client router draws the page.
PAGES = ("/", "/find", "/profile", "/dashboard")

router = APIRouter(include_in_schema=False)
router.include_router(offline_files_router)  # /models, /vendor, /sw.js


@dataclass(frozen=True)
class Asset:
    """One static file: its bytes, media type, ETag and caching rule."""

    body: bytes
    media_type: str
    etag: str
    cache_control: str


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@lru_cache(maxsize=1)
def assets() -> dict[str, Asset]:
    """Every file under static/, read once, keyed by its path relative to static/."""
    root = resources.files("metamedia.web").joinpath("static")
    out: dict[str, Asset] = {}
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        for entry in folder.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                stack.append((entry, name + "/"))
                continue
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            body = entry.read_bytes()
            media = TYPES.get(suffix) or mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            rule = IMMUTABLE if name.startswith("vendor/") and suffix == ".js" else REVALIDATE
            out[name] = Asset(body, media, _etag(body), rule)
    return out


@lru_cache(maxsize=1)
def shell() -> Asset:
    body = resources.files("metamedia.web").joinpath("index.html").read_bytes()
    return Asset(body, "text/html; charset=utf-8", _etag(body), REVALIDATE)


def _answer(request: Request, asset: Asset, extra: dict[str, str] | None = None) -> Response:
    headers = {"ETag": asset.etag, "Cache-Control": asset.cache_control, "X-Content-Type-Options": "nosniff"}
    headers.update(extra or {})
    if asset.etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def page(request: Request) -> Response:
    """The HTML shell of every page, with the page security headers."""
    return _answer(request, shell(), PAGE_HEADERS)


for _path in PAGES:
    router.add_api_route(_path, page, methods=["GET"], name=f"page:{_path}")


@router.get("/title/{item_id}")
def title_page(request: Request, item_id: int = PathParam(ge=1, le=2**62)) -> Response:
    """An item's page (the shell; the app fetches /items/{id})."""
    return page(request)


@router.get("/static/{name:path}")
def static_file(request: Request, name: str) -> Response:
    """A file of the web app; 404 for anything not shipped in the package."""
    asset = assets().get(name)
    if asset is None:
        raise NotFound(f"no static file {name!r}")
    return _answer(request, asset)
