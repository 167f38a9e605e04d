"""Prometheus metrics of the HTTP service, on a registry of its own (one per app)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _EngineCollector(Collector):
    """Index size and query-embedding cache figures, read from the engine at scrape time."""

    def __init__(self, engine_of: Callable[[], Any]) -> None:
        self.engine_of = engine_of

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


class ApiMetrics:
    """Every metric the service exports; other layers record through the named helpers."""

    def __init__(self, engine_of: Callable[[], Any]) -> None:
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
        self.registry.register(_EngineCollector(engine_of))

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

    def render(self) -> bytes:
        return generate_latest(self.registry)
