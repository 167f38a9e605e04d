"""The web app with authentication on: it asks for a key, keeps it in session storage only, and a
key bound to a user sees that user alone (no profile switcher, no dashboard)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Server, running_server, shot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("browser-auth"), auth=True, items=80) as srv:
        yield srv


def test_key_gate_and_a_user_bound_key(page: Any, server: Server) -> None:
    key = server.create_key("--scope", "read", "--scope", "write", "--user", "alice", "--name", "alice")
    page.goto("/")
    gate = page.get_by_label("API key")
    gate.fill("mm_000000000000_not-a-real-secret")
    page.get_by_role("button", name="Continue").click()
    assert "not accepted" in page.get_by_role("alert").inner_text()

    gate.fill(key)
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("Signed in as alice").wait_for()
    assert page.get_by_label("Profile").count() == 0  # no switcher for a bound key
    assert page.get_by_role("link", name="Dashboard").count() == 0  # not an admin key
    page.get_by_role("heading", name="Welcome! Tell us what you like").wait_for()
    assert page.evaluate("() => sessionStorage.getItem('metamedia.key')") == key
    assert page.evaluate("() => localStorage.getItem('metamedia.key')") is None

    # Liking through the page writes alice's history, and only hers is reachable with her key.
    card = page.locator(".onboarding .tiles[data-for] .card").first
    name = card.locator(".card-title").inner_text()
    card.get_by_role("button", name=f"Like: {name}", exact=True).click()
    page.get_by_text("1 liked").wait_for()
    headers = {"Authorization": f"Bearer {key}"}
    mine = httpx.get(f"{server.url}/users/alice/interactions", headers=headers, timeout=30).json()
    assert [r["title"] for r in mine["interactions"]] == [name]
    assert httpx.get(f"{server.url}/users/bob/profile", headers=headers, timeout=30).status_code == 403
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key").wait_for()
    assert page.evaluate("() => sessionStorage.getItem('metamedia.key')") is None
    shot(page, "6-auth-signed-out")
