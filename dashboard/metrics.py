"""Prometheus metrics of the API (served at /metrics, outside the OpenAPI document), and each
response's own server time.

Requests are labelled by route template (`/api/v1/devices/{device_id}`), never by the raw path, so
the series stay few whatever clients send; requests that match no route share one label.

Every HTTP response also carries `Server-Timing: app;dur=<ms>` (W3C Server Timing): the time from the
request reaching the app to its response headers, which for our routes includes the request's
transaction and its commit (dashboard/deps.py commits before the response starts). Browsers show it
in their developer tools and `python -m benchmarks.dashboard` reads it, so a page's server time is
measured without the client's or the network's. It reveals nothing a client could not time itself.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "(unmatched)"
SERVER_TIMING = b"server-timing"


def server_timing(seconds: float) -> bytes:
    """The `Server-Timing` value for an app time of `seconds`: `app;dur=<milliseconds>`."""
    return f"app;dur={seconds * 1000:.1f}".encode()


class ApiMetrics:
    """One set per app; a registry of its own keeps tests and several apps apart."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Histogram(
            "lorawatch_api_request_seconds",
            "time to answer an HTTP request, by method, route template and status",
            ["method", "route", "status"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5),
        )
        self.logins = Counter(
            "lorawatch_api_logins", "login attempts by outcome (ok, failed, refused)", ["outcome"], registry=r
        )


class MetricsMiddleware:
    """Times each HTTP request, records it under the route template the router matched, and tells
    the client the time to its response headers in `Server-Timing`."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [*message.get("headers", ()), (SERVER_TIMING, server_timing(time.perf_counter() - start))]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            self.metrics.requests.labels(scope["method"], template, str(status)).observe(time.perf_counter() - start)
