"""`metamedia serve --workers 2`: an item written through one worker is found by every worker's next
search (cached answers from before it included), and a deleted one is gone from all of them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import demo_catalog_slice
from tests.test_serve_workers import get, processes_seen, serve_workers, wait_ready

QUERY = "/search?q=lighthouse+keeper+talking+octopus+foggy+island&k=5"
ITEM = {
    "title": "The Octopus of Fog Island",
    "overview": "A lonely lighthouse keeper and a talking octopus solve crimes on a foggy island.",
    "genres": ["Mystery", "Comedy"],
    "year": 2031,
}


def ids(answer: httpx.Response) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [r["id"] for r in answer.json()["results"]]


@pytest.mark.slow
def test_a_write_through_one_worker_is_searchable_in_every_worker(tmp_path: Path) -> None:
    catalog = demo_catalog_slice(tmp_path / "demo.jsonl", 40)
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    with serve_workers(data_dir, catalog, log, workers=2) as (proc, url):
        wait_ready(proc, url, log)
        assert len(processes_seen(url, want=2)) == 2, log.read_text()[-2000:]
        before = [ids(get(url, QUERY)) for _ in range(12)]  # new connections: both workers cache it
        with httpx.Client(timeout=30) as client:
            created = client.post(url + "/admin/items", json=ITEM)
        assert created.status_code == 201, created.text
        item_id = created.json()["id"]
        assert all(item_id not in found for found in before)
        after = [ids(get(url, QUERY)) for _ in range(12)]
        assert all(item_id in found for found in after), after
        with httpx.Client(timeout=30) as client:
            assert client.delete(f"{url}/admin/items/{item_id}").status_code in (200, 204)
        gone = [ids(get(url, QUERY)) for _ in range(12)]
        assert all(item_id not in found for found in gone), gone
