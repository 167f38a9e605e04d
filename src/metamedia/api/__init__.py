"""HTTP API: a thin FastAPI adapter over the engine."""

from .app import create_app

__all__ = ["create_app"]
