"""Prometheus metrics of one server process (served at ``/metrics``, see api/app.py).

Counters and histograms are updated where the work happens; stored totals are
read from the database when scraped.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

registry = CollectorRegistry()

REQUESTS = Counter(
    "voiceprint_requests_total", "HTTP requests by route and status",
    ["route", "method", "status"], registry=registry,
)  # fmt: skip
LATENCY = Histogram(
    "voiceprint_request_seconds", "Time to answer a request, by route", ["route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30), registry=registry,
)  # fmt: skip
REFUSED = Counter(
    "voiceprint_refused_total", "Requests answered with an error code, by code",
    ["code"], registry=registry,
)  # fmt: skip
STAGE = Histogram(
    "voiceprint_stage_seconds", "Time in each stage of analysing a recording",
    ["stage"], buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5), registry=registry,
)  # fmt: skip
INFERENCE_WAIT = Histogram(
    "voiceprint_inference_wait_seconds", "Time a request waited for an inference slot",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 30), registry=registry,
)  # fmt: skip
INFERENCE_QUEUE = Gauge(
    "voiceprint_inference_queue", "Requests waiting for an inference slot now", registry=registry
)
LIVE_STREAMS = Gauge("voiceprint_live_streams", "Live identify streams open now", registry=registry)
STORED = Gauge(
    "voiceprint_stored", "Stored groups and voiceprints (all workspaces)", ["kind"],
    registry=registry,
)  # fmt: skip
MODEL = Gauge(
    "voiceprint_model_info", "The speaker model in use (value 1)", ["model", "device"],
    registry=registry,
)  # fmt: skip
