"""Metrics for Prometheus: flattening get_dynamic payloads and exposing them."""

from qops.metrics.collector import BACKEND_STATES, HardwareMetricsCollector, MetricsExporter
from qops.metrics.flatten import DroppedMetric, Flattened, MetricFamily, flatten_dynamic

__all__ = [
    "BACKEND_STATES",
    "DroppedMetric",
    "Flattened",
    "HardwareMetricsCollector",
    "MetricFamily",
    "MetricsExporter",
    "flatten_dynamic",
]
