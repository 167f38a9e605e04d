"""The offline web app's server side (issue 19): the catalog index export, the parser tables and the
shared golden queries, the pinned browser libraries, and the files the service worker caches.

The browser half (the same queries, vectors and answers with the server stopped) is
tests/browser/test_offline.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from metamedia.api.app import create_app
from metamedia.errors import InvalidQuery
from metamedia.search import parser_export
from metamedia.search.offline_index import quantize_rows
from metamedia.search.parser import parse_query
from metamedia.settings import Settings
from metamedia.web import browser_libs
from tests.conftest import demo_catalog_slice

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "golden_queries.json"
OFFLINE_JS = REPO / "src" / "metamedia" / "web" / "static" / "offline"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Any]:
    from metamedia.engine import Engine

    base = tmp_path_factory.mktemp("offline")
    eng = Engine(Settings(data_dir=base / "data"), embedder=embedder)
    eng.ingest([demo_catalog_slice(base / "slice.jsonl", 40)])
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def client(engine: Any) -> Iterator[TestClient]:
    app = create_app(engine=engine, settings=Settings(auth_disabled=True, rate_limit=""))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def decode(body: dict[str, Any]) -> np.ndarray:
    q = np.frombuffer(base64.b64decode(body["vectors"]), dtype=np.int8).reshape(-1, body["dim"])
    return q.astype(np.float32) * np.asarray(body["scales"], dtype=np.float32)[:, None]


def test_int8_rows_round_trip_within_half_a_step() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(50, 420)).astype(np.float32)
    vectors[3] = 0.0  # an all-zero row keeps scale 1 and decodes to zeros
    q, scales = quantize_rows(vectors)
    assert q.dtype == np.int8 and np.abs(q).max() == 127
    err = np.abs(q.astype(np.float32) * scales[:, None] - vectors)
    assert (err <= scales[:, None] / 2 + 1e-7).all()
    assert not q[3].any()


def test_export_holds_every_indexed_item_with_its_vector(client: TestClient, engine: Any) -> None:
    body = client.get("/catalog/index").json()
    assert body["full"] and not body["unchanged"] and body["generation"] == engine.store.generation()
    ids = [row["id"] for row in body["items"]]
    assert ids == body["ids"] == sorted(int(i) for i in engine.media.ids())
    assert body["dim"] == 420 and len(body["scales"]) == len(ids)
    served = decode(body)
    stored = engine.media.get_vectors(ids)
    cosine = np.sum(served * stored, axis=1) / np.linalg.norm(served, axis=1) / np.linalg.norm(stored, axis=1)
    assert cosine.min() > 0.999
    first = engine.get_item(ids[0])
    assert body["items"][0]["title"] == first.title and body["items"][0]["genres"] == first.genres
    assert body["ranking"]["fusion"]["genre"] > 0 and body["weights"]["text"] == 1.0


def test_export_is_incremental_by_generation(client: TestClient, engine: Any) -> None:
    full = client.get("/catalog/index").json()
    held = {"since": full["generation"], "after": full["watermark"]}
    assert client.get("/catalog/index", params=held).json() == {
        "format": 1, "generation": full["generation"], "unchanged": True,
    }  # fmt: skip
    changed, gone = full["ids"][1], full["ids"][2]
    engine.put_item({"title": "An Edited Title", "overview": "A heist in space."}, changed)
    engine.delete_item(gone)
    delta = client.get("/catalog/index", params=held).json()
    assert delta["generation"] > full["generation"] and not delta["full"]
    assert [row["id"] for row in delta["items"]] == [changed]
    assert delta["items"][0]["title"] == "An Edited Title"
    assert gone not in delta["ids"] and len(delta["ids"]) == len(full["ids"]) - 1
    assert len(decode(delta)) == 1


def test_export_rejects_half_a_watermark(client: TestClient, engine: Any) -> None:
    before = engine.store.generation()
    r = client.get("/catalog/index", params={"since": 1})
    assert r.status_code == 422 and "since" in r.json()["error"]
    assert client.get("/catalog/index", params={"since": -1, "after": 0}).status_code == 422
    with pytest.raises(InvalidQuery):
        engine.offline_index(since=1)
    assert engine.store.generation() == before


def test_parser_tables_json_is_current() -> None:
    assert parser_export.TABLES_FILE.read_text(encoding="utf-8") == parser_export.render(), (
        "run `python -m metamedia.search.parser_export`"
    )


def test_golden_queries_hold_for_the_python_parser() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    today = dt.date.fromisoformat(golden["today"])
    drift = [g["q"] for g in golden["queries"] if parse_query(g["q"], today=today).to_dict() != g["expected"]]
    assert drift == []
    # the file exercises every part of a parse, so a drifting JS interpreter shows up in the browser test
    expected = [g["expected"] for g in golden["queries"]]
    for field in ("text", "genres", "exclude_genres", "moods", "year_min", "year_max", "runtime_min",
                  "runtime_max", "rating_min", "media_type", "similar_to", "people"):  # fmt: skip
        assert any(e[field] for e in expected), field
    kinds = {rule["kind"] for rule in parser_export.parser_tables()["rules"]}
    assert kinds == {"static", "relative", "year_phrase", "year_range", "runtime", "rating", "negation",
                     "quoted", "title", "title_but", "person"}  # fmt: skip


def test_browser_libraries_are_the_pinned_builds() -> None:
    files = browser_libs.verify_libs()
    assert set(files) == {pin.served_as for pin in browser_libs.PINNED}
    worker = (OFFLINE_JS / "worker.js").read_text()
    for pin in browser_libs.PINNED:
        if pin.served_as.endswith((".js", ".mjs")) and "ort-wasm" not in pin.served_as:
            assert f"/vendor/{pin.served_as}" in worker, pin.served_as
    assert f"/vendor/{browser_libs.PINNED[2].folder}/" in worker  # onnxruntime-web's wasm folder
    notice = (browser_libs.libs_dir() / "NOTICE.txt").read_text()
    assert "Apache License 2.0" in notice and "MIT" in notice and "public domain" in notice


def test_a_damaged_library_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "libs"
    shutil.copytree(browser_libs.libs_dir(), copy)
    target = copy / browser_libs.PINNED[0].served_as
    data = bytearray(target.read_bytes())
    data[100] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(browser_libs.BrowserLibsInvalid, match="sha256"):
        browser_libs.verify_libs(copy)


def test_model_and_library_files_are_served_with_long_cache(client: TestClient) -> None:
    tok = client.get("/models/all-MiniLM-L6-v2/tokenizer.json")
    assert tok.status_code == 200 and "max-age=31536000" in tok.headers["cache-control"]
    assert (
        client.get(
            "/models/all-MiniLM-L6-v2/tokenizer.json", headers={"If-None-Match": tok.headers["etag"]}
        ).status_code
        == 304
    )
    lib = client.get("/vendor/" + browser_libs.PINNED[0].served_as)
    assert lib.status_code == 200 and "immutable" in lib.headers["cache-control"]
    assert lib.headers["content-type"].startswith("text/javascript")
    wasm = client.get("/vendor/" + browser_libs.PINNED[3].served_as, headers={"Range": "bytes=0-3"})
    assert wasm.content[:4] == b"\0asm"
    for path in ("/models/all-MiniLM-L6-v2/manifest.json", "/models/../pyproject.toml", "/vendor/NOTICE.txt.bak",
                 "/models/other/onnx/model.onnx"):  # fmt: skip
        assert client.get(path).status_code == 404, path
    sw = client.get("/sw.js")
    assert sw.status_code == 200 and sw.headers["cache-control"] == "no-cache"
    csp = client.get("/").headers["content-security-policy"]
    assert "'wasm-unsafe-eval'" in csp and "worker-src 'self'" in csp and "'unsafe-eval'" not in csp


def test_offline_modules_name_no_other_host() -> None:
    for path in [*OFFLINE_JS.glob("*.js"), REPO / "src" / "metamedia" / "web" / "sw.js"]:
        text = path.read_text()
        assert not re.search(r"https?://", text), path.name
        assert "eval(" not in text and "new Function" not in text, path.name
