"""The web app's files as served: the pinned vendored module, page security headers, caching, package data."""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from metamedia.api.app import create_app
from metamedia.settings import Settings
from metamedia.web import routes

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "src" / "metamedia" / "web"
VENDORED = WEB / "static" / "vendor" / "preact-htm-3.1.1.module.js"
# sha256 of preact/standalone.module.js in the npm package htm 3.1.1 (npm pack htm@3.1.1)
VENDORED_SHA256 = "72284e8e9079c87817145df1110f74e8a2aa040b2fc384922e18dfcb46fc1fd7"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The real app without an engine: pages and static files need none."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("web"), auth_disabled=True, log_json=False)
    yield TestClient(create_app(settings), base_url="http://127.0.0.1")  # the demo answers loopback names only


def test_vendored_module_is_the_pinned_release_with_its_licences() -> None:
    assert hashlib.sha256(VENDORED.read_bytes()).hexdigest() == VENDORED_SHA256
    assert "Apache License" in (VENDORED.parent / "LICENSE-htm.txt").read_text()
    notice = (VENDORED.parent / "NOTICE.md").read_text()
    assert VENDORED_SHA256 in notice and "MIT" in notice


def test_pages_carry_a_strict_csp_and_no_inline_script(client: TestClient) -> None:
    for path in ("/", "/find?q=space", "/profile", "/dashboard", "/title/12"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "'unsafe-eval'" not in csp  # 'wasm-unsafe-eval' is no JS eval
        assert r.headers["x-content-type-options"] == "nosniff"
    html = client.get("/").text
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []  # every script is a file
    assert "http://" not in html and "https://" not in html  # nothing from another host


def test_no_app_file_names_another_host() -> None:
    for path in (WEB / "static").glob("*.js"):
        text = path.read_text()
        assert not re.search(r"https?://", text), f"{path.name} names a URL"
        assert "eval(" not in text and "new Function" not in text, path.name


def test_static_files_are_cached_and_revalidated_by_etag(client: TestClient) -> None:
    app_js = client.get("/static/app.js")
    assert app_js.status_code == 200 and app_js.headers["content-type"].startswith("text/javascript")
    assert app_js.headers["cache-control"] == "no-cache" and app_js.headers["etag"]
    again = client.get("/static/app.js", headers={"If-None-Match": app_js.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    vendored = client.get("/static/vendor/preact-htm-3.1.1.module.js")
    assert "immutable" in vendored.headers["cache-control"]
    assert hashlib.sha256(vendored.content).hexdigest() == VENDORED_SHA256
    page = client.get("/")
    assert client.get("/", headers={"If-None-Match": page.headers["etag"]}).status_code == 304


def test_unknown_static_files_and_traversal_are_404_json(client: TestClient) -> None:
    for name in ("nope.js", "../routes.py", "..%2Froutes.py", "vendor/../../routes.py"):
        r = client.get("/static/" + name)
        assert r.status_code == 404, name
        assert "error" in r.json()


def test_every_static_file_is_package_data() -> None:
    """A wheel must ship every file the app loads (pyproject's package-data globs)."""
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "metamedia"
    ]
    shipped = set(routes.assets())
    for path in (WEB / "static").rglob("*"):
        if path.is_file():
            rel = path.relative_to(WEB.parent).as_posix()  # web/static/...
            assert any(fnmatch(rel, g) for g in globs), f"{rel} is not package data"
            assert path.relative_to(WEB / "static").as_posix() in shipped


def test_every_module_import_resolves_to_a_served_file() -> None:
    shipped = set(routes.assets())
    for path in (WEB / "static").glob("*.js"):
        for target in re.findall(r'from "\./([^"]+)"', path.read_text()):
            assert target in shipped, f"{path.name} imports {target}"
