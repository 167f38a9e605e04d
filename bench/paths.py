"""Where benchmarks find their inputs, and how they record paths (relative to the repository).

The full public datasets are not part of the repository: benchmarks that need them read
`../shared/data` beside the checkout and stop with one line when it is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def shared_file(relative: str) -> Path:
    """A file or folder under ../shared/data, or exit with one line saying which one is missing."""
    path = SHARED / relative
    if not path.exists():
        raise SystemExit(
            f"needs ../shared/data/{relative} (the full public datasets beside the repository); not found"
        )
    return path


def repo_relative(path: str | os.PathLike[str]) -> str:
    """`path` as recorded in results: relative to the repository root, never an absolute machine path."""
    return os.path.relpath(Path(path).resolve(), REPO)
