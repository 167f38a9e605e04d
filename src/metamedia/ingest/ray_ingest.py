"""Catalog embedding on a Ray cluster: `metamedia ingest --ray`.

The driver (the machine that runs the command) parses and merges the files into the store of record as
the local ingest does, then asks the store which items have no text embedding for the current model
yet (`ids_without_embedding`: the embedding cache is keyed by a hash of model name and item text).
Only those item ids go to Ray Data. `map_batches` runs `EmbedWorker` actors, each with its own copy of
all-MiniLM-L6-v2 loaded once; a worker reads its batch of items from the store, embeds the texts whose
hash is still missing and writes the vectors back in one transaction per batch with an insert that
skips hashes already stored. So:

- a retried batch (its actor or node died mid-batch; Ray Data restarts the actor and re-runs the
  task) writes nothing twice;
- a run stopped at any point resumes: the next run sends only the items still without a vector.

Workers need to reach the store: PostgreSQL for a multi-machine cluster; a SQLite file works only
when every worker runs on the machine that holds it (one machine, or tests). See docs/scale-out.md.
"""

from __future__ import annotations

import logging
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..embed.hybrid import item_text, text_hash
from ..embed.model import TextEmbedder
from ..errors import BackendUnavailable, InvalidInput
from ..store.factory import open_store
from ..store.sql import SqlCatalogStore

log = logging.getLogger("metamedia.ingest.ray")

Progress = Callable[[str, int, int], None]
ACTOR_NAME = "EmbedWorker"


@dataclass(frozen=True)
class RayIngestOptions:
    """How the embedding runs on Ray.

    `address`: the cluster to join (`ray://` or `host:port` of a head started with `ray start --head`);
    None uses the connected Ray, or `RAY_ADDRESS`, or starts a local Ray. `workers`: embedding actors
    (0 = one per `cpus_per_worker` CPUs the cluster has). `batch_size`: items per Ray Data batch, which
    is also the unit written to the store in one transaction and retried after a failure.
    `spread`: place actors on different nodes (SPREAD) rather than packing them.
    """

    address: str | None = None
    workers: int = 0
    cpus_per_worker: float = 1.0
    batch_size: int = 64
    spread: bool = True

    def validate(self) -> None:
        if self.workers < 0:
            raise InvalidInput("ray workers must be 0 (one per CPU) or more")
        if not 0 < self.cpus_per_worker <= 1024:
            raise InvalidInput("cpus per ray worker must be above 0")
        if not 1 <= self.batch_size <= 10_000:
            raise InvalidInput("ray batch size must be 1..10000")


