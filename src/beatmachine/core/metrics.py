"""Prometheus metrics served at `/metrics`."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)


class Metrics:
    """One registry per app, so several apps in one process (tests) never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route template, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.errors = Counter(
            "http_server_errors_total",
            "Unexpected errors (500) by route template.",
            ["route"],
            registry=self.registry,
        )
        self.mail_sent = Counter(
            "mail_sent_total",
            "E-mails handed to the transport.",
            ["transport", "outcome"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "jobs_total",
            "Background job runs by outcome (ok, retried, failed).",
            ["job", "outcome"],
            registry=self.registry,
        )
        self.job_duration = Histogram(
            "job_duration_seconds",
            "How long a background job ran.",
            ["job"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
            registry=self.registry,
        )
        self.job_latency = Histogram(
            "job_start_latency_seconds",
            "From a job being queued (or due, when delayed) to a worker starting it.",
            ["job"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
            registry=self.registry,
        )
        self.outbox_relayed = Counter(
            "outbox_relayed_total",
            "Events and jobs handed from the outbox to the job queue.",
            ["kind"],
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)
        if status >= 500:
            self.errors.labels(route).inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
