"""Every metric name the product serves, from the code that defines them: the alert rules'
and the dashboard's checks compare their queries with this (a renamed metric fails them)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from ig_outbound.gateway import metrics as gateway_metrics
from ig_outbound.worker import metrics as worker_metrics
from ig_outbound.worker.fleet_metrics import FLEET_LABELS, FLEET_METRICS

# The sample names each kind serves (`_created` samples are left out: nothing queries them).
_SUFFIXES: tuple[tuple[type[MetricWrapperBase], tuple[str, ...]], ...] = (
    (Counter, ("_total",)),
    (Histogram, ("_bucket", "_count", "_sum")),
    (Gauge, ("",)),
)


def _series(metric: MetricWrapperBase) -> set[str]:
    """The sample names one metric object serves (a counter `x_total`, a histogram's
    `_bucket`, `_count` and `_sum`)."""
    name = metric._name  # prometheus_client keeps the base name here
    for kind, suffixes in _SUFFIXES:
        if isinstance(metric, kind):
            return {name + suffix for suffix in suffixes}
    return {name}


def _defined_in(module: object) -> set[str]:
    return {
        name
        for value in vars(module).values()
        if isinstance(value, MetricWrapperBase)
        for name in _series(value)
    }


def worker_series() -> set[str]:
    """What a worker process serves (the fleet's series only while it holds the lease)."""
    return _defined_in(worker_metrics) | set(FLEET_METRICS)


def gateway_series() -> set[str]:
    return _defined_in(gateway_metrics)


def metric_series() -> set[str]:
    """Every sample name the product serves, prefixed `ig_outbound_`."""
    return worker_series() | gateway_series()


def label_names() -> dict[str, set[str]]:
    """Sample name -> its label names (without a histogram's `le`)."""
    labels: dict[str, set[str]] = {}
    for module in (worker_metrics, gateway_metrics):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                for name in _series(value):
                    labels[name] = set(value._labelnames)
    for name, (_, _, names) in FLEET_METRICS.items():
        labels[name] = set(names) | set(FLEET_LABELS)
    return labels
