"""Prometheus metrics of the HTTP service, on a registry of its own (one per app).

With several server processes (`multiprocess_dir` set: prometheus_client's multiprocess mode, see
`coord/metrics_dir.py`) every process writes its counters and histograms to its own files and a
scrape on any process sums them all. What is read from the engine at scrape time is handled so it
is not summed N times: the index and catalog sizes describe the one shared store and come from the
scraping process alone; the per-process cache counters are copied into real counters after each
request, so they are summed like the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from ..coord.metrics_dir import forget_dead_processes

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _EngineCollector(Collector):
    """Index size and query-embedding cache figures, read from the engine at scrape time."""

    def __init__(self, engine_of: Callable[[], Any], *, cache_counters: bool = True) -> None:
        self.engine_of = engine_of
        self.cache_counters = cache_counters

    def collect(self) -> Iterable[Metric]:
        engine = self.engine_of()
        if engine is None:
            return
        size = GaugeMetricFamily("metamedia_index_size", "Vectors in the media index")
        size.add_metric([], float(engine.media.count()))
        yield size
        items = GaugeMetricFamily("metamedia_catalog_items", "Items in the store of record")
        items.add_metric([], float(engine.count()))
        yield items
        if not self.cache_counters:  # several processes: they are real counters, summed from files
            return
        embedder = engine.embedder
        lookups = CounterMetricFamily(
            "metamedia_query_embedding_cache_lookups", "Query-embedding LRU lookups", labels=["result"]
        )
        lookups.add_metric(["hit"], float(getattr(embedder, "cache_hits", 0)))
        lookups.add_metric(["miss"], float(getattr(embedder, "cache_misses", 0)))
        yield lookups
        results = CounterMetricFamily(
            "metamedia_result_cache_lookups",
            "Search result cache lookups (invalidated by writes)",
            labels=["result"],
        )
        results.add_metric(["hit"], float(getattr(engine, "search_cache_hits", 0)))
        results.add_metric(["miss"], float(getattr(engine, "search_cache_misses", 0)))
        yield results


def _cache_figures(engine: Any) -> tuple[float, float, float, float]:
    """This process's query-embedding and result cache hits and misses."""
    embedder = engine.embedder
    return (
        float(getattr(embedder, "cache_hits", 0)),
        float(getattr(embedder, "cache_misses", 0)),
        float(getattr(engine, "search_cache_hits", 0)),
        float(getattr(engine, "search_cache_misses", 0)),
    )


class ApiMetrics:
    """Every metric the service exports; other layers record through the named helpers.

    `multiprocess_dir`: the folder of prometheus_client's multiprocess files when this is one of
    several server processes (the renderer then sums every process's files); None for one process.
    """

    def __init__(self, engine_of: Callable[[], Any], *, multiprocess_dir: Path | None = None) -> None:
        self.engine_of = engine_of
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        self.http_latency = Histogram(
            "metamedia_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.search_latency = Histogram(
            "metamedia_search_duration_seconds",
            "Search latency incl. query embedding",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.recommend_latency = Histogram(
            "metamedia_recommendation_duration_seconds",
            "Recommendation latency",
            ["strategy"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.bandit_selections = Counter(
            "metamedia_bandit_selections", "Arms chosen by the bandit", ["arm"], registry=self.registry
        )
        self.learning_events = Counter(
            "metamedia_learning_events",
            "Learning events (interactions, evolutions, learner runs)",
            ["kind"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "metamedia_rate_limited_requests", "Requests refused with 429", registry=self.registry
        )
        self.processes = Gauge(
            "metamedia_server_processes",
            "Server processes serving this data directory",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.processes.set(1)
        self._engine_collector = _EngineCollector(engine_of, cache_counters=multiprocess_dir is None)
        self._cache_lock = threading.Lock()
        self._cache_seen = (0.0, 0.0, 0.0, 0.0)
        if multiprocess_dir is None:
            self.registry.register(self._engine_collector)
            return
        lookups = Counter(
            "metamedia_query_embedding_cache_lookups",
            "Query-embedding LRU lookups",
            ["result"],
            registry=self.registry,
        )
        results = Counter(
            "metamedia_result_cache_lookups",
            "Search result cache lookups (invalidated by writes)",
            ["result"],
            registry=self.registry,
        )
        self._cache_children = (
            lookups.labels("hit"), lookups.labels("miss"), results.labels("hit"), results.labels("miss")
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_latency.labels(method, route, str(status)).observe(seconds)
        if route == "/search":
            self.search_latency.labels("search").observe(seconds)
        elif route == "/items/{item_id}/similar":
            self.search_latency.labels("similar").observe(seconds)
        elif route == "/users/{user_id}/recommendations":
            self.recommend_latency.labels("http").observe(seconds)
        if status == 429:
            self.rate_limited.inc()
        if self.multiprocess_dir is not None:
            self.copy_cache_counters()

    def copy_cache_counters(self) -> None:
        """Add what this process's caches counted since the last copy to the shared counters."""
        engine = self.engine_of()
        if engine is None or self.multiprocess_dir is None:
            return
        now = _cache_figures(engine)
        with self._cache_lock:
            seen, self._cache_seen = self._cache_seen, now
        for child, before, after in zip(self._cache_children, seen, now, strict=True):
            if after > before:
                child.inc(after - before)

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        self.copy_cache_counters()
        forget_dead_processes(self.multiprocess_dir)
        # A registry per scrape, as prometheus_client's multiprocess docs show: every process's files
        # merged, plus the figures of the one shared store read once here.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        registry.register(self._engine_collector)
        return generate_latest(registry)
