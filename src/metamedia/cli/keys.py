"""`metamedia keys`: create, list and revoke API keys (the plaintext is shown once, at creation)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from .common import console, emit_json, errors_to_exit, settings

app = typer.Typer(help="API keys for the HTTP service: create, list, revoke.", no_args_is_help=True)


def _key_store():  # type: ignore[no-untyped-def]
    # deferred: keeps `metamedia --help` and light commands from loading FastAPI (api.keys) and the store
    from pathlib import Path

    from ..api.keys import KeyStore
    from ..store.factory import open_store

    cfg = settings()
    Path(cfg.data_dir).mkdir(parents=True, exist_ok=True)
    store = open_store(cfg.resolved_database_url)
    return store, KeyStore(store.db)


@app.command()
def create(
    scope: Annotated[list[str], typer.Option("--scope", "-s", help="read, write or admin (repeatable).")],
    user: Annotated[str | None, typer.Option("--user", help="Bind the key to this user id.")] = None,
    name: Annotated[str, typer.Option("--name", help="A label for humans.")] = "",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a key and print it ONCE: only its hash is stored, it cannot be shown again."""
    with errors_to_exit():
        store, keys = _key_store()
        try:
            key, plaintext = keys.create(scope, user_id=user, name=name)
        finally:
            store.close()
    if json_out:
        emit_json({**key.to_dict(), "key": plaintext})
        return
    console.print(
        f"created key [bold]{key.id}[/bold] scopes={','.join(key.scopes)} user={key.user_id or '-'}"
    )
    console.print("store it now, it will not be shown again:")
    typer.echo(plaintext)


@app.command("list")
def list_keys(
    active: Annotated[bool, typer.Option("--active", help="Hide revoked keys.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (ids, scopes, bound user, state); never the secrets."""
    with errors_to_exit():
        store, keys = _key_store()
        try:
            found = keys.list(include_revoked=not active)
        finally:
            store.close()
    if json_out:
        emit_json([k.to_dict() for k in found])
        return
    table = Table(title="API keys")
    for col in ("id", "name", "scopes", "user", "state"):
        table.add_column(col)
    for k in found:
        table.add_row(k.id, k.name, ",".join(k.scopes), k.user_id or "-", "active" if k.active else "revoked")
    console.print(table)


@app.command()
def revoke(key_id: Annotated[str, typer.Argument(help="The key id (the part after mm_).")]) -> None:
    """Revoke a key: requests with it fail from now on."""
    with errors_to_exit():
        store, keys = _key_store()
        try:
            key = keys.revoke(key_id)
        finally:
            store.close()
    console.print(f"revoked key {key.id}")
