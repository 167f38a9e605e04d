"""Command-line interface: a thin typer adapter over the engine."""

from .main import app, main

__all__ = ["app", "main"]
