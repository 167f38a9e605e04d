"""Offline evaluation of the recommenders on MovieLens-format ratings (`metamedia eval`)."""

from .harness import run_evaluation

__all__ = ["run_evaluation"]
