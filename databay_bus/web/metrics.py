"""Prometheus metrics of one planner, in a registry of their own.

Counters and queue depths are read from ``planner.metrics()`` when scraped (nothing is
counted twice); what the planner does not total — transfer durations, delivery retries, dead
letters, the last successful transfer — is gathered by an observer. Each interface owns a
``CollectorRegistry``: several planners in one process never share or collide in the global
registry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from databay_bus.observers import (
    DeliveryFailed,
    Event,
    Observer,
    RecordDeadLettered,
    TransferCompleted,
)
from databay_bus.web.history import link_label

__all__ = ["PlannerMetrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class _PlannerCollector(Collector):
    """Turns ``planner.metrics()`` and the observer's totals into metric families."""

    def __init__(self, owner: PlannerMetrics) -> None:
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        data = self.owner.planner_metrics()
        owner = self.owner
        up = GaugeMetricFamily(
            "databay_bus_planner_running", "1 while the planner runs", labels=["planner"]
        )
        up.add_metric([str(data.get("planner", ""))], 1.0 if data.get("state") == "running" else 0)
        yield up
        families = {
            "transfers": CounterMetricFamily(
                "databay_bus_transfers", "Transfers run", labels=["link"]
            ),
            "failures": CounterMetricFamily(
                "databay_bus_transfer_failures", "Transfers that raised", labels=["link"]
            ),
            "skipped": CounterMetricFamily(
                "databay_bus_transfers_skipped",
                "Ticks skipped because the previous transfer still ran",
                labels=["link"],
            ),
            "records_pulled": CounterMetricFamily(
                "databay_bus_records_pulled", "Records the inlets produced", labels=["link"]
            ),
        }
        pushed = CounterMetricFamily(
            "databay_bus_records_pushed", "Records an outlet accepted", labels=["link", "outlet"]
        )
        outlet_failures = CounterMetricFamily(
            "databay_bus_outlet_failed_records",
            "Records of batches an outlet failed",
            labels=["link", "outlet"],
        )
        depth = GaugeMetricFamily(
            "databay_bus_queue_pending",
            "Deliveries waiting (pending or retrying)",
            labels=["link", "outlet"],
        )
        dead = GaugeMetricFamily(
            "databay_bus_queue_dead", "Dead-lettered deliveries", labels=["link", "outlet"]
        )
        oldest = GaugeMetricFamily(
            "databay_bus_queue_oldest_pending_age_seconds",
            "Age of the oldest waiting record",
            labels=["link"],
        )
        for entry in data.get("links", []):
            link = ".".join(entry.get("tags") or [])
            for key, family in families.items():
                family.add_metric([link], float(entry.get(key) or 0))
            for outlet, counts in (entry.get("outlets") or {}).items():
                pushed.add_metric([link, outlet], float(counts.get("pushed", 0)))
                outlet_failures.add_metric([link, outlet], float(counts.get("failures", 0)))
            queue = entry.get("queue")
            if isinstance(queue, dict):
                for outlet, counts in (queue.get("outlets") or {}).items():
                    depth.add_metric([link, outlet], float(counts.get("pending", 0)))
                    dead.add_metric([link, outlet], float(counts.get("dead", 0)))
                age = queue.get("oldest_pending_age")
                oldest.add_metric([link], float(age or 0.0))
        yield from families.values()
        yield from (pushed, outlet_failures, depth, dead, oldest)
        retries = CounterMetricFamily(
            "databay_bus_delivery_failures",
            "Failed deliveries of queued records (each retried or dead-lettered)",
            labels=["link", "outlet"],
        )
        dead_lettered = CounterMetricFamily(
            "databay_bus_dead_lettered", "Records dead-lettered", labels=["link", "outlet"]
        )
        last_success = GaugeMetricFamily(
            "databay_bus_last_success_timestamp_seconds",
            "When the last successful transfer of a link ended (epoch seconds)",
            labels=["link"],
        )
        with owner.lock:
            for (link, outlet), count in owner.delivery_failures.items():
                retries.add_metric([link, outlet], float(count))
            for (link, outlet), count in owner.dead_lettered.items():
                dead_lettered.add_metric([link, outlet], float(count))
            for link, at in owner.last_success.items():
                last_success.add_metric([link], at)
        yield from (retries, dead_lettered, last_success)


class PlannerMetrics(Observer):
    """A planner's metrics in a private registry; register it as an observer of the planner.

    Args:
        planner_metrics: returns ``planner.metrics()`` (read at each scrape).
    """

    def __init__(self, planner_metrics: Callable[[], dict[str, Any]]) -> None:
        self.planner_metrics = planner_metrics
        self.registry = CollectorRegistry(auto_describe=False)
        self.lock = threading.Lock()
        self.delivery_failures: dict[tuple[str, str], int] = {}
        self.dead_lettered: dict[tuple[str, str], int] = {}
        self.last_success: dict[str, float] = {}
        self.durations = Histogram(
            "databay_bus_transfer_duration_seconds",
            "How long transfers took",
            ["link"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_PlannerCollector(self))

    def notify(self, event: Event) -> None:
        if isinstance(event, TransferCompleted):
            link = link_label(event.link)
            self.durations.labels(link).observe(event.duration)
            if not event.failed:
                with self.lock:
                    self.last_success[link] = event.at
        elif isinstance(event, DeliveryFailed):
            key = (link_label(event.link), event.outlet)
            with self.lock:
                self.delivery_failures[key] = self.delivery_failures.get(key, 0) + event.count
        elif isinstance(event, RecordDeadLettered):
            key = (link_label(event.link), event.outlet)
            with self.lock:
                self.dead_lettered[key] = self.dead_lettered.get(key, 0) + 1

    def render(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)
