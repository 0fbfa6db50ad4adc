"""Prometheus metrics of one app: requests, latency by budget, embedding batches, index size."""

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class ServiceMetrics:
    """One registry per app, so several apps (tests, reloads) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tricl_http_requests",
            "HTTP requests by route template, method and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.shed = Counter(
            "tricl_shed_requests",
            "searches answered 503 because max_in_flight were already in progress",
            registry=self.registry,
        )
        self.search_seconds = Histogram(
            "tricl_search_seconds",
            "POST /search time from upload read to response, by feature budget",
            ["k_features"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.embed_batch = Histogram(
            "tricl_embed_batch_size",
            "query images embedded together in one forward pass",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        # With several worker processes: the value of the worker that set it last.
        self.index_items = Gauge(
            "tricl_index_items",
            "gallery items in the loaded index",
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )
        self.index_bytes = Gauge(
            "tricl_index_bytes",
            "memory held by each search structure",
            ["structure", "features"],
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )

    def describe_index(self, count: int, structures: list[dict]) -> None:
        self.index_items.set(count)
        for held in structures:
            self.index_bytes.labels(held["structure"], str(held["features"])).set(held["bytes"])

    def render(self) -> bytes:
        """This process's metrics, or every worker's summed (service.workers sets the folder
        where each worker writes its values)."""
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            return generate_latest(self.registry)
        summed = CollectorRegistry()
        MultiProcessCollector(summed)
        return generate_latest(summed)
