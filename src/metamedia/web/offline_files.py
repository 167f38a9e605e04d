"""Files the offline web app needs beside its own: the model, the browser libraries, the service worker.

- `/models/all-MiniLM-L6-v2/...`: the ONNX export and tokenizer files (`embed.onnx_export`), checked
  against their manifest once, the way transformers.js reads a local model.
- `/vendor/<package>-<version>/...`: transformers.js and the onnxruntime-web build it pins
  (`web.browser_libs`), checked against their pinned sha256 once; the version is in the path, so
  they are immutable.
- `/sw.js`: the service worker, served from the root so its scope is the whole app.

Only the files named in a manifest are served; anything else is a 404.
"""

from __future__ import annotations

import hashlib
import mimetypes
from functools import lru_cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from ..embed.onnx_export import MODEL_DIR_NAME, ONNX_FILE, SIDE_FILES, onnx_model_dir, verify_export
from ..errors import NotFound
from .browser_libs import BrowserLibsInvalid, verify_libs

LONG_CACHE = "public, max-age=31536000"  # the model folder has no version in its name: revalidate by ETag
IMMUTABLE = "public, max-age=31536000, immutable"
TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
}

router = APIRouter(include_in_schema=False)


def _media_type(path: Path) -> str:
    return TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


@lru_cache(maxsize=1)
def model_files() -> dict[str, tuple[Path, str]]:
    """Served name -> (file, ETag) of the verified ONNX export; empty when it is missing or damaged."""
    folder = onnx_model_dir()
    try:
        manifest = verify_export(folder)
    except Exception:  # a damaged export is a 404 here; /ready and the server's embedder report it
        return {}
    files = manifest["files"]
    return {
        f"{MODEL_DIR_NAME}/{rel}": (folder / rel, '"' + files[rel]["sha256"][:32] + '"')
        for rel in (ONNX_FILE, *SIDE_FILES)
    }


@lru_cache(maxsize=1)
def lib_files() -> dict[str, tuple[Path, str]]:
    try:
        verified = verify_libs()
    except BrowserLibsInvalid:
        return {}
    return {
        name: (path, '"' + hashlib.sha256(name.encode()).hexdigest()[:32] + '"')
        for name, path in verified.items()
    }


def _file(request: Request, entry: tuple[Path, str] | None, name: str, cache: str) -> Response:
    if entry is None:
        raise NotFound(f"no file {name!r}")
    path, etag = entry
    headers = {"ETag": etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=_media_type(path), headers=headers)


@router.get("/models/{name:path}")
def model_file(request: Request, name: str) -> Response:
    """A file of the verified ONNX export (transformers.js layout)."""
    return _file(request, model_files().get(name), name, LONG_CACHE)


@router.get("/vendor/{name:path}")
def vendor_file(request: Request, name: str) -> Response:
    """A pinned, verified browser library file."""
    return _file(request, lib_files().get(name), name, IMMUTABLE)


@lru_cache(maxsize=1)
def _service_worker() -> bytes:
    return resources.files("metamedia.web").joinpath("sw.js").read_bytes()


@router.get("/sw.js")
def service_worker(request: Request) -> Response:
    """The service worker (root scope; revalidated on every load so a new version is picked up)."""
    body = _service_worker()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript", headers=headers)
