"""`metamedia cluster`: operate metamedia on a Ray cluster (status, scale R, re-shard S)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import emit_json, errors_to_exit, settings

app = typer.Typer(help="metamedia on a Ray cluster: status, scale, reshard.", no_args_is_help=True)
Address = Annotated[str | None, typer.Option(help="Ray cluster address (ray start --head prints it).")]


def _operate(address: str | None, action: str, value: int | None = None) -> None:
    # deferred: Ray loads only for these commands
    from ..distributed.run import operate

    with errors_to_exit():
        emit_json(operate(settings(), address, action, value))


@app.command()
def status(address: Address = None) -> None:
    """The current layout and, per shard, one replica's applied change number and point count."""
    _operate(address, "status")


@app.command()
def scale(
    replicas: Annotated[int, typer.Option(help="Replicas R of every shard.", min=1, max=64)],
    address: Address = None,
) -> None:
    """Change the replica count of every shard while it serves (new replicas catch up first)."""
    _operate(address, "scale", replicas)


@app.command()
def reshard(
    shards: Annotated[int, typer.Option(help="Number of shards S of the new layout.", min=1, max=64)],
    address: Address = None,
) -> None:
    """Build S shards beside the current ones, switch when they run, delete the old shards."""
    _operate(address, "reshard", shards)
