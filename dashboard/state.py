"""What the app holds between requests: its settings, the pool (open while the lifespan runs),
the password hasher and the metrics. Kept on `app.state.lorawatch`."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from fastapi import Request
from psycopg_pool import ConnectionPool

from dashboard.config import ApiSettings
from dashboard.errors import ApiError
from dashboard.metrics import ApiMetrics
from dashboard.passwords import Passwords

#: argon2 verifications at once: each takes 64 MiB and a core for ~0.3 s, so a burst of logins must
#: queue rather than exhaust the machine.
VERIFY_CONCURRENCY = 4


@dataclass(slots=True)
class AppState:
    settings: ApiSettings
    passwords: Passwords
    metrics: ApiMetrics
    pool_: ConnectionPool | None = None
    verify_slots: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(VERIFY_CONCURRENCY)
    )

    @property
    def pool(self) -> ConnectionPool:
        if self.pool_ is None:
            raise ApiError(503, "unavailable", "the API is starting or stopping")
        return self.pool_


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.lorawatch
    return state