@dataclass
class RayEmbedReport:
    """What the Ray embedding did: items sent, vectors written, vectors that were already stored."""

    pending: int = 0  # items without a vector for this model when the run started
    embedded: int = 0  # vectors this run wrote
    already_stored: int = 0  # sent, but their vector was there when the batch ran (retried batch, twin text)
    not_found: int = 0  # sent, but deleted from the store before their batch ran
    blocks: int = 0  # result blocks the driver received
    workers: int = 0
    nodes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def worker_database_url(url: str) -> str:
    """The store URL as a worker on another process sees it: a relative SQLite path made absolute."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(Path(url[len(prefix) :]).resolve())
    if url in ("sqlite://", "sqlite:///") or ":memory:" in url:
        raise InvalidInput("ingest --ray needs a store the workers can open: not an in-memory SQLite")
    return url


class EmbedWorker:
    """One Ray Data actor: the embedding model and a store connection, opened once, reused per batch."""

    def __init__(self, database_url: str, model_path: str, threads: int, model_name: str) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        sqlite_file = database_url.removeprefix("sqlite:///")
        if database_url.startswith("sqlite:///") and not Path(sqlite_file).is_file():
            # opening it would create an empty store on this node and embed nothing
            raise BackendUnavailable(
                f"the SQLite store {sqlite_file} is not on this Ray node: use PostgreSQL for a multi-machine cluster"
            )
        self.store = open_store(database_url)
        self.embedder = TextEmbedder(model_path or None, threads=threads, backend="torch")
        if self.embedder.name != model_name:
            raise BackendUnavailable(
                f"worker model {self.embedder.name!r} is not the driver's {model_name!r}"
            )
        self.embedder.warm_up()  # load before the first batch (torch here), so a batch is embedding only

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = [int(i) for i in batch["id"]]
        found = self.store.get_items(ids)
        present = [found[i] for i in ids if i in found]  # an item deleted since the driver listed it
        texts = [item_text(it) for it in present]
        hashes = [text_hash(self.embedder.name, t) for t in texts]
        stored = set(self.store.get_embeddings(hashes))
        todo = {h: t for h, t in zip(hashes, texts, strict=True) if h not in stored}
        if todo:
            vectors = self.embedder.encode(list(todo.values()))
            self.store.put_embeddings(self.embedder.name, dict(zip(todo, vectors, strict=True)))
        written, seen = [], set()
        for h in hashes:  # two items with one text: one vector written, the second finds it
            written.append(h in todo and h not in seen)
            seen.add(h)
        return {
            "id": np.array([it.id for it in present], dtype=np.int64),
            "embedded": np.array(written, dtype=bool),
        }


def embed_on_ray(
    store: SqlCatalogStore,
    database_url: str,
    *,
    model_name: str,
    model_path: str = "",
    options: RayIngestOptions | None = None,
    progress: Progress | None = None,
) -> RayEmbedReport:
    """Embed every item of the store that has no vector for `model_name` yet, on Ray workers."""
    opts = options or RayIngestOptions()
    opts.validate()
    url = worker_database_url(database_url)
    started = time.perf_counter()
    pending = store.ids_without_embedding()
    report = RayEmbedReport(pending=len(pending))
    if not pending:
        return report
    # deferred: ray takes seconds to import and is needed only for `ingest --ray`
    import ray
    import ray.data
    from ray.data.exceptions import ExecutionTimeoutError, SystemException, UserCodeException

    if not ray.is_initialized():
        try:
            ray.init(address=opts.address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BackendUnavailable(
                f"cannot join the Ray cluster at {opts.address or 'RAY_ADDRESS'}: {exc}"
            ) from exc
    if progress:  # the caller shows progress; Ray Data's own progress lines would interleave with it
        ray.data.DataContext.get_current().enable_progress_bars = False
    cpus = float(ray.cluster_resources().get("CPU", 0))
    report.nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    workers = opts.workers or max(1, int(cpus // opts.cpus_per_worker))
    report.workers = min(workers, max(1, -(-len(pending) // opts.batch_size)))
    remote_args: dict[str, Any] = {"scheduling_strategy": "SPREAD"} if opts.spread else {}
    with warnings.catch_warnings():
        # Ray 2.60 deprecates extra remote args but has no named parameter for a scheduling strategy yet
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = ray.data.from_items([{"id": i} for i in pending]).map_batches(
            EmbedWorker,
            fn_constructor_kwargs={
                "database_url": url,
                "model_path": model_path,
                "threads": max(1, int(opts.cpus_per_worker)),
                "model_name": model_name,
            },
            batch_size=opts.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=report.workers),
            num_cpus=opts.cpus_per_worker,
            **remote_args,
        )
    done = 0
    try:
        for out in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            embedded = int(np.count_nonzero(out["embedded"]))
            report.embedded += embedded
            report.already_stored += len(out["id"]) - embedded
            report.blocks += 1
            done += len(out["id"])
            if progress:
                progress("embed (ray)", done, len(pending))
    except (ray.exceptions.RayError, UserCodeException, SystemException, ExecutionTimeoutError) as exc:
        # Every batch written before the failure is kept: running the ingest again resumes from there.
        raise BackendUnavailable(
            f"the Ray embedding stopped after {done} of {len(pending)} items ({report.embedded} vectors "
            f"written); run the ingest again to resume. Cause: {_last_line(exc)}"
        ) from exc
    report.not_found = len(pending) - done
    report.seconds = round(time.perf_counter() - started, 3)
    log.info("ray embedding: %s", report.to_dict())
    return report


def _last_line(exc: BaseException) -> str:
    """The innermost cause Ray prints last (e.g. the worker's database error), without colour codes."""
    lines = [line for line in re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
